package store

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"testing"
)

// xaddMany is n XADDs to key with explicit IDs ms-i and fields from f.
func xaddMany(key string, ms, n int, f func(i int) []string) [][]string {
	var out [][]string
	for i := range n {
		out = append(out, append([]string{"xadd", key, strconv.Itoa(ms) + "-" + strconv.Itoa(i)}, f(i)...))
	}
	return out
}

func cat(parts ...[][]string) [][]string {
	var out [][]string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// streamDumpCases are stream histories: their DUMPs must equal Redis's,
// byte for byte once delivery and seen times (clock readings) are masked.
func streamDumpCases() []dumpCase {
	kv := func(i int) []string { return []string{"a", strconv.Itoa(i), "b", "v" + strconv.Itoa(i)} }
	big := func(i int) []string { return []string{"payload", repeat("xyz", 40+i%7), "n", strconv.Itoa(i * 1000)} }
	return []dumpCase{
		{"one entry", [][]string{c("xadd", "k", "1-1", "f", "v")}, true},
		{"same and other fields", [][]string{
			c("xadd", "k", "5-3", "a", "1", "b", "2"), c("xadd", "k", "5-4", "a", "3", "b", "4"),
			c("xadd", "k", "6-0", "c", "x"), c("xadd", "k", "6-1", "b", "1", "a", "2"),
			c("xadd", "k", "1000000-0", "a", "-70000", "b", "9000000000")}, true},
		{"integer widths", [][]string{c("xadd", "k", "1-0", "1", "-1", "300", "-5000", "70000", "-9000000",
			"5000000000", "127", "128", "4095", "-4096", "32767", "8388607", "-8388608", "2147483647", "x", "007", "-0")}, true},
		{"big ms", [][]string{c("xadd", "k", "18446744073709551614-5", "a", "b"), c("xadd", "k", "18446744073709551615-0", "a", "c")}, true},
		{"many nodes", xaddMany("k", 10, 350, kv), true},
		{"compressible nodes", xaddMany("k", 7, 120, big), true},
		{"long values", [][]string{c("xadd", "k", "1-1", "f", repeat("q", 70)), c("xadd", "k", "1-2", "f", repeat("r", 5000)),
			c("xadd", "k", "1-3", repeat("g", 200), "1")}, true},
		{"xdel tombstones", cat(xaddMany("k", 3, 250, kv), [][]string{
			c("xdel", "k", "3-0", "3-5", "3-101", "3-249"), c("xdel", "k", "3-1")}), true},
		{"xdel whole node", cat(xaddMany("k", 3, 150, kv), [][]string{c("xdel", "k", "3-100", "3-101")},
			[][]string{rangeArgs("xdel", "k", 3, 100, 150)}), true},
		{"xtrim exact", cat(xaddMany("k", 3, 250, kv), [][]string{c("xtrim", "k", "maxlen", "=", "120")}), true},
		{"xtrim approx", cat(xaddMany("k", 3, 250, kv), [][]string{c("xtrim", "k", "maxlen", "~", "120")}), true},
		{"xtrim minid", cat(xaddMany("k", 3, 250, kv), [][]string{c("xtrim", "k", "minid", "3-57")}), true},
		{"trimmed empty", [][]string{c("xadd", "k", "1-1", "a", "b"), c("xadd", "k", "2-1", "a", "b"), c("xtrim", "k", "maxlen", "0")}, true},
		{"xsetid", [][]string{c("xadd", "k", "1-1", "a", "b"), c("xdel", "k", "1-1"), c("xadd", "k", "2-1", "a", "b"),
			c("xsetid", "k", "50-5", "entriesadded", "77", "maxdeletedid", "40-0")}, true},
		{"mkstream", [][]string{c("xgroup", "create", "k", "g", "$", "mkstream")}, true},
		{"small nodes", cat([][]string{c("config", "set", "stream-node-max-entries", "7")}, xaddMany("k", 2, 40, kv),
			[][]string{c("config", "set", "stream-node-max-entries", "100")}), true},
		{"groups", cat(xaddMany("k", 9, 30, kv), [][]string{
			c("xgroup", "create", "k", "g1", "0"), c("xgroup", "create", "k", "1", "9-3"),
			c("xgroup", "create", "k", "g3", "$", "entriesread", "5"),
			c("xreadgroup", "group", "g1", "alice", "count", "5", "streams", "k", ">"),
			c("xreadgroup", "group", "g1", "bob", "count", "3", "streams", "k", ">"),
			c("xreadgroup", "group", "1", "123", "count", "4", "streams", "k", ">"),
			c("xack", "k", "g1", "9-1", "9-6"),
			c("xclaim", "k", "g1", "bob", "0", "9-2", "9-3", "time", "1700000000000", "retrycount", "7"),
			c("xgroup", "createconsumer", "k", "g1", "carol"),
			c("xdel", "k", "9-4"),
			c("xclaim", "k", "1", "zed", "0", "9-4", "9-5", "force", "justid"),
		}), false},
		{"legacy-like group lag", [][]string{
			c("xadd", "k", "1-0", "data", "a"), c("xadd", "k", "2-0", "data", "b"), c("xadd", "k", "3-0", "data", "c"),
			c("xadd", "k", "4-0", "data", "d"), c("xadd", "k", "5-0", "data", "e"), c("xadd", "k", "6-0", "data", "f"),
			c("xdel", "k", "3-0"), c("xgroup", "create", "k", "g1", "0"), c("xgroup", "create", "k", "g2", "0"),
			c("xreadgroup", "group", "g1", "c11", "count", "4", "streams", "k", ">"), c("xtrim", "k", "maxlen", "=", "2")}, false},
	}
}

// rangeArgs is cmd key followed by the IDs ms-lo … ms-(hi-1).
func rangeArgs(cmd, key string, ms, lo, hi int) []string {
	args := []string{cmd, key}
	for i := lo; i < hi; i++ {
		args = append(args, strconv.Itoa(ms)+"-"+strconv.Itoa(i))
	}
	return args
}

// maskedStreamDump is a payload's stream re-dumped by us with every
// delivery and seen time zeroed; it first checks that re-dumping the
// payload unmasked gives the payload back.
func maskedStreamDump(t *testing.T, payload string) []byte {
	t.Helper()
	v, err := loadPayload([]byte(payload))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if again, _ := dumpPayload(v); string(again) != payload {
		t.Fatalf("re-dump differs from the payload:\n got %q\nwant %q", trunc(string(again)), trunc(payload))
	}
	for _, g := range v.stream.groups {
		for _, pe := range g.pending {
			pe.deliveryTime = 0
		}
		for _, c := range g.consumers {
			c.seenTime = 0
		}
	}
	p, _ := dumpPayload(v)
	return p
}

// streamReads are the replies that show a stream whole, clocks aside
// where they come from the payload (absolute times) and never idle times.
func streamReads(do func(args ...string) string, key string) []string {
	out := []string{do("type", key), do("object", "encoding", key), do("xinfo", "stream", key, "full", "count", "0"),
		do("xrange", key, "-", "+"), do("xrevrange", key, "+", "-", "count", "3"), do("xlen", key)}
	groups, _ := arrayElems(do("xinfo", "groups", key))
	for _, g := range groups {
		es, _ := arrayElems(g)
		if len(es) > 1 {
			name, _ := bulkText(es[1])
			out = append(out, do("xpending", key, name))
		}
	}
	return out
}

// TestStreamDumpDiff compares DUMP of stream histories with Redis's and
// restores each side's payload on both.
func TestStreamDumpDiff(t *testing.T) {
	p := newPair(t)
	for _, tc := range streamDumpCases() {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			p.both("flushall")
			for _, st := range tc.setup {
				if st[0] == "config" { // CONFIG SET is the server's: the store has gomu.config
					p.rc.Do(st...)
					p.ours(append([]string{ConfigCommand}, st[2:]...)...)
					continue
				}
				p.both(st...)
			}
			want, ok := bulkText(p.rc.Do("dump", "k"))
			got, ok2 := bulkText(p.ours("dump", "k"))
			if !ok || !ok2 {
				t.Fatalf("no dump: %q", trunc(p.ours("dump", "k")))
			}
			if tc.exact && got != want {
				t.Fatalf("DUMP:\n got %q\nwant %q", trunc(got), trunc(want))
			}
			if !tc.exact && !bytes.Equal(maskedStreamDump(t, got), maskedStreamDump(t, want)) {
				t.Fatalf("DUMP, times masked:\n got %q\nwant %q", trunc(got), trunc(want))
			}
			// Both payloads restored on both sides read alike.
			for i, payload := range []string{want, got} {
				key := "r" + strconv.Itoa(i)
				p.both("restore", key, "0", payload)
				ours, theirs := streamReads(p.ours, key), streamReads(p.rc.Do, key)
				for j := range theirs {
					if ours[j] != theirs[j] {
						t.Fatalf("payload %d read %d:\n got %q\nwant %q", i, j, trunc(ours[j]), trunc(theirs[j]))
					}
				}
				p.both("dump", key)
			}
			// The restored nodes behave as Redis's: appends, trims, deletes.
			for _, st := range [][]string{
				c("xadd", "r0", "18446744073709551615-18446744073709551615", "a", "1", "b", "2"),
				c("xdel", "r0", "3-0", "9-7"),
				c("xtrim", "r0", "maxlen", "~", "30"),
				c("xinfo", "stream", "r0"),
				c("xautoclaim", "r0", "g1", "dave", "0", "0-0", "count", "2", "justid"),
				c("dump", "r0"),
			} {
				p.both(st...)
			}
		})
	}
}

