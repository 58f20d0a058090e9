package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

func TestCRC64CheckValue(t *testing.T) {
	if got := crc64Update(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("crc64(123456789) = %#x", got)
	}
}

func TestLZFRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	for i := range 500 {
		in := randomCompressible(rnd, 1+rnd.IntN(3000))
		c := lzfCompress(in, len(in)+len(in)/16+64)
		if c == nil {
			t.Fatalf("case %d: no output for %d bytes", i, len(in))
		}
		out, ok := lzfDecompress(c, len(in))
		if !ok || !bytes.Equal(out, in) {
			t.Fatalf("case %d: round trip of %q failed", i, in)
		}
	}
	if _, ok := lzfDecompress([]byte{0x20, 0x05}, 10); ok {
		t.Fatal("a back reference before the start decoded")
	}
}

// randomCompressible is n bytes mixing runs, repeats and noise.
func randomCompressible(rnd *rand.Rand, n int) []byte {
	b := make([]byte, 0, n)
	for len(b) < n {
		switch rnd.IntN(3) {
		case 0:
			c := byte('a' + rnd.IntN(4))
			for k := rnd.IntN(40); k > 0; k-- {
				b = append(b, c)
			}
		case 1:
			if len(b) > 4 {
				i := rnd.IntN(len(b) - 3)
				b = append(b, b[i:i+3+rnd.IntN(len(b)-i-3)]...)
			}
		default:
			b = append(b, byte(rnd.IntN(256)))
		}
	}
	return b[:n]
}

// pair is a real Redis and a store driven side by side.
type pair struct {
	t  *testing.T
	rc *redistest.Conn
	s  *Store
}

func newPair(t *testing.T) *pair {
	addr := redistest.Start(t)
	return &pair{t: t, rc: redistest.Dial(t, addr), s: New()}
}

func (p *pair) env() *Env {
	return &Env{NowMs: time.Now().UnixMilli(), Rand: rand.New(rand.NewPCG(1, 2))}
}

// ours runs a command on the store.
func (p *pair) ours(args ...string) string { return string(execArgs(p.s, p.env(), args)) }

// both runs a command on both and fails if the replies differ.
func (p *pair) both(args ...string) string {
	p.t.Helper()
	want := p.rc.Do(args...)
	if got := p.ours(args...); got != want {
		p.t.Fatalf("%q:\n got %q\nwant %q", trunc(fmt.Sprint(args)), trunc(got), trunc(want))
	}
	return want
}

// readsOf returns the replies that show key's whole value, in a form that
// does not depend on hash order.
func readsOf(do func(args ...string) string, key string) []string {
	typ := do("type", key)
	out := []string{typ}
	switch typ {
	case "+string\r\n":
		out = append(out, do("get", key))
	case "+list\r\n":
		out = append(out, do("lrange", key, "0", "-1"))
	case "+set\r\n":
		out = append(out, sortedArrayRaw(do("smembers", key)))
	case "+hash\r\n":
		out = append(out, samePairsKey(do("hgetall", key)))
	case "+zset\r\n":
		out = append(out, do("zrange", key, "0", "-1", "withscores"))
	}
	return append(out, do("object", "encoding", key))
}

// samePairsKey sorts a flat field/value array by pairs.
func samePairsKey(raw string) string {
	es, ok := bulksOf(raw)
	if !ok {
		return raw
	}
	var ps []string
	for i := 0; i+1 < len(es); i += 2 {
		ps = append(ps, es[i]+"\x00"+es[i+1])
	}
	return sortedArrayRaw(respArray(ps))
}

func respArray(es []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(es))
	for _, e := range es {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(e), e)
	}
	return b.String()
}

// dumpCase builds key with setup and says whether our DUMP must equal
// Redis's byte for byte.
type dumpCase struct {
	name  string
	setup [][]string
	exact bool
}

func c(args ...string) []string { return args }

func repeat(s string, n int) string { return strings.Repeat(s, n) }

