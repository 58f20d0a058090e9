package store

import (
	"bytes"
	"slices"
	"strconv"
	"testing"
)

// TestStreamBlocking: XREAD and XREADGROUP with BLOCK wait as waiters and
// are served as Redis 7.0.15 serves a blocked stream client.
func TestStreamBlocking(t *testing.T) {
	const nullArray = "*-1\r\n"
	itoa := strconv.Itoa
	entry := func(key, id, f, v string) string { // [[key, [[id, [f, v]]]]]
		return "*1\r\n*2\r\n$" + itoa(len(key)) + "\r\n" + key + "\r\n*1\r\n*2\r\n$" + itoa(len(id)) + "\r\n" + id +
			"\r\n*2\r\n$" + itoa(len(f)) + "\r\n" + f + "\r\n$" + itoa(len(v)) + "\r\n" + v + "\r\n"
	}
	runBlockCases(t, []blockCase{
		{name: "xread block served by xadd to a new key",
			steps: []blockStep{
				{blk("a", "xread", "block", "0", "streams", "s", "$"), ""},
				{[]string{"xadd", "s", "1-1", "f", "v"}, "$3\r\n1-1\r\n"},
			},
			delivered: []string{"a " + entry("s", "1-1", "f", "v")}},
		{name: "$ is pinned when the waiter registers",
			steps: []blockStep{
				{[]string{"xadd", "s", "1-1", "f", "v"}, "$3\r\n1-1\r\n"},
				{blk("a", "xread", "block", "0", "streams", "s", "$"), ""},
				{[]string{"xadd", "s", "2-1", "g", "w"}, "$3\r\n2-1\r\n"},
			},
			delivered: []string{"a " + entry("s", "2-1", "g", "w")}},
		{name: "served at once when there is data",
			steps: []blockStep{
				{[]string{"xadd", "s", "1-1", "f", "v"}, "$3\r\n1-1\r\n"},
				{blk("a", "xread", "block", "0", "streams", "s", "0"), entry("s", "1-1", "f", "v")},
			}},
		{name: "several waiters are all served, in arrival order, with count",
			steps: []blockStep{
				{blk("a", "xread", "count", "1", "block", "0", "streams", "s", "0-0"), ""},
				{blk("b", "xread", "block", "0", "streams", "other", "s", "$", "$"), ""},
				{blk("c", "xread", "block", "0", "streams", "s", "0-0"), ""},
				{[]string{"xadd", "s", "1-1", "f", "v"}, "$3\r\n1-1\r\n"},
			},
			delivered: []string{"a " + entry("s", "1-1", "f", "v"), "b " + entry("s", "1-1", "f", "v"),
				"c " + entry("s", "1-1", "f", "v")}},
		{name: "xreadgroup > served, the second consumer gets the next entry",
			steps: []blockStep{
				{[]string{"xgroup", "create", "s", "g", "$", "mkstream"}, "+OK\r\n"},
				{blk("a", "xreadgroup", "group", "g", "c1", "block", "0", "streams", "s", ">"), ""},
				{blk("b", "xreadgroup", "group", "g", "c2", "block", "0", "streams", "s", ">"), ""},
				{[]string{"xadd", "s", "1-1", "f", "v"}, "$3\r\n1-1\r\n"},
				{[]string{"xadd", "s", "2-1", "g", "w"}, "$3\r\n2-1\r\n"},
				{[]string{"xpending", "s", "g", "-", "+", "10", "c2"}, "*1\r\n*4\r\n$3\r\n2-1\r\n$2\r\nc2\r\n:0\r\n:1\r\n"},
			},
			delivered: []string{"a " + entry("s", "1-1", "f", "v"), "b " + entry("s", "2-1", "g", "w")}},
		{name: "xreadgroup: key deleted",
			steps: []blockStep{
				{[]string{"xgroup", "create", "s", "g", "$", "mkstream"}, "+OK\r\n"},
				{blk("a", "xreadgroup", "group", "g", "c", "block", "0", "streams", "s", ">"), ""},
				{blk("b", "xread", "block", "0", "streams", "s", "$"), ""},
				{[]string{"del", "s"}, ":1\r\n"},
			},
			delivered: []string{"a -UNBLOCKED the stream key no longer exists\r\n"}, waiters: 1},
		{name: "xreadgroup: key overwritten with set",
			steps: []blockStep{
				{[]string{"xgroup", "create", "s", "g", "$", "mkstream"}, "+OK\r\n"},
				{blk("a", "xreadgroup", "group", "g", "c", "block", "0", "streams", "s", ">"), ""},
				{[]string{"set", "s", "x"}, "+OK\r\n"},
			},
			delivered: []string{"a -UNBLOCKED the stream key no longer exists\r\n"}},
		{name: "xreadgroup: flushdb",
			steps: []blockStep{
				{[]string{"xgroup", "create", "s", "g", "$", "mkstream"}, "+OK\r\n"},
				{blk("a", "xreadgroup", "group", "g", "c", "block", "0", "streams", "s", ">"), ""},
				{[]string{"flushdb"}, "+OK\r\n"},
			},
			delivered: []string{"a -UNBLOCKED the stream key no longer exists\r\n"}},
		{name: "xreadgroup: swapdb with an empty database",
			steps: []blockStep{
				{[]string{"xgroup", "create", "s", "g", "$", "mkstream"}, "+OK\r\n"},
				{blk("a", "xreadgroup", "group", "g", "c", "block", "0", "streams", "s", ">"), ""},
				{[]string{"swapdb", "0", "9"}, "+OK\r\n"},
			},
			delivered: []string{"a -UNBLOCKED the stream key no longer exists\r\n"}},
		{name: "xreadgroup: group destroyed",
			steps: []blockStep{
				{[]string{"xgroup", "create", "s", "g", "$", "mkstream"}, "+OK\r\n"},
				{blk("a", "xreadgroup", "group", "g", "c", "block", "0", "streams", "s", ">"), ""},
				{[]string{"xgroup", "destroy", "s", "g"}, ":1\r\n"},
			},
			delivered: []string{"a -NOGROUP the consumer group this client was blocked on no longer exists\r\n"}},
		{name: "timeout through gomu.unblock",
			steps: []blockStep{
				{blk("a", "xread", "block", "10", "streams", "s", "$"), ""},
				{[]string{UnblockCommand, "a", "timeout"}, ":1\r\n"},
				{[]string{"xadd", "s", "1-1", "f", "v"}, "$3\r\n1-1\r\n"},
			},
			delivered: []string{"a " + nullArray}},
		{name: "without block or outside gomu.block it never blocks",
			steps: []blockStep{
				{blk("a", "xread", "streams", "s", "$"), nullArray},
				{[]string{"xread", "block", "0", "streams", "s", "$"}, nullArray},
				{[]string{"xgroup", "create", "s", "g", "$", "mkstream"}, "+OK\r\n"},
				{blk("b", "xreadgroup", "group", "g", "c", "streams", "s", ">"), nullArray},
			}},
		{name: "errors at once",
			steps: []blockStep{
				{[]string{"set", "str", "x"}, "+OK\r\n"},
				{blk("a", "xread", "block", "0", "streams", "str", "$"), "-" + errWrongType + "\r\n"},
				{blk("a", "xread", "block", "-1", "streams", "s", "$"), "-ERR timeout is negative\r\n"},
				{blk("a", "xreadgroup", "group", "g", "c", "block", "0", "streams", "nokey", ">"),
					"-NOGROUP No such key 'nokey' or consumer group 'g' in XREADGROUP with GROUP option\r\n"},
			}},
		{name: "xadd + del does not serve xread, a later xadd does",
			steps: []blockStep{
				{blk("a", "xread", "block", "0", "streams", "s", "$"), ""},
				{[]string{"set", "s", "x"}, "+OK\r\n"},
				{[]string{"del", "s"}, ":1\r\n"},
				{[]string{"xadd", "s", "5-1", "f", "v"}, "$3\r\n5-1\r\n"},
			},
			delivered: []string{"a " + entry("s", "5-1", "f", "v")}},
	})
}

