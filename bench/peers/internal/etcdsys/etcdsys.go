// Package etcdsys is etcd as a faults.System: a cluster of Debian's etcd
// server (3.4) started on the fault runner's hosts, driven through the v3
// Go client, so that gomu's key-value and lease workloads and its faults
// run against etcd side by side with gomu.
//
// Member i is named m<i> and serves clients on port 2379+10*i and peers
// on 2380+10*i of its host's address: on the local environment every host
// is 127.0.0.1, so the ports must differ, and one scheme serves both
// environments. The ports sit below Linux's ephemeral range (32768 up),
// so a killed member's port cannot be taken by an outgoing connection
// before it restarts.
package etcdsys

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/gomu-rdma/gomu/internal/faults"
	"github.com/gomu-rdma/gomu/internal/lincheck"
)

const (
	clientPort = 2379
	peerPort   = 2380
	portStride = 10

	defaultTimeout = 300 * time.Millisecond
	// startTimeout bounds Start's and Restart's wait for a member to
	// serve when the caller's context has no earlier deadline.
	startTimeout = 30 * time.Second
	killWait     = 5 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// Factory makes etcd clusters of Setup.Replicas members (3, 5, 7).
func Factory() faults.Factory {
	return faults.Factory{Name: "etcd", New: func(s faults.Setup) (faults.System, error) {
		if s.Replicas <= 0 {
			return nil, fmt.Errorf("etcd: %d members", s.Replicas)
		}
		if s.Bin == "" {
			s.Bin = "etcd"
		}
		bin, err := exec.LookPath(s.Bin)
		if err != nil {
			return nil, fmt.Errorf("etcd: server program: %w (is Debian's etcd-server installed?)", err)
		}
		s.Bin = bin
		if s.Timeout <= 0 {
			s.Timeout = defaultTimeout
		}
		if s.Log == nil {
			s.Log = func(string, ...any) {}
		}
		return &system{setup: s, procs: make([]*faults.Proc, s.Replicas), ids: map[uint64]int{}}, nil
	}}
}

type system struct {
	setup faults.Setup
	env   *faults.Env
	token string
	// clientURL and peerURL are member i's URLs.
	clientURL, peerURL []string
	// status holds one client per member, for Status and HashKV.
	status []*clientv3.Client

	mu    sync.Mutex
	procs []*faults.Proc
	ids   map[uint64]int // member ID → index, learnt from Status

	leaseTTLOnce sync.Once
}

func (s *system) Name() string { return "etcd" }

func memberName(i int) string { return fmt.Sprintf("m%d", i) }

func (s *system) Start(ctx context.Context, env *faults.Env) error {
	if len(env.Replicas) < s.setup.Replicas {
		return fmt.Errorf("etcd: %d members on %d replica hosts", s.setup.Replicas, len(env.Replicas))
	}
	s.env = env
	s.token = fmt.Sprintf("gomu-faults-%d-%d", os.Getpid(), time.Now().UnixNano())
	for i := range s.setup.Replicas {
		addr := env.Addr(env.Replicas[i])
		s.clientURL = append(s.clientURL, "http://"+net.JoinHostPort(addr, strconv.Itoa(clientPort+portStride*i)))
		s.peerURL = append(s.peerURL, "http://"+net.JoinHostPort(addr, strconv.Itoa(peerPort+portStride*i)))
	}
	for i := range s.setup.Replicas {
		c, err := s.newClient(s.clientURL[i])
		if err != nil {
			return err
		}
		s.status = append(s.status, c)
	}
	// All members first: none serves clients before the cluster has a
	// quorum to publish its attributes through.
	for i := range s.setup.Replicas {
		if err := s.spawn(i, "new"); err != nil {
			return err
		}
	}
	for i := range s.setup.Replicas {
		if err := s.waitServing(ctx, i); err != nil {
			return err
		}
	}
	s.setup.Log("etcd: %d members serving at %s", s.setup.Replicas, strings.Join(s.clientURL, " "))
	return nil
}

// spawn starts member i's process; state is "new" for a new cluster's
// first start, "existing" for a restart on its own data directory.
func (s *system) spawn(i int, state string) error {
	var cluster []string
	for j := range s.setup.Replicas {
		cluster = append(cluster, memberName(j)+"="+s.peerURL[j])
	}
	args := []string{
		"--name", memberName(i),
		"--data-dir", filepath.Join(s.setup.Dir, memberName(i)+".etcd"),
		"--listen-client-urls", s.clientURL[i],
		"--advertise-client-urls", s.clientURL[i],
		"--listen-peer-urls", s.peerURL[i],
		"--initial-advertise-peer-urls", s.peerURL[i],
		"--initial-cluster", strings.Join(cluster, ","),
		"--initial-cluster-state", state,
		"--initial-cluster-token", s.token,
		"--logger", "zap", "--log-outputs", "stderr",
	}
	if s.setup.Fast {
		// The defaults (100 ms heartbeat, 1 s election timeout) are
		// etcd's advice for networks with round trips of tens of
		// milliseconds. Here a round trip is tens of microseconds
		// (loopback, veth pairs), so the shortest timeouts etcd
		// accepts (an election timeout of at least five heartbeats)
		// are what compares with gomu's fast profile: a dead leader
		// is replaced within about 50–100 ms instead of 1–2 s.
		args = append(args, "--heartbeat-interval", "10", "--election-timeout", "50")
	}
	host := s.env.Replicas[i]
	cmd := s.env.Command(host, s.setup.Bin, args...)
	cmd.Dir = s.setup.Dir
	p, err := faults.StartProc(fmt.Sprintf("etcd member %s (%s)", memberName(i), host), cmd, s.setup.LogFile("etcd-"+memberName(i)))
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	s.mu.Lock()
	s.procs[i] = p
	s.mu.Unlock()
	return nil
}

// waitServing waits until member i answers Status, and learns its ID.
func (s *system) waitServing(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	p := s.Proc(i)
	if p == nil {
		return fmt.Errorf("etcd: member %s is down", memberName(i))
	}
	for {
		st, err := s.memberStatus(ctx, i)
		if err == nil {
			s.mu.Lock()
			s.ids[st.Header.MemberId] = i
			s.mu.Unlock()
			return nil
		}
		if done, perr := p.Exited(); done {
			return fmt.Errorf("etcd: %s exited before serving %s (%v):\n%s", p.Name, s.clientURL[i], perr, p.Tail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd: %s does not serve %s (last: %v): %w\n%s", p.Name, s.clientURL[i], err, ctx.Err(), p.Tail())
		case <-time.After(pollEvery):
		}
	}
}

// memberStatus asks member i for its status, within one request timeout.
func (s *system) memberStatus(ctx context.Context, i int) (*clientv3.StatusResponse, error) {
	// Questions about the cluster may wait longer than the workload's
	// requests (gomu's runner does the same): a loaded member answers
	// late, not never.
	ctx, cancel := context.WithTimeout(ctx, max(s.setup.Timeout, time.Second))
	defer cancel()
	return s.status[i].Status(ctx, s.clientURL[i])
}

// newClient is a v3 client of endpoints that dials from the client host,
// logs nothing, and reconnects quickly to a restarted member (gRPC's
// default back-off grows to minutes).
func (s *system) newClient(endpoints ...string) (*clientv3.Client, error) {
	env := s.env
	c, err := clientv3.New(clientv3.Config{
		Endpoints: endpoints,
		Logger:    zap.NewNop(),
		DialOptions: []grpc.DialOption{
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				return env.Dial(ctx, "tcp", addr)
			}),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: 2 * time.Second,
			}),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd: client of %s: %w", strings.Join(endpoints, ","), err)
	}
	return c, nil
}

