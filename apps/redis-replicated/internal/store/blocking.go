package store

import (
	"bytes"
	"math"
	"math/big"
	"slices"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP, and XREAD and XREADGROUP with BLOCK: streams_block.go)
// keep their waiters in the store: a waiter is
// replicated state, registered, served and removed by log entries, so every
// replica pops the same element for the same waiter.
//
// A blocking command run as it is (inside MULTI, or in a test) never blocks:
// it serves itself at once if it can and answers a null array (a null bulk
// for BLMOVE) otherwise, as Redis answers inside MULTI.
// To block, the server wraps it in the internal
//
//	gomu.block <waiter id> <command> <args...>
//
// which serves at once if it can, and otherwise registers a waiter (its id,
// database, keys and the command with its arguments) and replies nothing:
// an empty reply means "blocked". Waiters queue per key in arrival order.
//
// Arrival is when the command reached the leader, not when its entry
// reached the log: two clients that block one after the other may have
// their gomu.block proposed in the other order, as each connection's
// goroutine proposes its own and the Go scheduler may run the later one
// first, while Redis serves them in the order their commands arrived. So
// the server proposes
//
//	gomu.blockat <waiter id> <arrival> <command> <args...>
//
// where arrival is the kernel's receive time of the command's bytes, in
// Unix ns on the leader's clock, and a waiter joins its queues after every
// waiter that arrived no later than it (at the end, almost always). The
// arrival is part of the waiter's state, kept by snapshots, so every
// replica orders the same waiters alike. gomu.block (without arrival, as
// older builds logged it) joins at the end.
//
// Serving. Only a new value can make a list or sorted-set key ready (a
// waited key is absent or of another type while anybody waits on it: a
// non-empty list or sorted set would have served the waiter), and every
// new value goes through Store.put, which notes the key when somebody
// waits on it (one comparison otherwise). A stream waiter waits on a key
// that may exist: XADD and XGROUP DESTROY note it (signalKey), and so does
// deleting a stream (remove, the expiry sweep, FLUSHDB, SWAPDB), as Redis
// signals them for XREADGROUP's errors. After each command of a batch, or after a whole
// transaction, as Redis after each command and after EXEC, the applier
// calls ServeReady: each noted key, in the order noted, serves its waiters
// longest-waiting first, each by re-running the waiter's command against
// that key, for as long as the key holds what they wait for. BLMOVE's push
// notes its destination in turn, so chains are served as Redis serves them.
// A waiter on several keys is served from the first of them noted ready.
// A served BLMOVE whose destination holds another type gets WRONGTYPE and
// leaves the source untouched, as in Redis 7.0.
//
// The reply goes to the waiter's owner through Env.Unblock, on every
// replica alike; only the replica whose connection registered the id knows
// it. The owner ends a wait that was not served through the log as well:
//
//	gomu.unblock <waiter id> timeout|error
//
// removes the waiter if it is still there (reply :1, else :0) and delivers
// the timeout reply or CLIENT UNBLOCK's error, and a new leader proposes
//
//	gomu.unblockall <owner prefix>
//
// which removes every waiter whose id does not start with the prefix (the
// new leader's own) and delivers ErrLeadershipChanged: whichever of a serve
// and an unblock comes first in the log decides what the client gets.
//
// Adding a blocking command (XREAD … BLOCK, XREADGROUP … BLOCK): build it
// with blockingCmd and a blockSpec: validate (its argument errors), timeout
// (in ms; negative when this call does not block, as XREAD without BLOCK),
// keys (what it waits on), try (serve it from the first ready key; passing
// over keys of another type when serving), and prepare if the arguments
// must be pinned when it blocks (XREAD's $ to the stream's last id). The
// waiter keeps the command's name and arguments and finds the spec in the
// command table again, after a snapshot too. Whatever gives the waited key
// a new value must go through Store.put (a stream's XADD to a new key
// does; an XADD to an existing stream must call s.signalKey(key), since a
// stream waiter waits on a key that exists).