func dumpCases() []dumpCase {
	cases := []dumpCase{
		{"int8", [][]string{c("set", "k", "12")}, true},
		{"negative int16", [][]string{c("set", "k", "-3000")}, true},
		{"int32", [][]string{c("set", "k", "2147483647")}, true},
		{"int64 as text", [][]string{c("set", "k", "9223372036854775807")}, true},
		{"leading zero", [][]string{c("set", "k", "0123")}, true},
		{"empty", [][]string{c("set", "k", "")}, true},
		{"short", [][]string{c("set", "k", "hello world")}, true},
		{"21 bytes compressible", [][]string{c("set", "k", repeat("a", 21))}, true},
		{"incompressible", [][]string{c("set", "k", "abcdefghijklmnopqrstuvwxyz0123456789")}, true},
		{"long compressible", [][]string{c("set", "k", repeat("hello gomu ", 500))}, true},
		{"append", [][]string{c("set", "k", "abc"), c("append", "k", repeat("xyz", 30))}, true},
		{"list small", [][]string{c("rpush", "k", "a", "1", "-5", "300", "70000", "-9000000", "5000000000", repeat("b", 70), repeat("c", 5000))}, true},
		{"list big", [][]string{rpushMany("k", 3000, func(i int) string { return "element-" + strconv.Itoa(i) })}, true},
		{"list big elements", [][]string{rpushMany("k", 40, func(i int) string { return repeat(strconv.Itoa(i%10), 1000+i) })}, true},
		{"list lpush", [][]string{lpushMany("k", 3000, func(i int) string { return "e" + strconv.Itoa(i) })}, false},
		{"intset16", [][]string{c("sadd", "k", "1", "2", "3", "-7")}, true},
		{"intset32", [][]string{c("sadd", "k", "1", "100000")}, true},
		{"intset64", [][]string{c("sadd", "k", "1", "10000000000", "-5")}, true},
		{"set hashtable", [][]string{c("sadd", "k", "a", "b", "c", "1")}, false},
		{"hash listpack", [][]string{c("hset", "k", "f1", "v1", "num", "12345", "neg", "-1", "long", repeat("z", 60))}, true},
		{"hash hashtable", [][]string{c("hset", "k", "f", repeat("v", 65), "g", "1")}, false},
		{"zset listpack", [][]string{c("zadd", "k", "1", "a", "2.5", "b", "-3", "c", "1e20", "d", "inf", "e", "-inf", "f", "0.1", "g", "4503599627370496", "h")}, true},
		{"zset skiplist", [][]string{c("zadd", "k", "1", "a", "2.5", "b", "3", repeat("m", 65))}, true},
	}
	return cases
}

func rpushMany(key string, n int, f func(int) string) []string {
	args := []string{"rpush", key}
	for i := range n {
		args = append(args, f(i))
	}
	return args
}

func lpushMany(key string, n int, f func(int) string) []string {
	args := rpushMany(key, n, f)
	args[0] = "lpush"
	return args
}

// TestDumpDiff compares DUMP with Redis's for every type and encoding:
// byte for byte where the encoding is Redis's, else by restoring each
// side's payload on the other and comparing the values.
func TestDumpDiff(t *testing.T) {
	p := newPair(t)
	for _, tc := range dumpCases() {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			p.both("flushall")
			for _, st := range tc.setup {
				p.both(st...)
			}
			checkDump(t, p, "k", tc.exact)
		})
	}
}

// checkDump compares key's DUMP on both sides: equal when exact, and in
// any case each side's payload restores on the other side to the same
// value.
func checkDump(t *testing.T, p *pair, key string, exact bool) {
	t.Helper()
	want := p.rc.Do("dump", key)
	got := p.ours("dump", key)
	if exact && got != want {
		t.Fatalf("DUMP %s:\n got %q\nwant %q", key, trunc(got), trunc(want))
	}
	theirs, _ := bulkText(want)
	mine, _ := bulkText(got)
	reads := readsOf(p.rc.Do, key)
	// Redis's payload restored here, ours restored in Redis.
	p.both("restore", "theirs", "0", theirs)
	p.both("del", "theirs")
	if r := p.rc.Do("restore", "mine", "0", mine); r != "+OK\r\n" {
		t.Fatalf("Redis refused our payload: %q", r)
	}
	if r := p.ours("restore", "theirs", "0", theirs); r != "+OK\r\n" {
		t.Fatalf("we refused Redis's payload: %q", r)
	}
	for i, want := range readsOf(p.rc.Do, "mine") {
		if got := readsOf(p.ours, "theirs")[i]; got != want || want != reads[i] {
			t.Fatalf("read %d after cross restore:\n ours %q\nredis %q\norig  %q", i, trunc(got), trunc(want), trunc(reads[i]))
		}
	}
	p.rc.Do("del", "mine")
	p.ours("del", "theirs")
}

