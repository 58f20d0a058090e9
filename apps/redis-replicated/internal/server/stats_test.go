package server

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// statsScript is a sequence of commands sent one at a time, then
// pipelined, whose commandstats and errorstats this server and Redis must
// agree on: calls, failed and rejected calls of data and server commands,
// subcommands, errors by code, inside and outside transactions.
var statsScript = [][]string{
	{"SET", "k", "v"},
	{"SET", "k"},           // rejected: arity
	{"GET", "k"},           //
	{"LPUSH", "k", "x"},    // failed: WRONGTYPE
	{"INCR", "k"},          // failed: ERR not an integer
	{"ASDF"},               // unknown: errorstats only
	{"CLIENT", "ID"},       // a server subcommand
	{"CLIENT", "NOSUCH"},   // unknown subcommand
	{"CLIENT"}, {"OBJECT"}, // a container without its subcommand: rejected, counted on the container
	{"XADD", "s", "*", "f", "v"},                //
	{"XGROUP", "CREATECONSUMER", "s", "g", "c"}, // failed: NOGROUP
	{"XGROUP", "NOSUCH"},
	{"EVALSHA", "0123456789012345678901234567890123456789", "0"}, // failed: NOSCRIPT
	{"EVAL", "return 1", "0"},
	{"MULTI"}, {"SET", "a", "b"}, {"INCR", "k"}, {"GET", "a"}, {"PING"}, {"EXEC"},
	{"MULTI"}, {"SET"}, {"EXEC"}, // EXECABORT
	{"EXEC"},                               // without MULTI
	{"MULTI"}, {"WATCH", "x"}, {"DISCARD"}, // a server command refused in MULTI
	{"WATCH", "a"}, {"SET", "a", "c"}, {"MULTI"}, {"GET", "a"}, {"EXEC"}, // aborted by WATCH: GET not run
	{"ECHO", "x"},
	{"DEL", "k", "a"},
	{"HSET", "h", "f"}, // rejected: arity
	{"ZADD", "z", "x", "m"},
	{"SELECT", "1"}, {"SET", "k1", "v"}, {"SELECT", "0"},
	{"AUTH", "k"}, {"AUTH", "bob", "x"}, {"AUTH", "default", "x"}, // failed: ERR, WRONGPASS
	{"MULTI"}, {"SET", "a", "b"}, {"AUTH", "a"}, {"EXEC"}, // AUTH fails inside EXEC
}