// Internal commands of blocking, proposed by the server only.
const (
	BlockCommand      = "gomu.block"
	BlockAtCommand    = "gomu.blockat"
	UnblockCommand    = "gomu.unblock"
	UnblockAllCommand = "gomu.unblockall"
)

// Replies delivered to waiters that were not served.
const (
	// ErrClientUnblocked is what CLIENT UNBLOCK … ERROR delivers.
	ErrClientUnblocked = "UNBLOCKED client unblocked via CLIENT UNBLOCK"
	// ErrLeadershipChanged is what gomu.unblockall delivers, and what a
	// server's waiting connection answers when its replica lost the lead.
	ErrLeadershipChanged = "UNBLOCKED gomu: leadership changed, retry the command"
)

// blockSpec says how a Blocking command waits and is served.
type blockSpec struct {
	// validate checks the arguments, timeout included, in the order Redis
	// does: the error reply's message, or "".
	validate func(args [][]byte) string
	// timeout is the timeout of validated args in ms (0: forever; < 0: it
	// does not block, as XREAD without BLOCK will not).
	timeout func(args [][]byte) int64
	// prepare, if set, rewrites validated args before they are kept in a
	// waiter: what must be decided when the command blocks, not when it is
	// served (XREAD's $ becomes the stream's last id). Nil: kept as given.
	prepare func(s *Store, e *Env, args [][]byte) [][]byte
	// keys are the keys validated args wait on, in argument order.
	keys func(args [][]byte) [][]byte
	// try serves the command from the first of keys that holds what it
	// waits for and reports whether it appended a reply. At once (serving
	// false) a key of another type answers WRONGTYPE; when a waiter is
	// served (serving true) it is passed over, as Redis leaves a client
	// blocked on a key that became another type. Nothing changes when it
	// reports false.
	try func(s *Store, e *Env, dst []byte, args, keys [][]byte, serving bool) ([]byte, bool)
	// nullBulk: when it may not block (inside MULTI) and nothing is ready,
	// it answers a null bulk (BLMOVE), not a null array.
	nullBulk bool
}

// notBlocked is the reply of a command that may not block and found
// nothing to serve it.
func (sp *blockSpec) notBlocked(dst []byte) []byte {
	if sp.nullBulk {
		return resp.AppendNull(dst)
	}
	return resp.AppendNullArray(dst)
}

// timedOut is the reply of a waiter whose time ran out: a null array, for
// BLMOVE too, as Redis 7.0 answers a blocked client's timeout.
func timedOut(dst []byte) []byte { return resp.AppendNullArray(dst) }

// blockingCmd builds a Blocking command around spec.
func blockingCmd(c *Command, spec *blockSpec) *Command {
	c.Flags |= Blocking
	c.blocking = spec
	c.run = func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.runBlocking(e, dst, args, c) }
	return c
}

// waiter is one blocked command.
type waiter struct {
	id   string
	db   int // the database its keys are in (0: the only one today)
	cmd  *Command
	args [][]byte // the command and its arguments, owned
	keys []string
	// at is its arrival, in Unix ns on the leader's clock.
	at int64
	// prev and next link the waiters in arrival order.
	prev, next *waiter
}

// blockState is the store's waiters.
type blockState struct {
	n           int
	byID        map[string]*waiter
	byKey       map[string][]*waiter // each in arrival order
	first, last *waiter
	// ready are the waited keys given a new value since the last
	// ServeReady, in that order; those from readyAt on are not served yet.
	ready   []string
	readyAt int
	// registering is the id gomu.block is running its command for: nil
	// outside it, where a blocking command never blocks; registeringAt is
	// its arrival (appendArrival: at the end).
	registering   []byte
	registeringAt int64
	buf           []byte // serve replies, handed to Env.Unblock
}

