package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/internal/lincheck"
)

// App is the fault runner's command line, for the systems given: cmd/faults
// runs it with gomu alone, bench/peers with etcd beside it.
func App(name string, factories ...Factory) *cli.App {
	var names []string
	for _, f := range factories {
		names = append(names, f.Name)
	}
	common := []cli.Flag{
		&cli.StringFlag{Name: "systems", Value: names[0], Usage: "systems to run, comma-separated, of: " + strings.Join(names, ", ")},
		&cli.StringFlag{Name: "env", Value: "local", Usage: "where: local (this machine, gomu on shm) or netns (a test bed of one network namespace per host, tcp; root), or both: local,netns"},
		&cli.IntFlag{Name: "replicas", Value: 3, Usage: "cluster size"},
		&cli.StringSliceFlag{Name: "bin", Usage: "a system's server program, `SYSTEM=PATH` (repeatable; default: found on PATH)"},
		&cli.StringSliceFlag{Name: "flag", Usage: "one more flag for a system's servers, `SYSTEM=FLAG` (repeatable), e.g. gomu=--poll=yield"},
		&cli.BoolFlag{Name: "fast", Usage: "the systems' low-latency settings (gomu: --profile fast; etcd: 10 ms heartbeats)"},
		&cli.StringFlag{Name: "out", Value: "faults-out", Usage: "`DIR` for timelines (CSV), plots (PNG) and any violation's history"},
		&cli.StringFlag{Name: "bed", Value: "flt", Usage: "the test bed's name (1 to 6 of [a-z0-9])"},
		&cli.StringFlag{Name: "subnet", Value: "10.213.7.0/24", Usage: "the test bed's IPv4 /24"},
		&cli.DurationFlag{Name: "timeout", Value: 300 * time.Millisecond, Usage: "one key-value write's bound"},
		&cli.DurationFlag{Name: "read-timeout", Value: 100 * time.Millisecond, Usage: "one key-value read's bound (a client then reads elsewhere)"},
	}
	runFlags := append(slices.Clone(common),
		&cli.StringFlag{Name: "faults", Value: "all", Usage: "faults to inject, comma-separated (all: the catalogue; none: only the no-fault run)"},
		&cli.StringFlag{Name: "roles", Value: "leader,follower", Usage: "whom each fault hits"},
		&cli.IntFlag{Name: "clients", Value: 5, Usage: "key-value workload clients"},
		&cli.DurationFlag{Name: "baseline", Value: 3 * time.Second, Usage: "workload before each fault"},
		&cli.DurationFlag{Name: "window", Value: 5 * time.Second, Usage: "each fault's length"},
		&cli.DurationFlag{Name: "recovery", Value: 3 * time.Second, Usage: "workload after each fault"},
		&cli.DurationFlag{Name: "budget", Value: 60 * time.Second, Usage: "porcupine's search budget per scenario"},
		&cli.BoolFlag{Name: "no-baseline-run", Usage: "skip the no-fault run that starts each cluster"},
	)
	return &cli.App{
		Name:            name,
		Usage:           "run workloads against a replicated store while injecting faults, and judge what the clients saw",
		HideHelpCommand: true,
		Commands: []*cli.Command{
			{
				Name:  "run",
				Usage: "the key-value workload under each fault on each role: timelines, plots, linearizability, lost writes, digests",
				Flags: runFlags,
				Action: func(c *cli.Context) error {
					return runCommand(c, factories, false)
				},
			},
			{
				Name:  "short",
				Usage: "every fault once, a few seconds each, on the local environment and (as root) the test bed; CI's check",
				Flags: runFlags,
				Action: func(c *cli.Context) error {
					return runCommand(c, factories, true)
				},
			},
			{
				Name:  "lease",
				Usage: "the lease workload (SET NX PX): granted and rejected response times and timeouts against the number of clients",
				Flags: append(slices.Clone(common),
					&cli.StringFlag{Name: "clients", Value: "1,2,4,8,16,32,64", Usage: "client counts"},
					&cli.DurationFlag{Name: "duration", Value: 5 * time.Second, Usage: "run length per client count"},
					&cli.DurationFlag{Name: "ttl", Value: 3 * time.Second, Usage: "lease length"},
					&cli.DurationFlag{Name: "request-timeout", Value: time.Second, Usage: "one lease request's bound"},
				),
				Action: func(c *cli.Context) error { return leaseCommand(c, factories) },
			},
			{
				Name:  "list",
				Usage: "the fault catalogue",
				Action: func(c *cli.Context) error {
					for _, f := range Faults {
						net := ""
						if f.Net {
							net = " (test bed only)"
						}
						fmt.Fprintf(c.App.Writer, "%-16s %s%s\n", f.Name, f.Doc, net)
					}
					return nil
				},
			},
		},
	}
}