// TestStatsDifferential: after statsScript, INFO commandstats (usec
// masked), errorstats and total_error_replies are Redis's; after CONFIG
// RESETSTAT too.
func TestStatsDifferential(t *testing.T) {
	srv := startStandalone(t)
	ours := redistest.Dial(t, srv.Addr())
	redis := redistest.Dial(t, redistest.Start(t))
	both := func(args ...string) {
		t.Helper()
		ours.Do(args...)
		redis.Do(args...)
	}
	compare := func(when string) {
		t.Helper()
		for _, section := range []string{"commandstats", "errorstats"} {
			got, want := statLines(ours.Do("INFO", section)), statLines(redis.Do("INFO", section))
			if !slices.Equal(got, want) {
				t.Errorf("%s: INFO %s\n got %q\nwant %q", when, section, got, want)
			}
		}
		got, want := infoField(ours.Do("INFO", "stats"), "total_error_replies"), infoField(redis.Do("INFO", "stats"), "total_error_replies")
		if got != want || got == "" {
			t.Errorf("%s: total_error_replies %q, want %q", when, got, want)
		}
	}
	both("CONFIG", "RESETSTAT")
	for _, args := range statsScript {
		both(args...)
	}
	compare("one at a time")

	both("CONFIG", "RESETSTAT")
	both("FLUSHALL")
	var pipe []byte
	for _, args := range statsScript {
		b := make([][]byte, len(args))
		for i, a := range args {
			b[i] = []byte(a)
		}
		pipe = resp.AppendCommand(pipe, b...)
	}
	for _, c := range []*redistest.Conn{ours, redis} {
		if err := c.Send(pipe); err != nil {
			t.Fatal(err)
		}
		for range statsScript {
			if _, err := c.Read(); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare("pipelined")

	both("CONFIG", "RESETSTAT")
	compare("after CONFIG RESETSTAT")
}

var usecField = regexp.MustCompile(`usec=\d+,usec_per_call=[\d.]+`)

// statLines are the lines of an INFO section, usec masked, sorted (Redis
// lists commands in its hash table's order).
func statLines(info string) []string {
	var lines []string
	for _, l := range strings.Split(info, "\r\n") {
		if strings.HasPrefix(l, "cmdstat_") || strings.HasPrefix(l, "errorstat_") {
			lines = append(lines, usecField.ReplaceAllString(l, "usec=*"))
		}
	}
	slices.Sort(lines)
	return lines
}

// infoField is field's value in an INFO reply.
func infoField(info, field string) string {
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}

// TestErrorCode: errors are filed under the word after the dash, as Redis
// files them.
func TestErrorCode(t *testing.T) {
	for _, tc := range []struct{ reply, code string }{
		{"-ERR wrong number of arguments\r\n", "ERR"},
		{"-WRONGTYPE Operation against a key\r\n", "WRONGTYPE"},
		{"-NOSCRIPT No matching script\r\n", "NOSCRIPT"},
		{"-NOSPACE\r\n", "ERR"}, // no space: ERR
		{"-" + strings.Repeat("X", 40) + " long\r\n", "ERR"},
		{"-" + strings.Repeat("X", 30) + " fits\r\n", strings.Repeat("X", 30)},
	} {
		if got := string(errorCode([]byte(tc.reply))); got != tc.code {
			t.Errorf("errorCode(%q) = %q, want %q", tc.reply, got, tc.code)
		}
	}
}

// TestLatencyBuckets: a latency falls in the bucket whose top is the
// first at or above it, within an eighth of it.
func TestLatencyBuckets(t *testing.T) {
	for _, ns := range []uint64{0, 1, 7, 8, 9, 15, 16, 17, 100, 999, 1000, 1001, 123456, 1 << 40, 1<<63 + 12345, ^uint64(0)} {
		b := latencyBucket(ns)
		if b >= histBuckets {
			t.Fatalf("latencyBucket(%d) = %d, out of range", ns, b)
		}
		if top := bucketTop(b); top < ns || float64(top-ns) > float64(ns)/8+1 {
			t.Errorf("latencyBucket(%d) = %d, whose top is %d", ns, b, top)
		}
		if b > 0 && bucketTop(b-1) >= ns {
			t.Errorf("latencyBucket(%d) = %d, but bucket %d tops at %d", ns, b, b-1, bucketTop(b-1))
		}
	}
}

// TestStatsPerReplica: each replica counts what its own clients sent it.
// A write counts on the leader that received it, not on the followers that
// applied it; a write sent to a follower is a rejected call there; a read
// counts where it was served.
func TestStatsPerReplica(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	fol := c.Followers(lead)[0]
	lc, fc := redistest.Dial(t, lead.Srv.Addr()), redistest.Dial(t, fol.Srv.Addr())
	other := redistest.Dial(t, c.Followers(lead)[1].Srv.Addr())
	for range 3 {
		if r := lc.Do("SET", "k", "v"); r != "+OK\r\n" {
			t.Fatalf("SET: %q", r)
		}
	}
	lc.Do("LPUSH", "k", "x") // WRONGTYPE
	if r := fc.Do("SET", "k", "w"); !strings.HasPrefix(r, "-READONLY") {
		t.Fatalf("SET on a follower: %q", r)
	}
	fc.Do("GET", "k")
	for _, tc := range []struct {
		conn *redistest.Conn
		want []string
	}{
		{lc, []string{"cmdstat_lpush:calls=1,usec=*,rejected_calls=0,failed_calls=1", "cmdstat_set:calls=3,usec=*,rejected_calls=0,failed_calls=0", "errorstat_WRONGTYPE:count=1"}},
		{fc, []string{"cmdstat_get:calls=1,usec=*,rejected_calls=0,failed_calls=0", "cmdstat_set:calls=0,usec=*,rejected_calls=1,failed_calls=0", "errorstat_READONLY:count=1"}},
		{other, nil},
	} {
		got := statLines(tc.conn.Do("INFO", "commandstats") + tc.conn.Do("INFO", "errorstats"))
		if !slices.Equal(got, tc.want) {
			t.Errorf("got %q\nwant %q", got, tc.want)
		}
	}
}

// TestCallStatsLine: a command's counters fill one cache line, so those of
// two commands never share one.
func TestCallStatsLine(t *testing.T) {
	if n := unsafe.Sizeof(callStats{}); n != 64 {
		t.Fatalf("callStats is %d bytes, want 64", n)
	}
}