// TestStreamRestoreLegacy restores the Redis 5 payload of Redis's own test
// "Loading from legacy (Redis <= v6.2.x, rdb_ver < 10) persistence".
func TestStreamRestoreLegacy(t *testing.T) {
	const payload = "\x0F\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\xC3\x40\x4A\x40\x57\x16\x57\x00\x00\x00\x23\x00\x02\x01\x04\x01\x01\x01\x84\x64\x61\x74\x61\x05\x00\x01\x03\x01\x00\x20\x01\x03\x81\x61\x02\x04\x20\x0A\x00\x01\x40\x0A\x00\x62\x60\x0A\x00\x02\x40\x0A\x00\x63\x60\x0A\x40\x22\x01\x81\x64\x20\x0A\x40\x39\x20\x0A\x00\x65\x60\x0A\x00\x05\x40\x0A\x00\x66\x20\x0A\x00\xFF\x02\x06\x00\x02\x02\x67\x31\x05\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x3E\xF7\x83\x43\x7A\x01\x00\x00\x01\x01\x03\x63\x31\x31\x3E\xF7\x83\x43\x7A\x01\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x02\x67\x32\x00\x00\x00\x00\x09\x00\x3D\x52\xEF\x68\x67\x52\x1D\xFA"
	p := newPair(t)
	p.both("restore", "x", "0", payload)
	ours, theirs := streamReads(p.ours, "x"), streamReads(p.rc.Do, "x")
	for j := range theirs {
		if ours[j] != theirs[j] {
			t.Fatalf("read %d:\n got %q\nwant %q", j, ours[j], theirs[j])
		}
	}
	p.both("dump", "x")
	p.both("xadd", "x", "7-0", "data", "g")
	p.both("xinfo", "stream", "x", "full")
}