// TestStreamBlockingReplicas: two stores applying the same log with
// XREADGROUP waiters deliver alike and end with equal digests (the PEL
// included).
func TestStreamBlockingReplicas(t *testing.T) {
	log := [][]string{
		{"xgroup", "create", "s", "g", "$", "mkstream"},
		blk("a", "xreadgroup", "group", "g", "c1", "count", "1", "block", "0", "streams", "s", ">"),
		blk("b", "xreadgroup", "group", "g", "c2", "block", "0", "streams", "s", ">"),
		blk("c", "xread", "block", "0", "streams", "s", "$"),
		{"xadd", "s", "1-1", "f", "v"},
		{"xadd", "s", "2-1", "f", "v"},
		blk("d", "xreadgroup", "group", "g", "c1", "block", "500", "streams", "s", ">"),
	}
	rigs := []*blockRig{newBlockRig(), newBlockRig()}
	for _, r := range rigs {
		for _, args := range log {
			r.do(args...)
		}
	}
	if len(rigs[0].got) != 3 || !slices.Equal(rigs[0].got, rigs[1].got) {
		t.Fatalf("delivered %q and %q", rigs[0].got, rigs[1].got)
	}
	if rigs[0].s.Digest() != rigs[1].s.Digest() {
		t.Fatal("digests differ after the same log")
	}
	if got := rigs[0].do("xpending", "s", "g"); got != "*4\r\n:2\r\n$3\r\n1-1\r\n$3\r\n2-1\r\n*2\r\n*2\r\n$2\r\nc1\r\n$1\r\n1\r\n*2\r\n$2\r\nc2\r\n$1\r\n1\r\n" {
		t.Fatalf("xpending %q", got)
	}
	if n := rigs[0].s.Waiters(); n != 1 {
		t.Fatalf("%d waiters, want 1 (d)", n)
	}
	// A snapshot keeps the waiter, which is served alike after a restore.
	var snap bytes.Buffer
	if err := rigs[1].s.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	re := newBlockRig()
	if err := re.s.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*blockRig{rigs[1], re} {
		r.got = nil
		r.do("xadd", "s", "3-1", "f", "v")
	}
	if len(re.got) != 1 || !slices.Equal(re.got, rigs[1].got) || re.s.Digest() != rigs[1].s.Digest() {
		t.Fatalf("restored served %q, original %q", re.got, rigs[1].got)
	}
}
