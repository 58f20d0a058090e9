package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/deadline"
	"github.com/gomu-rdma/gomu/internal/leaderhint"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// conn is one client connection, served by one goroutine.
type conn struct {
	s   *Server
	nc  net.Conn
	rd  *resp.Reader
	out []byte
	id  int64
	// state is what CLIENT LIST reports (clients.go).
	state clientState

	// prop collects the write commands of the current batch.
	prop proposal
	// readOK: this batch already passed its read barrier.
	readOK bool
	env    store.Env
	// view is where this connection's reads see a database other than 0
	// (store.View).
	view store.Store
	// spec is the outcome of its last speculative script run
	// (speculate), kept here so that a run allocates nothing for it.
	spec store.Speculation
	// scriptCalls counts the commands its local script runs call
	// (scriptstats.go).
	scriptCalls scriptCalls

	multi      bool
	multiDirty bool
	multiWrite bool
	queued     proposal // the transaction's commands
	txDec      decoder  // decodes queued for a read-only EXEC
	// multiDenyOOM: a queued command may grow memory (maxmemory.go).
	multiDenyOOM bool
	// multiDenyStale: a queued command is not stale-ok; multiClientWrite:
	// one is a write a replica refuses (REPLICAOF, though replicated, is
	// not) (replicaof.go).
	multiDenyStale, multiClientWrite bool
	// watched are the keys WATCH noted, with their stamps then; watchTx
	// is where EXEC puts the watch check before the queued commands.
	watched []watchedKey
	watchTx proposal

	// ctx bounds each proposal and read barrier, re-armed every time.
	ctx *deadline.Context

	// sub is its Pub/Sub state once it first subscribed (pubsub.go): from
	// then on its replies leave through sub's queue.
	sub *subscription

	// proto is the protocol HELLO chose (2, or 3: resp3.go); atomic, as
	// PUBLISH reads it on the applying goroutine. The shapes are those of
	// the batch's pending writes and of the transaction's commands, kept
	// only under RESP3; conv is the rewriting's scratch.
	proto        atomic.Int32
	propShapes   []shape
	queuedShapes []shape
	one          [1]shape
	conv         []byte
	wrapped      [][]byte // scriptArgs's

	// arrivals reads a TCP connection with the kernel's receive times
	// (nil for another kind); arrived is when the last read's bytes
	// arrived, in Unix ns (arrival.go).
	arrivals *arrivalReader
	arrived  int64
	// fd is its socket (-1: none known), intake the arrival of the batch
	// it is running, fenceBuf the fence's buffers (ordering.go).
	fd       int
	intake   atomic.Int64
	fenceBuf *fenceScratch

	// blockSeq numbers its blocking commands; blockedID is the waiter id
	// it waits on now, for CLIENT UNBLOCK (blocking.go).
	blockSeq  uint64
	blockedID atomic.Pointer[string]
	// replyFlags are CLIENT REPLY's (replies.go); 0 on the hot path.
	replyFlags uint8

	// INFO commandstats (stats.go): calls are the batch's calls not yet
	// counted, since settled; propSlots the slots of the pending writes,
	// queuedSlots those of the transaction's commands; replyStart is
	// where the reply of the command being dispatched starts in out.
	calls       []callRun
	settled     time.Time
	propSlots   []int32
	queuedSlots []int32
	replyStart  int

	// followUps are the writes this batch's reads asked for (store.Env
	// FollowUp), which the leader proposes after the batch.
	followUps []followUp

	// queuedLocal are the server commands queued in the transaction
	// (multilocal.go).
	queuedLocal []localCommand

	// user is the ACL user it runs as (acl.go; CLIENT LIST reads it from
	// another goroutine), authed whether it logged in (or started as a
	// default user that needed no password).
	user   atomic.Pointer[store.ACLUser]
	authed bool
}

// followUp is a write a read asked for: command key, in database db.
type followUp struct {
	db      int
	command string
	key     string
}

// maxArgs bounds one command's argument count (Redis's limit).
const maxArgs = 1024 * 1024

