package store

import (
	"bytes"
	"slices"
	"testing"
)

// doDB runs one command in database db as the applier does.
func (r *blockRig) doDB(db int, args ...string) string {
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	out := r.s.ExecDB(nil, r.env, db, bargs)
	if r.s.HasReady() {
		r.s.ServeReady(r.env)
	}
	return string(out)
}

// TestBlockingDatabases: a waiter waits on its key in its own database, is
// served there and only there, follows its index across SWAPDB, and
// survives a snapshot beside keys of several databases and the scripts.
func TestBlockingDatabases(t *testing.T) {
	r := newBlockRig()
	steps := []struct {
		db         int
		args       []string
		want       string
		deliveries []string
	}{
		{5, blk("w5", "BLPOP", "k", "0"), "", nil},
		{3, blk("w3", "BLPOP", "k", "0"), "", nil},
		// The same key in database 0 serves nobody.
		{0, []string{"RPUSH", "k", "zero"}, ":1\r\n", nil},
		{3, []string{"RPUSH", "k", "three"}, ":1\r\n", []string{"w3 *2\r\n$1\r\nk\r\n$5\r\nthree\r\n"}},
		// SWAPDB brings database 0's list to index 5, where w5 waits.
		{0, []string{"SWAPDB", "0", "5"}, "+OK\r\n", []string{"w5 *2\r\n$1\r\nk\r\n$4\r\nzero\r\n"}},
		{7, blk("w7", "BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"), "", nil},
		{0, []string{"SCRIPT", "LOAD", "return redis.call('RPUSH', KEYS[1], ARGV[1])"}, "", nil},
	}
	for i, st := range steps {
		before := len(r.got)
		got := r.doDB(st.db, st.args...)
		if st.want != "" && got != st.want {
			t.Fatalf("step %d %v in db %d: got %q, want %q", i, st.args, st.db, got, st.want)
		}
		if d := r.got[before:]; !slices.Equal(d, st.deliveries) && !(len(d) == 0 && len(st.deliveries) == 0) {
			t.Fatalf("step %d %v: delivered %q, want %q", i, st.args, d, st.deliveries)
		}
	}
	if n := r.s.Waiters(); n != 1 {
		t.Fatalf("%d waiters left, want w7's", n)
	}

	var buf bytes.Buffer
	if err := r.s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	restored := newBlockRig()
	if err := restored.s.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if restored.s.Digest() != r.s.Digest() {
		t.Fatal("restored store's digest differs")
	}
	// Both serve w7 alike, through the restored script, in database 7.
	for _, rig := range []*blockRig{r, restored} {
		rig.doDB(7, "EVALSHA", "1a9c0e0f1c5c0ee1e2d1e0ad1bd6d8b6c9b1a0a1", "1", "src", "x") // unknown sha: NOSCRIPT, no effect
		sha := rig.doDB(0, "SCRIPT", "LOAD", "return redis.call('RPUSH', KEYS[1], ARGV[1])")
		sha = sha[bytes.IndexByte([]byte(sha), '\n')+1 : len(sha)-2]
		if got := rig.doDB(7, "EVALSHA", sha, "1", "src", "moved"); got != ":1\r\n" {
			t.Fatalf("EVALSHA: %q", got)
		}
		if got := rig.got[len(rig.got)-1]; got != "w7 $5\r\nmoved\r\n" {
			t.Fatalf("w7 got %q", got)
		}
		if got := rig.doDB(7, "LRANGE", "dst", "0", "-1"); got != "*1\r\n$5\r\nmoved\r\n" {
			t.Fatalf("db 7 dst: %q", got)
		}
	}
	if restored.s.Digest() != r.s.Digest() {
		t.Fatal("the store and its restored copy diverged serving the same write")
	}
}
