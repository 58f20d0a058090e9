package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/deadline"
	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/replicalink"
	"github.com/gomu-rdma/gomu/verbsrpc"
)

// Config configures a Server.
type Config struct {
	// Machine is the exchange; Replica (set later with SetReplica)
	// replicates it, or nil for a standalone exchange, the baseline.
	Machine *Machine
	// RPC is where traders reach the server. Its Name defaults to
	// "orderbook".
	RPC verbsrpc.Config
	// Timeout bounds each proposal and read barrier (default 5 s).
	Timeout time.Duration
	// MaxProposal bounds one proposal in bytes (default 256 KiB): a sweep
	// that found more requests proposes them in several.
	MaxProposal int
	// Replication, if set, records the ns each proposal took.
	Replication *latency.Recorder
	// StaleFollowerReads serves depth and trader reads on a follower from
	// its state as the leader last told it, without a read index.
	StaleFollowerReads bool
	Logger             *slog.Logger
	// Owned are closed by Close once the server has stopped (the RPC
	// device and registry, when the server is all that uses them).
	Owned []io.Closer
	// Stats, if set, is where the server answers "stats gomu" and "stats
	// gomu digest" over TCP (see stats.go) once New succeeds; Close
	// closes it.
	Stats net.Listener
}

// Server serves traders over verbsrpc: order entry goes through the log
// on the leader (in one proposal per sweep of the request rings), reads
// are served on any replica behind a read barrier.
type Server struct {
	cfg     Config
	m       *Machine
	rpc     *verbsrpc.Server
	link    replicalink.Link
	serving atomic.Bool
	stop    chan struct{}
	once    sync.Once

	// The poller's own (handle runs on the verbsrpc poll goroutine).
	ctx    *deadline.Context
	req    wire.Request
	writes []write
	prop   []byte
	out    []byte

	reads    chan *verbsrpc.Request
	readDone chan struct{}

	// The stats port's: its open connections (nil once closed), their
	// handlers, and the accept loop's end.
	statsMu    sync.Mutex
	statsConns map[net.Conn]struct{}
	statsWG    sync.WaitGroup
	statsDone  chan struct{}
}

// New starts listening for traders; requests are answered "unavailable"
// until Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Machine == nil {
		return nil, errors.New("exchange: no machine")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxProposal <= 0 {
		cfg.MaxProposal = 256 << 10
	}
	if cfg.MaxProposal < propHeader+wire.RequestSize {
		return nil, fmt.Errorf("exchange: proposals of %d bytes cannot hold a request", cfg.MaxProposal)
	}
	if cfg.RPC.Name == "" {
		cfg.RPC.Name = "orderbook"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, m: cfg.Machine, stop: make(chan struct{}), ctx: deadline.New(),
		link:  replicalink.Link{Timeout: cfg.Timeout, Replication: cfg.Replication},
		reads: make(chan *verbsrpc.Request, 1024), readDone: make(chan struct{}),
		prop: make([]byte, 0, cfg.MaxProposal), out: make([]byte, 0, 4096)}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	rpc, err := verbsrpc.Listen(ctx, cfg.RPC, s.handle)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("exchange: %w", err)
	}
	s.rpc = rpc
	go s.serveReads()
	if cfg.Stats != nil {
		s.statsConns, s.statsDone = map[net.Conn]struct{}{}, make(chan struct{})
		go s.serveStats(cfg.Stats)
	}
	return s, nil
}

// Addr names where traders reach the server: the verbs transport and
// the registry name they dial.
func (s *Server) Addr() string {
	return fmt.Sprintf("%s:%s/rpc/%s", s.cfg.RPC.Device.Provider(), s.cfg.RPC.Device.Name(), s.cfg.RPC.Name)
}

// SetReplica attaches the replica, before Serve.
func (s *Server) SetReplica(r *consensus.Replica) { s.link.Replica = r }

// Serve answers requests until Close.
func (s *Server) Serve() error {
	s.serving.Store(true)
	if s.link.Replica == nil {
		<-s.stop
		return nil
	}
	// Only the leader's poller waits as RPC.Poll says; a follower's,
	// which only redirects and serves the odd read, sleeps between
	// sweeps. On a small machine (and a VM whose CPU quota freezes it
	// when its cores stay busy) four polling threads for one trader cost
	// more than the follower's slower redirect.
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	leading := true
	for {
		if l := s.link.Leads(); l != leading {
			leading = l
			mode := s.cfg.RPC.Poll
			if !l {
				mode = poll.Sleep
			}
			s.rpc.SetPoll(mode)
		}
		select {
		case <-s.stop:
			return nil
		case <-t.C:
		}
	}
}

// Close stops serving traders. In-flight proposals finish first.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.serving.Store(false)
		close(s.stop)
		err = errors.Join(s.rpc.Close(), s.closeStats())
		close(s.reads)
		<-s.readDone
		for _, c := range s.cfg.Owned {
			err = errors.Join(err, c.Close())
		}
	})
	return err
}