func (s *Server) newConn(nc net.Conn) *conn {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.mu.Unlock()
	// Its Env runs only reads, locally: scripts run with it refuse writes
	// (store.Env.ReadOnly).
	var rd io.Reader = nc
	ar, ok := newArrivalReader(nc)
	if ok {
		rd = ar
	}
	c := &conn{s: s, nc: nc, id: id, ctx: deadline.New(), arrivals: ar, fd: -1,
		rd: resp.NewReader(rd, resp.Limits{MaxBulk: resp.DefaultMaxBulk, MaxArgs: maxArgs}),
		env: store.Env{Rand: rand.New(rand.NewPCG(rand.Uint64(), uint64(id))), ReadOnly: true, Scripts: s.cfg.Machine.scripts,
			Access:  s.cfg.Machine.access,
			Publish: s.cfg.Machine.hub.publish}, // keyspace-miss events (local)
	}
	c.env.FollowUp = c.noteFollowUp
	c.scriptCalls.count = s.countScriptCalls
	c.env.Calls = &c.scriptCalls
	if ar != nil {
		ar.intake, c.fd = &c.intake, ar.fd
		s.order.add(c.fd)
	}
	c.setDefaultAuth()
	c.prop.reset(propBatch)
	c.state.init()
	c.proto.Store(2)
	return c
}

// serve reads batches of commands until the client leaves or breaks the
// protocol.
func (c *conn) serve() {
	defer c.nc.Close()
	defer c.endPubSub()
	for {
		if err := c.rd.Fill(); err != nil {
			return
		}
		c.noteArrival()
		c.s.link.AwaitResumed(c.s.stop)
		c.settled = time.Now()
		c.state.active.Store(c.settled.UnixMilli())
		c.readOK = false
		quit := false
		for !quit {
			args, ok, err := c.rd.Next()
			if err != nil {
				// A protocol error: answer it after what came before,
				// then close, as Redis does.
				c.flushWrites()
				var pe *resp.ProtocolError
				if errors.As(err, &pe) {
					c.out = resp.AppendError(c.out, pe.Error())
				}
				c.write()
				return
			}
			if !ok {
				break
			}
			quit = c.dispatch(args)
		}
		c.flushWrites()
		if len(c.followUps) > 0 {
			c.proposeFollowUps()
		}
		c.intake.Store(0) // its commands are done: the fence need not wait for it
		// Paused while the batch ran: its replies wait for the resume.
		c.s.link.AwaitResumed(c.s.stop)
		if !c.write() || quit {
			return
		}
	}
}

// noteFollowUp is the Env's FollowUp hook: reads run on the connection's
// goroutine, so no lock guards followUps.
func (c *conn) noteFollowUp(db int, command string, key []byte) {
	if len(c.followUps) < maxFollowUps {
		c.followUps = append(c.followUps, followUp{db: db, command: command, key: string(key)})
	}
}

// maxFollowUps bounds the writes one batch's reads ask for; an expired
// key left out is the sweep's, a stale HLL cache the next PFCOUNT's.
const maxFollowUps = 1024

// proposeFollowUps proposes, on the leader, the writes the batch's reads
// asked for before the batch's replies leave: the deletion of the expired
// keys they met, as Redis deletes an expired key a read finds (so that
// DBSIZE stops counting it), and the cardinality caches PFCOUNT computed.
// Whatever becomes of the proposal, the replies are unchanged: the reads
// answered as if the writes were done.
func (c *conn) proposeFollowUps() {
	ups := c.followUps
	c.followUps = c.followUps[:0]
	if !c.s.link.Leads() {
		return
	}
	slices.SortStableFunc(ups, func(a, b followUp) int {
		if a.db != b.db {
			return a.db - b.db
		}
		return strings.Compare(a.command, b.command)
	})
	var p proposal
	p.reset(propBatch)
	for i := 0; i < len(ups); {
		args := [][]byte{[]byte(ups[i].command)}
		j := i
		for ; j < len(ups) && ups[j].db == ups[i].db && ups[j].command == ups[i].command; j++ {
			args = append(args, []byte(ups[j].key))
		}
		p.use(ups[i].db)
		p.add(args)
		i = j
	}
	_, _ = c.s.replicate(c.ctx, p.seal(time.Now().UnixMilli(), rand.Uint64()))
}

// refuse answers the command being dispatched with the error msg, failing
// the transaction being queued if any, as Redis does; it reports true.
func (c *conn) refuse(msg string) bool {
	if c.multi {
		c.multiDirty = true
	}
	out := c.reply()
	*out = resp.AppendError(*out, msg)
	return true
}

