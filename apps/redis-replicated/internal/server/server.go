package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/leaderhint"
	"github.com/gomu-rdma/gomu/internal/replicalink"
)

// Config configures a server.
type Config struct {
	// Addr is the address to listen on (host:port; port 0 picks one).
	Addr string
	// Machine is the keyspace; Replica replicates it (nil: standalone,
	// writes apply directly, the baseline).
	Machine *Machine
	Replica *consensus.Replica
	// MaxProposal bounds one proposal in bytes: the engine's MaxBatch less
	// its per-command framing (default 1 MiB - 64).
	MaxProposal int
	// Timeout bounds each proposal and read barrier (default 5 s), and
	// writing a reply to a client that does not read (6 times that).
	Timeout time.Duration
	// ExpirePeriod is how often the leader proposes an expiry sweep when
	// keys have a TTL (default 100 ms).
	ExpirePeriod time.Duration
	// Replication, if set, records the ns each proposal took to replicate.
	Replication *latency.Recorder
	// StaleFollowerReads serves reads on a follower from its state as the
	// leader last told it, without asking the leader (consensus
	// StaleReadBarrier): cheaper, as Redis's replicas are, but a read may
	// miss writes already acknowledged. Off by default: follower reads are
	// linearizable (consensus ReadBarrier). Reads on the leader always are.
	StaleFollowerReads bool
	// Logger receives connection errors (default: discards).
	Logger *slog.Logger
}

// Server is a running RESP server.
type Server struct {
	cfg   Config
	ln    net.Listener
	start time.Time

	// acl is this replica's ACL LOG (acl.go).
	acl aclLog

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	nextID int64
	wg     sync.WaitGroup
	stop   chan struct{}
	total  int64 // connections accepted
	// link is the server's side of its replica (nil Replica: standalone);
	// it counts proposals for INFO.
	link replicalink.Link
	// nonce starts the ids of the waiters this process's connections
	// block (blocking.go); blockedClients counts those blocked now.
	nonce          [8]byte
	blockedClients atomic.Int64
	// beforeBlock, set by tests only, runs on a connection's goroutine
	// just before it proposes a blocking command: to make its entry reach
	// the log after a later one's.
	beforeBlock atomic.Pointer[func()]
	// applyReplica is link.Replica for what runs in Apply, on the
	// replica's own goroutine, which may apply before SetReplica.
	applyReplica atomic.Pointer[consensus.Replica]
	// order is the client sockets' epoll set and orderUntil the end of
	// the window in which writes wait for earlier arrivals (Unix ns);
	// fenceWaits, set by tests only, runs each time a fence waits
	// (ordering.go).
	order      orderSet
	orderUntil atomic.Int64
	fenceWaits atomic.Pointer[func()]
	// noActiveExpire stops the expiry sweeps (DEBUG SET-ACTIVE-EXPIRE 0).
	noActiveExpire atomic.Bool
	// maxMemory is CONFIG SET maxmemory's limit (maxmemory.go); 0: none.
	maxMemory atomic.Int64
	// evict is the leader's eviction under maxmemory (maxmemory.go).
	evict evictState
	// replPingPeriod is repl-ping-replica-period, in seconds (sync.go).
	replPingPeriod atomic.Int64
	// minReplicas, minReplicasLag: min-replicas-to-write and
	// min-replicas-max-lag (minreplicas.go).
	minReplicas, minReplicasLag atomic.Int64
	// stats are INFO commandstats' counters by slot, errs errorstats'
	// (stats.go).
	stats []callStats
	errs  errorStats
	// latencyTracking and latencyPercentiles are CONFIG's
	// latency-tracking and latency-tracking-info-percentiles.
	latencyTracking    atomic.Bool
	latencyPercentiles atomic.Pointer[[]float64]
	// migrations caches MIGRATE's target connections (migrate.go).
	migrations migrateCache
	// repl is REPLICAOF's settings and link state (replicaof.go).
	repl replState
}

