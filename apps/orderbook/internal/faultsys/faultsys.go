// Package faultsys is the replicated order book as a System of gomu's fault
// runner (internal/faults), so that orderbook-faults can put the exchange
// under every fault of the catalogue and judge it by its own verdict:
// exactly-once, every acknowledged order applied once.
//
// # The cluster
//
// It is one of gomu's replicated apps to the runner (faults.GomuApp):
// Debian's memcached as the registry on its host, one orderbook-server per
// replica host with the flags a user would give it (SID, IDS,
// DORY_REGISTRY_IP, --transport, --device, --cluster, --fifo), started,
// killed, restarted and paused (its fifo) the runner's way. Traders reach
// the exchange over verbsrpc, not TCP, so each replica also gets --stats
// HOST:PORT: the runner asks "stats gomu" there who leads (gomu_role,
// gomu_leader_id) and "stats gomu digest" for the digest of the exchange
// (books, live orders' owners, the traders' windows; taken between two
// applies). Unless --fast, the replicas' RPC pollers sleep (--rpc-poll
// sleep) as the relaxed engine does, rather than yield a core away on a
// machine that runs the whole cluster, its registry and the traders.
//
// # The workload
//
// The workload is orderbook-trader's (internal/trader), run as a process
// on the client host, not in the runner: on the test bed the traders'
// verbs device (tcp) must listen and connect in the client host's network
// namespace, which only a process started there does (the runner's own
// sockets are made there one by one; a verbs device makes its own).
// Locally the same process runs on shm. It runs --traders N (the plan's
// clients, one order outstanding each) for the scenario's length, follows
// the leader through every fault, and then checks what each trader was
// answered against what the exchange says it applied for it: its check
// line (acked, applied, lost, doubled, and what it could not judge) is
// the scenario's verdict, and its --timeline (every order's first send,
// latency and outcome) the runner's timeline. orderbook-trader is looked
// for next to the server program, then next to this executable, then on
// PATH.
//
// The order book has no key-value interface and no leases: KV and Lease
// are nil, and the runner's lease command refuses it.
package faultsys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/trader"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/internal/benchproc"
	"github.com/gomu-rdma/gomu/internal/faults"
	"github.com/gomu-rdma/gomu/internal/lincheck"
)

// Name is the System's name: --systems orderbook, --bin orderbook=PATH.
const Name = "orderbook"

// statsPort is the stats port on a test bed host; locally each replica
// gets a free one.
const statsPort = 7100

// Factory is the order book's Factory for faults.Main.
func Factory() faults.Factory { return faults.Factory{Name: Name, New: New} }

// New makes the order book's System: the app as faults.GomuApp runs it,
// and orderbook-trader for its workload.
func New(s faults.Setup) (faults.System, error) {
	if !s.Fast {
		// First, so that a --flag orderbook=--rpc-poll=… given to the
		// runner comes after it and wins.
		s.Flags = append([]string{"--rpc-poll", "sleep"}, s.Flags...)
	}
	app, err := faults.NewGomuApp(s, proto{})
	if err != nil {
		return nil, err
	}
	tr, err := traderBinary(app.Setup().Bin)
	if err != nil {
		return nil, err
	}
	return &System{GomuApp: app, trader: tr}, nil
}

// traderBinary finds orderbook-trader: next to the server program (make
// builds both into bin/), else next to this executable, else on PATH.
func traderBinary(server string) (string, error) {
	p := filepath.Join(filepath.Dir(server), "orderbook-trader")
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, nil
	}
	p, err := benchproc.FindBinary("orderbook-trader", "bin", "")
	if err != nil {
		return "", fmt.Errorf("%s: the traders' program (looked for next to %s too): %w", Name, server, err)
	}
	return p, nil
}

// proto is orderbook-server's side of faults.GomuApp: the stats port for
// roles and digests, no key-value or lease client.
type proto struct{}

func (proto) Name() string       { return Name }
func (proto) DefaultBin() string { return "orderbook-server" }
func (proto) ClientPort() int    { return statsPort }

// ListenFlags give the replica its stats port: the one address a client
// of the runner's kind (TCP) can reach it at. (Traders find its RPC
// service through the registry.)
func (proto) ListenFlags(host, port string) []string {
	return []string{"--stats", net.JoinHostPort(host, port)}
}

// Status is replica i's "stats gomu"; nil while it gives no role (it
// has not joined its cluster yet) or does not answer (down, paused).
func (proto) Status(ctx context.Context, g *faults.GomuApp, i int) map[string]string {
	f := g.Stats(ctx, i, "gomu")
	if f["gomu_role"] == "" {
		return nil
	}
	return f
}

// Digest is replica i's gomu_digest.
func (proto) Digest(ctx context.Context, g *faults.GomuApp, i int) string {
	return g.Stats(ctx, i, "gomu digest")["gomu_digest"]
}

func (proto) KV(*faults.GomuApp, int) lincheck.Target  { return nil }
func (proto) Lease(*faults.GomuApp, int) faults.Leaser { return nil }

// System is the order book under the fault runner: the cluster is
// faults.GomuApp's, the workload orderbook-trader's.
type System struct {
	*faults.GomuApp
	trader string // orderbook-trader
}

var _ faults.Workloader = (*System)(nil)

// Unit is what the order book's requests are.
func (s *System) Unit() string { return "orders" }