// write sends the replies gathered so far.
func (c *conn) write() bool {
	if c.sub != nil {
		c.settlePending()
		// Subscribed once: replies queue behind the messages pushed so
		// far, for the connection's writer.
		if len(c.out) > 0 {
			out := c.out
			c.push(func(b []byte) []byte { return append(b, out...) })
			c.out = c.out[:0]
		}
		c.sub.mu.Lock()
		failed := c.sub.failed
		c.sub.mu.Unlock()
		return !failed
	}
	if len(c.out) == 0 {
		c.settlePending()
		return true
	}
	now := time.Now()
	c.settleCalls(now) // usec: the batch until its replies are ready, writing excluded
	_ = c.nc.SetWriteDeadline(now.Add(6 * c.s.cfg.Timeout))
	_, err := c.nc.Write(c.out)
	if cap(c.out) > 1<<20 {
		c.out = nil // do not keep a huge reply's buffer for every connection
	} else {
		c.out = c.out[:0]
	}
	return err == nil
}

// reply gives a reply the position after every write queued before it.
func (c *conn) reply() *[]byte {
	c.flushWrites()
	return &c.out
}

// dispatch handles one command; it reports whether the connection ends.
func (c *conn) dispatch(args [][]byte) bool {
	c.replyStart = len(c.out)
	if since := c.s.cfg.Machine.scripts.since.Load(); since != 0 && c.refuseBusy(since, args) {
		c.rejected(-1)
		return false
	}
	if c.replyFlags != 0 && c.replyFlags&replyInside == 0 {
		return c.dispatchSilenced(args)
	}
	if c.subscribed() && c.proto.Load() != 3 && !subscribedAllows(args[0]) {
		out := c.reply()
		*out = resp.AppendError(*out, "ERR Can't execute '"+string(lowerInto(nil, args[0]))+"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
		c.rejected(-1)
		return false
	}
	// One atomic load on the hot path: nil unless REPLICAOF made this a
	// replica (replicaof.go).
	if m := c.s.cfg.Machine.master.Load(); m != nil && c.refuseAsReplica(m, args) {
		return false
	}
	if h := lookupServerCommand(args[0]); h != nil {
		c.noted(&h.name)
		slot := statSlot(h.statsID, args)
		// Before MULTI's refusal, as Redis refuses a denied SUBSCRIBE
		// with NOPERM there.
		if !c.user.Load().Unrestricted() {
			if refused, quit := c.aclRefuses(args, h.noAuth()); refused {
				c.rejected(slot)
				return quit
			}
		}
		if c.multi && !h.inMulti {
			c.refuse("ERR Command not allowed inside a transaction")
			c.rejected(slot)
			return false
		}
		if !h.check(len(args)) {
			if c.multi {
				c.multiDirty = true
			}
			out := c.reply()
			*out = store.AppendWrongArity(*out, h.name)
			c.rejected(slot)
			return false
		}
		if c.multi && c.s.maxMemory.Load() != 0 && !h.oomExempt() && c.refuseOOM(false) {
			c.rejected(slot)
			return false
		}
		return c.runServerCommand(h, slot, args)
	}
	cmd := store.Lookup(args[0])
	if cmd != nil {
		c.noted(&cmd.Name)
	}
	if cmd == nil || cmd.Flags&store.Internal != 0 {
		if c.multi {
			c.multiDirty = true
		}
		out := c.reply()
		*out = store.AppendUnknownCommand(*out, args)
		c.rejected(-1)
		return false
	}
	slot := statSlot(cmd.StatsID, args)
	if !cmd.CheckArity(len(args)) {
		if c.multi {
			c.multiDirty = true
		}
		out := c.reply()
		*out = store.AppendWrongArity(*out, cmd.Name)
		c.rejected(slot)
		return false
	}
	// One check for the default user (acl.go): "on nopass ~* &* +@all".
	if !c.user.Load().Unrestricted() {
		if refused, quit := c.aclRefuses(args, false); refused {
			c.rejected(slot)
			return quit
		}
	}
	// One atomic load on the hot path: the heap is measured only under a
	// maxmemory limit.
	if c.s.maxMemory.Load() != 0 && c.refuseOOM(cmd.Flags&store.DenyOOM != 0 || growsLibraries(args)) {
		c.rejected(slot)
		return false
	}
	write := cmd.Flags&store.Write != 0
	if cmd.Flags&store.Scripted != 0 {
		if isScriptKill(args) && !c.multi {
			out := c.reply()
			*out = c.s.cfg.Machine.scripts.kill(*out, lowerEq(args[0], "function"))
			c.ran(slot)
			return false
		}
		write = c.s.cfg.Machine.scriptWrites(args)
		if write && c.s.maxMemory.Load() != 0 && !c.multi && c.refuseScriptOOM(args) {
			c.rejected(slot)
			return false
		}
		if write && !c.multi && c.s.minReplicas.Load() != 0 && c.refuseScriptNoReplicas(args) {
			c.rejected(slot)
			return false
		}
		if write && !c.multi && speculation && speculates(cmd) && c.speculate(args, slot) {
			return false
		}
		if write && c.s.cfg.Machine.master.Load() != nil && c.s.repl.readOnly.Load() {
			c.refuse(errReadOnlyReplica) // a replica's script that writes (replicaof.go)
			c.rejected(slot)
			return false
		}
	}
	if write && c.s.minReplicas.Load() != 0 && c.refuseNoReplicas() {
		c.rejected(slot)
		return false
	}
	if write && !c.s.link.Leads() {
		c.refuse(c.s.readOnlyError())
		c.rejected(slot)
		return false
	}
	if write && c.refuseMisconf() { // one atomic load: aof.go
		c.rejected(slot)
		return false
	}
	db := int(c.state.db.Load())
	// A command over the proposal limit is replicated alone (below), and a
	// transaction over it as one proposal, by the engine's large-command
	// path.
	if c.multi {
		args = c.asUser(cmd, args)
		if write {
			args = c.scriptArgs(cmd, args)
		}
		c.queueTx(args, args, slot)
		c.multiWrite = c.multiWrite || write
		c.multiClientWrite = c.multiClientWrite || write
		c.multiDenyOOM = c.multiDenyOOM || cmd.Flags&store.DenyOOM != 0
		c.multiDenyStale = c.multiDenyStale || !storeCommandStale(cmd.Name)
		out := c.reply()
		*out = resp.AppendSimple(*out, "QUEUED")
		return false
	}
	if cmd.Flags&store.Blocking != 0 {
		if ms, blocks := mayBlock(args, write); blocks {
			if !write && !c.s.link.Leads() { // XREAD … BLOCK waits on the leader only
				out := c.reply()
				*out = resp.AppendError(*out, c.s.readOnlyError())
				c.rejected(slot)
				return false
			}
			quit := c.block(args, ms)
			c.ran(slot)
			return quit
		}
	}
	if write {
		args = c.scriptArgs(cmd, c.asUser(cmd, args)) // as gomu.resp3 gomu.asuser … unwrap
		if len(c.prop.buf)+commandSize(args)+dbSwitchSize(db) > c.s.cfg.MaxProposal {
			c.flushWrites()
		}
		c.prop.use(db)
		c.prop.add(args)
		c.propSlots = append(c.propSlots, int32(slot))
		c.addCall(slot)
		if c.proto.Load() == 3 {
			c.propShapes = append(c.propShapes, shapeOf(args))
		}
		if len(c.prop.buf) > c.s.cfg.MaxProposal {
			// Alone in the proposal (the batch before it was flushed):
			// replicate it now, and let its buffer go.
			c.flushWrites()
			c.prop.buf = nil
			c.prop.reset(propBatch)
		}
		return false
	}
	out := c.reply()
	if !c.readBarrier(out) {
		c.rejected(slot)
		return false
	}
	c.env.NowMs = time.Now().UnixMilli()
	start := len(*out)
	*out = c.s.cfg.Machine.execRead(*out, &c.env, db, &c.view, args)
	c.addCall(slot)
	if start < len(*out) && (*out)[start] == '-' {
		c.failed(slot, (*out)[start:])
	}
	if c.proto.Load() == 3 {
		c.one[0] = shapeOf(args)
		*out = c.resp3Replies(*out, start, c.one[:])
	}
	return false
}

// runServerCommand runs h, counted in slot; a command it queues in a
// transaction (PING, ECHO, SELECT) is counted when EXEC runs it.
func (c *conn) runServerCommand(h *serverCommand, slot int, args [][]byte) bool {
	queued := c.queued.replies()
	quit := h.run(c, args)
	if c.multi && c.queued.replies() > queued {
		c.multiDenyStale = c.multiDenyStale || !serverCommandStale(h)
		c.queuedSlots = append(c.queuedSlots, int32(slot))
		return quit
	}
	c.ran(slot)
	return quit
}

// readBarrier makes the reads of this batch safe (see consensus
// ReadBarrier); on failure it appends the error reply and reports false.
func (c *conn) readBarrier(out *[]byte) bool {
	r := c.s.link.Replica
	if r == nil || c.readOK {
		return true
	}
	c.ctx.Arm(c.s.cfg.Timeout)
	err := r.ServeReadBarrier(c.ctx, c.s.cfg.StaleFollowerReads)
	c.ctx.Disarm()
	if err != nil {
		var nl consensus.ErrNotLeader
		if errors.As(err, &nl) && nl.Leader != 0 {
			// A read needs no redirect: any replica serves it.
			*out = resp.AppendError(*out, "TRYAGAIN gomu: leadership changed during the read")
			return false
		}
		*out = resp.AppendError(*out, c.s.replicationError(err))
		return false
	}
	c.readOK = true
	return true
}

// flushWrites replicates the batch's pending writes and appends their
// replies.
func (c *conn) flushWrites() {
	if c.prop.count == 0 {
		return
	}
	c.fence()
	n := c.prop.replies()
	res, err := c.s.replicate(c.ctx, c.prop.seal(time.Now().UnixMilli(), rand.Uint64()))
	if err != nil {
		msg := c.s.replicationError(err)
		start := len(c.out)
		for range n {
			c.out = resp.AppendError(c.out, msg)
		}
		c.countReplies(c.propSlots, c.out[start:])
	} else {
		c.countReplies(c.propSlots, res)
		start := len(c.out)
		c.out = append(c.out, res...)
		if c.proto.Load() == 3 {
			c.out = c.resp3Replies(c.out, start, c.propShapes)
		}
	}
	c.propShapes = c.propShapes[:0]
	c.propSlots = c.propSlots[:0]
	c.prop.reset(propBatch)
	c.replyStart = len(c.out)
	// A write of ours may have changed what the batch's later reads see,
	// but a barrier passed before it still covers them: the leader applied
	// the write before answering.
}

// replicate commits one sealed proposal and returns its replies: through
// the engine, or straight into the machine when standalone.
func (s *Server) replicate(ctx *deadline.Context, p []byte) ([]byte, error) {
	if s.link.Replica == nil {
		return s.cfg.Machine.Apply(0, p), nil
	}
	return s.link.Propose(ctx, p)
}

// replicationError words an engine error as a Redis error reply.
func (s *Server) replicationError(err error) string {
	var nl consensus.ErrNotLeader
	switch {
	case errors.As(err, &nl) && nl.Leader == 0:
		return noLeaderError
	case errors.As(err, &nl):
		return s.readOnlyError()
	case errors.Is(err, consensus.ErrClosed):
		// The replica is shutting down (or crashed in a test): retryable
		// elsewhere, as clients treat TRYAGAIN.
		return "TRYAGAIN gomu: this replica is shutting down"
	case errors.Is(err, consensus.ErrPaused):
		return "TRYAGAIN gomu: this replica is paused"
	case errors.Is(err, consensus.ErrCatchingUp):
		// Restarted or left behind by the ring: it misses committed
		// writes until the leader has caught it up.
		id, addr := s.link.LeaderAddr()
		return "TRYAGAIN gomu: this replica is catching up. " + leaderhint.Format(id, addr)
	case errors.Is(err, consensus.ErrBusy):
		return "TRYAGAIN gomu: too many concurrent proposals"
	case errors.Is(err, consensus.ErrTooLarge):
		return "ERR gomu: command too large to replicate"
	case errors.Is(err, context.DeadlineExceeded):
		// A proposal that timed out may still commit; a read barrier
		// that did reached no leader in time.
		return "TRYAGAIN gomu: replication timed out"
	default:
		return "ERR gomu: " + err.Error()
	}
}

// dbSwitchSize is what a command in database db may add to a proposal
// besides itself: a gomu.select, unless db is 0.
func dbSwitchSize(db int) int {
	if db == 0 {
		return 0
	}
	return selectSize
}

// lowerEq reports whether b equals the lowercase word w, in any case.
func lowerEq(b []byte, w string) bool {
	return len(b) == len(w) && bytes.EqualFold(b, []byte(w))
}
