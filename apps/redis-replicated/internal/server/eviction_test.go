package server

import (
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// TestAccessDataDiff: OBJECT IDLETIME and FREQ under each kind of
// maxmemory-policy, RESTORE's IDLETIME and FREQ, a new key's LFU counter,
// and the CONFIG SET errors of the eviction parameters, reply for reply as
// Redis's (idle times within a second of each other).
func TestAccessDataDiff(t *testing.T) {
	run := func(addr string) []string {
		c := redistest.Dial(t, addr)
		c.Do("SET", "foo", "bar")
		payload := c.Do("DUMP", "foo")
		raw := payload[strings.Index(payload, "\r\n")+2 : len(payload)-2]
		var got []string
		for _, cmd := range [][]string{
			{"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"},
			{"RESTORE", "idle", "0", raw, "IDLETIME", "1000"},
			{"OBJECT", "IDLETIME", "idle"},
			{"OBJECT", "FREQ", "idle"},
			{"CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"},
			{"RESTORE", "freq", "0", raw, "FREQ", "100"},
			{"OBJECT", "FREQ", "freq"},
			{"OBJECT", "IDLETIME", "freq"},
			{"SET", "new", "v"},
			{"OBJECT", "FREQ", "new"},
			{"CONFIG", "GET", "maxmemory-policy"},
			{"CONFIG", "SET", "maxmemory-policy", "lru"},
			{"CONFIG", "SET", "maxmemory-samples", "0"},
			{"CONFIG", "SET", "lfu-log-factor", "-1"},
			{"CONFIG", "SET", "lfu-decay-time", "x"},
			{"CONFIG", "SET", "maxmemory-samples", "10", "lfu-log-factor", "20", "lfu-decay-time", "2"},
			{"CONFIG", "GET", "maxmemory-samples"},
			{"CONFIG", "GET", "lfu-log-factor"},
			{"CONFIG", "GET", "lfu-decay-time"},
			{"CONFIG", "SET", "maxmemory-policy", "NOEVICTION"},
			{"OBJECT", "FREQ", "freq"},
		} {
			got = append(got, c.Do(cmd...))
		}
		return got
	}
	idle := regexp.MustCompile(`^:100[0-9]\r\n$`) // seconds pass between RESTORE and OBJECT
	want, got := run(redistest.Start(t)), run(startStandalone(t).Addr())
	for i := range want {
		if got[i] != want[i] && !(idle.MatchString(got[i]) && idle.MatchString(want[i])) {
			t.Errorf("reply %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

// TestEviction: over maxmemory, the leader evicts by its policy and every
// replica applies the same evictions: "evicted" events are published (on
// a follower's subscribers too), evicted_keys counts them, writes go on
// once memory fits, and the digests agree. Under allkeys-lru with enough
// samples, keys read lately survive; under volatile-ttl only keys with a
// TTL go, nearest first; under noeviction writes are refused.
func TestEviction(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for idle times to differ by seconds")
	}
	for _, tc := range []struct{ policy string }{{"allkeys-lru"}, {"allkeys-lfu"}, {"allkeys-random"}, {"volatile-ttl"}, {"volatile-lru"}} {
		t.Run(tc.policy, func(t *testing.T) {
			c := startCluster(t, 3)
			lead := c.WaitLeader()
			cl := redistest.Dial(t, lead.Addr())
			f := c.Followers(lead)[0]
			sub := redistest.Dial(t, f.Addr())
			cl.Do("CONFIG", "SET", "notify-keyspace-events", "Ee") // replicated: every replica's
			if r := sub.Do("PSUBSCRIBE", "__keyevent@0__:evicted"); !strings.Contains(r, "psubscribe") {
				t.Fatalf("PSUBSCRIBE: %q", r)
			}
			// The policy first: its access data is kept from the start
			// (LRU and LFU data do not convert).
			cl.Do("CONFIG", "SET", "maxmemory-policy", tc.policy, "maxmemory-samples", "64")
			value := strings.Repeat("x", 1000)
			const n = 2000
			for i := range n {
				args := []string{"SET", "cold:" + strconv.Itoa(i), value}
				if strings.HasPrefix(tc.policy, "volatile") && i%2 == 0 {
					args = append(args, "EX", strconv.Itoa(1000+i)) // the even ones may go, lowest TTL first
				}
				cl.Do(args...)
			}
			for i := range 20 {
				cl.Do("SET", "hot:"+strconv.Itoa(i), value)
			}
			time.Sleep(2100 * time.Millisecond) // idle times in whole seconds
			for range 20 {                      // the hot keys: read lately, and often
				for i := range 20 {
					cl.Do("GET", "hot:"+strconv.Itoa(i))
				}
			}
			// The cluster and this test share one heap: collect its
			// garbage, so that used memory is the live data's.
			runtime.GC()
			used := infoInt(t, cl, "used_memory")
			// A limit about 400 KB below what is used: some hundreds of
			// the 1 KB values must go.
			if r := cl.Do("CONFIG", "SET", "maxmemory", strconv.FormatInt(used-400_000, 10)); r != "+OK\r\n" {
				t.Fatalf("CONFIG SET maxmemory: %q", r)
			}
			if infoInt(t, cl, "evicted_keys") == 0 {
				t.Fatal("nothing evicted")
			}
			runtime.GC()
			if r := cl.Do("SET", "after", "1"); r != "+OK\r\n" {
				t.Fatalf("a write after eviction: %q", r)
			}
			cl.Do("CONFIG", "SET", "maxmemory", "0")
			evicted := infoInt(t, cl, "evicted_keys")
			if msg := read(t, sub); !strings.Contains(msg, "evicted") {
				t.Fatalf("follower's subscriber heard %q", msg)
			}
			hot := 0
			for i := range 20 {
				if cl.Do("EXISTS", "hot:"+strconv.Itoa(i)) == ":1\r\n" {
					hot++
				}
			}
			switch tc.policy {
			case "allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-ttl":
				if hot != 20 {
					t.Errorf("%d of the 20 hot keys survived %d evictions", hot, evicted)
				}
			}
			if strings.HasPrefix(tc.policy, "volatile") {
				for i := 1; i < n; i += 2 {
					if cl.Do("EXISTS", "cold:"+strconv.Itoa(i)) != ":1\r\n" {
						t.Fatalf("cold:%d, without a TTL, was evicted", i)
					}
				}
			}
			if tc.policy == "volatile-ttl" && cl.Do("EXISTS", "cold:0") != ":0\r\n" {
				t.Error("volatile-ttl kept the key with the nearest TTL")
			}
			want := digest(t, lead.Addr())
			for _, f := range c.Followers(lead) {
				if !replicatest.WaitFor(func() bool { return digest(t, f.Addr()) == want }) {
					t.Fatalf("follower %s digest differs", f.Addr())
				}
				if got := infoInt(t, redistest.Dial(t, f.Addr()), "evicted_keys"); got != evicted {
					t.Errorf("follower evicted_keys %d, leader %d", got, evicted)
				}
			}
		})
	}
}

// infoInt is an integer field of c's INFO.
func infoInt(t *testing.T, c *redistest.Conn, field string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(infoField(c.Do("INFO", "all"), field), 10, 64)
	if err != nil {
		t.Fatalf("INFO %s: %v", field, err)
	}
	return n
}
