package latclient

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  fault
	}{
		{"-READONLY You can't write against a read only replica. leader=2 addr=127.0.0.1:7001\r\n",
			fault{readOnly, 2, "127.0.0.1:7001", "-READONLY You can't write against a read only replica. leader=2 addr=127.0.0.1:7001"}},
		{"-READONLY x addr=[::1]:7001 more\r\n", fault{readOnly, 0, "[::1]:7001", "-READONLY x addr=[::1]:7001 more"}},
		{"-READONLY You can't write against a read only replica. leader=none\r\n",
			fault{readOnly, 0, "", "-READONLY You can't write against a read only replica. leader=none"}},
		// Real Redis: no leader named.
		{"-READONLY You can't write against a read only replica.\r\n", fault{readOnly, 0, "", "-READONLY You can't write against a read only replica."}},
		{"-READONLY leader=3\r\n", fault{readOnly, 3, "", "-READONLY leader=3"}},
		{"-TRYAGAIN gomu: no leader (election in progress)\r\n", fault{tryAgain, 0, "", "-TRYAGAIN gomu: no leader (election in progress)"}},
		{"-TRYAGAIN gomu: this replica is catching up. leader=2 addr=127.0.0.1:6380\r\n",
			fault{tryAgain, 2, "127.0.0.1:6380", "-TRYAGAIN gomu: this replica is catching up. leader=2 addr=127.0.0.1:6380"}},
		// The server's wording when it knows no leader while catching up.
		{"-TRYAGAIN gomu: this replica is catching up. leader=0 addr=\r\n",
			fault{tryAgain, 0, "", "-TRYAGAIN gomu: this replica is catching up. leader=0 addr="}},
		{"-TRYAGAIN gomu: this replica is paused\r\n", fault{tryAgain, 0, "", "-TRYAGAIN gomu: this replica is paused"}},
		{"-TRYAGAIN\r\n", fault{tryAgain, 0, "", "-TRYAGAIN"}},
		// Answers: the request is over.
		{"-READONLYX leader=1 addr=a:1\r\n", fault{}},
		{"-ERR addr=127.0.0.1:1 leader=1\r\n", fault{}},
		{"-OOM command not allowed\r\n", fault{}},
		{"+OK\r\n", fault{}},
	} {
		if got := parseFault([]byte(tc.reply)); got != tc.want {
			t.Errorf("parseFault(%q) = %+v; want %+v", tc.reply, got, tc.want)
		}
	}
}

func TestParseInfo(t *testing.T) {
	for _, tc := range []struct {
		name, info string
		want       clusterInfo
	}{
		{"replica", "$200\r\n# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6380\r\ngomu_id:1\r\ngomu_role:follower\r\ngomu_leader_id:2\r\ngomu_leader_addr:127.0.0.1:6380\r\n" +
			"gomu_replica_addrs:1=127.0.0.1:6379,2=127.0.0.1:6380,3=[::1]:6381\r\ngomu_paused:0\r\n\r\n",
			clusterInfo{1, 2, "127.0.0.1:6380", []member{{1, "127.0.0.1:6379"}, {2, "127.0.0.1:6380"}, {3, "[::1]:6381"}}}},
		{"no leader", "gomu_id:3\r\ngomu_leader_id:0\r\ngomu_leader_addr:\r\ngomu_replica_addrs:3=h:3\r\n",
			clusterInfo{3, 0, "", []member{{3, "h:3"}}}},
		{"malformed entries skipped", "gomu_replica_addrs:1=a:1,x=b:2,0=c:3,4=,5,6=f:6\n",
			clusterInfo{0, 0, "", []member{{1, "a:1"}, {6, "f:6"}}}},
		{"standalone", "# Replication\r\nrole:master\r\nconnected_slaves:0\r\ngomu_mode:standalone\r\n", clusterInfo{}},
		{"real Redis", "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:8a3b\r\n", clusterInfo{}},
	} {
		if got := parseInfo([]byte(tc.info)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: parseInfo = %+v; want %+v", tc.name, got, tc.want)
		}
	}
}

