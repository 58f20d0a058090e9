package store

import (
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// cpuClock reports, besides ns/op, the process's CPU time (user and
// system, garbage collection included) per op: on a machine shared with
// other work it varies much less than the wall clock.
type cpuClock struct {
	b     *testing.B
	start time.Duration
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU(b *testing.B) *cpuClock {
	b.ReportAllocs()
	return &cpuClock{b: b, start: cpuNow()}
}

func (c *cpuClock) stop() {
	c.b.ReportMetric(float64(cpuNow()-c.start)/float64(c.b.N), "cpu-ns/op")
}

// The sorted-set benchmarks go through Exec only, so that they run
// unchanged on any representation of zsetValue.

// zbenchArgs returns n ZADD commands of one member each, with random
// scores, into key "z".
func zbenchArgs(n int, seed uint64) [][][]byte {
	r := rand.New(rand.NewPCG(seed, 7))
	cmds := make([][][]byte, n)
	for i := range cmds {
		sc := strconv.FormatFloat(r.Float64()*1e6, 'g', -1, 64)
		cmds[i] = [][]byte{[]byte("ZADD"), []byte("z"), []byte(sc), []byte("member:" + strconv.Itoa(i))}
	}
	return cmds
}

// BenchmarkZAddRandom10k: one op is 10 000 ZADDs of random scores into
// one new key.
func BenchmarkZAddRandom10k(b *testing.B) { zaddRandom(b, 10000) }

// BenchmarkZAddBatch10k: one op is 100 ZADDs of 100 members each (random
// scores) into one new key.
func BenchmarkZAddBatch10k(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 7))
	var cmds [][][]byte
	for i := range 100 {
		c := [][]byte{[]byte("ZADD"), []byte("z")}
		for j := range 100 {
			sc := strconv.FormatFloat(r.Float64()*1e6, 'g', -1, 64)
			c = append(c, []byte(sc), []byte("member:"+strconv.Itoa(i*100+j)))
		}
		cmds = append(cmds, c)
	}
	e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(1, 1))}
	var out []byte
	clk := startCPU(b)
	for b.Loop() {
		s := New()
		for _, c := range cmds {
			out = s.Exec(out[:0], e, c)
		}
	}
	clk.stop()
}

// BenchmarkZAddRandom50k and BenchmarkZAddRandom100k are
// BenchmarkZAddRandom10k with 50 000 and 100 000 ZADDs.
func BenchmarkZAddRandom50k(b *testing.B)  { zaddRandom(b, 50000) }
func BenchmarkZAddRandom100k(b *testing.B) { zaddRandom(b, 100000) }

func zaddRandom(b *testing.B, n int) {
	cmds := zbenchArgs(n, 1)
	e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(1, 1))}
	var out []byte
	clk := startCPU(b)
	for b.Loop() {
		s := New()
		for _, c := range cmds {
			out = s.Exec(out[:0], e, c)
		}
	}
	clk.stop()
}

// BenchmarkZAddZRemChurn10k: one op is 10 000 steps on a sorted set of
// about 10 000 members, each a ZREM of a random member and a ZADD of a
// random member with a random score.
func BenchmarkZAddZRemChurn10k(b *testing.B) {
	const n = 10000
	s := New()
	e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(1, 1))}
	var out []byte
	for _, c := range zbenchArgs(n, 1) {
		out = s.Exec(out[:0], e, c)
	}
	r := rand.New(rand.NewPCG(3, 4))
	const steps = 10000
	rem := make([][][]byte, steps)
	add := make([][][]byte, steps)
	for i := range steps {
		rem[i] = [][]byte{[]byte("ZREM"), []byte("z"), []byte("member:" + strconv.Itoa(r.IntN(2*n)))}
		sc := strconv.FormatFloat(r.Float64()*1e6, 'g', -1, 64)
		add[i] = [][]byte{[]byte("ZADD"), []byte("z"), []byte(sc), []byte("member:" + strconv.Itoa(r.IntN(2*n)))}
	}
	clk := startCPU(b)
	for b.Loop() {
		for i := range steps {
			out = s.Exec(out[:0], e, rem[i])
			out = s.Exec(out[:0], e, add[i])
		}
	}
	clk.stop()
}

// BenchmarkZReads10k: one op is 1 000 each of ZRANK, ZRANGE by rank (10
// members from a random rank) and ZRANGEBYSCORE (10 members) on a sorted
// set of 10 000 members.
func BenchmarkZReads10k(b *testing.B) {
	const n = 10000
	s := New()
	e := &Env{NowMs: 1, Rand: rand.New(rand.NewPCG(1, 1))}
	var out []byte
	for _, c := range zbenchArgs(n, 1) {
		out = s.Exec(out[:0], e, c)
	}
	r := rand.New(rand.NewPCG(5, 6))
	var cmds [][][]byte
	for range 1000 {
		m := []byte("member:" + strconv.Itoa(r.IntN(n)))
		i := r.IntN(n - 10)
		lo := r.Float64() * 1e6
		cmds = append(cmds,
			[][]byte{[]byte("ZRANK"), []byte("z"), m},
			[][]byte{[]byte("ZRANGE"), []byte("z"), []byte(strconv.Itoa(i)), []byte(strconv.Itoa(i + 9))},
			[][]byte{[]byte("ZRANGEBYSCORE"), []byte("z"), []byte(strconv.FormatFloat(lo, 'g', -1, 64)), []byte("+inf"),
				[]byte("LIMIT"), []byte("0"), []byte("10")})
	}
	clk := startCPU(b)
	for b.Loop() {
		for _, c := range cmds {
			out = s.Exec(out[:0], e, c)
		}
	}
	clk.stop()
}

// BenchmarkZSetValueSet10k: the sorted set type alone (member map and
// order, without Exec): one op is 10 000 inserts of random scores into a
// new zsetValue.
func BenchmarkZSetValueSet10k(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 7))
	ms := make([]string, 10000)
	sc := make([]float64, 10000)
	for i := range ms {
		ms[i] = "member:" + strconv.Itoa(i)
		sc[i] = r.Float64() * 1e6
	}
	clk := startCPU(b)
	for b.Loop() {
		z := newZSet()
		for i, m := range ms {
			z.set(m, sc[i])
		}
	}
	clk.stop()
}