// TestDumpRandomDiff dumps seeded random values of every type.
func TestDumpRandomDiff(t *testing.T) {
	p := newPair(t)
	rnd := rand.New(rand.NewPCG(42, 1))
	for i := range 150 {
		p.both("flushall")
		setup, exact := randomValue(rnd, "k")
		for _, st := range setup {
			p.both(st...)
		}
		t.Logf("case %d: %s", i, trunc(fmt.Sprint(setup)))
		if p.rc.Do("object", "encoding", "k") == "$8\r\nlistpack\r\n" {
			exact = true // a listpack hash is in insertion order on both sides
		}
		checkDump(t, p, "k", exact)
	}
}

// randomElem is a random element: an integer of some width, a short or
// long string, or a compressible one.
func randomElem(rnd *rand.Rand) string {
	switch rnd.IntN(6) {
	case 0:
		return strconv.Itoa(rnd.IntN(200) - 100)
	case 1:
		return strconv.FormatInt(rnd.Int64()>>rnd.IntN(63)*int64(1-2*rnd.IntN(2)), 10)
	case 2:
		return repeat(string(rune('a'+rnd.IntN(26))), 1+rnd.IntN(100))
	case 3:
		return string(randomCompressible(rnd, 1+rnd.IntN(300)))
	}
	return "m" + strconv.Itoa(rnd.IntN(100000))
}

// randomValue returns the commands that build a random value at key and
// whether Redis's DUMP of it must equal ours.
func randomValue(rnd *rand.Rand, key string) ([][]string, bool) {
	n := 1 + rnd.IntN([]int{5, 50, 700}[rnd.IntN(3)])
	switch rnd.IntN(5) {
	case 0:
		return [][]string{c("set", key, randomElem(rnd))}, true
	case 1:
		return [][]string{rpushMany(key, n, func(int) string { return randomElem(rnd) })}, true
	case 2:
		ints := rnd.IntN(2) == 0
		args := []string{"sadd", key}
		for range n {
			if ints {
				args = append(args, strconv.FormatInt(rnd.Int64()>>rnd.IntN(63), 10))
			} else {
				args = append(args, randomElem(rnd))
			}
		}
		return [][]string{args}, ints && int64(n) <= DefaultConfig().SetMaxIntsetEntries
	case 3:
		args := []string{"hset", key}
		for range n {
			args = append(args, randomElem(rnd), randomElem(rnd))
		}
		return [][]string{args}, false // exact unless it became a hash table: checked below
	}
	args := []string{"zadd", key}
	for range n {
		score := strconv.FormatFloat(rnd.NormFloat64()*1000, 'g', -1, 64)
		if rnd.IntN(2) == 0 {
			score = strconv.Itoa(rnd.IntN(1000) - 500)
		}
		args = append(args, score, randomElem(rnd))
	}
	return [][]string{args}, true
}

// craftPayload seals an RDB object (type byte and encoding) as DUMP does,
// with the given RDB version.
func craftPayload(obj []byte, version uint16) string {
	p := append([]byte(nil), obj...)
	p = binary.LittleEndian.AppendUint16(p, version)
	return string(binary.LittleEndian.AppendUint64(p, crc64Update(0, p)))
}

func rdbStr(s string) []byte { return appendRDBLen(nil, uint64(len(s))) }

// obj joins an RDB type byte and encoded pieces.
func obj(typ byte, parts ...[]byte) []byte {
	b := []byte{typ}
	for _, x := range parts {
		b = append(b, x...)
	}
	return b
}

func raw(s string) []byte { return append(rdbStr(s), s...) }

