package server

import (
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestClusterConfigReplicated: CONFIG SET of an encoding threshold on the
// leader reaches every replica through the log (CONFIG GET and OBJECT
// ENCODING agree everywhere, and so do the digests, DEBUG RELOAD
// included); a follower refuses it as it refuses a write.
func TestClusterConfigReplicated(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	l := redistest.Dial(t, lead.Srv.Addr())
	for _, cmd := range [][]string{
		{"CONFIG", "SET", "hash-max-listpack-entries", "2"},
		{"HSET", "h", "a", "1", "b", "2", "c", "3"},
		{"HDEL", "h", "c"},
		{"DEBUG", "RELOAD"},
		{"CONFIG", "SET", "set-max-intset-entries", "1"},
		{"SADD", "s", "1", "2"},
	} {
		if r := l.Do(cmd...); strings.HasPrefix(r, "-") {
			t.Fatalf("%q: %q", cmd, r)
		}
	}
	want := digest(t, lead.Srv.Addr())
	for _, f := range c.Followers(lead) {
		fc := redistest.Dial(t, f.Srv.Addr())
		if r := fc.Do("CONFIG", "GET", "hash-max-listpack-entries"); r != "*2\r\n$25\r\nhash-max-listpack-entries\r\n$1\r\n2\r\n" {
			t.Errorf("follower %d CONFIG GET: %q", f.ID, r)
		}
		if r := fc.Do("OBJECT", "ENCODING", "h"); r != bulk("listpack") {
			t.Errorf("follower %d encoding of h after RELOAD: %q", f.ID, r)
		}
		if r := fc.Do("OBJECT", "ENCODING", "s"); r != bulk("hashtable") {
			t.Errorf("follower %d encoding of s: %q", f.ID, r)
		}
		if d := digest(t, f.Srv.Addr()); d != want {
			t.Errorf("follower %d digest %q, leader %q", f.ID, d, want)
		}
		if r := fc.Do("CONFIG", "SET", "zset-max-listpack-entries", "1"); !strings.HasPrefix(r, "-READONLY") && !strings.HasPrefix(r, "-TRYAGAIN") {
			t.Errorf("follower %d CONFIG SET: %q, want a refusal", f.ID, r)
		}
	}
}