func (s *system) Proc(i int) *faults.Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[i]
}

func (s *system) Kill(i int) error {
	p := s.Proc(i)
	if p == nil {
		return fmt.Errorf("etcd: member %s is down already", memberName(i))
	}
	err := p.Kill(killWait)
	s.mu.Lock()
	s.procs[i] = nil
	s.mu.Unlock()
	return err
}

func (s *system) Restart(ctx context.Context, i int) error {
	if s.Proc(i) != nil {
		return fmt.Errorf("etcd: member %s is running", memberName(i))
	}
	if err := s.spawn(i, "existing"); err != nil {
		return err
	}
	return s.waitServing(ctx, i)
}

// Pause and Resume: etcd has no pause of its own; the runner stops the
// process with SIGSTOP instead.
func (s *system) Pause(i int) error  { return faults.ErrUnsupported }
func (s *system) Resume(i int) error { return faults.ErrUnsupported }

// index is the member whose ID is id, -1 if unknown.
func (s *system) index(id uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.ids[id]; ok {
		return i
	}
	return -1
}

// where names the member that sent a response header.
func (s *system) where(id uint64) string {
	if i := s.index(id); i >= 0 {
		return memberName(i)
	}
	return fmt.Sprintf("%x", id)
}

func (s *system) Leader(ctx context.Context) (int, error) {
	var last []string
	for {
		last = last[:0]
		var leader uint64
		answered, agree, self := 0, true, false
		for i := range s.setup.Replicas {
			if s.Proc(i) == nil {
				last = append(last, memberName(i)+" down")
				continue
			}
			st, err := s.memberStatus(ctx, i)
			if err != nil {
				last = append(last, fmt.Sprintf("%s no answer (%v)", memberName(i), err))
				continue
			}
			answered++
			last = append(last, fmt.Sprintf("%s term=%d leader=%s", memberName(i), st.RaftTerm, s.leaderName(st.Leader)))
			switch {
			case st.Leader == 0 || leader != 0 && st.Leader != leader:
				agree = false
			case leader == 0:
				leader = st.Leader
			}
			if st.Leader != 0 && st.Header.MemberId == st.Leader {
				self = true
			}
		}
		if answered > 0 && agree && self {
			if i := s.index(leader); i >= 0 {
				return i, nil
			}
		}
		select {
		case <-ctx.Done():
			return -1, fmt.Errorf("etcd: no leader every answering member names (%s): %w", strings.Join(last, "; "), ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

func (s *system) leaderName(id uint64) string {
	if id == 0 {
		return "none"
	}
	return s.where(id)
}

func (s *system) KV(c int) lincheck.Target {
	rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(c)))
	t := &kvTarget{sys: s, route: lincheck.NewReadRouter(len(s.clientURL), 0, rng)}
	var err error
	if t.writes, err = s.newClient(s.clientURL...); err != nil {
		return errTarget{err}
	}
	for _, u := range s.clientURL {
		r, err := s.newClient(u)
		if err != nil {
			t.Close()
			return errTarget{err}
		}
		t.reads = append(t.reads, r)
	}
	return t
}

func (s *system) Lease(c int) faults.Leaser {
	cli, err := s.newClient(s.clientURL...)
	if err != nil {
		return errLeaser{err}
	}
	return &leaser{sys: s, cli: cli}
}

func (s *system) Digests(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	lead, err := s.Leader(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.memberStatus(ctx, lead)
	if err != nil {
		return nil, fmt.Errorf("etcd: leader %s: %w", memberName(lead), err)
	}
	// Every member's store is hashed at the leader's revision now: a
	// revision's hash does not change with later writes (an expiring
	// lease's delete, say), so lagging members only need to reach it.
	rev := st.Header.Revision
	out := make([]string, s.setup.Replicas)
	for i := range out {
		if s.Proc(i) == nil {
			continue
		}
		var at string
		for {
			st, err := s.memberStatus(ctx, i)
			if err == nil && st.Header.Revision >= rev {
				break
			}
			if err != nil {
				at = err.Error()
			} else {
				at = fmt.Sprintf("at revision %d", st.Header.Revision)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("etcd: %s never reached the leader's revision %d (%s): %w", memberName(i), rev, at, ctx.Err())
			case <-time.After(pollEvery):
			}
		}
		hctx, cancel := context.WithTimeout(ctx, 5*s.setup.Timeout)
		h, err := s.status[i].HashKV(hctx, s.clientURL[i], rev)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("etcd: %s: hash at revision %d: %w", memberName(i), rev, err)
		}
		out[i] = fmt.Sprintf("%08x", h.Hash)
	}
	return out, nil
}

func (s *system) Stop() error {
	var errs []error
	for i := range s.setup.Replicas {
		if s.Proc(i) != nil {
			errs = append(errs, s.Kill(i))
		}
	}
	for _, c := range s.status {
		c.Close()
	}
	s.status = nil
	return errors.Join(errs...)
}

// kvTarget is one client of the key-value workload: a client of every
// member for writes (etcd forwards them to the leader), and one client per
// member for linearizable reads, served by a member chosen at random.
type kvTarget struct {
	sys    *system
	writes *clientv3.Client
	reads  []*clientv3.Client

	backoff, wait time.Duration
	// route picks each read's member with gomu's clients' rule (shun a
	// member that failed a read or answered far slower than reads lately),
	// so that both stores are judged with one client policy.
	route *lincheck.ReadRouter
}

// Back-off after a failed attempt, doubled on each failure in a row.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = 100 * time.Millisecond
)

func (t *kvTarget) Prepare(ctx context.Context, in lincheck.Input) error {
	if t.wait <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(t.wait)
	defer tm.Stop()
	t.wait = 0
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

func (t *kvTarget) Do(in lincheck.Input) lincheck.Reply {
	ctx, cancel := context.WithTimeout(context.Background(), t.sys.setup.Timeout)
	defer cancel()
	var rep lincheck.Reply
	switch in.Kind {
	case lincheck.Get:
		rep = t.get(ctx, in.Key)
	case lincheck.Set:
		rep = t.set(ctx, in.Key, in.Arg)
	case lincheck.Incr, lincheck.Append:
		rep = t.readModifyWrite(ctx, in)
	default:
		rep = lincheck.Reply{Outcome: lincheck.Refused, Err: fmt.Errorf("etcd: no such operation %v", in.Kind)}
	}
	if rep.Outcome == lincheck.Done {
		t.backoff = 0
	} else {
		t.backoff = min(max(2*t.backoff, minBackoff), maxBackoff)
		t.wait = t.backoff
	}
	return rep
}

// anyMember names a write whose reply did not say who served it.
const anyMember = "any"

func unknown(where string) lincheck.Reply {
	return lincheck.Reply{Outcome: lincheck.Unknown, Where: where}
}

func (t *kvTarget) get(ctx context.Context, key string) lincheck.Reply {
	i := t.route.Pick()
	where := memberName(i)
	if rt := t.sys.setup.ReadTimeout; rt > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt)
		defer cancel()
	}
	start := time.Now()
	r, err := t.reads[i].Get(ctx, key) // linearizable: etcd's default
	if err != nil {
		t.route.Failed(i)
		return unknown(where)
	}
	t.route.Answered(i, time.Since(start))
	if len(r.Kvs) == 0 {
		return lincheck.Reply{Outcome: lincheck.Done, Output: lincheck.Output{Nil: true}, Where: where}
	}
	return lincheck.Reply{Outcome: lincheck.Done, Output: lincheck.Output{Value: string(r.Kvs[0].Value)}, Where: where}
}