// streamPayloads are our DUMPs of a few stream histories.
func streamPayloads(t *testing.T) []string {
	var out []string
	e := &Env{NowMs: 1_700_000_000_000}
	for _, tc := range streamDumpCases() {
		s := New()
		for _, st := range tc.setup {
			if st[0] == "config" {
				st = append([]string{ConfigCommand}, st[2:]...)
			}
			execArgs(s, e, st)
		}
		payload, ok := bulkText(string(execArgs(s, e, []string{"dump", "k"})))
		if !ok {
			t.Fatalf("%s: no dump", tc.name)
		}
		out = append(out, payload)
	}
	return out
}

// TestStreamDumpRoundTrip restores our payloads and expects the same
// payload, replies and digest back.
func TestStreamDumpRoundTrip(t *testing.T) {
	e := &Env{NowMs: 1_700_000_000_000}
	for i, payload := range streamPayloads(t) {
		s := New()
		if r := string(execArgs(s, e, []string{"restore", "k", "0", payload})); r != "+OK\r\n" {
			t.Fatalf("case %d: restore: %q", i, r)
		}
		if got, _ := bulkText(string(execArgs(s, e, []string{"dump", "k"}))); got != payload {
			t.Fatalf("case %d: round trip differs", i)
		}
		do := func(args ...string) string { return string(execArgs(s, e, args)) }
		streamReads(do, "k")
	}
}

