package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// hllElems returns n distinct elements with the given prefix.
func hllElems(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// craftDense returns a dense HLL with the given registers set and its cache
// marked stale.
func craftDense(regs map[int]uint8) string {
	h := make([]byte, hllDenseSize)
	copy(h, "HYLL")
	h[15] = 0x80
	for i, v := range regs {
		hllDenseSetReg(h[hllHdrSize:], i, v)
	}
	return string(h)
}

// craftSparse returns a sparse HLL with the given opcodes and a stale
// cache.
func craftSparse(ops ...byte) string {
	h := []byte("HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80")
	return string(append(h, ops...))
}

// elemFor returns an element (of the form prefix+n) that hashes to
// register reg, with its register value.
func elemFor(prefix string, reg int) (string, uint8) {
	for n := 0; ; n++ {
		e := prefix + strconv.Itoa(n)
		if i, c := hllPatLen([]byte(e)); i == reg {
			return e, c
		}
	}
}

func TestHyperLogLogDiff(t *testing.T) {
	many := hllElems("e", 3000)
	inFirst, _ := elemFor("x", 100)
	script := []step{
		cmd("PFADD", "h"), cmd("GET", "h"), cmd("PFCOUNT", "h"), cmd("PFADD", "h"),
		cmd("PFADD", "h", "a", "b", "c"), cmd("GET", "h"), cmd("PFADD", "h", "a"), cmd("GET", "h"),
		cmd("PFADD", "h", "d"), cmd("GET", "h"), cmd("PFCOUNT", "h"), cmd("PFCOUNT", "nokey"),
		cmd("PFADD", "h", "", "\x00", "a\r\nb", strings.Repeat("long", 100)), cmd("GET", "h"),
		cmd("EXISTS", "nokey"), cmd("PFADD"), cmd("PFCOUNT"), cmd("PFMERGE"),
		// Sparse grows opcode by opcode; past 3000 bytes it turns dense.
		cmd(append([]string{"PFADD", "big"}, many[:500]...)...), cmd("GET", "big"), cmd("STRLEN", "big"),
		cmd(append([]string{"PFADD", "big"}, many[500:1200]...)...), cmd("GET", "big"), cmd("STRLEN", "big"),
		cmd(append([]string{"PFADD", "big"}, many[1200:]...)...), cmd("GET", "big"), cmd("STRLEN", "big"),
		cmd("PFADD", "big", "e1"), cmd("PFADD", "big", "new-one"), cmd("PFCOUNT", "big"),
		cmd("PFCOUNT", "h", "big"), cmd("PFCOUNT", "big", "h", "nokey"), cmd("PFCOUNT", "nokey", "nokey2"),
		// One element at a time, checking the encoding as it goes.
		cmd("PFADD", "one", many[0]), cmd("GET", "one"),
	}
	for i := 1; i < 400; i++ {
		script = append(script, cmd("PFADD", "one", many[i*7%3000]))
		if i%37 == 0 {
			script = append(script, cmd("GET", "one"))
		}
	}
	script = append(script,
		cmd("GET", "one"), cmd("PFCOUNT", "one"),
		// PFMERGE: every key, the destination included, is merged; a dense
		// input makes the destination dense at once.
		cmd("PFMERGE", "m", "h", "one"), cmd("GET", "m"), cmd("PFCOUNT", "m"),
		cmd("PFMERGE", "m"), cmd("GET", "m"), cmd("PFMERGE", "m2"), cmd("GET", "m2"),
		cmd("PFMERGE", "m", "big"), cmd("GET", "m"), cmd("PFCOUNT", "m"),
		cmd("PFMERGE", "m3", "nokey"), cmd("GET", "m3"), cmd("PFMERGE", "one", "h"), cmd("GET", "one"),
		cmd("PFMERGE", "h", "h"), cmd("GET", "h"),
		cmd("SETEX", "ttl", "100", "x"), cmd("DEL", "ttl"), cmd("PFADD", "ttl", "a"), cmd("EXPIRE", "ttl", "100"),
		cmd("PFADD", "ttl", "b"), cmd("PFMERGE", "ttl", "h"), cmd("TTL", "ttl"),
		// Errors.
		cmd("LPUSH", "l", "a"), cmd("SET", "s", "not an hll"), cmd("SET", "n", "1234567890123456"),
		cmd("SET", "hy", "HYLL"), cmd("SET", "enc", "HYLL\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"),
		cmd("SET", "short", "HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		cmd("PFADD", "l", "a"), cmd("PFADD", "s", "a"), cmd("PFADD", "n", "a"), cmd("PFADD", "hy", "a"),
		cmd("PFADD", "enc", "a"), cmd("PFADD", "short", "a"), cmd("PFCOUNT", "l"), cmd("PFCOUNT", "s"),
		cmd("PFCOUNT", "h", "s"), cmd("PFCOUNT", "nokey", "l"), cmd("PFCOUNT", "short"), cmd("PFMERGE", "l", "h"),
		cmd("PFMERGE", "h", "s"), cmd("PFMERGE", "new", "h", "l"), cmd("EXISTS", "new"), cmd("PFMERGE", "s"),
		// Hand-made HLLs: a valid cached cardinality is believed; a dense
		// register over 32 makes a sparse destination dense.
		cmd("SET", "cached", craftSparse(0x7f, 0xff)[:8]+"\x2a\x00\x00\x00\x00\x00\x00\x00"+"\x7f\xff"),
		cmd("PFCOUNT", "cached"), cmd("PFADD", "cached", "a"), cmd("PFCOUNT", "cached"),
		cmd("SET", "d40", craftDense(map[int]uint8{5: 40, 16383: 63, 0: 1})), cmd("PFCOUNT", "d40"),
		cmd("PFADD", "sp", "a"), cmd("PFMERGE", "sp", "d40"), cmd("GET", "sp"), cmd("PFCOUNT", "sp"),
		cmd("PFCOUNT", "d40", "h"), cmd("SET", "d51", craftDense(map[int]uint8{7: 51, 8: 51})), cmd("PFCOUNT", "d51"),
		cmd("PFCOUNT", "d51", "d40"),
		// Corrupt sparse data: runs that do not add up to the registers.
		cmd("SET", "over", craftSparse(0x7f, 0xff, 0x7f, 0xff)), cmd("PFCOUNT", "over"), cmd("PFCOUNT", "over", "h"),
		cmd("PFMERGE", "x", "over"), cmd("EXISTS", "x"), cmd("PFADD", "over", inFirst), cmd("GET", "over"),
		cmd("PFCOUNT", "over"),
		cmd("SET", "under", craftSparse(0x7f, 0xfe)), cmd("PFCOUNT", "under"), cmd("PFMERGE", "under2", "under"),
		cmd("SET", "val", craftSparse(0x7f, 0xf0, 0xfc, 0xfc, 0xfc, 0xfc, 0xfc)), cmd("PFCOUNT", "val"),
		cmd("SET", "vals", craftSparse(0x80, 0x84, 0x88, 0x8c, 0x7f, 0xfb)), cmd("PFCOUNT", "vals"),
		cmd("PFCOUNT", "vals", "h"), cmd("PFMERGE", "vm", "vals"), cmd("GET", "vm"),
		cmd("SET", "zeros", craftSparse(bytes.Repeat([]byte{0x3f}, 256)...)), cmd("PFCOUNT", "zeros"),
		cmd("PFADD", "zeros", "a", "b", "c", "d"), cmd("GET", "zeros"), cmd("PFCOUNT", "zeros"),
	)
	runDiffX(t, hllScript(script))
}

// hllScript turns a script into xsteps where a GET of a key that a
// single-key PFCOUNT has seen (since the key was last set or deleted)
// may differ from Redis's in the cached cardinality only: Redis's PFCOUNT
// stores it, the store's does not.
func hllScript(script []step) []xstep {
	seen := map[string]bool{}
	out := make([]xstep, len(script))
	for i, st := range script {
		out[i] = x(st.args...)
		name := strings.ToUpper(st.args[0])
		switch {
		case name == "PFCOUNT" && len(st.args) == 2:
			seen[st.args[1]] = true
		case name == "SET" || name == "SETEX" || name == "DEL":
			seen[st.args[1]] = false
		case name == "GET" && seen[st.args[1]]:
			out[i].judge = func(*Store, *redistest.Conn) func(got, want string) error { return sameButCache }
		}
	}
	return out
}

// TestHyperLogLogRandomDiff runs a seeded random stream of HLL commands
// against Redis, comparing the raw strings (GET) too. Redis's PFCOUNT
// stores the cardinality it computes in the header; the store's does not
// (it is a read), so a GET of a key PFCOUNT has seen may differ in those
// 8 bytes only.
func TestHyperLogLogRandomDiff(t *testing.T) {
	const seed = 20240615
	r := rand.New(rand.NewPCG(seed, 8))
	t.Logf("seed %d", seed)
	keys := []string{"p1", "p2", "p3", "p4"}
	k := func() string {
		if r.IntN(40) == 0 {
			return []string{"str", "nokey"}[r.IntN(2)]
		}
		return keys[r.IntN(len(keys))]
	}
	elem := func() string { return "el" + strconv.Itoa(r.IntN(6000)) }
	// cached: keys whose Redis copy may hold a cardinality PFCOUNT stored.
	cached := map[string]bool{}
	fresh := func(key string) func(*Store, *redistest.Conn) func(got, want string) error {
		return func(s *Store, _ *redistest.Conn) func(got, want string) error {
			if s.keys[key] == nil {
				cached[key] = false
			}
			return nil
		}
	}
	script := []xstep{x("set", "str", "v")}
	for range 2500 {
		var st xstep
		switch r.IntN(12) {
		case 0, 1, 2:
			key := k()
			args := []string{"PFADD", key}
			n := 1 + r.IntN(6)
			if r.IntN(8) == 0 {
				n = 100 + r.IntN(400)
			}
			for range n {
				args = append(args, elem())
			}
			st = xstep{args: args, judge: fresh(key)}
		case 3:
			key := k()
			st = xstep{args: []string{"PFCOUNT", key}, judge: func(*Store, *redistest.Conn) func(got, want string) error {
				cached[key] = true
				return nil
			}}
		case 4:
			args := []string{"PFCOUNT"}
			for range 2 + r.IntN(2) {
				args = append(args, k())
			}
			st = x(args...)
		case 5:
			key := k()
			args := []string{"PFMERGE", key}
			for range r.IntN(3) {
				args = append(args, k())
			}
			st = xstep{args: args, judge: fresh(key)}
		case 6, 7, 8:
			key := k()
			st = xstep{args: []string{"GET", key}, judge: func(*Store, *redistest.Conn) func(got, want string) error {
				if !cached[key] {
					return nil
				}
				return sameButCache
			}}
		case 9:
			key := k()
			st = xstep{args: []string{"DEL", key}, judge: fresh(key)}
		case 10:
			key := k()
			st = xstep{args: []string{"STRLEN", key}}
		case 11:
			key := k()
			if r.IntN(5) == 0 {
				st = xstep{args: []string{"SET", key, "HYLL-not-really"}, judge: func(*Store, *redistest.Conn) func(got, want string) error {
					cached[key] = false
					return nil
				}}
			} else {
				st = x("EXISTS", key)
			}
		}
		script = append(script, st)
	}
	for _, key := range keys {
		script = append(script, xstep{args: []string{"GET", key}, judge: func(*Store, *redistest.Conn) func(got, want string) error {
			if cached[key] {
				return sameButCache
			}
			return nil
		}})
	}
	runDiffX(t, script)
}

// sameButCache accepts two bulk replies holding HLLs that differ at most
// in the cached cardinality (bytes 8 to 15).
func sameButCache(got, want string) error {
	g, ok1 := bulkText(got)
	w, ok2 := bulkText(want)
	if got == want {
		return nil
	}
	if !ok1 || !ok2 || len(g) != len(w) || len(g) < hllHdrSize || g[:8] != w[:8] || g[16:] != w[16:] {
		return fmt.Errorf("differ beyond the cached cardinality")
	}
	return nil
}

// TestHyperLogLogAccuracy checks the estimator on larger cardinalities
// (where the dense representation and the histogram matter) against a
// Redis fed the same elements, and that the estimate is close.
func TestHyperLogLogAccuracy(t *testing.T) {
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(1, 1))}
	total := 0
	for _, n := range []int{10, 100, 1000, 5000, 20000, 100000} {
		for total < n {
			batch := []string{"PFADD", "acc"}
			for range min(1000, n-total) {
				batch = append(batch, "item:"+strconv.Itoa(total))
				total++
			}
			want := rc.Do(batch...)
			if got := string(execArgs(s, e, batch)); got != want {
				t.Fatalf("PFADD at %d: %q vs %q", total, got, want)
			}
		}
		want := rc.Do("PFCOUNT", "acc")
		got := string(execArgs(s, e, []string{"PFCOUNT", "acc"}))
		if got != want {
			t.Fatalf("PFCOUNT at %d: %q vs %q", n, got, want)
		}
		est, _ := strconv.Atoi(strings.TrimSpace(got[1:]))
		if math.Abs(float64(est-n)) > 0.03*float64(n)+2 {
			t.Errorf("estimate %d for %d elements", est, n)
		}
		raw := rc.Do("GET", "acc")
		v := s.keys["acc"].str
		w, _ := bulkText(raw)
		// Redis's PFCOUNT stored its result; ours did not.
		if string(v[:8]) != w[:8] || string(v[16:]) != w[16:] {
			t.Fatalf("registers differ at %d", n)
		}
		if c := binary.LittleEndian.Uint64([]byte(w[8:16])); strconv.FormatUint(c, 10) != strings.TrimSpace(got[1:]) {
			t.Fatalf("Redis cached %d, PFCOUNT said %s", c, got)
		}
	}
}

