package store

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
)

// fillStore puts one key of every kind, with and without TTLs, into a new
// store.
func fillStore(t testing.TB) (*Store, *Env) {
	s := New()
	e := &Env{NowMs: 1000, Rand: rand.New(rand.NewPCG(3, 4))}
	for _, c := range [][]string{
		{"rpush", "l", "a", "b", "c"}, {"lpush", "l", "z"},
		{"hset", "h", "f1", "v1", "f2", "v2", "f3", "v3"}, {"hdel", "h", "f2"},
		{"sadd", "si", "3", "1", "2"}, {"sadd", "sm", "a", "b", "1"},
		{"zadd", "z", "1.5", "a", "-inf", "b", "2", "c"},
	} {
		execArgs(s, e, c)
	}
	s.put([]byte("str"), &value{kind: kindString, str: []byte("hello")})
	s.setExpire([]byte("l"), s.keys["l"], 99999)
	s.setExpire([]byte("z"), s.keys["z"], 12345)
	return s, e
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, e := fillStore(t)
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if s.Digest() != r.Digest() || r.Len() != s.Len() || r.expiring != s.expiring {
		t.Fatal("restored store differs")
	}
	for _, c := range [][]string{
		{"lrange", "l", "0", "-1"}, {"hgetall", "h"}, {"smembers", "si"}, {"smembers", "sm"},
		{"zrange", "z", "0", "-1", "withscores"}, {"spop", "sm", "2"}, {"hset", "h", "f4", "x"},
	} {
		if a, b := execArgs(s, e, c), execArgs(r, &Env{NowMs: 1000, Rand: rand.New(rand.NewPCG(3, 4))}, c); c[0] != "spop" && !bytes.Equal(a, b) {
			t.Fatalf("%q: %q vs %q", c, a, b)
		}
	}
	// Same state reached by different histories: same digest.
	a, b := New(), New()
	execArgs(a, e, []string{"hset", "x", "f", "1"})
	execArgs(a, e, []string{"rpush", "y", "1"})
	execArgs(b, e, []string{"rpush", "y", "1"})
	execArgs(b, e, []string{"hset", "x", "f", "1"})
	if a.Digest() != b.Digest() {
		t.Fatal("same state, different digests")
	}
}

func TestDigestDiffers(t *testing.T) {
	base, _ := fillStore(t)
	d0 := base.Digest()
	for _, c := range [][]string{
		{"rpush", "l", "x"}, {"lset", "l", "0", "y"}, {"hset", "h", "f1", "other"},
		{"hset", "h", "new", "v"}, {"sadd", "si", "9"}, {"srem", "sm", "a"},
		{"zadd", "z", "1.6", "a"}, {"zadd", "z", "0", "new"}, {"hset", "newkey", "a", "b"},
	} {
		s, e := fillStore(t)
		execArgs(s, e, c)
		if s.Digest() == d0 {
			t.Errorf("%q did not change the digest", c)
		}
	}
	s, _ := fillStore(t)
	s.setExpire([]byte("h"), s.keys["h"], 5)
	if s.Digest() == d0 {
		t.Error("TTL change did not change the digest")
	}
}

func TestRestoreCorrupt(t *testing.T) {
	s, _ := fillStore(t)
	var buf bytes.Buffer
	s.Snapshot(&buf)
	good := buf.Bytes()
	r, _ := fillStore(t)
	before := r.Digest()
	for i := range len(good) {
		for _, cut := range []bool{true, false} {
			in := bytes.Clone(good)
			if cut {
				in = in[:i]
			} else {
				in[i] ^= 0x41
			}
			err := r.Restore(bytes.NewReader(in))
			if err == nil {
				t.Fatalf("corruption at %d (cut %v) accepted", i, cut)
			}
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error not wrapping errCorrupt: %v", err)
			}
		}
	}
	if r.Digest() != before {
		t.Fatal("failed restore changed the store")
	}
	if err := r.Restore(bytes.NewReader(append(bytes.Clone(good), 0))); err == nil {
		t.Fatal("trailing data accepted")
	}
}

func FuzzRestore(f *testing.F) {
	s, _ := fillStore(f)
	var buf bytes.Buffer
	s.Snapshot(&buf)
	f.Add(buf.Bytes())
	var empty bytes.Buffer
	New().Snapshot(&empty)
	f.Add(empty.Bytes())
	f.Add([]byte(snapshotMagic + "\x01\x01k\x09"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := New()
		if err := r.Restore(bytes.NewReader(in)); err != nil {
			return
		}
		var out bytes.Buffer
		if err := r.Snapshot(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatal("accepted input is not canonical")
		}
	})
}

// TestRandomDiff runs a seeded random script of the collection commands
// against real Redis. Unordered replies (sets that left the intset
// encoding) are compared sorted.
func TestRandomDiff(t *testing.T) {
	const seed = 20240611
	rnd := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	keys := []string{"k1", "k2", "k3", "k4"}
	members := []string{"a", "b", "c", "1", "2", "10", "-3", "xyz", ""}
	num := func() string { return strconv.Itoa(rnd.IntN(12) - 6) }
	score := func() string {
		return []string{"0", "1", "-1", "2.5", "0.1", "1e20", "-inf", "inf", "3", "(1", "x"}[rnd.IntN(11)]
	}
	pick := func(xs []string) string { return xs[rnd.IntN(len(xs))] }
	var script []step
	for range 2000 {
		k, m := pick(keys), pick(members)
		var st step
		switch rnd.IntN(34) {
		case 0:
			st = cmd("lpush", k, m, pick(members))
		case 1:
			st = cmd("rpush", k, m)
		case 2:
			st = cmd("lpop", k)
		case 3:
			st = cmd("rpop", k, num())
		case 4:
			st = cmd("llen", k)
		case 5:
			st = cmd("lrange", k, num(), num())
		case 6:
			st = cmd("lindex", k, num())
		case 7:
			st = cmd("lset", k, num(), m)
		case 8:
			st = cmd("lrem", k, num(), m)
		case 9:
			st = cmd("ltrim", k, num(), num())
		case 10:
			st = cmd("hset", k, m, pick(members), pick(members), num())
		case 11:
			st = cmd("hget", k, m)
		case 12:
			st = cmd("hmget", k, m, pick(members))
		case 13:
			st = cmd("hdel", k, m, pick(members))
		case 14:
			st = cmd("hgetall", k)
		case 15:
			st = cmd("hincrby", k, m, num())
		case 16:
			st = cmd("hkeys", k)
		case 17:
			st = cmd("hexists", k, m)
		case 18:
			st = cmd("sadd", k, m, pick(members))
		case 19:
			st = cmd("srem", k, m)
		case 20:
			st = anyOrder("smembers", k)
		case 21:
			st = cmd("sismember", k, m)
		case 22:
			st = cmd("scard", k)
		case 23:
			st = cmd("zadd", k, score(), m)
		case 24:
			st = cmd("zadd", k, pick([]string{"nx", "xx", "gt", "lt", "ch", "incr"}), score(), m)
		case 25:
			st = cmd("zrem", k, m)
		case 26:
			st = cmd("zscore", k, m)
		case 27:
			st = cmd("zrange", k, num(), num(), "withscores")
		case 28:
			st = cmd("zrange", k, score(), score(), "byscore", "withscores")
		case 29:
			st = cmd("zrank", k, m)
		case 30:
			st = cmd("zincrby", k, score(), m)
		case 31:
			st = cmd("zpopmin", k, num())
		case 32:
			st = cmd("del", k)
		case 33:
			st = cmd("zcard", k)
		}
		script = append(script, st)
	}
	runDiff(t, script)
}