// TestStreamRestoreCorrupt restores 2000 corrupted stream payloads: each
// is refused with "Bad data format" or restores a stream the commands can
// use; none may panic.
func TestStreamRestoreCorrupt(t *testing.T) {
	payloads := streamPayloads(t)
	rnd := rand.New(rand.NewPCG(11, 12))
	e := &Env{NowMs: 1_700_000_000_000}
	accepted := 0
	for i := range 2000 {
		body := []byte(payloads[rnd.IntN(len(payloads))])
		body = body[:len(body)-10]
		switch rnd.IntN(4) {
		case 0: // flip bytes
			for k := 1 + rnd.IntN(3); k > 0; k-- {
				body[rnd.IntN(len(body))] ^= byte(1 + rnd.IntN(255))
			}
		case 1: // truncate
			body = body[:1+rnd.IntN(len(body)-1)]
		case 2: // set a byte to an edge value
			body[1+rnd.IntN(len(body)-1)] = []byte{0, 1, 0x7f, 0x80, 0xff, 0xc3}[rnd.IntN(6)]
		default: // duplicate a slice
			a := rnd.IntN(len(body))
			b := a + rnd.IntN(len(body)-a)
			body = append(body[:b:b], body[a:]...)
		}
		payload := craftPayload(body, rdbVersion)
		s := New()
		got := string(execArgs(s, e, []string{"restore", "k", "0", payload}))
		switch got {
		case "-ERR Bad data format\r\n":
			if s.Len() != 0 {
				t.Fatalf("case %d: refused but left a key", i)
			}
		case "+OK\r\n":
			accepted++
			for _, args := range [][]string{
				c("xinfo", "stream", "k", "full"), c("xrange", "k", "-", "+"), c("xrevrange", "k", "+", "-"),
				c("xadd", "k", "*", "f", "v"), c("xtrim", "k", "maxlen", "3"), c("xdel", "k", "1-1"),
				c("xinfo", "groups", "k"), c("dump", "k"),
			} {
				execArgs(s, e, args)
			}
		default:
			t.Fatalf("case %d: %q", i, got)
		}
	}
	t.Logf("%d of 2000 corrupted payloads still read as streams", accepted)
}