// TestHLLHistoEdges checks the estimator's edge cases: empty, every
// register at its maximum.
func TestHLLHistoEdges(t *testing.T) {
	var h [64]int
	h[0] = hllRegisters
	if n := hllCountHisto(&h); n != 0 {
		t.Fatalf("empty HLL: %d", n)
	}
	h[0], h[1] = hllRegisters-1, 1
	if n := hllCountHisto(&h); n != 1 {
		t.Fatalf("one register: %d", n)
	}
}

// TestHyperLogLogSparseEdges pins two details of the sparse updates: the
// merge of equal VAL opcodes scans five opcodes from the one before the
// change, and the HLL turns dense exactly when it would pass 3000 bytes
// (added one element at a time, comparing every length with Redis's).
func TestHyperLogLogSparseEdges(t *testing.T) {
	xzero := func(n int) []byte { return []byte{0x40 | byte((n-1)>>8), byte((n - 1) & 0xff)} }
	val := func(v, n int) byte { return hllValOp(v, n) }
	// dest: VAL(3) ZERO(3) VAL(2) VAL(2) XZERO; src sets register 2 to 7,
	// which splits the ZERO(3): the VAL(2) pair is the fifth opcode from
	// the VAL(3).
	dest := craftSparse(append([]byte{val(3, 1), 0x02, val(2, 1), val(2, 1)}, xzero(hllRegisters-6)...)...)
	src := craftSparse(append([]byte{0x01, val(7, 1)}, xzero(hllRegisters-3)...)...)
	script := []step{
		cmd("SET", "dest", dest), cmd("SET", "src", src), cmd("PFMERGE", "dest", "src"), cmd("GET", "dest"),
		cmd("SET", "dest", dest), cmd("SET", "src", craftSparse(append([]byte{val(3, 1), 0x00, val(9, 1)}, xzero(hllRegisters-3)...)...)),
		cmd("PFMERGE", "dest", "src"), cmd("GET", "dest"),
	}
	for i, prefix := range []string{"a", "bb", "c:"} {
		key := "grow" + strconv.Itoa(i)
		for n := 0; n < 2000; n++ {
			script = append(script, cmd("PFADD", key, prefix+strconv.Itoa(n)), cmd("STRLEN", key))
		}
		script = append(script, cmd("GET", key))
	}
	runDiff(t, script)
}
