package server

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/leaderhint"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/replicalink"
)

// Config configures a server. Zero fields take the defaults.
type Config struct {
	// Addr is the address to listen on (host:port; port 0 picks one).
	Addr string
	// Machine is the item store; Replica replicates it (nil: standalone,
	// writes apply directly, the baseline).
	Machine *Machine
	Replica *consensus.Replica
	// Limits bound each command: MaxValueLen is memcached's -I (default
	// 1 MiB). A value must also fit in one proposal (MaxProposal).
	Limits memcache.Limits
	// MaxProposal bounds one proposal in bytes: the engine's MaxBatch less
	// its per-command framing (default 2 MiB - 64).
	MaxProposal int
	// MaxConns bounds open connections, memcached's -c (default 1024): one
	// more is answered "ERROR Too many open connections" and closed. It
	// must not exceed the machine's reply slots.
	MaxConns int
	// Timeout bounds each proposal and read barrier (default 5 s), and
	// writing replies to a client that does not read them (6 times that).
	Timeout time.Duration
	// IdleTimeout closes a connection silent between commands for this
	// long (default 0: never, as memcached without idle_timeout).
	IdleTimeout time.Duration
	// Version is the text of the VERSION reply.
	Version string
	// Settings are extra "stats settings" lines (name, value pairs), the
	// command line's view (tcpport, item_size_max, ...).
	Settings []string
	// Replication, if set, records the ns each proposal took to replicate.
	Replication *latency.Recorder
	// StaleFollowerReads serves reads on a follower from its state as the
	// leader last told it (consensus StaleReadBarrier) instead of through
	// a read index: cheaper, may miss acknowledged writes.
	StaleFollowerReads bool
	// Logger receives connection errors (default: discards).
	Logger *slog.Logger
}

// DefaultVersion is the VERSION reply: the memcached release whose
// replies this server follows, marked as gomu's.
const DefaultVersion = "1.6.18-gomu"

// Server is a running memcached-protocol server.
type Server struct {
	cfg   Config
	ln    net.Listener
	start time.Time

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}
	// link is the server's side of its replica (nil Replica: standalone).
	link replicalink.Link

	total, rejected, tooLarge atomic.Uint64
	bytesRead, bytesWritten   atomic.Uint64
}

