package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// A proposal is what a connection replicates for one batch of write
// commands (or one transaction):
//
//	kind     u8   propBatch or propTx
//	now      i64  the leader's clock, Unix ms: every replica judges expiry by it
//	seed     u64  the leader's random seed for this proposal
//	count    u32  commands
//	per command: argc u32, then per argument: len u32, bytes
//
// Integers are little-endian. Applying a proposal returns the commands'
// replies, concatenated (a batch) or as one array (a transaction).
//
// Every proposal starts in database 0. The internal command "gomu.select
// <db>" (selectCommand) switches the database for the commands after it,
// replying nothing: a connection inserts it only where its selected
// database differs from the proposal's, so commands in database 0 cost
// nothing more. In a transaction a queued SELECT switches too, and is
// answered as Redis answers it.
const (
	propBatch = 1
	propTx    = 2

	propHeader = 1 + 8 + 8 + 4
)

// proposal builds one proposal in a reusable buffer.
type proposal struct {
	buf   []byte
	count int
	// db is the database the commands added next run in; silent counts
	// the gomu.select commands among count, which have no reply.
	db     int
	silent int
}

func (p *proposal) reset(kind byte) {
	p.buf = append(p.buf[:0], kind)
	p.buf = append(p.buf, make([]byte, propHeader-1)...)
	p.count, p.db, p.silent = 0, 0, 0
}

// selectCommand switches a proposal's database (see the format above).
// Clients cannot send it: it is no command of the store's or the server's.
const selectCommand = "gomu.select"

// selectSize bounds the encoded size of one gomu.select.
const selectSize = 4 + 4 + len(selectCommand) + 4 + 2

// use makes the commands added next run in database db, adding a
// gomu.select if the proposal is in another one.
func (p *proposal) use(db int) {
	if db != p.db {
		p.switchTo(db)
	}
}

// switchTo adds the gomu.select of use.
func (p *proposal) switchTo(db int) {
	p.buf = binary.LittleEndian.AppendUint32(p.buf, 2)
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(selectCommand)))
	p.buf = append(p.buf, selectCommand...)
	n := len(p.buf)
	p.buf = binary.LittleEndian.AppendUint32(p.buf, 0)
	p.buf = strconv.AppendInt(p.buf, int64(db), 10)
	binary.LittleEndian.PutUint32(p.buf[n:], uint32(len(p.buf)-n-4))
	p.count++
	p.silent++
	p.db = db
}

// replies is the number of replies applying the proposal gives.
func (p *proposal) replies() int { return p.count - p.silent }

// size is the encoded size of args as one command.
func commandSize(args [][]byte) int {
	n := 4
	for _, a := range args {
		n += 4 + len(a)
	}
	return n
}

func (p *proposal) add(args [][]byte) {
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(args)))
	for _, a := range args {
		p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(a)))
		p.buf = append(p.buf, a...)
	}
	p.count++
}

// appendCommands appends q's commands after p's; p must be in database 0,
// where q started.
func (p *proposal) appendCommands(q *proposal) {
	p.buf = append(p.buf, q.buf[propHeader:]...)
	p.count += q.count
	p.silent += q.silent
	p.db = q.db
}

// seal fills in the header: the time and seed the leader decides.
func (p *proposal) seal(nowMs int64, seed uint64) []byte {
	binary.LittleEndian.PutUint64(p.buf[1:], uint64(nowMs))
	binary.LittleEndian.PutUint64(p.buf[9:], seed)
	binary.LittleEndian.PutUint32(p.buf[17:], uint32(p.count))
	return p.buf
}

// span locates one decoded command in decoder.args.
type span struct{ argc, off int }

var errMalformed = errors.New("malformed proposal")

// decoder splits a proposal into commands, reusing its buffers. Whoever
// decodes needs a decoder of its own: read-only transactions run under the
// machine's read lock, several at a time.
type decoder struct {
	args  [][]byte
	spans []span
	// silent counts the decoded gomu.select commands.
	silent int
	// view is where a read-only transaction's decoder sees another
	// database than 0 (store.View).
	view store.Store
	// step is where exec is: 2i while command i runs, 2i+1 while the
	// blocked clients it made ready are served (SYNC's stream places
	// the DELs of keys expired meanwhile by it).
	step int
}