// routerStep is one fault reported to the router and what it must answer.
type routerStep struct {
	at   time.Duration // when the fault is met, from the script's start
	f    fault
	to   string        // the replica tried next
	wait time.Duration // the back-off before it
}

// Faults, as the client reports them.
var (
	hungF     = fault{kind: timedOut, msg: "request: no reply within 1s"}
	refusedF  = fault{kind: broken, msg: "connect: connection refusedF"}
	noLeaderF = fault{kind: readOnly, msg: "-READONLY ... leader=none"}
	electingF = fault{kind: tryAgain, msg: "-TRYAGAIN gomu: no leader (election in progress)"}
	leaderIs  = func(id int, addr string) fault { return fault{readOnly, id, addr, "-READONLY ... leader"} }
	catchesUp = func(id int, addr string) fault { return fault{tryAgain, id, addr, "-TRYAGAIN ... catching up"} }
)

// TestRouter runs the router through scripted requests: each script is one
// request's faults, in order, against replicas a:1 (id 1), b:2, c:3, the
// request starting on a:1. The hold is 1 s.
func TestRouter(t *testing.T) {
	const µs = time.Microsecond
	for _, tc := range []struct {
		name   string
		ids    bool // the ids are known (from INFO)
		addrs  []string
		steps  []routerStep
		reps   int  // replicas known at the end; 0: len(addrs)
		redisc bool // rediscovery asked for at the end
	}{
		{name: "redirect followed", steps: []routerStep{
			{0, leaderIs(3, "c:3"), "c:3", 0},
		}},
		{name: "catching-up replica names the leader", steps: []routerStep{
			{0, catchesUp(2, "b:2"), "b:2", 0},
		}},
		{name: "redirect to itself moves on", steps: []routerStep{
			{0, leaderIs(1, "a:1"), "b:2", 0},
			{0, leaderIs(2, "b:2"), "c:3", 0},
			{0, leaderIs(3, "c:3"), "a:1", 100 * µs}, // a whole round: back off
		}},
		{name: "redirect by id only, ids known", ids: true, steps: []routerStep{
			{0, leaderIs(3, ""), "c:3", 0},
		}},
		{name: "redirect by unknown id", steps: []routerStep{
			{0, leaderIs(3, ""), "b:2", 0},
		}},
		{name: "redirect by another spelling of a known id", ids: true, steps: []routerStep{
			{0, leaderIs(3, "localhost:3"), "c:3", 0},
		}},
		{name: "redirect to a new address learns it", steps: []routerStep{
			{0, leaderIs(4, "d:4"), "d:4", 0},
			{0, leaderIs(4, "d:4"), "b:2", 0}, // itself, by address
		}, reps: 4},
		{name: "no leader: in turn, backing off per round", steps: []routerStep{
			{0, noLeaderF, "b:2", 0},
			{0, electingF, "c:3", 0},
			{0, noLeaderF, "a:1", 100 * µs},
			{0, electingF, "b:2", 0},
			{0, noLeaderF, "c:3", 0},
			{0, electingF, "a:1", 200 * µs},
			{0, leaderIs(2, "b:2"), "b:2", 0},
		}},
		{name: "hung leader is held while followers still name it", steps: []routerStep{
			{0, hungF, "b:2", 0},
			{1, leaderIs(1, "a:1"), "c:3", 0},                      // a held: not followed
			{2, leaderIs(1, "a:1"), "b:2", 100 * µs},               // a held: b again, not a
			{3, leaderIs(3, "c:3"), "c:3", 0},                      // the new leader
			{4, hungF, "b:2", 0},                                   // hungF too
			{5, noLeaderF, "b:2", 200 * µs},                        // a and c held: b again
			{time.Second + 1, leaderIs(1, "a:1"), "a:1", 0},        // a's hold is over
			{time.Second + 2, refusedF, "b:2", 0},                  // a killed
			{time.Second + 3, leaderIs(1, "a:1"), "b:2", 400 * µs}, // nobody else left but b
		}},
		{name: "everything held: try the next anyway", steps: []routerStep{
			{0, hungF, "b:2", 0},
			{0, refusedF, "c:3", 0},
			{0, hungF, "a:1", 100 * µs},
			{0, hungF, "b:2", 0},
		}, redisc: true},
		{name: "stale views naming each other", steps: []routerStep{
			{0, leaderIs(2, "b:2"), "b:2", 0},
			{0, leaderIs(1, "a:1"), "a:1", 0},
			{0, leaderIs(2, "b:2"), "b:2", 100 * µs}, // a round: in turn, not followed
			{0, leaderIs(1, "a:1"), "a:1", 0},
			{0, leaderIs(2, "b:2"), "b:2", 0},
			{0, leaderIs(1, "a:1"), "c:3", 200 * µs}, // the cursor moved on
		}},
		{name: "one replica backs off, capped", addrs: []string{"a:1"}, steps: []routerStep{
			{0, refusedF, "a:1", 100 * µs},
			{0, refusedF, "a:1", 200 * µs},
			{0, leaderIs(1, "a:1"), "a:1", 400 * µs},
			{0, refusedF, "a:1", 800 * µs},
			{0, refusedF, "a:1", 1600 * µs},
			{0, refusedF, "a:1", 3200 * µs},
			{0, refusedF, "a:1", 6400 * µs},
			{0, refusedF, "a:1", 12800 * µs},
			{0, refusedF, "a:1", 25600 * µs},
			{0, refusedF, "a:1", backoffMax},
			{0, refusedF, "a:1", backoffMax},
		}, redisc: true},
		{name: "rediscovery needs a whole round unreachable", steps: []routerStep{
			{0, refusedF, "b:2", 0},
			{0, hungF, "c:3", 0},
			{0, noLeaderF, "c:3", 100 * µs}, // c answered, a and b held: c again
			{0, refusedF, "a:1", 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addrs := tc.addrs
			if addrs == nil {
				addrs = []string{"a:1", "b:2", "c:3"}
			}
			r := newRouter(addrs, time.Second)
			if tc.ids {
				for i := range r.reps {
					r.reps[i].id = i + 1
				}
			}
			r.begin()
			t0 := time.Unix(1000, 0)
			for i, s := range tc.steps {
				from := r.reps[r.cur].addr
				to, wait := r.next(s.f, t0.Add(s.at))
				if got := r.reps[to].addr; got != s.to || wait != s.wait || r.cur != to {
					t.Fatalf("step %d: %s on %s: to %s after %v (cur %d); want %s after %v",
						i, s.f.kind, from, got, wait, r.cur, s.to, s.wait)
				}
			}
			if want := max(tc.reps, len(addrs)); len(r.reps) != want {
				t.Fatalf("%d replicas known, want %d: %v", len(r.reps), want, r.addrs())
			}
			if r.rediscover != tc.redisc {
				t.Fatalf("rediscover %v, want %v", r.rediscover, tc.redisc)
			}
		})
	}
}

func TestRouterLearn(t *testing.T) {
	r := newRouter([]string{"localhost:1", "b:2", "b:2"}, time.Second) // a duplicate is kept once
	r.learnInfo(clusterInfo{self: 1, leader: 2, members: []member{{1, "127.0.0.1:1"}, {2, "b:2"}, {3, "c:3"}}})
	var got []string
	for _, rep := range r.reps {
		got = append(got, fmt.Sprintf("%d=%s", rep.id, rep.addr))
	}
	// localhost:1 is replica 1: its advertised spelling is not added.
	if want := "1=localhost:1 2=b:2 3=c:3"; strings.Join(got, " ") != want {
		t.Fatalf("replicas %s, want %s", strings.Join(got, " "), want)
	}
	if i := r.learn(2, ""); i != 1 {
		t.Fatalf("id 2 at %d, want 1", i)
	}
	if i := r.learn(9, ""); i != -1 {
		t.Fatalf("unknown id 9 at %d, want -1", i)
	}
	r.begin()
	r.next(hungF, time.Unix(0, 0))
	r.next(electingF, time.Unix(0, 0))
	if want := "localhost:1 (id 1): request: no reply within 1s; b:2 (id 2): -TRYAGAIN gomu: no leader (election in progress); c:3 (id 3): not tried"; r.lastFaults() != want {
		t.Fatalf("lastFaults:\n%s\nwant\n%s", r.lastFaults(), want)
	}
}