// New listens on cfg.Addr.
func New(cfg Config) (*Server, error) {
	if cfg.Machine == nil {
		return nil, errors.New("server: no machine")
	}
	if cfg.MaxProposal == 0 {
		cfg.MaxProposal = 2<<20 - 64
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1024
	}
	if cfg.MaxConns > len(cfg.Machine.slots) {
		return nil, fmt.Errorf("server: %d connections but the machine has %d reply slots", cfg.MaxConns, len(cfg.Machine.slots))
	}
	if cfg.Limits.MaxValueLen <= 0 {
		cfg.Limits.MaxValueLen = memcache.DefaultMaxValueLen
	}
	if cfg.Limits.MaxLineLen <= 0 {
		cfg.Limits.MaxLineLen = memcache.DefaultMaxLineLen
	}
	if cfg.Limits.MaxValueLen+cfg.Limits.MaxLineLen+64 > cfg.MaxProposal {
		return nil, fmt.Errorf("server: items of %d bytes do not fit in a proposal of %d", cfg.Limits.MaxValueLen, cfg.MaxProposal)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: listen: %w", err)
	}
	return &Server{cfg: cfg, ln: ln, start: time.Now(), conns: map[*conn]struct{}{}, stop: make(chan struct{}),
		link: replicalink.Link{Replica: cfg.Replica, Timeout: cfg.Timeout, Replication: cfg.Replication}}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetReplica attaches the replica that replicates the machine. It must be
// called before Serve: a server listens before its replica starts, so that
// the address the replica publishes is the one it serves.
func (s *Server) SetReplica(r *consensus.Replica) { s.link.Replica = r }

var tooManyConns = []byte("ERROR Too many open connections\r\n")

// Serve accepts clients until Close; it returns nil after Close.
func (s *Server) Serve() error {
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors: wait for connections to end.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("server: accept: %w", err)
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		slot, ok := -1, len(s.conns) < s.cfg.MaxConns
		if ok && s.link.Replica != nil {
			slot, ok = s.cfg.Machine.takeSlot()
		}
		if !ok {
			s.mu.Unlock()
			s.rejected.Add(1)
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write(tooManyConns)
			nc.Close()
			continue
		}
		c := s.newConn(nc, slot)
		s.conns[c] = struct{}{}
		s.total.Add(1)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			if slot >= 0 {
				s.cfg.Machine.releaseSlot(slot)
			}
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
	s.wg.Wait()
	return err
}

// The errors of gomu's own, after "SERVER_ERROR " (text) or as the body of
// a Temporary failure (binary). Every one starts "gomu: " so that clients
// tell them from the store's errors: the command was not carried out (or,
// after a timeout, may have been) and may be sent again, to the leader
// named if one is.
const (
	errNoLeader     = "gomu: no leader (election in progress)"
	errShuttingDown = "gomu: this replica is shutting down"
	errPaused       = "gomu: this replica is paused"
	errTimedOut     = "gomu: replication timed out"
	errBusy         = "gomu: too many concurrent proposals"
	errReadMoved    = "gomu: leadership changed during the read"
)

// notLeaderError is what a write gets on a replica that does not lead:
// the live leader named, or errNoLeader while none is known. The leader
// named is never this replica.
func (s *Server) notLeaderError() string {
	id, addr := s.link.LeaderAddr()
	if id == 0 || id == s.link.Replica.ID() {
		return errNoLeader
	}
	return "gomu: not the leader " + leaderhint.Format(id, addr)
}

// replicationError words an engine error.
func (s *Server) replicationError(err error) string {
	var nl consensus.ErrNotLeader
	switch {
	case errors.As(err, &nl) && nl.Leader == 0:
		return errNoLeader
	case errors.As(err, &nl):
		return s.notLeaderError()
	case errors.Is(err, consensus.ErrClosed):
		return errShuttingDown
	case errors.Is(err, consensus.ErrPaused):
		return errPaused
	case errors.Is(err, consensus.ErrCatchingUp):
		id, addr := s.link.LeaderAddr()
		return "gomu: this replica is catching up. " + leaderhint.Format(id, addr)
	case errors.Is(err, consensus.ErrBusy):
		return errBusy
	case errors.Is(err, consensus.ErrTooLarge):
		return "object too large for cache"
	case errors.Is(err, context.DeadlineExceeded):
		return errTimedOut
	default:
		return "gomu: " + err.Error()
	}
}

// Dump writes the replication latencies recorded so far to path, one ns
// value per proposal, and returns their count and percentile summary.
func (s *Server) Dump(path string) (int64, string, error) { return s.link.Dump(path) }

// appendStats answers "stats [group]" as memcached does, plus gomu's own
// group.
func (s *Server) appendStats(out []byte, cmd *memcache.Command) []byte {
	var group string
	if cmd.Proto == memcache.ProtoBinary || len(cmd.Keys) > 0 {
		group = string(cmd.Key())
		if cmd.Proto == memcache.ProtoText && len(cmd.Keys) > 1 {
			group += " " + string(cmd.Keys[1])
		}
	}
	st := s.cfg.Machine.st.Stats()
	switch first, _, _ := strings.Cut(group, " "); {
	case group == "":
		return s.appendGeneral(out, cmd, st)
	case group == "gomu digest":
		// Hashing the whole store holds off writes meanwhile: only on
		// request, never in the "stats gomu" clients poll.
		d := s.cfg.Machine.Digest()
		return s.appendPairs(out, cmd, append(s.gomuStats(), "gomu_digest", hex.EncodeToString(d[:])))
	case first == "gomu":
		return s.appendPairs(out, cmd, s.gomuStats())
	case !memcache.IsStatsGroup(group):
		if cmd.Proto == memcache.ProtoBinary {
			return memcache.AppendBinaryStatus(out, cmd, memcache.BinaryKeyNotFound, "")
		}
		if first == "detail" {
			return append(out, "CLIENT_ERROR usage: stats detail on|off|dump\r\n"...)
		}
		return memcache.AppendCommandError(out, cmd, memcache.ErrUnknownCommand)
	case first == "settings":
		return s.appendPairs(out, cmd, s.settings(st))
	case first == "items":
		if st.CurrItems == 0 {
			return s.appendPairs(out, cmd, nil)
		}
		// One pseudo slab class: the store does not divide memory into
		// classes.
		return s.appendPairs(out, cmd, []string{
			"items:1:number", u64(st.CurrItems), "items:1:evicted", u64(st.Evictions),
			"items:1:reclaimed", u64(st.Reclaimed), "items:1:outofmemory", u64(st.OutOfMemory)})
	case first == "slabs":
		return s.appendPairs(out, cmd, []string{"active_slabs", u64(min(st.CurrItems, 1)), "total_malloced", u64(st.Bytes)})
	case first == "reset" && cmd.Proto == memcache.ProtoText:
		// The counters are the store's history here; nothing to reset
		// but the answer.
		return append(out, "RESET\r\n"...)
	}
	// sizes, conns, detail on|off|dump, a binary reset: nothing to list.
	return s.appendPairs(out, cmd, nil)
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// appendPairs renders name, value pairs as a stats reply in cmd's protocol.
func (s *Server) appendPairs(out []byte, cmd *memcache.Command, pairs []string) []byte {
	if cmd.Proto == memcache.ProtoBinary {
		return memcache.AppendBinaryStats(out, cmd, pairs...)
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		out = memcache.AppendStat(out, pairs[i], pairs[i+1])
	}
	return memcache.AppendStatus(out, memcache.StatusEnd)
}

func (s *Server) appendGeneral(out []byte, cmd *memcache.Command, st memcache.StoreStats) []byte {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s.mu.Lock()
	curr := uint64(len(s.conns))
	s.mu.Unlock()
	sv := memcache.ServerStats{PID: os.Getpid(), Start: s.start, Version: s.cfg.Version,
		MaxConns: s.cfg.MaxConns, CurrConns: curr, TotalConns: s.total.Load(), RejectedConns: s.rejected.Load(),
		Threads:       runtime.GOMAXPROCS(0),
		RusageUser:    time.Duration(ru.Utime.Nano()),
		RusageSystem:  time.Duration(ru.Stime.Nano()),
		BytesRead:     s.bytesRead.Load(),
		BytesWritten:  s.bytesWritten.Load(),
		StoreTooLarge: s.tooLarge.Load(),
	}
	pairs := memcache.GeneralStats(nil, time.Now(), sv, st)
	pairs = append(pairs, s.gomuStats()...)
	return s.appendPairs(out, cmd, pairs)
}

// settings is "stats settings": the limits this server runs with.
func (s *Server) settings(st memcache.StoreStats) []string {
	evict := "on"
	if !st.EvictionsEnabled {
		evict = "off"
	}
	p := []string{
		"maxbytes", u64(st.LimitMaxbytes),
		"maxconns", strconv.Itoa(s.cfg.MaxConns),
		"udpport", "0",
		"evictions", evict,
		"cas_enabled", "yes",
		"item_size_max", strconv.Itoa(s.cfg.Limits.MaxValueLen),
		"binding_protocol", "auto-negotiate",
		"idle_timeout", strconv.Itoa(int(s.cfg.IdleTimeout / time.Second)),
		"num_threads", strconv.Itoa(runtime.GOMAXPROCS(0)),
	}
	return append(p, s.cfg.Settings...)
}

// gomuStats are the replication's lines: who this replica is, who leads,
// and every replica's client address, so that a client given one address
// finds the others (the latency clients read them through "stats gomu").
func (s *Server) gomuStats() []string {
	r := s.link.Replica
	if r == nil {
		p, c := s.cfg.Machine.Applied()
		return []string{"gomu_mode", "standalone", "gomu_applied_proposals", u64(p), "gomu_applied_commands", u64(c)}
	}
	st := r.Stats()
	lid, laddr := s.link.LeaderAddr()
	ids := []int{st.ID}
	for _, p := range st.Peers {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	var addrs strings.Builder
	for i, id := range ids {
		if i > 0 {
			addrs.WriteByte(',')
		}
		fmt.Fprintf(&addrs, "%d=%s", id, r.Meta(id))
	}
	reads := "linearizable"
	if s.cfg.StaleFollowerReads {
		reads = "stale"
	}
	props, cmds := s.cfg.Machine.Applied()
	proposed, failed := s.link.Counts()
	out := []string{
		"gomu_id", strconv.Itoa(st.ID),
		"gomu_role", strings.ToLower(st.Role.String()),
		"gomu_leader_id", strconv.Itoa(lid),
	}
	if laddr != "" {
		out = append(out, "gomu_leader_addr", laddr)
	}
	return append(out,
		"gomu_replica_addrs", addrs.String(),
		"gomu_commit_index", u64(st.Commit),
		"gomu_applied_index", u64(st.Applied),
		"gomu_applied_proposals", u64(props),
		"gomu_applied_commands", u64(cmds),
		"gomu_proposals", strconv.FormatInt(proposed, 10),
		"gomu_failed_proposals", strconv.FormatInt(failed, 10),
		"gomu_catching_up", boolStr(st.Behind),
		"gomu_state_transfers", u64(st.Transfers),
		"gomu_paused", boolStr(r.Paused()),
		"gomu_follower_reads", reads,
	)
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