func (t *kvTarget) set(ctx context.Context, key, value string) lincheck.Reply {
	r, err := t.writes.Put(ctx, key, value)
	if err != nil {
		return unknown(anyMember)
	}
	return lincheck.Reply{Outcome: lincheck.Done, Where: t.sys.where(r.Header.MemberId)}
}

// readModifyWrite does INCR or APPEND as a compare-and-swap: read the key,
// then put the new value if the key's revision is still the one read, and
// read it again in the same transaction if not, until the put succeeds
// or the request timeout ends the attempt. Only the transaction that
// succeeds changes anything, within Do's interval; a failed request of
// any kind ends the attempt as Unknown, so no put is ever sent twice.
func (t *kvTarget) readModifyWrite(ctx context.Context, in lincheck.Input) lincheck.Reply {
	g, err := t.writes.Get(ctx, in.Key)
	if err != nil {
		return unknown(anyMember)
	}
	kvs, where := g.Kvs, t.sys.where(g.Header.MemberId)
	for {
		cur, cond := "", clientv3.Compare(clientv3.CreateRevision(in.Key), "=", 0)
		if len(kvs) > 0 {
			cur, cond = string(kvs[0].Value), clientv3.Compare(clientv3.ModRevision(in.Key), "=", kvs[0].ModRevision)
		}
		var next string
		var out lincheck.Output
		if in.Kind == lincheck.Incr {
			if len(kvs) == 0 {
				cur = "0"
			}
			n, ok := parseInt(cur)
			if !ok || n == math.MaxInt64 {
				// Redis's answer, decided on a linearizable read.
				return lincheck.Reply{Outcome: lincheck.Done, Output: lincheck.Output{NotInt: true}, Where: where}
			}
			next, out.N = strconv.FormatInt(n+1, 10), n+1
		} else {
			next = cur + in.Arg
			out.N = int64(len(next))
		}
		r, err := t.writes.Txn(ctx).If(cond).Then(clientv3.OpPut(in.Key, next)).Else(clientv3.OpGet(in.Key)).Commit()
		if err != nil {
			return unknown(where)
		}
		where = t.sys.where(r.Header.MemberId)
		if r.Succeeded {
			return lincheck.Reply{Outcome: lincheck.Done, Output: out, Where: where}
		}
		rr := r.Responses[0].GetResponseRange()
		if rr == nil {
			return lincheck.Reply{Outcome: lincheck.Unknown, Where: where, Err: fmt.Errorf("etcd: transaction's else branch answered %v", r.Responses[0])}
		}
		kvs = rr.Kvs
	}
}