func init() {
	register(
		&Command{Name: BlockCommand, Arity: -3, Flags: Write | Internal, Group: "generic",
			Summary: "Run a blocking command, registering its waiter if it cannot be served now", run: cmdBlock},
		&Command{Name: BlockAtCommand, Arity: -4, Flags: Write | Internal, Group: "generic",
			Summary: "Run a blocking command that arrived at the given time, registering its waiter in arrival order if it cannot be served now", run: cmdBlockAt},
		&Command{Name: UnblockCommand, Arity: 3, Flags: Write | Internal, Group: "generic",
			Summary: "End a waiter's wait with its timeout reply or CLIENT UNBLOCK's error", run: cmdUnblock},
		&Command{Name: UnblockAllCommand, Arity: 2, Flags: Write | Internal, Group: "generic",
			Summary: "End the waits of every waiter not owned by the new leader", run: cmdUnblockAll},
	)
}

// appendArrival is the arrival of a waiter that joins at the end.
const appendArrival = math.MinInt64

// cmdBlock is gomu.block <id> <command> <args...>.
func cmdBlock(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	return s.block(e, dst, args[1], appendArrival, args[2:])
}

// cmdBlockAt is gomu.blockat <id> <arrival> <command> <args...>.
func cmdBlockAt(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	at, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil || at == appendArrival {
		return resp.AppendError(dst, "ERR gomu: arrival is not a time in ns")
	}
	return s.block(e, dst, args[1], at, args[3:])
}

// block runs the blocking command args for waiter id, which arrived at at.
func (s *Store) block(e *Env, dst []byte, id []byte, at int64, args [][]byte) []byte {
	c := Lookup(args[0])
	if c == nil || c.blocking == nil {
		return resp.AppendError(dst, "ERR gomu: not a blocking command")
	}
	if !c.CheckArity(len(args)) {
		return AppendWrongArity(dst, c.Name)
	}
	if s.blk.byID[string(id)] != nil {
		return resp.AppendError(dst, "ERR gomu: waiter id in use")
	}
	s.blk.registering, s.blk.registeringAt = id, at
	dst = c.run(s, e, dst, args)
	s.blk.registering = nil
	return dst
}

// runBlocking is a Blocking command's run: serve at once, else block (in
// gomu.block) or answer the timeout reply.
func (s *Store) runBlocking(e *Env, dst []byte, args [][]byte, c *Command) []byte {
	sp := c.blocking
	if msg := sp.validate(args); msg != "" {
		return resp.AppendError(dst, msg)
	}
	if out, ok := sp.try(s, e, dst, args, sp.keys(args), false); ok {
		return out
	}
	if s.blk.registering == nil || sp.timeout(args) < 0 {
		return sp.notBlocked(dst)
	}
	if sp.prepare != nil {
		args = sp.prepare(s, e, args)
	}
	s.addWaiter(string(s.blk.registering), s.keyspace.db, s.blk.registeringAt, c, args)
	return dst
}

// addWaiter registers a waiter that arrived at at (appendArrival: now),
// copying args: after every waiter that arrived no later, in each of its
// keys' queues and in the list of all.
func (s *Store) addWaiter(id string, db int, at int64, c *Command, args [][]byte) {
	b := s.blk
	if b.byID == nil {
		b.byID = make(map[string]*waiter)
		b.byKey = make(map[string][]*waiter)
	}
	if at == appendArrival && b.last != nil {
		at = b.last.at
	}
	w := &waiter{id: id, db: db, at: at, cmd: c, args: make([][]byte, len(args))}
	for i, a := range args {
		w.args[i] = bytes.Clone(a)
	}
	for _, k := range c.blocking.keys(w.args) {
		ks := waitKey(db, string(k))
		if slices.Contains(w.keys, ks) {
			continue // the same key twice (BLPOP k k 0) waits once
		}
		w.keys = append(w.keys, ks)
		b.byKey[ks] = insertByArrival(b.byKey[ks], w)
	}
	b.byID[id] = w
	prev := b.last
	for prev != nil && prev.at > at {
		prev = prev.prev
	}
	w.prev = prev
	if prev != nil {
		w.next, prev.next = prev.next, w
	} else {
		w.next, b.first = b.first, w
	}
	if w.next != nil {
		w.next.prev = w
	} else {
		b.last = w
	}
	b.n++
}

// insertByArrival inserts w into q, a queue in arrival order, after every
// waiter that arrived no later than w.
func insertByArrival(q []*waiter, w *waiter) []*waiter {
	i := len(q)
	for i > 0 && q[i-1].at > w.at {
		i--
	}
	return slices.Insert(q, i, w)
}