// header is a decoded proposal's header.
type header struct {
	kind  byte
	now   int64
	seed  uint64
	count int
}

// decode decodes all of p before anything runs, so that a malformed
// proposal is refused whole.
func (d *decoder) decode(p []byte) (header, error) {
	if len(p) < propHeader || (p[0] != propBatch && p[0] != propTx) {
		return header{}, errMalformed
	}
	h := header{kind: p[0], now: int64(binary.LittleEndian.Uint64(p[1:])),
		seed: binary.LittleEndian.Uint64(p[9:]), count: int(binary.LittleEndian.Uint32(p[17:]))}
	rest := p[propHeader:]
	d.spans, d.args, d.silent = d.spans[:0], d.args[:0], 0
	for range h.count {
		if len(rest) < 4 {
			return h, errMalformed
		}
		argc := int(binary.LittleEndian.Uint32(rest))
		rest = rest[4:]
		if argc == 0 || argc > len(rest)/4 {
			return h, errMalformed
		}
		d.spans = append(d.spans, span{argc, len(d.args)})
		for range argc {
			if len(rest) < 4 {
				return h, errMalformed
			}
			n := int(binary.LittleEndian.Uint32(rest))
			if n > len(rest)-4 {
				return h, errMalformed
			}
			d.args = append(d.args, rest[4:4+n])
			rest = rest[4+n:]
		}
		if cmd := d.args[len(d.args)-argc:]; isSelectCommand(cmd[0]) {
			if _, ok := selectedDB(cmd); !ok {
				return h, errMalformed
			}
			d.silent++
		}
	}
	if len(rest) != 0 {
		return h, errMalformed
	}
	return h, nil
}

// exec runs the decoded commands on st, as one array reply for a
// transaction. A transaction that opens with the watch check (see
// watchCommand) runs only if its watched keys are as WATCH saw them, and
// is answered with a null array otherwise, as Redis answers EXEC. Writes
// (write set: under the exclusive lock) run in their database with
// ExecDB; reads under the shared lock on a View of it.
func (d *decoder) exec(out []byte, st *store.Store, h header, env *store.Env, write bool) []byte {
	spans := d.spans
	if h.kind == propTx {
		if len(spans) > 0 && string(d.args[spans[0].off]) == watchCommand {
			if !watchHolds(st, env, d.args[spans[0].off+1:spans[0].off+spans[0].argc]) {
				return resp.AppendNullArray(out)
			}
			spans = spans[1:]
		}
		out = resp.AppendArrayLen(out, len(spans)-d.silent)
	}
	db := 0
	for i, s := range spans {
		d.step = 2 * i
		args := d.args[s.off : s.off+s.argc]
		if isSelectCommand(args[0]) {
			db, _ = selectedDB(args) // checked by decode
			continue
		}
		if h.kind == propTx && lowerEq(args[0], "select") {
			out, db = execSelect(out, args, db)
			continue
		}
		if h.kind == propTx && lowerEq(args[0], "debug") {
			out = execDebugSleep(out, args, env) // the only DEBUG queued
			continue
		}
		switch {
		case db == 0: // between commands the store is in database 0
			out = st.Exec(out, env, args)
		case write:
			out = st.ExecDB(out, env, db, args)
		default:
			out = st.View(db, &d.view).Exec(out, env, args)
		}
		if write && h.kind == propBatch && st.HasReady() {
			d.step++
			st.ServeReady(env) // after each command, as Redis serves blocked clients
		}
	}
	d.step = 2 * len(spans)
	if write && st.HasReady() {
		st.ServeReady(env) // after the whole transaction, as Redis after EXEC
	}
	if !write {
		d.view = store.Store{} // as execRead's
	}
	return out
}

