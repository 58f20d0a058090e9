package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/internal/leaderhint"
	"github.com/gomu-rdma/gomu/internal/lincheck"
	"github.com/gomu-rdma/gomu/internal/resp"
	"github.com/gomu-rdma/gomu/registry"
)

// GomuRedis is gomu's replicated Redis as a System: Debian's memcached on
// the registry host, one redis-server-replicated per replica host with
// the flags a user would give it there (SID, IDS, DORY_REGISTRY_IP;
// --transport tcp --device <host>:7000 --bind --advertise on the test
// bed, --transport shm locally).
func GomuRedis() Factory { return GomuFactory(gomuRedis{}) }

// GomuFactory is the Factory of the replicated app p describes.
func GomuFactory(p GomuProto) Factory {
	return Factory{Name: p.Name(), New: func(s Setup) (System, error) {
		g, err := NewGomuApp(s, p)
		if err != nil {
			return nil, err
		}
		return g, nil
	}}
}

// GomuProto is what sets gomu's replicated apps apart in a run: the
// server program, its client flags, and the client protocol in which the
// runner asks who leads and for digests, and the workloads talk. The
// apps of this module are here (Redis, memcached); an app whose clients
// this package cannot import (the order book) implements it beside them.
type GomuProto interface {
	// Name is the System's name, DefaultBin the server program's.
	Name() string
	DefaultBin() string
	// ClientPort is the client port on a test bed host.
	ClientPort() int
	// ListenFlags make the server listen on host:port.
	ListenFlags(host, port string) []string
	// Status is replica i's gomu_role, gomu_leader_id and gomu_paused
	// (and whatever else it tells: gomu_commit_index, gomu_applied_index,
	// gomu_catching_up, gomu_state_transfers for reports), nil if it does
	// not answer.
	Status(ctx context.Context, g *GomuApp, i int) map[string]string
	// Digest is replica i's state digest, "" if it gives none.
	Digest(ctx context.Context, g *GomuApp, i int) string
	// KV and Lease are client c's of the key-value and lease workloads;
	// an app with a workload of its own (a Workloader) returns nil.
	KV(g *GomuApp, c int) lincheck.Target
	Lease(g *GomuApp, c int) Leaser
}

// NewGomuApp makes the System of one of gomu's replicated apps.
func NewGomuApp(s Setup, p GomuProto) (*GomuApp, error) {
	if s.Bin == "" {
		s.Bin = p.DefaultBin()
	}
	bin, err := exec.LookPath(s.Bin)
	if err != nil {
		return nil, fmt.Errorf("%s: server program: %w", p.Name(), err)
	}
	s.Bin = bin
	if s.Timeout <= 0 {
		s.Timeout = 300 * time.Millisecond
	}
	return &GomuApp{proto: p, setup: s, procs: make([]*Proc, s.Replicas)}, nil
}

// GomuApp is one of gomu's replicated apps as a System: Debian's memcached
// as the registry, one server process per replica host.
type GomuApp struct {
	proto   GomuProto
	setup   Setup
	env     *Env
	reg     *Proc
	regAddr string
	cluster string
	device  string // shm: the fabric's name
	addrs   []string
	mu      sync.Mutex
	procs   []*Proc
}

// Setup is what the app was made from (Bin resolved, Timeout defaulted).
func (g *GomuApp) Setup() Setup { return g.setup }

// Env is where the app runs (nil before Start).
func (g *GomuApp) Env() *Env { return g.env }

// Registry is the registry's address, Cluster the cluster's namespace in
// it (set by Start).
func (g *GomuApp) Registry() string { return g.regAddr }
func (g *GomuApp) Cluster() string  { return g.cluster }

// Transport is the verbs transport the replicas replicate over and the
// device a client on the client host opens to reach them: shm and the
// fabric locally, tcp and the client host's address (any port) on the
// test bed.
func (g *GomuApp) Transport() (transport, device string) {
	if g.env.Networked() {
		return "tcp", net.JoinHostPort(g.env.Addr(g.env.Client), "0")
	}
	return "shm", g.device
}

// The ports a replica uses on its own host of the test bed; locally each
// replica gets free ones.
const (
	gomuNICPort  = 7000
	registryPort = 11211
)

func (g *GomuApp) Name() string { return g.proto.Name() }