// TestStreamRestoreRejects covers inconsistencies the loader refuses.
func TestStreamRestoreRejects(t *testing.T) {
	node := func(master streamID, elems ...string) []byte {
		key := master.key()
		es := make([][]byte, len(elems))
		for i, x := range elems {
			es[i] = []byte(x)
		}
		return append(appendRDBString(nil, key[:]), appendRDBString(nil, buildListpack(es))...)
	}
	id := func(ms, seq uint64) streamID { return streamID{ms, seq} }
	tail := func(length, last uint64) []byte {
		b := appendRDBLen(nil, length)
		b = appendRDBID(b, id(last, 0))
		b = appendRDBID(b, id(0, 0))
		b = appendRDBID(b, id(0, 0))
		b = appendRDBLen(b, length)
		return appendRDBLen(b, 0)
	}
	good := node(id(1, 0), "1", "0", "1", "f", "0", "2", "0", "0", "v", "4")
	cases := map[string][]byte{
		"good":               obj(rdbTypeStreamListpack2, []byte{1}, good, tail(1, 1)),
		"length mismatch":    obj(rdbTypeStreamListpack2, []byte{1}, good, tail(2, 1)),
		"last id too small":  obj(rdbTypeStreamListpack2, []byte{1}, node(id(5, 0), "1", "0", "1", "f", "0", "2", "0", "0", "v", "4"), tail(1, 1)),
		"entry not at key":   obj(rdbTypeStreamListpack2, []byte{1}, node(id(1, 0), "1", "0", "1", "f", "0", "2", "0", "1", "v", "4"), tail(1, 1)),
		"bad lp-count":       obj(rdbTypeStreamListpack2, []byte{1}, node(id(1, 0), "1", "0", "1", "f", "0", "2", "0", "0", "v", "5"), tail(1, 1)),
		"bad flags":          obj(rdbTypeStreamListpack2, []byte{1}, node(id(1, 0), "1", "0", "1", "f", "0", "6", "0", "0", "v", "4"), tail(1, 1)),
		"counts vs flags":    obj(rdbTypeStreamListpack2, []byte{1}, node(id(1, 0), "1", "0", "1", "f", "0", "3", "0", "0", "v", "4"), tail(1, 1)),
		"empty node":         obj(rdbTypeStreamListpack2, []byte{1}, node(id(1, 0), "0", "0", "1", "f", "0"), tail(0, 1)),
		"trailing elements":  obj(rdbTypeStreamListpack2, []byte{1}, node(id(1, 0), "1", "0", "1", "f", "0", "2", "0", "0", "v", "4", "9"), tail(1, 1)),
		"short key":          obj(rdbTypeStreamListpack2, []byte{1}, raw("abc"), blob(buildListpack([][]byte{[]byte("1")})), tail(1, 1)),
		"nodes out of order": obj(rdbTypeStreamListpack2, []byte{2}, good, good, tail(2, 1)),
		"huge field count":   obj(rdbTypeStreamListpack2, []byte{1}, node(id(1, 0), "1", "0", "99", "f", "0"), tail(1, 1)),
	}
	e := &Env{NowMs: 1000}
	for name, o := range cases {
		got := string(execArgs(New(), e, []string{"restore", "k", "0", craftPayload(o, rdbVersion)}))
		want := "-ERR Bad data format\r\n"
		if name == "good" {
			want = "+OK\r\n"
		}
		if got != want {
			t.Errorf("%s: got %q", name, got)
		}
	}
}