// Main runs App and exits with its verdict.
func Main(name string, factories ...Factory) {
	if err := App(name, factories...).Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// target is one system on one environment kind.
type target struct {
	factory Factory
	env     string
}

func pickTargets(c *cli.Context, factories []Factory) ([]target, error) {
	var ts []target
	envs := strings.Split(c.String("env"), ",")
	for _, e := range envs {
		if e != "local" && e != "netns" {
			return nil, fmt.Errorf("--env %q: want local, netns or local,netns", e)
		}
		if e == "netns" && os.Geteuid() != 0 {
			return nil, fmt.Errorf("--env netns needs root (network namespaces, cgroups)")
		}
	}
	for _, s := range strings.Split(c.String("systems"), ",") {
		i := slices.IndexFunc(factories, func(f Factory) bool { return f.Name == s })
		if i < 0 {
			return nil, fmt.Errorf("--systems: no system %q", s)
		}
		for _, e := range envs {
			ts = append(ts, target{factories[i], e})
		}
	}
	if n := c.Int("replicas"); n < 1 || n > 15 {
		return nil, fmt.Errorf("--replicas %d: want 1 to 15", n)
	}
	return ts, nil
}

func bins(c *cli.Context) (map[string]string, error) {
	m := map[string]string{}
	for _, b := range c.StringSlice("bin") {
		k, v, ok := strings.Cut(b, "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("--bin %q: want SYSTEM=PATH", b)
		}
		m[k] = v
	}
	return m, nil
}

// cluster brings up env and a system on it.
type cluster struct {
	env *Env
	sys System
	n   int
	dir string
}

func startCluster(ctx context.Context, c *cli.Context, t target, logf func(string, ...any)) (*cluster, error) {
	n := c.Int("replicas")
	var env *Env
	if t.env == "netns" {
		var err error
		if env, err = BedEnv(c.String("bed"), c.String("subnet"), n); err != nil {
			return nil, err
		}
	} else {
		env = LocalEnv(n)
	}
	bs, err := bins(c)
	if err != nil {
		env.Close()
		return nil, err
	}
	// Scratch (etcd's data, gomu's fifos) lives in memory where there is
	// a tmpfs: gomu keeps its log in memory, so etcd is measured without
	// a disk's fsync too, as make compare does.
	tmp := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		tmp = "/dev/shm"
	}
	// Not "gomu-…": the shm provider owns those names in /dev/shm.
	dir, err := os.MkdirTemp(tmp, "faultrun-"+t.factory.Name+"-")
	if err != nil {
		env.Close()
		return nil, err
	}
	var flags []string
	for _, f := range c.StringSlice("flag") {
		s, flag, ok := strings.Cut(f, "=")
		if !ok || flag == "" {
			env.Close()
			return nil, fmt.Errorf("--flag %q: want SYSTEM=FLAG", f)
		}
		if s == t.factory.Name {
			flags = append(flags, flag)
		}
	}
	sys, err := t.factory.New(Setup{Replicas: n, Dir: dir, Bin: bs[t.factory.Name], Fast: c.Bool("fast"), Flags: flags,
		Timeout: c.Duration("timeout"), ReadTimeout: c.Duration("read-timeout"),
		Logs: filepath.Join(c.String("out"), "logs", t.factory.Name+"-"+t.env), Log: logf})
	if err != nil {
		env.Close()
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	logf("%s: starting %d replicas on %v", t.factory.Name, n, env)
	if err := sys.Start(sctx, env); err != nil {
		sys.Stop()
		env.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s on %s: %w", t.factory.Name, t.env, err)
	}
	return &cluster{env: env, sys: sys, n: n, dir: dir}, nil
}

func (cl *cluster) close() error {
	return errors.Join(cl.sys.Stop(), cl.env.Close(), os.RemoveAll(cl.dir))
}

// signalContext ends on SIGINT or SIGTERM, so that every cleanup runs.
func signalContext(c *cli.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
}

func runCommand(c *cli.Context, factories []Factory, short bool) error {
	ctx, stop := signalContext(c)
	defer stop()
	if short {
		// Every fault once, a few seconds each; both environments as root.
		if !c.IsSet("env") && os.Geteuid() == 0 {
			c.Set("env", "local,netns")
		}
		for flag, v := range map[string]string{"baseline": "1500ms", "window": "2500ms", "recovery": "1500ms", "roles": "leader"} {
			if !c.IsSet(flag) {
				c.Set(flag, v)
			}
		}
	}
	targets, err := pickTargets(c, factories)
	if err != nil {
		return err
	}
	var scenarios []Scenario
	if !c.Bool("no-baseline-run") {
		scenarios = append(scenarios, Scenario{})
	}
	fs, err := pickFaults(c.String("faults"))
	if err != nil {
		return err
	}
	roles := strings.Split(c.String("roles"), ",")
	for _, r := range roles {
		if r != "leader" && r != "follower" {
			return fmt.Errorf("--roles %q: want leader and/or follower", r)
		}
	}
	for _, f := range fs {
		for _, r := range roles {
			scenarios = append(scenarios, Scenario{Fault: f, Role: r})
		}
	}
	out := c.String("out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	SweepCgroups()
	w := c.App.Writer
	logf := func(format string, args ...any) {
		fmt.Fprintf(c.App.ErrWriter, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	plan := Plan{
		Clients: c.Int("clients"), Baseline: c.Duration("baseline"), Window: c.Duration("window"), Recovery: c.Duration("recovery"),
		Budget: c.Duration("budget"), Dir: out, Log: logf,
	}
	var outcomes []*Outcome
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		cl, err := startCluster(ctx, c, t, logf)
		if err != nil {
			return err
		}
		for _, sc := range scenarios {
			if ctx.Err() != nil {
				break
			}
			if sc.Fault != nil && sc.Fault.Net && !cl.env.Networked() {
				logf("%s on %s: %s skipped: %v", t.factory.Name, t.env, sc, ErrNeedsBed)
				continue
			}
			if sc.Fault != nil && sc.Fault.Root && os.Geteuid() != 0 {
				logf("%s on %s: %s skipped: needs root (cgroups)", t.factory.Name, t.env, sc)
				continue
			}
			logf("%s on %s: %s", t.factory.Name, t.env, sc)
			o := RunScenario(ctx, cl.sys, cl.env, cl.n, sc, plan)
			if errors.Is(o.Err, ErrUnsupported) {
				logf("%s on %s: %s skipped: the system has no such pause", t.factory.Name, t.env, sc)
				continue
			}
			fmt.Fprintln(w, o.Line())
			if o.Lin.HTML != "" || o.Lin.History != "" {
				fmt.Fprintf(w, "  %v\n", o.Lin)
			}
			if o.Own && o.Lost+o.Doubled+o.Unjudged > 0 {
				// The workload's own words for what it found.
				fmt.Fprintf(w, "  %s\n", o.Verdict)
				if o.Note != "" {
					fmt.Fprintf(w, "  %s\n", o.Note)
				}
			}
			if o.DigestNote != "" {
				fmt.Fprintf(w, "  %s\n", o.DigestNote)
				// The next scenario starts on a whole cluster: a replica
				// whose state did not become the leader's is restarted
				// (it rejoins by state transfer), and the run says so.
				for _, i := range laggards(o.Digests) {
					if cl.sys.Proc(i) == nil {
						continue
					}
					logf("%s on %s: restarting r%d, whose state did not converge", t.factory.Name, t.env, i+1)
					if err := cl.sys.Kill(i); err != nil {
						logf("%s on %s: kill r%d: %v", t.factory.Name, t.env, i+1, err)
					}
				}
			}
			outcomes = append(outcomes, o)
			// The next scenario starts on a whole cluster.
			hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err := restartDown(hctx, cl.sys, cl.n)
			if err == nil {
				_, err = cl.sys.Leader(hctx)
			}
			cancel()
			if err != nil {
				cl.close()
				return fmt.Errorf("%s on %s after %s: the cluster did not come back whole: %w", t.factory.Name, t.env, sc, err)
			}
		}
		if err := cl.close(); err != nil {
			logf("%s on %s: stop: %v", t.factory.Name, t.env, err)
		}
	}
	if len(outcomes) > 0 {
		png := filepath.Join(out, "summary.png")
		if err := writeSummaryPNG(png, outcomes); err != nil {
			logf("summary plot: %v", err)
		} else {
			fmt.Fprintf(w, "summary plot: %s\n", png)
		}
	}
	return summarize(w, outcomes, short, ctx.Err())
}

// laggards are the replicas whose digest is not the one most replicas
// have, those that gave none ("": down, or not answering, as a replica
// whose state machine is stuck) included.
func laggards(digests []string) []int {
	count := map[string]int{}
	for _, d := range digests {
		if d != "" {
			count[d]++
		}
	}
	best := ""
	for d, n := range count {
		if n > count[best] || n == count[best] && d < best {
			best = d
		}
	}
	var out []int
	if best == "" {
		return nil // nobody answered: nothing to compare with
	}
	for i, d := range digests {
		if d != best {
			out = append(out, i)
		}
	}
	return out
}

func pickFaults(s string) ([]*Fault, error) {
	switch s {
	case "all":
		return Faults, nil
	case "none", "":
		return nil, nil
	}
	var fs []*Fault
	for _, n := range strings.Split(s, ",") {
		f, err := FaultNamed(n)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// summarize prints the table's totals and the one line that states the
// verdict counts; an error if any scenario failed one.
func summarize(w io.Writer, outcomes []*Outcome, short bool, interrupted error) error {
	var ops, violations, lost, linBad, undecided, digestBad, errs int
	// A workload of its own counts its requests apart, by unit, in the
	// order the units first came.
	type own struct{ lost, doubled, unjudged int }
	owns := map[string]*own{}
	var units []string
	for _, o := range outcomes {
		ops += o.Ops
		if o.Own {
			u := owns[o.Unit]
			if u == nil {
				u = &own{}
				owns[o.Unit] = u
				units = append(units, o.Unit)
			}
			u.lost += o.Lost
			u.doubled += o.Doubled
			u.unjudged += o.Unjudged
		} else {
			lost += o.Lost
		}
		switch o.Lin.Verdict {
		case lincheck.Violation:
			linBad++
		case lincheck.Inconclusive:
			undecided++
		}
		if !o.DigestsEqual {
			digestBad++
		}
		if o.Err != nil {
			errs++
		}
		violations += o.Violations()
	}
	label := "faults"
	if short {
		label = "faults-short"
	}
	// An undecided history fails the run as a violation would (nothing
	// was shown), but is counted apart: it says the search ran out of
	// budget, not that it found a bad order.
	fmt.Fprintf(w, "%s: scenarios=%d ops=%d linearizability_violations=%d undecided=%d lost_writes=%d digest_mismatches=%d errors=%d",
		label, len(outcomes), ops, linBad, undecided, lost, digestBad, errs)
	ownBad := 0
	var ownWhat []string
	for _, name := range units {
		u := owns[name]
		if name == "" {
			name = "requests"
		}
		fmt.Fprintf(w, " lost_%s=%d doubled_%s=%d", name, u.lost, name, u.doubled)
		if u.unjudged > 0 {
			fmt.Fprintf(w, " unjudged_%s=%d", name, u.unjudged)
		}
		ownBad += u.lost + u.doubled + u.unjudged
		if n := u.lost + u.doubled + u.unjudged; n > 0 {
			ownWhat = append(ownWhat, fmt.Sprintf("%d %s lost, %d doubled, %d unjudged", u.lost, name, u.doubled, u.unjudged))
		}
	}
	fmt.Fprintln(w)
	switch {
	case interrupted != nil:
		return fmt.Errorf("interrupted: %w", interrupted)
	case short && linBad+undecided+lost+errs+ownBad > 0:
		msg := fmt.Sprintf("%d linearizability violations, %d undecided histories, %d lost writes, %d scenarios with errors", linBad, undecided, lost, errs)
		for _, s := range ownWhat {
			msg += ", " + s
		}
		return errors.New(msg)
	case short:
		// CI's check asserts what a client can observe: linearizable
		// histories, no lost write, every acknowledged request of a
		// workload of its own applied once. Replicas whose state has
		// not become the leader's a minute after the run are reported
		// above with what each said; make faults and faults run fail on
		// them.
		return nil
	case violations > 0 || errs > 0:
		return fmt.Errorf("%d violations, %d scenarios with errors", violations, errs)
	}
	return nil
}

func leaseCommand(c *cli.Context, factories []Factory) error {
	ctx, stop := signalContext(c)
	defer stop()
	targets, err := pickTargets(c, factories)
	if err != nil {
		return err
	}
	var counts []int
	for _, s := range strings.Split(c.String("clients"), ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("--clients %q: want positive counts", c.String("clients"))
		}
		counts = append(counts, n)
	}
	out := c.String("out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(c.App.ErrWriter, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	plan := LeasePlan{Duration: c.Duration("duration"), TTL: c.Duration("ttl"), Timeout: c.Duration("request-timeout")}
	var points []LeasePoint
	bad := 0
	run := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	for _, t := range targets {
		cl, err := startCluster(ctx, c, t, logf)
		if err != nil {
			return err
		}
		if _, own := cl.sys.(Workloader); own {
			cl.close()
			return fmt.Errorf("%s has a workload of its own (faults run, faults short), no lease workload", t.factory.Name)
		}
		for _, n := range counts {
			if ctx.Err() != nil {
				break
			}
			pt := RunLease(ctx, cl.sys, n, plan, run+t.env)
			pt.System += "/" + t.env
			fmt.Fprintln(c.App.Writer, pt)
			points = append(points, pt)
			bad += pt.Overlaps
		}
		if err := cl.close(); err != nil {
			logf("%s: stop: %v", t.factory.Name, err)
		}
	}
	png := filepath.Join(out, "lease.png")
	if err := writeLeasePNG(png, points); err != nil {
		return err
	}
	timeouts := 0
	for _, p := range points {
		timeouts += p.Timeouts
	}
	fmt.Fprintf(c.App.Writer, "lease: points=%d timeouts=%d overlaps=%d plot=%s\n", len(points), timeouts, bad, png)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if bad > 0 {
		return fmt.Errorf("%d lease overlaps: two holders at once", bad)
	}
	return nil
}
