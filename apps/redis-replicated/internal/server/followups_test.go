package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// TestLazyExpiry: a read that meets an expired key answers as if it were
// gone, and the leader deletes it before the reply leaves, as Redis does
// even with its active expiry off: DBSIZE counts it before the read and
// not after; on every replica alike.
func TestLazyExpiry(t *testing.T) {
	for _, read := range [][]string{
		{"GET", "k"}, {"MGET", "x", "k"}, {"EXISTS", "k"}, {"TYPE", "k"}, {"LLEN", "k"}, {"STRLEN", "k"},
	} {
		t.Run(read[0], func(t *testing.T) {
			c := startCluster(t, 3)
			lead := c.WaitLeader()
			cl := redistest.Dial(t, lead.Addr())
			cl.Do("DEBUG", "SET-ACTIVE-EXPIRE", "0")
			cl.Do("SELECT", "3") // a database other than 0
			cl.Do("SET", "k", "v", "PX", "5")
			time.Sleep(20 * time.Millisecond)
			if r := cl.Do("DBSIZE"); r != ":1\r\n" {
				t.Fatalf("DBSIZE before the read: %q", r)
			}
			if r := cl.Do(read...); strings.Contains(r, "v") {
				t.Fatalf("%q answered the expired value: %q", read, r)
			}
			if r := cl.Do("DBSIZE"); r != ":0\r\n" {
				t.Fatalf("DBSIZE after %q: %q", read, r)
			}
			want := digest(t, lead.Addr())
			for _, f := range c.Followers(lead) {
				if !replicatest.WaitFor(func() bool { return digest(t, f.Addr()) == want }) {
					t.Fatalf("follower %s digest differs", f.Addr())
				}
			}
		})
	}
}

// TestPFCountCaches: PFCOUNT of an HLL whose cached cardinality is stale
// answers it, and the leader then writes it into the header, as Redis's
// PFCOUNT does: GETRANGE shows the cache valid (its top byte 0) after the
// PFCOUNT, and stale again after a PFADD that changed a register; every
// replica has the same bytes.
func TestPFCountCaches(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	cl := redistest.Dial(t, lead.Addr())
	for _, step := range []struct{ cmd, want string }{
		{"PFADD hll a b c", ":1\r\n"},
		{"GETRANGE hll 15 15", "$1\r\n\x80\r\n"},
		{"PFCOUNT hll", ":3\r\n"},
		{"GETRANGE hll 15 15", "$1\r\n\x00\r\n"},
		{"GETRANGE hll 8 8", "$1\r\n\x03\r\n"},
		{"PFADD hll a b c", ":0\r\n"},
		{"GETRANGE hll 15 15", "$1\r\n\x00\r\n"},
		{"PFADD hll 1 2 3", ":1\r\n"},
		{"GETRANGE hll 15 15", "$1\r\n\x80\r\n"},
		{"PFCOUNT hll", ":6\r\n"},
	} {
		if r := cl.Do(strings.Fields(step.cmd)...); r != step.want {
			t.Fatalf("%s: %q, want %q", step.cmd, r, step.want)
		}
	}
	want := digest(t, lead.Addr())
	for _, f := range c.Followers(lead) {
		if !replicatest.WaitFor(func() bool { return digest(t, f.Addr()) == want }) {
			t.Fatalf("follower %s digest differs", f.Addr())
		}
	}
}