// isSelectCommand reports whether a command named name is a gomu.select:
// cheap, as every command of every proposal is asked.
func isSelectCommand(name []byte) bool {
	return len(name) == len(selectCommand) && string(name) == selectCommand
}

// selectedDB is the database a gomu.select (args) switches to, and whether
// it is a valid one.
func selectedDB(args [][]byte) (int, bool) {
	if len(args) != 2 {
		return 0, false
	}
	n, err := strconv.Atoi(string(args[1]))
	return n, err == nil && 0 <= n && n < store.Databases
}

// execSelect runs a SELECT queued in a transaction: it replies as Redis's
// and returns the database the commands after it run in.
func execSelect(out []byte, args [][]byte, db int) ([]byte, int) {
	if len(args) != 2 {
		return store.AppendWrongArity(out, "select"), db
	}
	n, msg := store.ParseDB(args[1])
	if msg != "" {
		return resp.AppendError(out, msg), db
	}
	return resp.AppendOK(out), n
}

// watchCommand opens a transaction whose connection watched keys: its
// arguments are database, key, stamp triples (the database in decimal,
// store.WatchStamp's 32 bytes). Clients cannot send it: it is no command
// of the store's or the server's.
const watchCommand = "gomu.watch"

// watchHolds reports whether every watched key still has its stamp.
func watchHolds(st *store.Store, env *store.Env, triples [][]byte) bool {
	for i := 0; i+2 < len(triples); i += 3 {
		db, msg := store.ParseDB(triples[i])
		if msg != "" {
			return false
		}
		s := st.Stamp(env, db, triples[i+1])
		if string(s[:]) != string(triples[i+2]) {
			return false
		}
	}
	return true
}

// Machine is the replicated state machine: a store.Store behind a
// read-write lock. Apply (the consensus engine's goroutine, or a
// standalone server's connection) takes the write lock; local reads take
// the read lock.
type Machine struct {
	mu    sync.RWMutex
	st    *store.Store
	pcg   *rand.PCG
	rnd   *rand.Rand
	dec   decoder       // Apply's, under the write lock
	env   store.Env     // Apply's, under the write lock: its time changes per proposal
	count atomic.Uint64 // proposals applied
	cmds  atomic.Uint64 // commands applied
	hub   *hub          // this replica's Pub/Sub subscribers (pubsub.go)
	// owners are the waiters this replica's connections blocked, by
	// waiter id: the channel that receives the reply (blocking.go).
	ownersMu sync.Mutex
	owners   map[string]chan []byte
	// scripts follows the running scripts, for BUSY and SCRIPT KILL
	// (scripting.go).
	scripts *scriptTracker
	taps    []*tap // SYNC connections (sync.go), under the write lock
	// access is this node's access tracking and maxmemory-policy
	// (store/access.go, maxmemory.go).
	access *store.Access
	// tapEvents are what the proposal being applied did besides its
	// commands' own effects (keys expired, blocked clients served),
	// while taps listen (sync.go).
	tapEvents []tapEvent
	// aof is this replica's append-only file (aof.go).
	aof aofState
	// rdb is this replica's RDB file and saves (rdb.go).
	rdb rdbState
	// scriptCalls counts the commands of the scripts it applies
	// (scriptstats.go).
	scriptCalls scriptCalls
	// master is the store's Master (REPLICAOF, replicaof.go), published
	// for the connections' one-load role check; roleChanged wakes the
	// server's link manager when it changes.
	master      atomic.Pointer[store.Master]
	roleChanged chan struct{}
}

// NewMachine returns a machine over an empty store.
func NewMachine() *Machine {
	pcg := rand.NewPCG(0, 0)
	m := &Machine{st: store.New(), pcg: pcg, rnd: rand.New(pcg), hub: newHub(), scripts: newScriptTracker(),
		access: store.NewAccess()}
	// Made once: a fresh Env and method value per proposal escaped to the
	// heap, two allocations on every Apply.
	m.env = store.Env{Rand: m.rnd, Publish: m.hub.publish, Unblock: m.deliverUnblocked, Scripts: m.scripts,
		Access: m.access, Calls: &m.scriptCalls}
	m.owners = make(map[string]chan []byte)
	m.roleChanged = make(chan struct{}, 1)
	m.aof.init()
	m.rdb.init()
	return m
}