// ziplistOf encodes elems as a ziplist (strings; small integers as the
// immediate encoding, others as int16/int32/int64 as Redis 6 wrote them).
func ziplistOf(elems ...string) []byte {
	var body []byte
	prev := 0
	tail := 10
	for _, e := range elems {
		tail = 10 + len(body)
		start := len(body)
		if prev < 254 {
			body = append(body, byte(prev))
		} else {
			body = binary.LittleEndian.AppendUint32(append(body, 0xfe), uint32(prev))
		}
		if n, err := strconv.ParseInt(e, 10, 64); err == nil && strconv.FormatInt(n, 10) == e {
			switch {
			case n >= 0 && n <= 12:
				body = append(body, 0xf1+byte(n))
			case n >= -128 && n <= 127:
				body = append(body, 0xfe, byte(n))
			case n >= -32768 && n <= 32767:
				body = binary.LittleEndian.AppendUint16(append(body, 0xc0), uint16(n))
			case n >= -8388608 && n <= 8388607:
				body = append(body, 0xf0, byte(n), byte(n>>8), byte(n>>16))
			case n >= -2147483648 && n <= 2147483647:
				body = binary.LittleEndian.AppendUint32(append(body, 0xd0), uint32(n))
			default:
				body = binary.LittleEndian.AppendUint64(append(body, 0xe0), uint64(n))
			}
		} else {
			switch l := len(e); {
			case l < 64:
				body = append(body, byte(l))
			case l < 16384:
				body = append(body, 0x40|byte(l>>8), byte(l))
			default:
				body = binary.BigEndian.AppendUint32(append(body, 0x80), uint32(l))
			}
			body = append(body, e...)
		}
		prev = len(body) - start
	}
	zl := binary.LittleEndian.AppendUint32(nil, uint32(10+len(body)+1))
	zl = binary.LittleEndian.AppendUint32(zl, uint32(tail))
	zl = binary.LittleEndian.AppendUint16(zl, uint16(len(elems)))
	return append(append(zl, body...), 0xff)
}

// zipmapOf encodes field/value pairs as a zipmap (with a free byte of 2 on
// the first value to exercise skipping).
func zipmapOf(kv ...string) []byte {
	zm := []byte{byte(len(kv) / 2)}
	lenOf := func(n int) []byte {
		if n < 254 {
			return []byte{byte(n)}
		}
		return binary.LittleEndian.AppendUint32([]byte{254}, uint32(n))
	}
	for i := 0; i < len(kv); i += 2 {
		free := 0
		if i == 0 {
			free = 2
		}
		zm = append(zm, lenOf(len(kv[i]))...)
		zm = append(zm, kv[i]...)
		zm = append(zm, lenOf(len(kv[i+1]))...)
		zm = append(zm, byte(free))
		zm = append(zm, kv[i+1]...)
		zm = append(zm, make([]byte, free)...)
	}
	return append(zm, 0xff)
}

func blobOf(b []byte) []byte { return appendRDBLen(nil, uint64(len(b))) }

func blob(b []byte) []byte { return append(blobOf(b), b...) }

// TestRestoreOldEncodings restores, on both sides, payloads in encodings
// Redis 7.0 no longer writes but still loads, and compares the values.
func TestRestoreOldEncodings(t *testing.T) {
	longVal := repeat("v", 300)
	textScore := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	cases := []struct {
		name string
		obj  []byte
	}{
		{"plain list", obj(rdbTypeList, appendRDBLen(nil, 3), raw("a"), appendRDBString(nil, []byte("123")), raw(longVal))},
		{"list ziplist", obj(rdbTypeListZiplist, blob(ziplistOf("a", "7", "-100", "1000", "100000", "-3000000", "5000000000", longVal)))},
		{"quicklist v1", obj(rdbTypeListQuicklist, appendRDBLen(nil, 2), blob(ziplistOf("x", "1")), blob(ziplistOf("y", repeat("q", 20000))))},
		{"quicklist v2 plain node", obj(rdbTypeListQuicklist2, appendRDBLen(nil, 2), appendRDBLen(nil, quicklistPlain), raw("big"),
			appendRDBLen(nil, quicklistPacked), blob(buildListpack([][]byte{[]byte("a"), []byte("-7")})))},
		{"plain set ints", obj(rdbTypeSet, appendRDBLen(nil, 3), raw("3"), raw("1"), raw("2"))},
		{"plain set strings", obj(rdbTypeSet, appendRDBLen(nil, 2), raw("a"), raw("1"))},
		{"plain hash", obj(rdbTypeHash, appendRDBLen(nil, 2), raw("f"), raw("v"), raw("g"), raw(longVal))},
		{"zipmap", obj(rdbTypeHashZipmap, blob(zipmapOf("f", "v", "n", "12", "long", longVal)))},
		{"hash ziplist", obj(rdbTypeHashZiplist, blob(ziplistOf("f", "v", "n", "12")))},
		{"zset text scores", obj(rdbTypeZSet, appendRDBLen(nil, 4), raw("a"), textScore("1.5"), raw("b"), []byte{254}, raw("c"), []byte{255}, raw("d"), textScore("-2"))},
		{"zset ziplist", obj(rdbTypeZSetZiplist, blob(ziplistOf("c", "-3", "a", "1", "b", "2.5")))},
	}
	p := newPair(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.t = t
			p.both("flushall")
			payload := craftPayload(tc.obj, 9)
			p.both("restore", "k", "0", payload)
			want := readsOf(p.rc.Do, "k")
			got := readsOf(p.ours, "k")
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("read %d:\n got %q\nwant %q", i, trunc(got[i]), trunc(want[i]))
				}
			}
			checkDump(t, p, "k", false)
		})
	}
}

