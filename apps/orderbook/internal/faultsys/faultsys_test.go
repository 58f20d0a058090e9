package faultsys

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/trader"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/internal/faults"
)

func TestParseCheck(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		out                     string
		lost, doubled, unjudged int
		err                     string
	}{
		{name: "clean", out: "orders: 10 in 1s\ncheck: traders=5 acked=10 applied=10 lost=0 doubled=0\norderbook-trader orders=10 lost=0 doubled=0\n"},
		{name: "lost", out: "check: traders=5 acked=10 applied=8 lost=2 doubled=0\norderbook-trader: trader: check failed: …", lost: 2},
		{name: "doubled", out: "check: traders=2 acked=10 applied=11 lost=0 doubled=1", doubled: 1},
		{name: "what it could not judge", out: "check: traders=3 acked=9 applied=9 lost=0 doubled=0 mismatched=1 unresolved=2 unreadable=1", unjudged: 4},
		{name: "no check line", out: "orderbook-trader: exchange at 127.0.0.1:1: the exchange took no order", err: "no check line"},
		{name: "the check was off", out: "check: off", err: "no count"},
		{name: "a count missing", out: "check: traders=1 acked=1 applied=1 lost=0", err: "lacks doubled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := parseCheck(tc.out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseCheck = %+v, %v; want an error saying %q", res, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Lost != tc.lost || res.Doubled != tc.doubled || res.Unjudged != tc.unjudged || !strings.HasPrefix(res.Verdict, "check: traders=") {
				t.Errorf("parseCheck = %+v, want lost %d doubled %d unjudged %d", res, tc.lost, tc.doubled, tc.unjudged)
			}
		})
	}
}

func TestErrorLines(t *testing.T) {
	out := "check: traders=1 acked=1 applied=2 lost=0 doubled=1\norderbook-trader: trader: check failed: trader 1 (id 0x5): answered 1\nsecond line"
	if got, want := errorLines(out), "orderbook-trader: trader: check failed: trader 1 (id 0x5): answered 1\nsecond line"; got != want {
		t.Errorf("errorLines = %q, want %q", got, want)
	}
	if got := errorLines("check: all fine"); got != "" {
		t.Errorf("errorLines of no error = %q", got)
	}
}

// TestTimedOps puts the traders' samples on the scenario's clock: an
// order answered ok or rejected was applied (acknowledged), one that
// ended in an error was not answered.
func TestTimedOps(t *testing.T) {
	start := time.Unix(100, 0)
	ms := int64(time.Millisecond)
	samples := []trader.Sample{
		{Send: start.UnixNano() + 5*ms, Latency: 2 * ms, Status: trader.Outcome(wire.StatusOK)},
		{Send: start.UnixNano() + 7*ms, Latency: ms, Status: trader.Outcome(wire.StatusRejected)},
		{Send: start.UnixNano() + 9*ms, Latency: 300 * ms, Status: trader.OutcomeError},
	}
	got := timedOps(samples, start)
	want := []faults.TimedOp{
		{Call: 5 * ms, Return: 7 * ms, Write: true},
		{Call: 7 * ms, Return: 8 * ms, Write: true},
		{Call: 9 * ms, Return: 309 * ms, Write: true, Unanswered: true},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("timedOps = %v, want %v", got, want)
	}
}

// TestOrderbookUnderKill builds orderbook-server and orderbook-trader,
// starts three replicas on this machine (shm) around Debian's memcached,
// and runs one real scenario: the leader killed while five traders
// trade, restarted when the window ends. Every acknowledged order must
// be applied once, and the replicas' digests must agree.
func TestOrderbookUnderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the exchange and starts a cluster of three")
	}
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Skip("needs Debian's memcached as the registry")
	}
	bin := t.TempDir()
	bctx, bcancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer bcancel()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.CommandContext(bctx, gocmd, "build", "-o", bin+string(filepath.Separator),
		"github.com/gomu-rdma/gomu/apps/orderbook/cmd/orderbook-server", "github.com/gomu-rdma/gomu/apps/orderbook/cmd/orderbook-trader")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	var logMu sync.Mutex
	var logs bytes.Buffer
	logf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(&logs, format+"\n", args...)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("log:\n%s", logs.String())
			logMu.Unlock()
		}
	})
	sys, err := New(faults.Setup{Replicas: 3, Dir: t.TempDir(), Bin: filepath.Join(bin, "orderbook-server"), Log: logf})
	if err != nil {
		t.Fatal(err)
	}
	if got := sys.(*System).trader; got != filepath.Join(bin, "orderbook-trader") {
		t.Errorf("trader program %s, want the one next to the server", got)
	}
	env := faults.LocalEnv(3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	defer func() {
		if err := sys.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if err := sys.Start(ctx, env); err != nil {
		t.Fatal(err)
	}
	kill, err := faults.FaultNamed("kill")
	if err != nil {
		t.Fatal(err)
	}
	plan := faults.Plan{Baseline: time.Second, Window: time.Second, Recovery: 1500 * time.Millisecond, Dir: t.TempDir(), Log: logf}
	o := faults.RunScenario(ctx, sys, env, 3, faults.Scenario{Fault: kill, Role: "leader"}, plan)
	t.Log(o.Line())
	t.Log(o.Verdict)
	if o.Err != nil || o.Violations() != 0 {
		t.Fatalf("%s (%s %s): %v", o.Line(), o.Verdict, o.Note, o.Err)
	}
	if !o.Own || o.Unit != "orders" || o.Replica < 1 || o.Acked == 0 || o.Events["kills"] != 1 || len(o.Digests) != 3 {
		t.Errorf("own %v unit %q, fault on r%d, %d orders acknowledged, events %v, digests %v", o.Own, o.Unit, o.Replica, o.Acked, o.Events, o.Digests)
	}
	if !strings.HasPrefix(o.Verdict, "check: traders=5 ") || !strings.HasSuffix(o.Verdict, " lost=0 doubled=0") {
		t.Errorf("verdict %q", o.Verdict)
	}
	for _, f := range []string{o.CSV, o.PNG} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The killed leader is back, and the cluster names a leader.
	lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
	defer lcancel()
	if _, err := sys.Leader(lctx); err != nil {
		t.Fatal(err)
	}
}