// Apply implements consensus.StateMachine. A proposal that does not decode
// is answered with an error on every replica alike: no replica applies part
// of it.
func (m *Machine) Apply(_ uint64, cmd []byte) []byte {
	out, l, upto := m.apply(cmd)
	if l != nil {
		l.flush(upto) // appendonly yes: written before the reply, outside the lock (aof.go)
	}
	return out
}

// apply is Apply under the write lock; l is the append-only file the
// proposal was recorded in, to be written up to upto (nil: appendonly no).
func (m *Machine) apply(cmd []byte) (out []byte, l *aofLog, upto int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.dec.decode(cmd)
	if err != nil {
		return resp.AppendError(nil, "ERR gomu: "+err.Error()), nil, 0
	}
	m.pcg.Seed(h.seed, 0)
	m.env.NowMs = h.now
	out = m.dec.exec(nil, m.st, h, &m.env, true)
	if p := m.st.Master(); p != m.master.Load() {
		m.publishMaster(p)
	}
	if len(m.taps) > 0 {
		m.feedTaps(h, out)
	}
	if m.aof.log != nil { // appendonly yes: one check when off
		l, upto = m.record(cmd)
	}
	m.cmds.Add(uint64(h.count))
	m.count.Add(1)
	return out, l, upto
}

// readTx runs a transaction of read commands on this replica's state under
// the read lock, with the caller's decoder and environment (its clock and
// generator), appending the EXEC reply to out. It is not replicated and
// counts as nothing applied.
func (m *Machine) readTx(out, p []byte, d *decoder, env *store.Env) ([]byte, error) {
	h, err := d.decode(p)
	if err != nil {
		return out, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return d.exec(out, m.st, h, env, false), nil
}

// execRead runs one read command in database db on this replica's state
// under the read lock, seeing db through the caller's view (store.View): a
// connection's hot path, so no closure is built per read.
func (m *Machine) execRead(out []byte, env *store.Env, db int, view *store.Store, args [][]byte) []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if db == 0 {
		return m.st.Exec(out, env, args)
	}
	out = m.st.View(db, view).Exec(out, env, args)
	// An idle connection's view must not keep databases alive that a
	// snapshot's Restore replaced.
	*view = store.Store{}
	return out
}

// read runs fn under the read lock (for the rare looks: INFO, the sweep).
func (m *Machine) read(fn func(st *store.Store)) {
	m.mu.RLock()
	fn(m.st)
	m.mu.RUnlock()
}

// readDB runs fn under the read lock on database db of the store, as a
// connection that selected it sees it (view is the caller's, see
// store.View).
func (c *conn) readDB(fn func(st *store.Store)) {
	m := c.s.cfg.Machine
	m.mu.RLock()
	fn(m.st.View(int(c.state.db.Load()), &c.view))
	c.view = store.Store{} // hold no database past the read (as execRead)
	m.mu.RUnlock()
}

// Snapshot implements consensus.StateMachine.
func (m *Machine) Snapshot(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.st.Snapshot(w); err != nil {
		return fmt.Errorf("redis snapshot: %w", err)
	}
	return nil
}

// Restore implements consensus.StateMachine.
func (m *Machine) Restore(r io.Reader) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := store.New()
	if err := st.Restore(r); err != nil {
		return fmt.Errorf("redis restore: %w", err)
	}
	st.AdoptACLUsers(m.st) // the connections keep their users (store/acl.go)
	m.st = st
	m.publishMaster(st.Master())
	if m.aof.log != nil {
		m.rewriteLocked() // the file's base is the state transferred
	}
	return nil
}

// Digest is the store's state digest (equal on replicas in the same state).
func (m *Machine) Digest() [32]byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.Digest()
}