// Dump writes the replication latencies (see replicaproc).
func (s *Server) Dump(path string) (int64, string, error) { return s.link.Dump(path) }

// reply answers r with res, logging a connection that broke.
func (s *Server) reply(r *verbsrpc.Request, out []byte) {
	if err := r.Reply(out); err != nil {
		s.cfg.Logger.Debug("exchange: reply", "conn", r.Conn(), "err", err)
	}
}

func (s *Server) replyStatus(r *verbsrpc.Request, out *[]byte, res wire.Result, text string) {
	*out = res.Append((*out)[:0], text)
	s.reply(r, *out)
}

// handle runs on the verbsrpc poll goroutine with one sweep's requests.
func (s *Server) handle(batch []*verbsrpc.Request) {
	if !s.serving.Load() {
		for _, r := range batch {
			s.replyStatus(r, &s.out, wire.Result{Status: wire.StatusUnavailable}, "exchange: starting or stopping")
		}
		return
	}
	s.writes = s.writes[:0]
	for _, r := range batch {
		if err := s.req.Decode(r.Payload()); err != nil {
			s.replyStatus(r, &s.out, wire.Result{Status: wire.StatusBadRequest}, err.Error())
			continue
		}
		if !s.req.Op.IsWrite() {
			select {
			case s.reads <- r:
			default:
				s.replyStatus(r, &s.out, wire.Result{Status: wire.StatusUnavailable, Op: s.req.Op}, "exchange: too many reads waiting")
			}
			continue
		}
		s.writes = append(s.writes, write{r: r, op: s.req.Op, trader: s.req.Trader, clOrd: s.req.ClOrd})
	}
	per := (s.cfg.MaxProposal - propHeader) / wire.RequestSize
	for i := 0; i < len(s.writes); i += per {
		s.write(s.writes[i:min(i+per, len(s.writes))])
	}
}

// write is an order-entry request of a sweep, with what its answer needs
// from it, decoded once.
type write struct {
	r             *verbsrpc.Request
	op            wire.Op
	trader, clOrd uint64
}

// write proposes one batch of order-entry requests and answers each.
func (s *Server) write(reqs []write) {
	// A paused replica answers nothing, as a hung process would.
	s.link.AwaitResumed(s.stop)
	if !s.link.Leads() {
		id, _ := s.link.LeaderAddr()
		for _, w := range reqs {
			s.replyStatus(w.r, &s.out, wire.Result{Status: wire.StatusNotLeader, Op: w.op, Leader: uint32(id), ClOrd: w.clOrd}, "")
		}
		return
	}
	s.prop = AppendProposal(s.prop[:0], len(reqs))
	for _, w := range reqs {
		s.prop = append(s.prop, w.r.Payload()[:wire.RequestSize]...)
	}
	var err error
	if s.link.Replica == nil {
		s.m.Apply(0, s.prop)
	} else {
		_, err = s.link.Propose(s.ctx, s.prop)
	}
	for _, w := range reqs {
		res, ok := s.m.Result(w.trader, w.clOrd)
		if err != nil || !ok {
			// Not known to be applied: the trader resends, at most once
			// applied either way.
			id, _ := s.link.LeaderAddr()
			text := "exchange: not applied here"
			if err != nil {
				text = err.Error()
			}
			s.replyStatus(w.r, &s.out, wire.Result{Status: wire.StatusRetry, Op: w.op, Leader: uint32(id), ClOrd: w.clOrd}, text)
			continue
		}
		res.Op = w.op
		s.out = res.Append(s.out[:0], "")
		s.reply(w.r, s.out)
	}
}

// serveReads answers depth and trader reads, each behind a read barrier,
// on a goroutine of its own so that a barrier waiting for a leader never
// holds up order entry.
func (s *Server) serveReads() {
	defer close(s.readDone)
	ctx := deadline.New()
	var req wire.Request
	var depth wire.Depth
	out := make([]byte, 0, 4096)
	for r := range s.reads {
		if err := req.Decode(r.Payload()); err != nil {
			continue // decoded once already
		}
		s.link.AwaitResumed(s.stop)
		if rep := s.link.Replica; rep != nil {
			ctx.Arm(s.cfg.Timeout)
			err := rep.ServeReadBarrier(ctx, s.cfg.StaleFollowerReads)
			ctx.Disarm()
			if err != nil {
				id, _ := s.link.LeaderAddr()
				s.replyStatus(r, &out, wire.Result{Status: wire.StatusUnavailable, Op: req.Op, Leader: uint32(id)}, "exchange: read: "+err.Error())
				continue
			}
		}
		switch req.Op {
		case wire.OpDepth:
			s.m.Depth(req.Sym(), &depth)
			out = wire.AppendDepth(out[:0], &depth)
		case wire.OpTrader:
			t := s.m.Trader(req.Trader)
			out = wire.AppendTrader(out[:0], &t)
		}
		s.reply(r, out)
	}
}