func (g *GomuApp) Start(ctx context.Context, env *Env) error {
	g.env = env
	g.cluster = fmt.Sprintf("faults-%d", os.Getpid())
	g.device = fmt.Sprintf("faults-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	regPort := registryPort
	if !env.Networked() {
		ports, err := freePorts(1 + 2*g.setup.Replicas)
		if err != nil {
			return err
		}
		regPort = ports[0]
		for i := range g.setup.Replicas {
			g.addrs = append(g.addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1+i])))
		}
	} else {
		for _, h := range env.Replicas {
			g.addrs = append(g.addrs, net.JoinHostPort(env.Addr(h), strconv.Itoa(g.proto.ClientPort())))
		}
	}
	g.regAddr = net.JoinHostPort(env.Addr(env.Registry), strconv.Itoa(regPort))
	cmd := env.Command(env.Registry, "memcached", "-l", env.Addr(env.Registry), "-p", strconv.Itoa(regPort), "-U", "0")
	if err := asNobody(env, cmd); err != nil {
		return err
	}
	reg, err := StartProc("registry (memcached)", cmd, g.setup.LogFile("registry"))
	if err != nil {
		return fmt.Errorf("%s: %w (is Debian's memcached installed?)", g.Name(), err)
	}
	g.reg = reg
	if err := waitTCP(ctx, env, g.regAddr, reg); err != nil {
		return err
	}
	for i := range g.setup.Replicas {
		if err := g.spawn(i); err != nil {
			return err
		}
	}
	for i := range g.setup.Replicas {
		if err := waitTCP(ctx, env, g.addrs[i], g.Proc(i)); err != nil {
			return err
		}
	}
	_, err = g.Leader(ctx)
	return err
}

func (g *GomuApp) fifo(i int) string {
	return filepath.Join(g.setup.Dir, fmt.Sprintf("fifo-%d", i+1))
}

// spawn starts replica i's process.
func (g *GomuApp) spawn(i int) error {
	host := g.env.Replicas[i]
	h, port, _ := net.SplitHostPort(g.addrs[i])
	transport, device := "shm", g.device
	if g.env.Networked() {
		transport, device = "tcp", net.JoinHostPort(h, strconv.Itoa(gomuNICPort))
	}
	var ids []string
	for id := 1; id <= g.setup.Replicas; id++ {
		ids = append(ids, strconv.Itoa(id))
	}
	profile := "relaxed"
	if g.setup.Fast {
		profile = "fast"
	}
	cmd := g.env.Command(host, "env", "SID="+strconv.Itoa(i+1), "IDS="+strings.Join(ids, ","),
		registry.EnvAddr+"="+g.regAddr, g.setup.Bin, "--transport", transport, "--device", device)
	cmd.Args = append(cmd.Args, g.proto.ListenFlags(h, port)...)
	cmd.Args = append(cmd.Args, "--advertise", g.addrs[i],
		"--cluster", g.cluster, "--fifo", g.fifo(i), "--profile", profile,
		"--timeout", "2s", "--start-timeout", "60s", "--verbose")
	cmd.Args = append(cmd.Args, g.setup.Flags...)
	cmd.Dir = g.setup.Dir
	p, err := StartProc(fmt.Sprintf("replica %d (%s)", i+1, host), cmd, g.setup.LogFile(fmt.Sprintf("replica-%d", i+1)))
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.procs[i] = p
	g.mu.Unlock()
	return nil
}

func (g *GomuApp) Proc(i int) *Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.procs[i]
}

func (g *GomuApp) Kill(i int) error {
	p := g.Proc(i)
	if p == nil {
		return fmt.Errorf("%s: replica %d is down already", g.Name(), i+1)
	}
	err := p.Kill(5 * time.Second)
	g.mu.Lock()
	g.procs[i] = nil
	g.mu.Unlock()
	return err
}

func (g *GomuApp) Restart(ctx context.Context, i int) error {
	if g.Proc(i) != nil {
		return fmt.Errorf("%s: replica %d is running", g.Name(), i+1)
	}
	if err := g.spawn(i); err != nil {
		return err
	}
	return waitTCP(ctx, g.env, g.addrs[i], g.Proc(i))
}

func (g *GomuApp) Pause(i int) error  { return g.writeFifo(i, "p") }
func (g *GomuApp) Resume(i int) error { return g.writeFifo(i, "c") }