// dropWaiter removes w from every index.
func (s *Store) dropWaiter(w *waiter) {
	b := s.blk
	for _, k := range w.keys {
		q := b.byKey[k]
		for i, x := range q {
			if x == w {
				q = append(q[:i], q[i+1:]...)
				break
			}
		}
		if len(q) == 0 {
			delete(b.byKey, k)
		} else {
			b.byKey[k] = q
		}
	}
	delete(b.byID, w.id)
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.first = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.last = w.prev
	}
	w.prev, w.next = nil, nil
	b.n--
}

// waitKey is how the waiters index a key: its database's index in one
// byte, then the key, so that a key waited on in two databases is two.
func waitKey(db int, key string) string {
	return string(rune(db)) + key // db < 16: one byte
}

// signal notes that key of database db got a new value; put calls it only
// while somebody waits.
func (b *blockState) signal(db int, key string) {
	wk := waitKey(db, key)
	if len(b.byKey[wk]) == 0 {
		return
	}
	for _, k := range b.ready[b.readyAt:] {
		if k == wk {
			return
		}
	}
	b.ready = append(b.ready, wk)
}

// signalKey notes that key's value grew in place: for a value a waiter
// may wait on while it exists (a stream, for XREAD BLOCK), which put does
// not see. Free while nobody waits.
func (s *Store) signalKey(key []byte) {
	if s.blk.n > 0 {
		s.blk.signal(s.keyspace.db, string(key))
	}
}

// signalDeletedStream notes key, just deleted, if it held a stream:
// Redis signals a deleted stream so that its XREADGROUP waiters get
// -UNBLOCKED. Free while nobody waits.
func (s *keyspace) signalDeletedStream(key []byte, old *value) {
	if s.blk.n > 0 && old.kind == kindStream {
		s.blk.signal(s.db, string(key))
	}
}

// signalStreams notes every waited key of ks that holds a stream: before
// FLUSHDB or SWAPDB takes them away, as Redis's
// scanDatabaseForDeletedStreams (a stream that stays gets signalled too,
// which serves only what a new value would).
func (b *blockState) signalStreams(ks *keyspace) {
	if b.n == 0 {
		return
	}
	for w := b.first; w != nil; w = w.next {
		if w.db != ks.db {
			continue
		}
		for _, wk := range w.keys {
			if v := ks.keys[wk[1:]]; v != nil && v.kind == kindStream {
				b.signal(w.db, wk[1:])
			}
		}
	}
}

// signalDatabases notes every waited key of databases a and b that holds
// a value: after SWAPDB, whose keyspaces changed under their waiters.
func (s *Store) signalDatabases(a, b int) {
	if s.blk.n == 0 {
		return
	}
	for w := s.blk.first; w != nil; w = w.next {
		if w.db != a && w.db != b {
			continue
		}
		for _, wk := range w.keys {
			if s.dbs[w.db].keys[wk[1:]] != nil {
				s.blk.signal(w.db, wk[1:])
			}
		}
	}
}

// HasReady reports whether a waited key got a new value since the last
// ServeReady: the applier's one check after a write.
func (s *Store) HasReady() bool { return len(s.blk.ready) > 0 }

// ServeReady serves the waiters of the keys that got a new value, in the
// order they got it, and delivers their replies through e.Unblock. It is
// a write: it must run in log order on every replica, after the command
// (or the transaction) that made the keys ready.
func (s *Store) ServeReady(e *Env) {
	b := s.blk
	for b.readyAt < len(b.ready) {
		key := b.ready[b.readyAt]
		b.readyAt++
		s.serveKey(e, key)
	}
	clear(b.ready)
	b.ready, b.readyAt = b.ready[:0], 0
}

