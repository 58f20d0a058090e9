package etcdsys

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/faults"
	"github.com/gomu-rdma/gomu/internal/lincheck"
)

const etcdBin = "/usr/bin/etcd"

// startCluster starts n members on the local environment, stopped when
// the test ends.
func startCluster(t *testing.T, n int) faults.System {
	t.Helper()
	if _, err := os.Stat(etcdBin); err != nil {
		t.Skipf("no etcd server (%v): apt-get install etcd-server", err)
	}
	f := Factory()
	if f.Name != "etcd" {
		t.Fatalf("factory named %q", f.Name)
	}
	// A request timeout longer than the default 300 ms: the test must
	// pass on a loaded two-core machine, where etcd's fsyncs and
	// elections take their time.
	sys, err := f.New(faults.Setup{Replicas: n, Dir: t.TempDir(), Bin: etcdBin, Fast: true, Timeout: 2 * time.Second, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = sys.Start(ctx, faults.LocalEnv(n))
	t.Cleanup(func() {
		if err := sys.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return sys
}

func leader(t *testing.T, sys faults.System) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := sys.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// do makes attempts at in until one is done (a member just killed may
// still take one), and returns its reply.
func do(t *testing.T, tg lincheck.Target, in lincheck.Input) lincheck.Reply {
	t.Helper()
	for range 20 {
		if err := tg.Prepare(context.Background(), in); err != nil {
			t.Fatal(err)
		}
		rep := tg.Do(in)
		if rep.Err != nil {
			t.Fatalf("%v %s: %v", in.Kind, in.Key, rep.Err)
		}
		if rep.Outcome == lincheck.Done {
			return rep
		}
		if in.Kind != lincheck.Get && in.Kind != lincheck.Set {
			t.Fatalf("%v %s: %v at %s", in.Kind, in.Key, rep.Outcome, rep.Where)
		}
	}
	t.Fatalf("%v %s: no attempt done", in.Kind, in.Key)
	return lincheck.Reply{}
}

func TestEtcd(t *testing.T) {
	sys := startCluster(t, 3)
	lead := leader(t, sys)
	t.Logf("leader m%d", lead)
	for i := range 3 {
		if sys.Proc(i) == nil {
			t.Fatalf("member %d has no process", i)
		}
	}
	if err := sys.Pause(0); !errors.Is(err, faults.ErrUnsupported) {
		t.Errorf("Pause: %v, want ErrUnsupported", err)
	}

	t.Run("kv", func(t *testing.T) {
		tg := sys.KV(0)
		defer tg.Close()
		for _, c := range []struct {
			kind     lincheck.Kind
			key, arg string
			want     lincheck.Output
		}{
			{lincheck.Get, "r", "", lincheck.Output{Nil: true}},
			{lincheck.Set, "r", "a", lincheck.Output{}},
			{lincheck.Get, "r", "", lincheck.Output{Value: "a"}},
			{lincheck.Set, "r", "b", lincheck.Output{}},
			{lincheck.Get, "r", "", lincheck.Output{Value: "b"}},
			{lincheck.Append, "r", "cd", lincheck.Output{N: 3}},
			{lincheck.Get, "r", "", lincheck.Output{Value: "bcd"}},
			{lincheck.Incr, "r", "", lincheck.Output{NotInt: true}},
			{lincheck.Get, "r", "", lincheck.Output{Value: "bcd"}},
			{lincheck.Incr, "n", "", lincheck.Output{N: 1}},
			{lincheck.Incr, "n", "", lincheck.Output{N: 2}},
			{lincheck.Get, "n", "", lincheck.Output{Value: "2"}},
			{lincheck.Set, "n", "-5", lincheck.Output{}},
			{lincheck.Incr, "n", "", lincheck.Output{N: -4}},
			{lincheck.Set, "n", "007", lincheck.Output{}},
			{lincheck.Incr, "n", "", lincheck.Output{NotInt: true}},
			{lincheck.Set, "n", "9223372036854775807", lincheck.Output{}},
			{lincheck.Incr, "n", "", lincheck.Output{NotInt: true}},
			{lincheck.Append, "l", "x,", lincheck.Output{N: 2}},
			{lincheck.Append, "l", "yz,", lincheck.Output{N: 5}},
			{lincheck.Get, "l", "", lincheck.Output{Value: "x,yz,"}},
		} {
			in := lincheck.Input{Kind: c.kind, Key: "kv:" + c.key, Arg: c.arg}
			rep := do(t, tg, in)
			if rep.Output != c.want {
				t.Errorf("%v %s %q: %+v, want %+v", c.kind, c.key, c.arg, rep.Output, c.want)
			}
			if len(rep.Where) < 2 || rep.Where[0] != 'm' {
				t.Errorf("%v %s: served at %q, want a member's name", c.kind, c.key, rep.Where)
			}
		}
		// Reads go to every member.
		at := map[string]int{}
		for range 60 {
			at[do(t, tg, lincheck.Input{Kind: lincheck.Get, Key: "kv:r"}).Where]++
		}
		if len(at) != 3 {
			t.Errorf("60 reads served by %v, want all three members", at)
		}
	})

	t.Run("lease", func(t *testing.T) {
		l := sys.Lease(0)
		defer l.Close()
		// A new leader renews every lease it takes over, so an election
		// on a loaded machine delays the expiry by a TTL or more.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		const ttl = time.Second
		start := time.Now()
		for _, c := range []struct {
			holder string
			want   bool
		}{{"h1", true}, {"h2", false}, {"h1", false}} {
			got, err := l.Acquire(ctx, "app", c.holder, ttl)
			if err != nil || got != c.want {
				t.Fatalf("Acquire for %s: %v, %v; want %v", c.holder, got, err, c.want)
			}
		}
		for {
			got, err := l.Acquire(ctx, "app", "h2", ttl)
			if err != nil && ctx.Err() != nil {
				t.Fatal(err)
			}
			if err != nil {
				t.Log(err) // a slow moment: try again
			}
			if got {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if d := time.Since(start); d < ttl {
			t.Errorf("h2 granted %v after h1's request, before the %v TTL", d, ttl)
		} else {
			t.Logf("h2 granted %v after h1's request (TTL %v)", d.Round(time.Millisecond), ttl)
		}
	})

	t.Run("workload", func(t *testing.T) {
		rec := lincheck.NewRecorder()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		w := lincheck.Workload{Clients: 4, Ops: 400, Prefix: "w:"}
		if err := w.Run(ctx, rec, sys.KV); err != nil {
			t.Fatal(err)
		}
		res, err := rec.Check(lincheck.Options{Budget: 10 * time.Second, Dir: t.TempDir(), Name: "etcd"})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(res)
		if res.Verdict != lincheck.Ok {
			t.Errorf("history: %v", res)
		}
	})

	t.Run("failover", func(t *testing.T) {
		old := leader(t, sys)
		if err := sys.Kill(old); err != nil {
			t.Fatal(err)
		}
		if sys.Proc(old) != nil {
			t.Errorf("killed member %d still has a process", old)
		}
		if err := sys.Kill(old); err == nil {
			t.Errorf("second Kill of member %d: no error", old)
		}
		killed := time.Now()
		nl := leader(t, sys)
		if nl == old {
			t.Fatalf("leader still m%d after it was killed", old)
		}
		t.Logf("m%d killed, m%d leads after %v", old, nl, time.Since(killed).Round(time.Millisecond))
		tg := sys.KV(1)
		defer tg.Close()
		do(t, tg, lincheck.Input{Kind: lincheck.Set, Key: "kv:f", Arg: "1"})
		if rep := do(t, tg, lincheck.Input{Kind: lincheck.Incr, Key: "kv:f"}); rep.Output.N != 2 {
			t.Errorf("INCR with m%d down: %+v", old, rep.Output)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := sys.Restart(ctx, old); err != nil {
			t.Fatal(err)
		}
		if sys.Proc(old) == nil {
			t.Fatalf("restarted member %d has no process", old)
		}
		leader(t, sys) // every member, the restarted one too, names it
		d, err := sys.Digests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d[0] == "" || slices.ContainsFunc(d, func(s string) bool { return s != d[0] }) {
			t.Errorf("digests %q, want three equal ones", d)
		}

		down := (old + 1) % 3
		if err := sys.Kill(down); err != nil {
			t.Fatal(err)
		}
		d, err = sys.Digests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range d {
			if (s == "") != (i == down) {
				t.Errorf("digests %q with m%d down", d, down)
				break
			}
		}
	})
}

// TestEtcdSizes starts the larger clusters the runner uses.
func TestEtcdSizes(t *testing.T) {
	for _, n := range []int{5, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			start := time.Now()
			sys := startCluster(t, n)
			l := leader(t, sys)
			t.Logf("%d members up, m%d leads, after %v", n, l, time.Since(start).Round(time.Millisecond))
			tg := sys.KV(0)
			defer tg.Close()
			do(t, tg, lincheck.Input{Kind: lincheck.Set, Key: "k", Arg: "v"})
			for range 10 * n {
				if rep := do(t, tg, lincheck.Input{Kind: lincheck.Get, Key: "k"}); rep.Output.Value != "v" {
					t.Fatalf("GET at %s: %+v", rep.Where, rep.Output)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, err := sys.Digests(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(d) != n || d[0] == "" || slices.ContainsFunc(d, func(s string) bool { return s != d[0] }) {
				t.Errorf("digests %q, want %d equal ones", d, n)
			}
		})
	}
}