// TestRestoreRedisPayloads restores what Redis dumps for values whose
// encoding Redis chose by history (hash tables that shrank, LPUSH lists,
// LZF'd listpacks) and compares the reads.
func TestRestoreRedisPayloads(t *testing.T) {
	p := newPair(t)
	steps := [][]string{
		c("hset", "h", "big", repeat("x", 100), "a", "1"), c("hdel", "h", "big"),
		lpushMany("l", 5000, func(i int) string { return strconv.Itoa(i * 7) }),
		c("linsert", "l", "before", "70", "inserted"),
		c("sadd", "s", "1", "2", "x"), c("srem", "s", "x"),
		c("zadd", "z", "1", repeat("y", 100), "2", "b"), c("zrem", "z", repeat("y", 100)),
		c("set", "str", "12"), c("append", "str", "34"),
		c("hset", "hl", "f", repeat("abc", 20), "g", repeat("abc", 20)),
	}
	for _, st := range steps {
		p.rc.Do(st...)
	}
	for _, key := range []string{"h", "l", "s", "z", "str", "hl"} {
		payload, ok := bulkText(p.rc.Do("dump", key))
		if !ok {
			t.Fatalf("no dump of %s", key)
		}
		if r := p.ours("restore", key, "0", payload); r != "+OK\r\n" {
			t.Fatalf("restore %s: %q", key, r)
		}
		want := readsOf(p.rc.Do, key)
		got := readsOf(p.ours, key)
		// The encoding reported is ours (size-based), Redis's may be
		// historical: compare everything but it.
		for i := range len(want) - 1 {
			if got[i] != want[i] {
				t.Fatalf("%s read %d:\n got %q\nwant %q", key, i, trunc(got[i]), trunc(want[i]))
			}
		}
	}
}

// TestRestoreOptionsDiff compares RESTORE's options and errors with Redis.
func TestRestoreOptionsDiff(t *testing.T) {
	p := newPair(t)
	p.both("set", "src", "hello")
	payload, _ := bulkText(p.both("dump", "src"))
	future := strconv.FormatInt(time.Now().UnixMilli()+100000, 10)
	past := strconv.FormatInt(time.Now().UnixMilli()-100000, 10)
	script := [][]string{
		c("restore", "k", "0", payload),
		c("restore", "k", "0", payload),
		c("restore", "k", "0", payload, "replace"),
		c("restore", "k", "-1", payload, "replace"),
		c("restore", "k", "abc", payload, "replace"),
		c("restore", "k2", "-1", payload),
		c("restore", "k", "0", payload, "replace", "absttl", "idletime", "10"),
		c("restore", "k", "0", payload, "replace", "freq", "10"),
		c("restore", "k", "0", payload, "replace", "idletime", "-1"),
		c("restore", "k", "0", payload, "replace", "idletime", "x"),
		c("restore", "k", "0", payload, "replace", "freq", "256"),
		c("restore", "k", "0", payload, "replace", "freq", "-1"),
		c("restore", "k", "0", payload, "replace", "idletime", "1", "freq", "1"),
		c("restore", "k", "0", payload, "replace", "freq", "1", "idletime", "1"),
		c("restore", "k", "0", payload, "replace", "idletime"),
		c("restore", "k", "0", payload, "bogus"),
		c("restore", "k", "0", payload, "replace", "absttl"),
		c("restore", "k", "100000", payload, "replace"),
		c("ttl", "k"),
		c("restore", "k", future, payload, "replace", "absttl"),
		c("ttl", "k"),
		c("restore", "k", past, payload, "replace", "absttl"),
		c("exists", "k"),
		c("restore", "k", past, payload, "absttl"),
		c("exists", "k"),
		c("restore", "k", "0", "short"),
		c("restore", "k", "0", payload[:len(payload)-1]+"x"),
		c("restore", "k", "0", craftPayload([]byte{0, 5, 'h', 'e', 'l', 'l', 'o'}, 11)),
		c("restore", "k", "0", craftPayload([]byte{0, 5, 'h', 'e', 'l', 'l', 'o'}, 10)),
		c("restore", "k2", "0", craftPayload([]byte{0, 5, 'h'}, 10)),
		c("restore", "k2", "0", craftPayload([]byte{99, 1, 'h'}, 10)),
		c("restore", "k2", "0", craftPayload([]byte{rdbTypeSetIntset, 0}, 10)),
		c("restore", "k2", "0", craftPayload([]byte{rdbTypeList, 0}, 10)),
		c("restore", "k2", "0", craftPayload(obj(rdbTypeSet, appendRDBLen(nil, 2), raw("a"), raw("a")), 10)),
		c("restore", "k2", "0", craftPayload(obj(rdbTypeZSet2, appendRDBLen(nil, 1), raw("a"), []byte{0, 0, 0, 0, 0, 0, 0xf8, 0x7f}), 10)),
		c("exists", "k2"),
		c("get", "k"),
		c("dump", "nokey"),
	}
	for _, st := range script {
		p.both(st...)
	}
}