// serveKey serves the waiters of wk (a waitKey), longest-waiting first,
// while the key holds what one of them waits for; it runs them in the
// key's database and leaves the store in the one it found.
func (s *Store) serveKey(e *Env, wk string) {
	keys := [][]byte{[]byte(wk[1:])}
	was := s.keyspace
	s.keyspace = s.dbs[wk[0]]
	defer func() { s.keyspace = was }()
	for {
		served := false
		for _, w := range s.blk.byKey[wk] {
			out, ok := w.cmd.blocking.try(s, e, s.blk.buf[:0], w.args, keys, true)
			if ok {
				s.dropWaiter(w)
				if e.Served != nil {
					e.Served(w.db, w.args, out)
				}
				s.deliver(e, w.id, out)
				s.blk.buf = out[:0]
				served = true
				break
			}
		}
		if !served {
			return
		}
	}
}

// deliver hands a waiter's reply to its owner, if on this replica.
func (s *Store) deliver(e *Env, id string, reply []byte) {
	if e.Unblock != nil {
		e.Unblock(id, reply)
	}
}

// cmdUnblock is gomu.unblock <id> timeout|error.
func cmdUnblock(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	withError := collFold(args[2], "error")
	if !withError && !collFold(args[2], "timeout") {
		return resp.AppendError(dst, errSyntax)
	}
	w := s.blk.byID[string(args[1])]
	if w == nil {
		return resp.AppendInt(dst, 0)
	}
	s.dropWaiter(w)
	var reply []byte
	if withError {
		reply = resp.AppendError(s.blk.buf[:0], ErrClientUnblocked)
	} else {
		reply = timedOut(s.blk.buf[:0])
	}
	s.deliver(e, w.id, reply)
	s.blk.buf = reply[:0]
	return resp.AppendInt(dst, 1)
}

// cmdUnblockAll is gomu.unblockall <owner prefix>.
func cmdUnblockAll(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	var n int64
	for w := s.blk.first; w != nil; {
		next := w.next
		if !bytes.HasPrefix([]byte(w.id), args[1]) {
			s.dropWaiter(w)
			s.blk.buf = resp.AppendError(s.blk.buf[:0], ErrLeadershipChanged)
			s.deliver(e, w.id, s.blk.buf)
			n++
		}
		w = next
	}
	return resp.AppendInt(dst, n)
}

// Waiters is the number of registered waiters, every owner's.
func (s *Store) Waiters() int { return s.blk.n }

// EachWaiter calls fn with every waiter's id, longest-waiting first.
func (s *Store) EachWaiter(fn func(id string)) {
	for w := s.blk.first; w != nil; w = w.next {
		fn(w.id)
	}
}

// BlockTimeout is the timeout of a Blocking command's args in ms (0:
// forever, < 0: it will not block); ok is false when args are not a valid
// blocking command (the store answers them with the error).
func BlockTimeout(args [][]byte) (ms int64, ok bool) {
	c := Lookup(args[0])
	if c == nil || c.blocking == nil || !c.CheckArity(len(args)) || c.blocking.validate(args) != "" {
		return 0, false
	}
	return c.blocking.timeout(args), true
}

// Errors of the timeout argument, worded as Redis 7.0 words them.
const (
	errTimeoutNotFloat = "ERR timeout is not a float or out of range"
	errTimeoutNegative = "ERR timeout is negative"
)

// parseTimeout parses a timeout in seconds as Redis 7.0 does: a long double
// (parseLongDouble, as strtold reads it) times 1000, rounded up to whole
// milliseconds (so 0.001 and 1e-5 are 1 ms, and -0.0001 is 0: forever),
// where a value out of int64's range counts as negative.
func parseTimeout(b []byte) (ms int64, errMsg string) {
	f, ok := parseLongDouble(b)
	if !ok {
		return 0, errTimeoutNotFloat
	}
	if f.IsInf() {
		return 0, errTimeoutNegative
	}
	f.Mul(f, big.NewFloat(1000))
	ms, acc := f.Int64()
	if acc != big.Exact && (ms == math.MaxInt64 || ms == math.MinInt64) {
		return 0, errTimeoutNegative
	}
	if acc == big.Below && ms >= 0 {
		ms++ // ceil of a positive fraction
	}
	if ms < 0 {
		return 0, errTimeoutNegative
	}
	return ms, ""
}
