package server

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// TestNotifyOnEveryReplica: notify-keyspace-events set through the leader
// holds on every replica, and subscribers on the leader and on each
// follower hear the same keyspace events in the same order (every replica
// produces them as it applies the writes), the expiry sweep's and a served
// blocking pop's included. Keyspace misses are the replica's own: a read on
// a follower is heard there only.
func TestNotifyOnEveryReplica(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	cli := redistest.Dial(t, lead.Srv.Addr())
	if r := cli.Do("CONFIG", "SET", "notify-keyspace-events", "KEAm"); r != "+OK\r\n" {
		t.Fatalf("CONFIG SET answered %q", r)
	}
	var subs []*redistest.Conn
	for _, n := range c.Live() {
		if r := redistest.Dial(t, n.Srv.Addr()).Do("CONFIG", "GET", "notify-keyspace-events"); r != "*2\r\n$22\r\nnotify-keyspace-events\r\n$4\r\nAKEm\r\n" {
			t.Fatalf("replica %d: CONFIG GET answered %q", n.ID, r)
		}
		s := redistest.Dial(t, n.Srv.Addr())
		s.Do("PSUBSCRIBE", "__key*__:*")
		s.Do("SUBSCRIBE", "end")
		subs = append(subs, s)
	}
	blocked := redistest.Dial(t, lead.Srv.Addr())
	if err := blocked.Send(resp.AppendCommand(nil, []byte("BLPOP"), []byte("queue"), []byte("0"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the waiter register
	for _, cmd := range [][]string{
		{"SET", "a", "1"}, {"SET", "t", "x", "PX", "20"}, {"INCR", "a"}, {"RPUSH", "queue", "job1", "job2"},
		{"HSET", "h", "f", "v"}, {"SADD", "s", "m"}, {"ZADD", "z", "1", "m"}, {"XADD", "x", "1-1", "f", "v"},
		{"EXPIRE", "a", "100"}, {"RENAME", "a", "b"}, {"SELECT", "3"}, {"SET", "k", "v"}, {"MOVE", "k", "0"},
		{"SELECT", "0"}, {"DEL", "b", "h"},
	} {
		if r := cli.Do(cmd...); strings.HasPrefix(r, "-") {
			t.Fatalf("%q answered %q", cmd, r)
		}
	}
	if r, err := blocked.Read(); err != nil || !strings.Contains(r, "job1") {
		t.Fatalf("BLPOP got %q, %v", r, err)
	}
	time.Sleep(300 * time.Millisecond) // the sweep expires t
	for _, f := range c.Followers(lead) {
		redistest.Dial(t, f.Srv.Addr()).Do("GET", "nokey") // a miss heard on f only
	}
	cli.Do("PUBLISH", "end", "end")
	var heard [][]string
	for k, s := range subs {
		var evs []string
		for {
			r, err := s.Read()
			if err != nil {
				t.Fatalf("subscriber %d: %v", k, err)
			}
			if strings.Contains(r, "$3\r\nend\r\n$3\r\nend\r\n") {
				break
			}
			evs = append(evs, r)
		}
		heard = append(heard, evs)
	}
	lines := strings.Join(heard[0], "")
	for _, want := range []string{"__keyevent@0__:lpop", "__keyevent@0__:expired", "__keyevent@3__:move_from",
		"__keyevent@0__:move_to", "__keyspace@0__:b", "__keyevent@0__:xadd"} {
		if !strings.Contains(lines, want) {
			t.Errorf("the leader's subscriber heard no %s in:\n%s", want, lines)
		}
	}
	isMiss := func(r string) bool { return strings.Contains(r, "keymiss") }
	notMiss := func(r string) bool { return !isMiss(r) }
	var first []string
	for k, n := range c.Live() {
		misses := slices.DeleteFunc(slices.Clone(heard[k]), notMiss)
		want := 2 // its own GET's keyspace and keyevent messages
		if n.ID == lead.ID {
			want = 0
		}
		if len(misses) != want {
			t.Errorf("replica %d heard %d keyspace-miss messages, want %d", n.ID, len(misses), want)
		}
		evs := slices.DeleteFunc(heard[k], isMiss)
		if k == 0 {
			first = evs
		} else if !slices.Equal(evs, first) {
			t.Errorf("replica %d heard\n%q\nthe first heard\n%q", n.ID, evs, first)
		}
	}
	if len(first) != 38 { // 19 events, each in both forms
		t.Fatalf("%d messages heard, want 38: %q", len(first), first)
	}
}