// writeFifo writes s to replica i's pause fifo, without blocking when
// nothing reads it (the replica died).
func (g *GomuApp) writeFifo(i int, s string) error {
	f, err := os.OpenFile(g.fifo(i), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("%s: replica %d's pause fifo: %w", g.Name(), i+1, err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		return fmt.Errorf("%s: replica %d's pause fifo: %w", g.Name(), i+1, err)
	}
	return nil
}

// ask sends the request req to replica i and returns the raw reply that
// read reads.
func (g *GomuApp) ask(ctx context.Context, i int, req []byte, read func(*bufio.Reader) ([]byte, error)) ([]byte, error) {
	// Questions about the cluster may wait longer than the workload's
	// requests: a loaded replica answers late, not never.
	ctx, cancel := context.WithTimeout(ctx, max(g.setup.Timeout, time.Second))
	defer cancel()
	nc, err := g.env.Dial(ctx, "tcp", g.addrs[i])
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	dl, _ := ctx.Deadline()
	_ = nc.SetDeadline(dl)
	if _, err := nc.Write(req); err != nil {
		return nil, err
	}
	return read(bufio.NewReader(nc))
}

// info is replica i's status (see GomuProto.status), nil if it is down
// or does not answer.
func (g *GomuApp) info(ctx context.Context, i int) map[string]string {
	if g.Proc(i) == nil {
		return nil
	}
	return g.proto.Status(ctx, g, i)
}

func (g *GomuApp) Leader(ctx context.Context) (int, error) {
	var last []string
	for {
		lead, running := -1, 0
		named := map[int]int{}
		last = last[:0]
		for i := range g.setup.Replicas {
			if g.Proc(i) == nil {
				last = append(last, fmt.Sprintf("r%d down", i+1))
				continue
			}
			running++
			f := g.info(ctx, i)
			if f == nil {
				last = append(last, fmt.Sprintf("r%d no answer", i+1))
				continue
			}
			last = append(last, fmt.Sprintf("r%d %s leader=%s paused=%s", i+1, f["gomu_role"], f["gomu_leader_id"], f["gomu_paused"]))
			if f["gomu_role"] == "leader" && f["gomu_paused"] == "0" {
				lead = i
			}
			id, _ := strconv.Atoi(f["gomu_leader_id"])
			named[id-1]++
		}
		if lead >= 0 && named[lead] == running {
			return lead, nil
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("%s: no leader every running replica names (%s): %w%s", g.Name(), strings.Join(last, "; "), ctx.Err(), g.tails())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tails is the end of each running replica's output, for an error.
func (g *GomuApp) tails() string {
	var b strings.Builder
	for i := range g.setup.Replicas {
		if p := g.Proc(i); p != nil {
			t := p.Tail()
			if len(t) > 600 {
				t = "…" + t[len(t)-600:]
			}
			fmt.Fprintf(&b, "\n--- %s:\n%s", p.Name, t)
		}
	}
	return b.String()
}

func (g *GomuApp) KV(c int) lincheck.Target { return g.proto.KV(g, c) }

func (g *GomuApp) Lease(c int) Leaser { return g.proto.Lease(g, c) }

// names label the replicas in histories: r1…rn.
func (g *GomuApp) names() []string {
	var ns []string
	for i := range g.addrs {
		ns = append(ns, fmt.Sprintf("r%d", i+1))
	}
	return ns
}

func (g *GomuApp) Digests(ctx context.Context) ([]string, error) {
	// Each question has a second of its own, so that a replica asked
	// after the wait ran out still answers (or is seen not to).
	digest := func(i int) string {
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		return g.proto.Digest(qctx, g, i)
	}
	// The leader's digest is the reference; a leader just resumed may
	// still be handing over, so ask again until one answers.
	var want string
	lead := -1
	for want == "" {
		var err error
		if lead, err = g.Leader(ctx); err != nil {
			return nil, err
		}
		if want = digest(lead); want == "" {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%s: leader r%d gave no digest: %w", g.Name(), lead+1, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	out := make([]string, g.setup.Replicas)
	for i := range out {
		if g.Proc(i) == nil {
			continue
		}
		// A follower applies the last entries when the leader's next
		// heartbeat carries their commit: wait for it, not forever.
		for out[i] = digest(i); out[i] != want && ctx.Err() == nil; out[i] = digest(i) {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	var differ []string
	for i, d := range out {
		if g.Proc(i) != nil && d != want {
			differ = append(differ, fmt.Sprintf("r%d", i+1))
		}
	}
	if len(differ) > 0 {
		return out, fmt.Errorf("%w: %s not the leader r%d's: %s", ErrDigestsDiffer, strings.Join(differ, ", "), lead+1, g.states(context.Background()))
	}
	return out, nil
}

// states sums up every replica's replication state, for a report.
func (g *GomuApp) states(ctx context.Context) string {
	var b []string
	for i := range g.setup.Replicas {
		f := g.info(ctx, i)
		if f == nil {
			b = append(b, fmt.Sprintf("r%d no answer", i+1))
			continue
		}
		b = append(b, fmt.Sprintf("r%d %s leader=%s commit=%s applied=%s catching_up=%s transfers=%s",
			i+1, f["gomu_role"], f["gomu_leader_id"], f["gomu_commit_index"], f["gomu_applied_index"], f["gomu_catching_up"], f["gomu_state_transfers"]))
	}
	return strings.Join(b, "; ")
}

func (g *GomuApp) Stop() error {
	var errs []error
	for i := range g.setup.Replicas {
		if p := g.Proc(i); p != nil {
			errs = append(errs, p.Kill(5*time.Second))
		}
	}
	if g.reg != nil {
		errs = append(errs, g.reg.Kill(5*time.Second))
	}
	return errors.Join(errs...)
}

// gomuRedis is redis-server-replicated's side of GomuApp: RESP, INFO
// replication, DEBUG DIGEST, lincheck.Redis.
type gomuRedis struct{}

func (gomuRedis) Name() string       { return "gomu" }
func (gomuRedis) DefaultBin() string { return "redis-server-replicated" }
func (gomuRedis) ClientPort() int    { return 6379 }

func (gomuRedis) ListenFlags(host, port string) []string {
	return []string{"--bind", host, "--port", port}
}

// askRESP sends one command to replica i and returns its raw reply.
func askRESP(ctx context.Context, g *GomuApp, i int, args ...string) ([]byte, error) {
	var bs [][]byte
	for _, a := range args {
		bs = append(bs, []byte(a))
	}
	return g.ask(ctx, i, resp.AppendCommand(nil, bs...), func(br *bufio.Reader) ([]byte, error) {
		return resp.ReadReply(br, nil, 1<<20)
	})
}

// status is replica i's INFO replication.
func (gomuRedis) Status(ctx context.Context, g *GomuApp, i int) map[string]string {
	raw, err := askRESP(ctx, g, i, "INFO", "replication")
	if err != nil || len(raw) == 0 || raw[0] != '$' {
		return nil
	}
	f := map[string]string{}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[k] = v
		}
	}
	return f
}

// digest is replica i's DEBUG DIGEST.
func (gomuRedis) Digest(ctx context.Context, g *GomuApp, i int) string {
	raw, err := askRESP(ctx, g, i, "DEBUG", "DIGEST")
	if err != nil || len(raw) == 0 || raw[0] != '$' {
		return ""
	}
	_, v, _ := strings.Cut(strings.TrimSpace(string(raw)), "\r\n")
	return v
}

func (gomuRedis) KV(g *GomuApp, c int) lincheck.Target {
	r := lincheck.Redis{Addrs: g.addrs, Names: g.names(), Timeout: g.setup.Timeout, ReadTimeout: g.setup.ReadTimeout, Dial: g.env.Dial}
	return r.NewTarget(c)
}

func (gomuRedis) Lease(g *GomuApp, c int) Leaser {
	return &redisLeaser{leaseConn{addrs: g.addrs, dial: g.env.Dial, at: c % len(g.addrs)}}
}

// redisLeaser takes leases with SET lease:<app> <holder> NX PX <ms> on
// the leader, following READONLY redirects within one Acquire. A request
// that got no reply ends the Acquire with an error: sent again, it could
// be refused by its own first attempt.
type redisLeaser struct{ leaseConn }

func (l *redisLeaser) Acquire(ctx context.Context, app, holder string, ttl time.Duration) (bool, error) {
	for {
		raw, err := l.roundTrip(ctx, "SET", "lease:"+app, holder, "NX", "PX", strconv.FormatInt(ttl.Milliseconds(), 10))
		if err != nil {
			return false, err
		}
		switch {
		case string(raw) == "+OK\r\n":
			return true, nil
		case raw[0] == '$' || raw[0] == '_': // nil: held by another
			return false, nil
		case raw[0] == '-':
			// A follower names the leader; TRYAGAIN and the like: no
			// leader yet, wait a little.
			msg := strings.TrimSpace(string(raw))
			if err := l.redirect(ctx, msg, strings.HasPrefix(msg, "-READONLY")); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("lease: unexpected reply %q", raw)
		}
	}
}

func (l *redisLeaser) roundTrip(ctx context.Context, args ...string) ([]byte, error) {
	var bs [][]byte
	for _, a := range args {
		bs = append(bs, []byte(a))
	}
	l.req = resp.AppendCommand(l.req[:0], bs...)
	return l.exchange(ctx, func(br *bufio.Reader) ([]byte, error) { return resp.ReadReply(br, nil, 1<<20) })
}

// leaseConn is a leaser's connection to one server of the cluster, moved
// to the leader a refusal names, or on to the next server.
type leaseConn struct {
	addrs []string
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	at    int // where the next request goes
	nc    net.Conn
	br    *bufio.Reader
	req   []byte
}

// exchange sends l.req to the current server and reads its reply with
// read. A failed dial moves on to the next server until ctx ends; a
// failed exchange drops the connection and returns the error (the request
// may have been carried out).
func (l *leaseConn) exchange(ctx context.Context, read func(*bufio.Reader) ([]byte, error)) ([]byte, error) {
	for l.nc == nil {
		nc, err := l.dial(ctx, "tcp", l.addrs[l.at])
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("lease: dial %s: %w", l.addrs[l.at], err)
			}
			l.at = (l.at + 1) % len(l.addrs)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		l.nc, l.br = nc, bufio.NewReader(nc)
	}
	dl, _ := ctx.Deadline()
	_ = l.nc.SetDeadline(dl)
	_, err := l.nc.Write(l.req)
	var raw []byte
	if err == nil {
		raw, err = read(l.br)
	}
	if err != nil {
		l.close()
		l.at = (l.at + 1) % len(l.addrs)
		return nil, fmt.Errorf("lease: %w", err)
	}
	return raw, nil
}

// redirect follows a refusal msg: to the leader it names (leaderhint's
// "addr="), else to the next server; unless named, it waits a little
// first (no leader yet).
func (l *leaseConn) redirect(ctx context.Context, msg string, named bool) error {
	l.close()
	if _, addr := leaderhint.Parse(msg); addr != "" && slices.Index(l.addrs, addr) >= 0 {
		l.at = slices.Index(l.addrs, addr)
	} else {
		l.at = (l.at + 1) % len(l.addrs)
	}
	if named {
		return nil
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("lease: %s: %w", msg, ctx.Err())
	case <-time.After(5 * time.Millisecond):
		return nil
	}
}

func (l *leaseConn) close() {
	if l.nc != nil {
		l.nc.Close()
		l.nc = nil
	}
}

func (l *leaseConn) Close() error { l.close(); return nil }

// asNobody makes memcached, which refuses to run as root, run as nobody.
// Locally the process starts as nobody, so that it keeps its parent-death
// signal (memcached's own -u would drop it: a daemon that changes its
// user loses it, and would outlive a killed runner). On the test bed ip
// must start as root to enter the namespace, so memcached's -u it is;
// Down kills what is left in the bed's namespaces.
func asNobody(env *Env, cmd *exec.Cmd) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if env.Networked() {
		cmd.Args = append(cmd.Args, "-u", "nobody")
		return nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return fmt.Errorf("registry: user nobody: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return nil
}

// waitTCP waits until addr accepts a connection from the client host, or
// p ends, or ctx does.
func waitTCP(ctx context.Context, env *Env, addr string, p *Proc) error {
	for {
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		nc, err := env.Dial(dctx, "tcp", addr)
		cancel()
		if err == nil {
			nc.Close()
			return nil
		}
		if done, perr := p.Exited(); done {
			return fmt.Errorf("%s exited before serving %s (%v):\n%s", p.Name, addr, perr, p.Tail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: nothing answers at %s: %w\n%s", p.Name, addr, ctx.Err(), p.Tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freePorts returns n TCP ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
