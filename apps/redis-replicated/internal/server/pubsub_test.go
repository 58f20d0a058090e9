package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// psStep is one step of a Pub/Sub script: a command sent on connection
// conn (0: the subscriber, 1: another client), then the number of replies
// to read on each connection; unordered replies (those Redis gives in its
// hash tables' order) are compared as a set.
type psStep struct {
	conn      int
	args      []string
	reads     [2]int
	unordered bool
}

// TestPubSubDifferential runs Pub/Sub scripts on a standalone server and on
// Debian's redis-server and compares every reply, messages included, byte
// for byte: confirmations and their counts, messages and pattern messages,
// PING and the refusal of other commands in subscribed mode, PUBSUB's
// introspection, unsubscribing from everything.
func TestPubSubDifferential(t *testing.T) {
	scripts := []struct {
		name  string
		steps []psStep
	}{
		{"subscribe, publish, unsubscribe", []psStep{
			{0, []string{"SUBSCRIBE", "news", "sport"}, [2]int{2, 0}, false},
			{1, []string{"PUBLISH", "news", "hello"}, [2]int{1, 1}, false},
			{1, []string{"PUBLISH", "weather", "rain"}, [2]int{0, 1}, false},
			{1, []string{"PUBSUB", "NUMSUB", "news", "sport", "weather"}, [2]int{0, 1}, false},
			{1, []string{"PUBSUB", "CHANNELS"}, [2]int{0, 1}, true},
			{1, []string{"PUBSUB", "CHANNELS", "n*"}, [2]int{0, 1}, false},
			{0, []string{"PING"}, [2]int{1, 0}, false},
			{0, []string{"PING", "there"}, [2]int{1, 0}, false},
			{0, []string{"GET", "k"}, [2]int{1, 0}, false},
			{0, []string{"UNSUBSCRIBE", "news"}, [2]int{1, 0}, false},
			{1, []string{"PUBLISH", "news", "gone"}, [2]int{0, 1}, false},
			{0, []string{"UNSUBSCRIBE"}, [2]int{1, 0}, false},
			{0, []string{"UNSUBSCRIBE"}, [2]int{1, 0}, false},
			{0, []string{"PING"}, [2]int{1, 0}, false},
			{0, []string{"SET", "k", "v"}, [2]int{1, 0}, false},
		}},
		{"patterns", []psStep{
			{0, []string{"PSUBSCRIBE", "h*", "w?ther"}, [2]int{2, 0}, false},
			{0, []string{"SUBSCRIBE", "hat"}, [2]int{1, 0}, false},
			{1, []string{"PUBLISH", "hat", "one"}, [2]int{2, 1}, true},
			{1, []string{"PUBLISH", "wether", "two"}, [2]int{1, 1}, false},
			{1, []string{"PUBSUB", "NUMPAT"}, [2]int{0, 1}, false},
			{0, []string{"PUNSUBSCRIBE", "h*"}, [2]int{1, 0}, false},
			{1, []string{"PUBLISH", "hat", "three"}, [2]int{1, 1}, false},
			{0, []string{"PUNSUBSCRIBE"}, [2]int{1, 0}, false},
			{0, []string{"PUNSUBSCRIBE"}, [2]int{1, 0}, false},
			{0, []string{"UNSUBSCRIBE", "hat", "never"}, [2]int{2, 0}, false},
		}},
		{"never subscribed", []psStep{
			{0, []string{"UNSUBSCRIBE"}, [2]int{1, 0}, false},
			{0, []string{"PUNSUBSCRIBE", "a", "b"}, [2]int{2, 0}, false},
			{0, []string{"PUBSUB", "NUMSUB"}, [2]int{1, 0}, false},
			{0, []string{"PUBSUB", "NOPE"}, [2]int{1, 0}, false},
			{0, []string{"PUBSUB", "NUMPAT", "extra"}, [2]int{1, 0}, false},
			{0, []string{"PUBLISH", "nobody", "listens"}, [2]int{1, 0}, false},
			{0, []string{"SUBSCRIBE"}, [2]int{1, 0}, false},
		}},
	}
	redis := redistest.Start(t)
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			ours := startStandalone(t)
			run := func(addr string) []string {
				conns := [2]*redistest.Conn{redistest.Dial(t, addr), redistest.Dial(t, addr)}
				var got []string
				for i, st := range sc.steps {
					b := make([][]byte, len(st.args))
					for k, a := range st.args {
						b[k] = []byte(a)
					}
					if err := conns[st.conn].Send(resp.AppendCommand(nil, b...)); err != nil {
						t.Fatalf("step %d %q: %v", i, st.args, err)
					}
					var replies []string
					for c, n := range st.reads {
						for range n {
							r, err := conns[c].Read()
							if err != nil {
								t.Fatalf("step %d %q: reply on connection %d: %v", i, st.args, c, err)
							}
							replies = append(replies, fmt.Sprintf("c%d %s", c, r))
						}
					}
					if st.unordered {
						for k, r := range replies {
							replies[k] = sortBulkArray(r)
						}
						slices.Sort(replies)
					}
					got = append(got, strings.Join(replies, " | "))
				}
				return got
			}
			want, got := run(redis), run(ours.Addr())
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("step %d %q:\n got %q\nwant %q", i, sc.steps[i].args, got[i], want[i])
				}
			}
		})
	}
}