// TestRestoreBadPayloads feeds corrupt encodings only to the store (Redis
// without sanitize-dump-payload may crash on them): each must be refused
// with "Bad data format" and leave nothing behind.
func TestRestoreBadPayloads(t *testing.T) {
	s := New()
	e := &Env{NowMs: 1000}
	lp := buildListpack([][]byte{[]byte("a"), []byte("b")})
	badLP := append([]byte(nil), lp...)
	badLP[6] = 0xf5 // not an encoding
	cases := map[string][]byte{
		"truncated string":    {rdbTypeString, 30, 'a'},
		"length as encoding":  {rdbTypeList, 0xc0, 1},
		"unknown encoding":    {rdbTypeString, 0xc4},
		"bad lzf":             {rdbTypeString, rdbEncLZF, 2, 30, 0x20, 0x01},
		"bad listpack":        obj(rdbTypeHashListpack, blob(badLP)),
		"odd hash":            obj(rdbTypeHashListpack, blob(buildListpack([][]byte{[]byte("a")}))),
		"listpack count":      obj(rdbTypeListQuicklist2, []byte{1, 2}, blob(append(append([]byte(nil), lp[:4]...), append([]byte{9, 0}, lp[6:]...)...))),
		"bad container":       obj(rdbTypeListQuicklist2, []byte{1, 3}, blob(lp)),
		"unsorted intset":     obj(rdbTypeSetIntset, blob([]byte{2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 1, 0})),
		"dup hash":            obj(rdbTypeHash, []byte{2}, raw("f"), raw("v"), raw("f"), raw("w")),
		"dup zset":            obj(rdbTypeZSetListpack, blob(buildListpack([][]byte{[]byte("a"), []byte("1"), []byte("a"), []byte("2")}))),
		"bad score":           obj(rdbTypeZSetListpack, blob(buildListpack([][]byte{[]byte("a"), []byte("x")}))),
		"nan text score":      obj(rdbTypeZSet, []byte{1}, raw("a"), []byte{253}),
		"bad ziplist":         obj(rdbTypeListZiplist, blob([]byte{11, 0, 0, 0, 10, 0, 0, 0, 1, 0, 0xff})),
		"bad zipmap":          obj(rdbTypeHashZipmap, blob([]byte{1, 5, 'a', 0xff})),
		"stream truncated":    {rdbTypeStreamListpack, 1},
		"huge length":         {rdbTypeList, 0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"implausible lzf len": {rdbTypeString, rdbEncLZF, 1, 0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0},
	}
	for name, o := range cases {
		got := string(execArgs(s, e, []string{"restore", "k", "0", craftPayload(o, rdbVersion)}))
		if got != "-ERR Bad data format\r\n" {
			t.Errorf("%s: got %q", name, got)
		}
		if s.Len() != 0 {
			t.Fatalf("%s: left a key", name)
		}
	}
}

// TestDumpRestoreRoundTrip restores our own payloads of random values and
// expects the same value back, TTL included.
func TestDumpRestoreRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	e := &Env{NowMs: 1_000_000, Rand: rand.New(rand.NewPCG(1, 1))}
	for i := range 100 {
		a := New()
		setup, _ := randomValue(rnd, "k")
		for _, st := range setup {
			execArgs(a, e, st)
		}
		payload, ok := bulkText(string(execArgs(a, e, []string{"dump", "k"})))
		if !ok {
			t.Fatalf("case %d: no payload", i)
		}
		b := New()
		if r := string(execArgs(b, e, []string{"restore", "k", "0", payload})); r != "+OK\r\n" {
			t.Fatalf("case %d: restore: %q", i, r)
		}
		// The digests may differ in a set's internal order (an intset
		// restores in ascending order); the values may not.
		for _, k := range []string{"dump", "pttl"} {
			if ra, rb := execArgs(a, e, []string{k, "k"}), execArgs(b, e, []string{k, "k"}); !bytes.Equal(ra, rb) {
				t.Fatalf("case %d: %s restored differently: %s", i, trunc(fmt.Sprint(setup)), k)
			}
		}
	}
}