// Workload runs orderbook-trader on the client host for the scenario and
// returns its orders and its check. It waits for the process until ctx
// ends, then kills it: a trader that cannot get its last order answered,
// or its state read, would resend forever.
func (s *System) Workload(ctx context.Context, w faults.Work) (*faults.WorkResult, error) {
	env := s.Env()
	if env == nil {
		return nil, errors.New("orderbook: workload before Start")
	}
	setup := s.Setup()
	transport, device := s.Transport()
	ids := make([]string, setup.Replicas)
	for i := range ids {
		ids[i] = strconv.Itoa(i + 1)
	}
	timeline := filepath.Join(setup.Dir, w.Name+"-orders.csv")
	defer os.Remove(timeline)
	// The traders trade until the scenario's end, give or take their
	// start (connecting, and a first order answered).
	dur := max(w.Duration-time.Since(w.Start), 100*time.Millisecond)
	poll := "sleep"
	if setup.Fast {
		poll = "yield"
	}
	cmd := env.Command(env.Client, s.trader,
		"--registry", s.Registry(), "--transport", transport, "--device", device,
		"--ids", strings.Join(ids, ","), "--cluster", s.Cluster(),
		"--traders", strconv.Itoa(w.Clients), "--duration", dur.String(), "--poll", poll,
		"--timeline", timeline, "--out", "")
	cmd.Dir = setup.Dir
	w.Log("%s: %d traders on %s for %v", Name, w.Clients, env.Client, dur.Round(time.Millisecond))
	p, err := faults.StartProc(fmt.Sprintf("orderbook-trader (%s)", env.Client), cmd, setup.LogFile("traders"))
	if err != nil {
		return nil, err
	}
	perr, err := waitExit(ctx, p)
	if err != nil {
		return nil, err
	}
	out := p.Tail()
	res, err := parseCheck(out)
	if err != nil {
		return nil, fmt.Errorf("%s (exit: %v):\n%s", err, perr, out)
	}
	if perr != nil && res.Lost+res.Doubled+res.Unjudged == 0 {
		// It failed on something its check does not count.
		return nil, fmt.Errorf("orderbook-trader: %v:\n%s", perr, out)
	}
	if perr != nil {
		res.Note = errorLines(out)
	}
	f, err := os.Open(timeline)
	if err != nil {
		return nil, fmt.Errorf("orderbook-trader's timeline: %w", err)
	}
	defer f.Close()
	samples, err := trader.ReadTimeline(f)
	if err != nil {
		return nil, fmt.Errorf("orderbook-trader's timeline %s: %w", timeline, err)
	}
	res.Ops = timedOps(samples, w.Start)
	return res, nil
}

// waitExit waits until p ends and returns how (perr), or kills it when
// ctx ends first (err).
func waitExit(ctx context.Context, p *faults.Proc) (perr, err error) {
	for {
		if done, perr := p.Exited(); done {
			return perr, nil
		}
		select {
		case <-ctx.Done():
			kerr := p.Kill(5 * time.Second)
			return nil, errors.Join(fmt.Errorf("%s did not finish: %w\n%s", p.Name, ctx.Err(), p.Tail()), kerr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// parseCheck reads orderbook-trader's check line,
//
//	check: traders=N acked=X applied=Y lost=L doubled=D [mismatched=M] [unresolved=U] [unreadable=R]
//
// into a verdict: what it could not judge (mismatched id sets, orders
// still unanswered at the end, traders whose state it could not read)
// counts as unjudged.
func parseCheck(out string) (*faults.WorkResult, error) {
	var line string
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "check: ") {
			line = strings.TrimSpace(l)
		}
	}
	if line == "" {
		return nil, errors.New("orderbook-trader printed no check line")
	}
	f := map[string]int{}
	for _, kv := range strings.Fields(strings.TrimPrefix(line, "check: ")) {
		k, v, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("check line %q: %q is no count", line, kv)
		}
		f[k] = n
	}
	for _, k := range []string{"traders", "acked", "applied", "lost", "doubled"} {
		if _, ok := f[k]; !ok {
			return nil, fmt.Errorf("check line %q lacks %s", line, k)
		}
	}
	return &faults.WorkResult{Lost: f["lost"], Doubled: f["doubled"],
		Unjudged: f["mismatched"] + f["unresolved"] + f["unreadable"], Verdict: line}, nil
}

// timedOps are the traders' orders on the scenario's clock: every order
// is an order-entry write, answered when the exchange applied it (ok) or
// refused it (rejected), unanswered otherwise.
func timedOps(samples []trader.Sample, start time.Time) []faults.TimedOp {
	ops := make([]faults.TimedOp, len(samples))
	t0 := start.UnixNano()
	for i, s := range samples {
		call := s.Send - t0
		ops[i] = faults.TimedOp{Call: call, Return: call + s.Latency, Write: true,
			Unanswered: s.Status != trader.Outcome(wire.StatusOK) && s.Status != trader.Outcome(wire.StatusRejected)}
	}
	return ops
}

// errorLines are the error orderbook-trader ended with: its output from
// its last "orderbook-trader: " line on.
func errorLines(out string) string {
	if i := strings.LastIndex("\n"+out, "\norderbook-trader: "); i >= 0 {
		return strings.TrimSpace(out[i:])
	}
	return ""
}