// redisCorruptStreamPayloads are the stream payloads (type byte onward,
// footer dropped) of Redis 7.0.15's tests/integration/corrupt-dump.tcl, in
// hex: every one must be refused.
var redisCorruptStreamPayloads = []string{
	"0f01100000000000000002000000000000000240555f0000000f00010100010201883100000000000000098832000000000000000900010001000100010202883100000000000000098861000000000000000988320000000000000009886200000000000000090801ff0a010000",
	"0f0110000000000000000200000000000000024055550000000f00010100010201883100000000000000098832000000000000000900010001000100010202893100000000000000098861000000000000000988320000000000000009886200000000000000090801ff0a010000",
	"0f0110000000000000000200000000000000024055550000000f000101000102018831000000000000000988320000000000000009000100010001000102028831000000000000000988610000000000000009883200000000000000099c6200000000000000090801ff0a010000",
	"0f0110000000000000000200000000000000024055550000000f00010100150201883100000000000000098832000000000000000900010001000100010202883100000000000000098861000000000000000988320000000000000009886200000000000000090801ff0a010000",
	"0f0000000001076d7967726f757000000002046e616d652a4caa9a7d01000000046e616d652b4caa9a7d01000000",
	"0f011000000173bd68487100000000000000004042420000001800030100010201846974656d058576616c75650600010201000100010101000105010201000101010101825f31030501020100010201010102014801ff038100000173bd6848710201076d7967726f75708100000173bd684871000100000173bd6848710000000000000000724868bd73010000010105416c696365724868bd730100000100000173bd6848710000000000000000",
	"0f011000000173dcb66bf100000000000000004042420000001800030100010201846974656d058576616c756506000102010001000101010001050102011f01000101016d5f31030501020129010001010102010501ff038100000173dcb66c1a0001076d7967726f75708100000173dcb66bf1000100000173dcb66bf100000000000000004b6cb6dc73010000010105416c6963653d6cb6dc730100000100000173dcb66bf10000000000000000",
	"0f021000000173ddaa2ab90000000000000000c3404b405c185c0000002400050100010201846974656d058576616c756506401000002001000120030005201c4007050101825f3103800d4000000260194027401900336019402902010104201900ff1000000173ddaa2abc0000000000000000c3404d405e185e0000002400050100010201846974656d058576616c756506401000002001060101825f350305201e170b0301010601400b0001600d02825f376019800000086019802702825f39201900ff0a8100000173ddaa2abe0000",
	"0f011000000173dedf7d9b00000000000000004042420000001800030100010201846974656d058576616c75650600010201000100010101000156010201220100010101825f3103050102012c010001010102010501ff038100000173dedf7dc70001076d7967726f75708100000173dedf7d9b000100000173dedf7d9b0000000000000000f97ddfde73010000010105416c696365eb7ddfde730100000100000173dedf7d9b0000000000000000",
	"0f011000000173dedf7d9b00000000000000004042420000001800030100010201846974656d058576616c75650600010201000100010101000156010201220100010101825f3103050102012c010001010102010501ff038100000173dedf7dc70001076d7967726f75708100000173dedf7d9b000100000173dedf7d9b0000000000000000f97ddfde73010000010105416c696365eb7ddfde730100000100000173dedf7d9b0000000000000000",
	"0f0210000001752da290670000000000000000c3404f405c185c0000002400050100014a01846974656d058576616c756506401000002001000120030005201c4009050101825f3103800d0002200d0002a0190003200b02825f33a0190004200d0004201900ff10000001752da290670000000000000005c34056406018600000002400050100010201846974656d058576616c756506401000002001060101825f350305201e400b0301010601800b0002200b02825f376019030101dffb20050008601a200c00fc200502825f39201b00ff0a81000001752da290680100",
	"0f0110000001753aa6d09300000000000000004042420000001800030100010201846974656d058576616c75650600010201000100010101000105010201000101010101825f3103fd01020100010201010102010501ff0381000001753aa6d0930201076d7967726f757081000001753aa6d0930001000001753aa6d093000000000000000094d0a63a75010000010105416c69636594d0a63a7501000001000001753aa6d0930000000000000000",
	"0f011000000175cfa116a700000000000000004042420000001800030100010201846974656d058576616c75650600010201000100010101000105010201000101010101145f31030501020100010201010102010501ff038100000175cfa116a70201076d7967726f75708100000175cfa116a7010100000175cfa116a70000000000000001a716a1cf75010000010105416c696365a716a1cf750100000100000175cfa116a70000000000000001",
	"0f0110000001784d55680900000000000000004042420000001800020101010201846974656d058576616c756506000102010001000101010001050103013e0100010101825f31030501020150010001010102010523ff0281000001784d5568590001076d7967726f757081000001784d5568470001000001784d55684700000000000000009f68554d78010000010105416c6963658568554d7801000001000001784d5568470000000000000000",
	"0f01100000017b08f0b2340000000000000000c33b404219420000001800020101010201846974656d058576616c7565060020100000200100012003020501032005400004825f31030560198032020501ff02810000017b08f0b2340201076d7967726f7570810000017b08f0b23401010000017b08f0b234000000000000000135b2f0087b010000010113416c69636535b2f0087b010000010000017b08f0b2340000000000000001",
	"0f01100000017b095e94ff00000000000000004042420000001800020101010201846974656d058576616c75650600010201000100010101000105010301250100010101825f3103050102013201000101010201f001ff02810000017b095e95310001076d7967726f7570810000017b095e952400010000017b095e952400000000000000005c955e097b010000010105416c6963654b955e097b010000010000017b095e95240000000000000000",
	"0f01100000017b0e52d2ec0000000000000000404242000000180002f701010201846974656d058576616c75650600010201000100010101000105010301010100010101825f31030501020101010101010102010501ff02810000017b0e52d2ed0101076d7967726f7570810000017b0e52d2ed00010000017b0e52d2ed0000000000000000edd2520e7b010000010105416c696365edd2520e7b010000010000017b0e52d2ed0000000000000000",
	"0f03100000017b1334c3b20000000000000000c3404f405c185c0000002400050100010201846974656d058576616c756506401000802001000120030005201c4009050101825f3103800d0002200d0002a0190003200b02825f33a0190004200d0004201900ff100000017b1334c3b20000000000000005c34056406118610000002400050100010201846974656d058576616c756506401000002001060101825f350305201e400b0301010601400b030101dffb200502825f37601a200e00fc20050008c01b00fd200c02825f39201b00ff100000017b1334c3b30000000000000003c33d404a184a0000001500020100010201846974656d058576616c75650640100000200140000005600702dffd02c02309010186756e6971756507a02d020801ff0c810000017b1334c3b40000",
	"0f03100000017b605a23790000000000000000c3404f405c185c0000002400050100010201846974656d058576616c756506401000002001000120030005201c4009050101825f3103800d0002200d0002a0190003200b02825f33a0190004200d0004201900ff100000017b605a23790000000000000005c34051405e185e0000002400050100010201846974656d058576616c756506401000002001060101825f350305201e400b0301010601800b0002200b02825f37a0190003200d0008a0190004200b02825f39201900ff100000017b605a23790000000000000000c33b404918490000001500020100010201846974656d058576616c7565064010000020014000000520074009c02209010186756e6971756507a02c020801ff0c810000017b605a237a0100",
	"13c010000001802048a0330000000000000000c3404f405c185c0000002400050100010201846974656d058576616c756506401000002001000120030005201c4009050101825f3103800d0002200d0002a0190003200b02825f336019402f02010104201900ff10000001802048a0340000000000000001c34051405e185e0000002400050100010201846974656d058576616c756506401000002001060101825f350305201e400b0301010601800b0002200b02825f37a0190003200d0008a0190004200b02825f39201900ff10000001802048a0340000000000000006c33d404a184a0000001500020100010201846974656d058576616c75650640100000200140000005600702dffa02c02309010186756e6971756507a02d020801ff0c81000001802048a0350081000001802048a0330000000c00",
	"13011000000181cc07dcf200000000000000004042420000001800020101010201846974656d058576616c756506000102010001000101010001050103012c0100010101825f3103050102013c010001010102010501ff02d000000181cc07dd2e008100000181cc07dcf2008100000181cc07dd1e000301076d7967726f75708100000181cc07dd1e00020100000181cc07dd1e000000000000000071dd07cc81010000010105416c69636558dd07cc810100000100000181cc07dd1e0000000000000000",
}