// TestRestoreReplay applies the same RESTOREs to two stores (as two
// replicas do) and expects equal digests.
func TestRestoreReplay(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 9))
	src := New()
	e := &Env{NowMs: 5_000_000, Rand: rand.New(rand.NewPCG(1, 1))}
	var log [][]string
	for i := range 80 {
		key := "k" + strconv.Itoa(i%20)
		setup, _ := randomValue(rnd, "src")
		execArgs(src, e, []string{"del", "src"})
		for _, st := range setup {
			execArgs(src, e, st)
		}
		payload, _ := bulkText(string(execArgs(src, e, []string{"dump", "src"})))
		cmd := []string{"restore", key, strconv.Itoa(rnd.IntN(3) * 1000), payload}
		if rnd.IntN(2) == 0 {
			cmd = append(cmd, "replace")
		}
		log = append(log, cmd)
	}
	a, b := New(), New()
	for i, cmd := range log {
		env := &Env{NowMs: 6_000_000 + int64(i), Rand: rand.New(rand.NewPCG(uint64(i), 0))}
		ra := string(execArgs(a, env, cmd))
		rb := string(execArgs(b, env, cmd))
		if ra != rb {
			t.Fatalf("command %d: replies differ: %q vs %q", i, ra, rb)
		}
	}
	if a.Len() == 0 || a.Digest() != b.Digest() {
		t.Fatalf("replicas differ (%d keys)", a.Len())
	}
}

// TestDumpLZFDiff compares the LZF compression of many strings with
// Redis's, byte for byte: lengths around the 20-byte threshold, matches
// near the end of the input and long inputs with far matches.
func TestDumpLZFDiff(t *testing.T) {
	p := newPair(t)
	rnd := rand.New(rand.NewPCG(11, 12))
	sizes := []int{19, 20, 21, 22, 23, 24, 25, 30, 40, 64, 100, 265, 266, 267, 1000, 8200, 9000, 20000, 70000}
	for i := range 300 {
		n := sizes[i%len(sizes)]
		if i >= 2*len(sizes) {
			n = 21 + rnd.IntN(5000)
		}
		val := string(randomCompressible(rnd, n))
		if i%3 == 0 {
			val = repeat(val[:1+rnd.IntN(min(n, 50))], n)[:n]
		}
		p.both("set", "k", val)
		p.both("dump", "k")
	}
}

// BenchmarkDumpSetOfLongMembers dumps a hash-table set of 10,000 members
// of 40 bytes, each a candidate for LZF.
func BenchmarkDumpSetOfLongMembers(b *testing.B) {
	s := New()
	e := &Env{NowMs: 1}
	args := []string{"sadd", "k"}
	for i := range 10000 {
		args = append(args, fmt.Sprintf("member-%033d", i))
	}
	execArgs(s, e, args)
	b.ResetTimer()
	for range b.N {
		execArgs(s, e, []string{"dump", "k"})
	}
}