// TestPubSubOnEveryReplica: subscribers on the leader and on each follower
// hear every message published through the leader, in publishing order,
// because PUBLISH is replicated and each replica delivers what it applies.
// A follower refuses PUBLISH as it refuses a write.
func TestPubSubOnEveryReplica(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	var subs []*redistest.Conn
	for _, n := range c.Live() {
		s := redistest.Dial(t, n.Srv.Addr())
		if r := s.Do("SUBSCRIBE", "ticker"); r != "*3\r\n$9\r\nsubscribe\r\n$6\r\nticker\r\n:1\r\n" {
			t.Fatalf("replica %d: SUBSCRIBE answered %q", n.ID, r)
		}
		subs = append(subs, s)
	}
	pub := redistest.Dial(t, lead.Srv.Addr())
	const n = 200
	for i := range n {
		if r := pub.Do("PUBLISH", "ticker", fmt.Sprint("tick-", i)); r != ":1\r\n" {
			t.Fatalf("PUBLISH %d on the leader answered %q, want its one local subscriber", i, r)
		}
	}
	for k, s := range subs {
		for i := range n {
			r, err := s.Read()
			if err != nil {
				t.Fatalf("subscriber %d, message %d: %v", k, i, err)
			}
			m := fmt.Sprint("tick-", i)
			if want := fmt.Sprintf("*3\r\n$7\r\nmessage\r\n$6\r\nticker\r\n$%d\r\n%s\r\n", len(m), m); r != want {
				t.Fatalf("subscriber %d, message %d: got %q, want %q", k, i, r, want)
			}
		}
	}
	for _, f := range c.Followers(lead) {
		if r := redistest.Dial(t, f.Srv.Addr()).Do("PUBLISH", "ticker", "x"); !strings.HasPrefix(r, "-READONLY") {
			t.Fatalf("PUBLISH on follower %d answered %q, want READONLY", f.ID, r)
		}
	}
}

// sortBulkArray sorts the elements of a reply that is a flat array of bulk
// strings ("c1 *2\r\n$4\r\nnews\r\n..."), prefix kept; other replies are
// returned as they are.
func sortBulkArray(r string) string {
	prefix, body, ok := strings.Cut(r, "*")
	if !ok {
		return r
	}
	lines := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
	if len(lines)%2 != 1 {
		return r
	}
	var elems []string
	for i := 1; i+1 < len(lines); i += 2 {
		if !strings.HasPrefix(lines[i], "$") {
			return r
		}
		elems = append(elems, lines[i]+"\r\n"+lines[i+1])
	}
	slices.Sort(elems)
	return prefix + "*" + lines[0] + "\r\n" + strings.Join(elems, "\r\n") + "\r\n"
}