// TestStreamRestoreRedisCorrupt restores Redis's own corrupt stream
// payloads (their checksums recomputed): Redis refuses them when it
// sanitizes payloads, and so must we, without panicking.
func TestStreamRestoreRedisCorrupt(t *testing.T) {
	e := &Env{NowMs: 1_700_000_000_000}
	for i, h := range redisCorruptStreamPayloads {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		got := string(execArgs(New(), e, []string{"restore", "k", "0", craftPayload(b, rdbVersion)}))
		if got != "-ERR Bad data format\r\n" {
			t.Errorf("payload %d: %q", i, got)
		}
	}
}

// randomStreamHistory is a seeded history of XADDs with explicit IDs
// (fields drawn from a few shapes, so that some entries share the master
// fields and some do not), XDELs, trims and consumer group traffic.
func randomStreamHistory(rnd *rand.Rand) [][]string {
	var out [][]string
	ms, seq := 1+rnd.IntN(1000), 0
	shapes := [][]string{{"a", "b"}, {"a"}, {"b", "a"}, {"x", "y", "z"}, {"1", "2"}}
	var ids []string
	for range 1 + rnd.IntN(400) {
		if rnd.IntN(3) == 0 {
			ms += rnd.IntN(100000)
			seq = rnd.IntN(3)
		} else {
			seq++
		}
		id := strconv.Itoa(ms) + "-" + strconv.Itoa(seq)
		ids = append(ids, id)
		args := []string{"xadd", "k", id}
		for _, f := range shapes[rnd.IntN(len(shapes))] {
			args = append(args, f, randomElem(rnd))
		}
		out = append(out, args)
		switch rnd.IntN(40) {
		case 0:
			out = append(out, c("xtrim", "k", "maxlen", []string{"=", "~"}[rnd.IntN(2)], strconv.Itoa(rnd.IntN(300))))
		case 1:
			out = append(out, c("xtrim", "k", "minid", ids[rnd.IntN(len(ids))]))
		}
	}
	for range rnd.IntN(30) {
		out = append(out, c("xdel", "k", ids[rnd.IntN(len(ids))]))
	}
	for g := range rnd.IntN(3) {
		name := "g" + strconv.Itoa(g)
		out = append(out, c("xgroup", "create", "k", name, []string{"0", "$", ids[rnd.IntN(len(ids))]}[rnd.IntN(3)]))
		for range rnd.IntN(4) {
			consumer := "c" + strconv.Itoa(rnd.IntN(3))
			out = append(out, c("xreadgroup", "group", name, consumer, "count", strconv.Itoa(1+rnd.IntN(50)), "streams", "k", ">"))
		}
		out = append(out, c("xack", "k", name, ids[rnd.IntN(len(ids))], ids[rnd.IntN(len(ids))]))
	}
	return out
}

