package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// familiesOp returns a random command of the set, hash, string/bit and
// HyperLogLog families added with them (random ones included).
func familiesOp(r *rand.Rand) []string {
	k := func(p string) string { return p + strconv.Itoa(r.IntN(3)) }
	m := func() string {
		if r.IntN(3) == 0 {
			return "m" + strconv.Itoa(r.IntN(30))
		}
		return strconv.Itoa(r.IntN(30))
	}
	n := func(lo, hi int) string { return strconv.Itoa(lo + r.IntN(hi-lo)) }
	switch r.IntN(20) {
	case 0, 1:
		return []string{"sadd", k("s"), m(), m(), m()}
	case 2:
		return []string{"spop", k("s"), n(0, 8)}
	case 3:
		return []string{"srandmember", k("s"), n(-5, 5)}
	case 4:
		return []string{[]string{"sinterstore", "sunionstore", "sdiffstore"}[r.IntN(3)], k("s"), k("s"), k("s")}
	case 5:
		return []string{"smove", k("s"), k("s"), m()}
	case 6:
		return []string{"hset", k("h"), m(), m()}
	case 7:
		return []string{"hincrbyfloat", k("h"), m(), n(-50, 50) + ".25"}
	case 8:
		return []string{"hsetnx", k("h"), m(), m()}
	case 9:
		return []string{"hrandfield", k("h"), n(-4, 6), "withvalues"}
	case 10:
		return []string{"setbit", k("b"), n(0, 200), n(0, 2)}
	case 11:
		return []string{"bitfield", k("b"), "overflow", "sat", "incrby", "i12", "#" + n(0, 10), n(-3000, 3000)}
	case 12:
		return []string{"bitop", []string{"and", "or", "xor"}[r.IntN(3)], k("b"), k("b"), k("b")}
	case 13:
		return []string{"getex", k("b"), "px", n(1000, 100000)}
	case 14, 15:
		args := []string{"pfadd", k("p")}
		for range 1 + r.IntN(50) {
			args = append(args, "e"+strconv.Itoa(r.IntN(5000)))
		}
		return args
	case 16:
		return []string{"pfmerge", k("p"), k("p"), k("p")}
	case 17:
		return []string{"pfcount", k("p"), k("p")}
	case 18:
		return []string{"sintercard", "2", k("s"), k("s"), "limit", n(0, 4)}
	}
	return []string{"del", []string{k("s"), k("h"), k("b"), k("p")}[r.IntN(4)]}
}

// TestFamiliesDeterministicSnapshot checks that stores given the same
// commands and Envs (random commands included) stay identical, and that a
// snapshot restores every value these commands make (sets with their
// encodings, hashes, bitmaps, HLL strings) to a store that answers and
// evolves the same.
func TestFamiliesDeterministicSnapshot(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	var script [][]string
	for range 4000 {
		script = append(script, familiesOp(r))
	}
	a, b := New(), New()
	ra, rb := rand.New(rand.NewPCG(3, 3)), rand.New(rand.NewPCG(3, 3))
	now := int64(1_700_000_000_000)
	for i, args := range script[:3000] {
		now += 10
		ga := execArgs(a, &Env{NowMs: now, Rand: ra}, args)
		gb := execArgs(b, &Env{NowMs: now, Rand: rb}, args)
		if !bytes.Equal(ga, gb) {
			t.Fatalf("step %d %q: %q vs %q", i, args, ga, gb)
		}
	}
	if a.Digest() != b.Digest() {
		t.Fatal("same commands, different digests")
	}
	var buf bytes.Buffer
	if err := a.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	c := New()
	if err := c.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if c.Digest() != a.Digest() {
		t.Fatal("restored store's digest differs")
	}
	for _, k := range []string{"0", "1", "2"} {
		for _, args := range [][]string{
			{"smembers", "s" + k}, {"hgetall", "h" + k}, {"get", "b" + k}, {"get", "p" + k},
			{"pfcount", "p" + k}, {"bitcount", "b" + k}, {"type", "s" + k},
		} {
			e := &Env{NowMs: now, Rand: rand.New(rand.NewPCG(1, 1))}
			if ga, gc := execArgs(a, e, args), execArgs(c, e, args); !bytes.Equal(ga, gc) {
				t.Fatalf("%q: %q before the snapshot, %q after", args, ga, gc)
			}
		}
	}
	// The restored store evolves as the original does.
	rc := rand.New(rand.NewPCG(9, 9))
	ra = rand.New(rand.NewPCG(9, 9))
	for i, args := range script[3000:] {
		now += 10
		ga := execArgs(a, &Env{NowMs: now, Rand: ra}, args)
		gc := execArgs(c, &Env{NowMs: now, Rand: rc}, args)
		if !bytes.Equal(ga, gc) {
			t.Fatalf("after restore, step %d %q: %q vs %q", i, args, ga, gc)
		}
	}
	if a.Digest() != c.Digest() {
		t.Fatal("restored store diverged")
	}
	// A change confined to an HLL's registers changes the digest.
	e := &Env{NowMs: now, Rand: ra}
	for i := 0; ; i++ {
		before := a.Digest()
		if string(execArgs(a, e, []string{"pfadd", "p0", "new" + strconv.Itoa(i)})) == ":1\r\n" {
			if a.Digest() == before {
				t.Fatal("PFADD changed registers but not the digest")
			}
			break
		}
		if a.Digest() != before {
			t.Fatal("PFADD changed nothing but the digest")
		}
	}
}

// parseReplyTree parses one RESP2 reply into strings (simple, bulk, integer,
// error), nil and []any.
func parseReplyTree(br *bufio.Reader) (any, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch line[0] {
	case '+', '-', ':':
		return line[1:], nil
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = parseReplyTree(br); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("bad reply %q", line)
}

// TestFamiliesCommandInfo compares the registration of every command of
// these families with Redis 7.0's COMMAND INFO: arity, the flags the store
// models, and the legacy key positions.
func TestFamiliesCommandInfo(t *testing.T) {
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	names := []string{"sinter", "sunion", "sdiff", "sinterstore", "sunionstore", "sdiffstore", "sintercard",
		"smove", "smismember", "srandmember", "spop", "hincrbyfloat", "hrandfield", "hsetnx", "hstrlen",
		"getex", "lcs", "setbit", "getbit", "bitcount", "bitop", "bitpos", "bitfield", "bitfield_ro",
		"pfadd", "pfcount", "pfmerge"}
	modelled := map[string]Flags{"write": Write, "readonly": ReadOnly, "denyoom": DenyOOM, "fast": Fast, "movablekeys": MovableKeys}
	for _, name := range names {
		raw := rc.Do("COMMAND", "INFO", name)
		v, err := parseReplyTree(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			t.Fatal(err)
		}
		info := v.([]any)[0].([]any)
		c := Lookup([]byte(name))
		if c == nil {
			t.Errorf("%s: not registered", name)
			continue
		}
		var want Flags
		for _, f := range info[2].([]any) {
			want |= modelled[f.(string)]
		}
		got := c.Flags & (Write | ReadOnly | DenyOOM | Fast | MovableKeys)
		pos := fmt.Sprintf("%v %v %v %v", info[1], info[3], info[4], info[5])
		if mine := fmt.Sprintf("%v %v %v %v", c.Arity, c.FirstKey, c.LastKey, c.Step); mine != pos || got != want {
			t.Errorf("%s: arity/first/last/step %s, flags %b; Redis %s, flags %b", name, mine, got, pos, want)
		}
		if c.Summary == "" || c.Group == "" {
			t.Errorf("%s: no summary or group", name)
		}
	}
}
