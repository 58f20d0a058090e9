package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestScriptCallStatsDifferential: the commands a script calls count in
// INFO commandstats and errorstats as in Redis 7.0 (calls, failed and
// rejected calls, an error counted once), through every path a script
// takes here: a speculative run that only reads, a replicated run after
// a write, a read-only run (EVAL_RO).
func TestScriptCallStatsDifferential(t *testing.T) {
	srv := startStandalone(t)
	ours := redistest.Dial(t, srv.Addr())
	redis := redistest.Dial(t, redistest.Start(t))
	both := func(args ...string) (string, string) {
		t.Helper()
		return ours.Do(args...), redis.Do(args...)
	}
	for _, tc := range []struct {
		name  string
		setup [][]string
		call  []string
	}{
		{"reads", nil, []string{"EVAL", "redis.call('get','k'); redis.call('exists','k'); return redis.call('get','k')", "1", "k"}},
		{"writes", nil, []string{"EVAL", "redis.call('get','k'); redis.call('set','k','v'); return redis.call('incr','n')", "2", "k", "n"}},
		{"call error raised", [][]string{{"SET", "s", "x"}}, []string{"EVAL", "return redis.call('lpush','s','a')", "1", "s"}},
		{"pcall error caught", [][]string{{"SET", "s", "x"}}, []string{"EVAL", "redis.pcall('lpush','s','a'); return 1", "1", "s"}},
		{"pcall error returned", [][]string{{"SET", "s", "x"}}, []string{"EVAL", "return redis.pcall('lpush','s','a')", "1", "s"}},
		{"earlier error returned", [][]string{{"SET", "s", "x"}}, []string{"EVAL", "local e = redis.pcall('lpush','s','a'); redis.pcall('select',99); return e", "1", "s"}},
		{"read error raised", [][]string{{"SET", "s", "x"}}, []string{"EVAL", "return redis.call('llen','s')", "1", "s"}},
		{"select out of range", nil, []string{"EVAL", "return redis.call('select',99)", "0"}},
		{"select out of range caught", nil, []string{"EVAL", "redis.pcall('select',99); return redis.call('select',1)", "0"}},
		{"unknown command", nil, []string{"EVAL", "return redis.pcall('nosuch')", "0"}},
		{"wrong arity", nil, []string{"EVAL", "return redis.call('get')", "0"}},
		{"not allowed from scripts", nil, []string{"EVAL", "return redis.call('multi')", "0"}},
		{"write from read-only", nil, []string{"EVAL_RO", "return redis.call('set','x','y')", "1", "x"}},
		{"write from read-only caught", nil, []string{"EVAL_RO", "redis.pcall('set','x','y'); return redis.call('get','x')", "1", "x"}},
		{"bad argument", nil, []string{"EVAL", "return redis.call('get', {})", "0"}},
		{"error_reply", nil, []string{"EVAL", "return redis.error_reply('MY_ERR custom')", "0"}},
		{"subcommand failed", nil, []string{"EVAL", "redis.pcall('XGROUP', 'CREATECONSUMER', 's1', 'mygroup', 'consumer') return", "0"}},
		{"pcall write error then write", [][]string{{"SET", "s", "x"}}, []string{"EVAL", "redis.pcall('lpush','s','a'); return redis.call('set','t','1')", "2", "s", "t"}},
		{"function", [][]string{{"FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function(keys) redis.pcall('lpush', keys[1], 'a'); return redis.call('get', keys[1]) end)"}, {"SET", "s", "x"}},
			[]string{"FCALL", "f", "1", "s"}},
		{"subcommand and time", [][]string{{"SET", "k", "v"}}, []string{"EVAL", "redis.call('time'); return redis.call('object','encoding','k')", "1", "k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			both("FLUSHALL")
			both("FUNCTION", "FLUSH")
			for _, args := range tc.setup {
				both(args...)
			}
			both("CONFIG", "RESETSTAT")
			if got, want := both(tc.call...); got != want {
				t.Fatalf("reply %q, Redis %q", got, want)
			}
			for _, section := range []string{"commandstats", "errorstats"} {
				got, want := statLines(ours.Do("INFO", section)), statLines(redis.Do("INFO", section))
				if !slices.Equal(got, want) {
					t.Errorf("INFO %s\n got %q\nwant %q", section, got, want)
				}
			}
			got, want := infoField(ours.Do("INFO", "stats"), "total_error_replies"), infoField(redis.Do("INFO", "stats"), "total_error_replies")
			if got != want {
				t.Errorf("total_error_replies %q, Redis %q", got, want)
			}
		})
	}
}

// TestScriptCallStatsOnLeaderOnly: a replicated script's calls count on
// the leader that took it, not on the followers that applied it.
func TestScriptCallStatsOnLeaderOnly(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	lc := redistest.Dial(t, lead.Srv.Addr())
	if r := lc.Do("EVAL", "redis.call('set','k','v'); return redis.call('get','k')", "1", "k"); r != "$1\r\nv\r\n" {
		t.Fatalf("EVAL: %q", r)
	}
	if got := lc.Do("INFO", "commandstats"); !strings.Contains(got, "cmdstat_get:calls=1,") || !strings.Contains(got, "cmdstat_set:calls=1,") {
		t.Errorf("leader's commandstats: %q", got)
	}
	for _, f := range c.Followers(lead) {
		fc := redistest.Dial(t, f.Srv.Addr())
		if fc.Do("GET", "k") != "$1\r\nv\r\n" { // applied there too
			t.Fatalf("follower missed the script's write")
		}
		if got := fc.Do("INFO", "commandstats"); strings.Contains(got, "cmdstat_set:") {
			t.Errorf("a follower counted the script's SET: %q", got)
		}
	}
}