// TestStreamDumpRandomDiff compares DUMPs (times masked) of random stream
// histories with Redis's, and Redis's payloads restored here.
func TestStreamDumpRandomDiff(t *testing.T) {
	p := newPair(t)
	rnd := rand.New(rand.NewPCG(5, 6))
	for i := range 60 {
		p.both("flushall")
		for _, st := range randomStreamHistory(rnd) {
			p.both(st...)
		}
		want, _ := bulkText(p.rc.Do("dump", "k"))
		got, _ := bulkText(p.ours("dump", "k"))
		if !bytes.Equal(maskedStreamDump(t, got), maskedStreamDump(t, want)) {
			t.Fatalf("case %d: DUMP, times masked:\n got %q\nwant %q", i, trunc(got), trunc(want))
		}
		p.both("restore", "r", "0", want)
		ours, theirs := streamReads(p.ours, "r"), streamReads(p.rc.Do, "r")
		for j := range theirs {
			if ours[j] != theirs[j] {
				t.Fatalf("case %d read %d:\n got %q\nwant %q", i, j, trunc(ours[j]), trunc(theirs[j]))
			}
		}
		p.both("xadd", "r", "99999999999-0", "a", "1")
		p.both("xtrim", "r", "maxlen", "~", "50")
		p.both("xinfo", "stream", "r")
	}
}

// TestStreamSnapshotKeepsTombstones checks that a snapshot keeps what
// DUMP shows of deleted entries (their fields stay in Redis's listpacks).
func TestStreamSnapshotKeepsTombstones(t *testing.T) {
	e := &Env{NowMs: 1_700_000_000_000}
	s := New()
	for _, st := range cat(xaddMany("k", 4, 30, func(i int) []string { return []string{"f", strconv.Itoa(i)} }),
		[][]string{c("xdel", "k", "4-3", "4-7"), c("xtrim", "k", "maxlen", "=", "20")}) {
		execArgs(s, e, st)
	}
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	s2 := New()
	if err := s2.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	a, b := execArgs(s, e, c("dump", "k")), execArgs(s2, e, c("dump", "k"))
	if !bytes.Equal(a, b) {
		t.Fatalf("DUMP after a snapshot:\n got %q\nwant %q", b, a)
	}
}