// New listens on cfg.Addr.
func New(cfg Config) (*Server, error) {
	if cfg.Machine == nil {
		return nil, errors.New("server: no machine")
	}
	if cfg.MaxProposal == 0 {
		cfg.MaxProposal = 1<<20 - 64
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ExpirePeriod == 0 {
		cfg.ExpirePeriod = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ln, err := arrivalListen(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	s := &Server{cfg: cfg, ln: ln, start: time.Now(), conns: map[*conn]struct{}{}, stop: make(chan struct{}),
		link: replicalink.Link{Replica: cfg.Replica, Timeout: cfg.Timeout, Replication: cfg.Replication}, nonce: newNonce(),
		order: newOrderSet()}
	s.replPingPeriod.Store(10) // Redis's default
	s.evict.samples.Store(5)   // Redis's maxmemory-samples
	s.minReplicasLag.Store(10) // Redis's default
	statSlotsOnce.Do(numberStatSlots)
	s.stats = make([]callStats, len(statNames))
	cfg.Machine.countScriptCallsWith(s.countAppliedScriptCalls)
	s.latencyTracking.Store(true)
	s.latencyPercentiles.Store(&defaultLatencyPercentiles)
	s.repl.init()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve accepts clients until Close; it returns nil after Close.
func (s *Server) Serve() error {
	s.wg.Add(2)
	go s.expireLoop()
	go s.replicaManager() // REPLICAOF's link (replink.go)
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.total++
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	err := s.ln.Close()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.migrations.close() // a MIGRATE waiting on its target ends now
	s.wg.Wait()
	s.order.close()
	return err
}

// expireLoop proposes an expiry sweep, every ExpirePeriod while this replica
// leads and some key's TTL is due, so expired keys are deleted on every
// replica at the leader's time even if nobody touches them. A standalone
// server sweeps too, applying the sweep directly, as Redis's active expiry
// does; DEBUG SET-ACTIVE-EXPIRE 0 stops the sweeps.
func (s *Server) expireLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.ExpirePeriod)
	defer t.Stop()
	var p proposal
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		r := s.link.Replica
		if s.noActiveExpire.Load() || r != nil && (r.Role() != consensus.Leader || r.Paused()) {
			continue
		}
		s.unblockOrphans()
		var next int64
		s.cfg.Machine.read(func(st *store.Store) { next = st.NextExpiry() })
		now := time.Now().UnixMilli()
		if next == 0 || next >= now {
			continue // nothing due (a key expires strictly after its time): no proposal
		}
		p.reset(propBatch)
		p.add([][]byte{[]byte(store.ExpireCommand), []byte(strconv.Itoa(expireBatch))})
		if r == nil {
			s.cfg.Machine.Apply(0, p.seal(now, rand.Uint64()))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		_, err := r.Propose(ctx, p.seal(now, rand.Uint64()))
		cancel()
		if err != nil {
			p.buf = nil // the engine may still read it (see flushWrites)
			s.cfg.Logger.Debug("expiry sweep not replicated", "err", err)
		}
	}
}

// expireBatch bounds the keys one sweep deletes, so that a sweep never
// holds the machine's lock for long.
const expireBatch = 200

// readOnlyError is the error a write gets on a replica that does not lead:
// READONLY naming the leader, or TRYAGAIN while no live leader is known (an
// election runs). The leader named is never this replica, and one the
// engine sees alive (consensus Replica.Leader).
func (s *Server) readOnlyError() string {
	id, addr := s.link.LeaderAddr()
	if id == 0 || id == s.link.Replica.ID() {
		// Leading but not writing (paused, or stepping down): no
		// redirect to ourselves.
		return noLeaderError
	}
	return "READONLY You can't write against a read only replica. " + leaderhint.Format(id, addr)
}

// noLeaderError answers what needs a leader while none is known.
const noLeaderError = "TRYAGAIN gomu: no leader (election in progress)"

// followerReads names the follower-read mode, for INFO.
func (s *Server) followerReads() string {
	if s.cfg.StaleFollowerReads {
		return "stale"
	}
	return "linearizable"
}

// SetReplica attaches the replica that replicates the machine. It must be
// called before Serve: a server listens before its replica starts, so that
// the address the replica publishes is the one it serves.
func (s *Server) SetReplica(r *consensus.Replica) {
	s.link.Replica = r
	s.applyReplica.Store(r)
}

// Dump writes the replication latencies recorded so far to path, one ns
// value per proposal, and returns their count and percentile summary.
func (s *Server) Dump(path string) (int64, string, error) { return s.link.Dump(path) }