// parseInt parses s as Redis's string2ll does, the rule INCR applies (and
// lincheck's model): an optional '-', then decimal digits with no leading
// zero (bare "0" aside), nothing else, within int64.
func parseInt(s string) (int64, bool) {
	if s == "0" {
		return 0, true
	}
	d := strings.TrimPrefix(s, "-")
	if len(s) > 20 || d == "" || d[0] < '1' || d[0] > '9' {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func (t *kvTarget) Close() error {
	if t.writes != nil {
		t.writes.Close()
	}
	for _, r := range t.reads {
		r.Close()
	}
	return nil
}

// errTarget answers every attempt with the error that kept it from being
// made.
type errTarget struct{ err error }

func (e errTarget) Prepare(context.Context, lincheck.Input) error { return nil }
func (e errTarget) Do(lincheck.Input) lincheck.Reply {
	return lincheck.Reply{Outcome: lincheck.Refused, Err: e.err}
}
func (e errTarget) Close() error { return nil }

// leaser takes the lease on app by granting an etcd lease of ttl (whole
// seconds, at least 1) and attaching the key lease/<app>, holder's name
// its value, to it if the key does not exist; etcd deletes the key when
// the lease expires.
//
// etcd raises a TTL below its minimum, 1.5 election timeouts rounded up
// to whole seconds (2 s on the default settings, 1 s with Setup.Fast), and
// its leader checks for expired leases every 500 ms, so a lease may last
// up to about half a second longer than granted; a new leader also
// renews every lease it takes over. A lease lasts longer than asked, never
// shorter.
type leaser struct {
	sys *system
	cli *clientv3.Client
}

func (l *leaser) Acquire(ctx context.Context, app, holder string, ttl time.Duration) (bool, error) {
	secs := max(int64(math.Ceil(ttl.Seconds())), 1)
	gctx, cancel := context.WithTimeout(ctx, l.sys.setup.Timeout)
	g, err := l.cli.Grant(gctx, secs)
	cancel()
	if err != nil {
		return false, fmt.Errorf("etcd: lease grant: %w", err)
	}
	if g.TTL != secs {
		l.sys.leaseTTLOnce.Do(func() {
			l.sys.setup.Log("etcd: asked for a %d s lease, granted %d s (etcd's minimum TTL)", secs, g.TTL)
		})
	}
	key := "lease/" + app
	tctx, cancel := context.WithTimeout(ctx, l.sys.setup.Timeout)
	r, err := l.cli.Txn(tctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, holder, clientv3.WithLease(g.ID))).
		Commit()
	cancel()
	if err != nil {
		// The key may be attached to the lease: leave it to expire.
		return false, fmt.Errorf("etcd: lease %s: %w", key, err)
	}
	if !r.Succeeded {
		// Revoke the unused lease so that refusals do not pile leases
		// up until their TTLs end.
		go func(id clientv3.LeaseID) {
			rctx, cancel := context.WithTimeout(context.Background(), 5*l.sys.setup.Timeout)
			defer cancel()
			_, _ = l.cli.Revoke(rctx, id)
		}(g.ID)
	}
	return r.Succeeded, nil
}

func (l *leaser) Close() error { return l.cli.Close() }

type errLeaser struct{ err error }

func (e errLeaser) Acquire(context.Context, string, string, time.Duration) (bool, error) {
	return false, e.err
}
func (e errLeaser) Close() error { return nil }
