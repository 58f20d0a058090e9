// Package store is the replicated Redis keyspace: Redis's 16 databases, the
// data types (strings, lists, hashes, sets, sorted sets, streams), key
// expiry and the data commands, with replies byte-identical to Redis 7's
// for the same inputs.
//
// A Store is a deterministic state machine: executing the same commands with
// the same Env on two stores leaves them in the same state (Digest compares
// them). Everything that depends on time or randomness reads it from the Env,
// which the leader fills in once per replicated proposal (its clock, a seed)
// and every replica applies identically. Random choices are made over a
// deterministic order of the candidates, never over Go map iteration order.
//
// Reads (commands without the Write flag) never mutate the store, so a
// server may run them concurrently under a read lock: an expired key is
// treated as absent by a read and deleted only by the next write that
// touches it (judged against that write's Env time) or by the leader's
// periodic expiry proposal (ActiveExpire).
//
// Blocking commands (BLPOP, BZPOPMIN, …; see blocking.go) keep their
// waiters in the store as replicated state: registered by the internal
// gomu.block, served after the write that makes their key ready (the
// applier calls ServeReady) in FIFO order on every replica alike, ended by
// gomu.unblock and gomu.unblockall. Replies reach the owning connection
// through Env.Unblock. Waiters are part of the snapshot and the Digest.
//
// A Store is not safe for concurrent use; the server serializes writes
// against reads.
package store

import (
	"bytes"
	"math/rand/v2"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// Env is the context a command runs in.
type Env struct {
	// NowMs is the time in Unix milliseconds: the leader's clock as carried
	// in the proposal for a write, the local clock for a read.
	NowMs int64
	// Rand is the random source: seeded by the leader's seed for a write,
	// any source for a read.
	Rand *rand.Rand
	// Publish delivers a PUBLISH to this replica's subscribers and returns
	// how many there were (nil: there are none). It changes no state: a
	// replica's subscribers are its connections', not the keyspace's.
	Publish func(channel, message []byte) int
	// Unblock delivers a blocked command's reply to the waiter id's owner
	// (nil, or an id it does not know: the owner is another replica's
	// connection). It changes no state; reply is valid only during the
	// call. See blocking.go.
	Unblock func(id string, reply []byte)
	// ReadOnly: the command runs locally under the read lock, not
	// replicated, so it must not change state (a script run this way
	// refuses writes; see scripting.go).
	ReadOnly bool
	// RESP3: the caller speaks RESP3 (HELLO 3), for a script's reply
	// (lua_resp3.go); the store's other replies are RESP2 whatever it is.
	RESP3 bool
	// Scripts hears of scripts starting and ending (nil: nobody).
	Scripts ScriptObserver
	// Speculation, set with ReadOnly, runs an EVAL, EVALSHA or FCALL of a
	// script that may write as a read: the run is abandoned silently at
	// its first command that must be replicated, and the outcome is noted
	// there for the server (see Speculation).
	Speculation *Speculation
	// OutOfMemory: the server was over maxmemory when a speculative run
	// started; as in Redis, a script without flags is then refused its
	// DenyOOM commands (a replicated run never is: replicas must agree).
	OutOfMemory bool
	// NoReplicas: the leader had fewer good replicas than
	// min-replicas-to-write when a speculative run started; as in Redis,
	// the script's write commands fail with NOREPLICAS.
	NoReplicas bool
	// InScript: a script runs the command (redis.call), which changes a
	// few replies as in Redis (SORT of a set BY a constant sorts).
	InScript bool
	// Deleted hears of every key a write deletes of the server's own
	// accord, because its TTL passed or by eviction (nil: nobody), as
	// Redis propagates a DEL for it: SYNC's stream sends one. It changes
	// no state.
	Deleted func(db int, key []byte)
	// Served hears of every blocked client served (nil: nobody): its
	// command, run in database db, and the reply (valid during the call
	// only), for SYNC's stream as well. It changes no state.
	Served func(db int, args [][]byte, reply []byte)
	// Access is this node's access tracking and maxmemory-policy
	// (access.go; nil: none is kept).
	Access *Access
	// Scripted hears of every write command a script runs (redis.call),
	// in database db, and its reply (valid during the call only; nil:
	// nobody): SYNC's stream sends a script's effects, as Redis 7.0
	// replicates scripts. It changes no state.
	Scripted func(db int, args [][]byte, reply []byte)
	// FollowUp hears of the writes a read asks the leader to propose
	// after it, command key in database db (nil: nobody): the deletion of
	// an expired key it met (ExpireKeysCommand), the cache of an HLL's
	// cardinality (PFCacheCommand), as Redis's reads make them. It changes
	// no state.
	FollowUp func(db int, command string, key []byte)
	// ACL is the user a script runs for (nil: any command, key and
	// channel): its redis.call and redis.acl_check_cmd check this user's
	// permissions (acl.go). A connection sets it for its local runs;
	// gomu.asuser sets it for a replicated one.
	ACL *ACLUser
	// ACLDenied hears of a script's command ACL refused (nil: nobody),
	// for the server's ACL LOG. It changes no state.
	ACLDenied func(user *ACLUser, d ACLDenial, args [][]byte, at int)
	// Calls hears of the commands a script calls, for INFO commandstats
	// and errorstats (nil: nobody). It changes no state.
	Calls CallCounter

	// notifyBuf is where keyspace notifications build their channel
	// names, reused from event to event (notify.go).
	notifyBuf []byte
}

// Flags describe a command.
type Flags uint16

const (
	// Write commands may change the keyspace: they are replicated.
	Write Flags = 1 << iota
	// ReadOnly commands never change it: they run locally.
	ReadOnly
	// DenyOOM commands may grow memory.
	DenyOOM
	// Fast commands run in O(1) or O(log n).
	Fast
	// Random commands' replies depend on randomness.
	Random
	// Internal commands are issued by the server itself (the leader's
	// expiry sweep), never accepted from clients.
	Internal
	// MovableKeys commands find their keys by parsing their arguments
	// (SINTERCARD's numkeys), so COMMAND reports no fixed key positions.
	MovableKeys
	// Blocking commands may wait for a key to be given a value (BLPOP…);
	// their Command has a blockSpec (blocking.go).
	Blocking
	// Scripted commands (EVAL, EVALSHA, FCALL, SCRIPT, FUNCTION) write or
	// only read depending on their arguments and the scripts: a server
	// asks ScriptWrites whether a call must be replicated.
	Scripted
)

// Command is one data command.
type Command struct {
	// Name is the lowercase command name.
	Name string
	// Arity follows Redis: n > 0 means exactly n arguments including the
	// name, n < 0 at least -n.
	Arity int
	Flags Flags
	// FirstKey, LastKey and Step locate the key arguments as COMMAND
	// reports them (LastKey -1: the last argument).
	FirstKey, LastKey, Step int
	// Group is the Redis command group ("string", "generic", "list",
	// "hash", "set", "sorted-set") for COMMAND DOCS.
	Group string
	// Summary is the one-line description for COMMAND DOCS.
	Summary string

	// StatsID numbers the command among all registered, from 0: the
	// server keeps its INFO commandstats counters in a slice by it, so
	// counting a call needs no lookup by name.
	StatsID int

	run func(s *Store, e *Env, dst []byte, args [][]byte) []byte
	// blocking says how a Blocking command waits and is served.
	blocking *blockSpec
}

// table holds every data command, keyed by lowercase name; the files of each
// data type add theirs in init.
var table = map[string]*Command{}

func register(cmds ...*Command) {
	for _, c := range cmds {
		if _, dup := table[c.Name]; dup {
			panic("store: command registered twice: " + c.Name)
		}
		c.StatsID = len(table)
		table[c.Name] = c
		indexCommand(c)
	}
}

// Lookup finds a command by name, in any case; nil if there is none.
func Lookup(name []byte) *Command {
	if len(name) > 32 {
		return nil
	}
	return lookupIndexed(name)
}

// Commands returns every data command, internal ones included.
func Commands() []*Command {
	out := make([]*Command, 0, len(table))
	for _, c := range table {
		out = append(out, c)
	}
	return out
}

// CheckArity reports whether argc arguments (the name included) suit c.
func (c *Command) CheckArity(argc int) bool {
	if c.Arity > 0 {
		return argc == c.Arity
	}
	return argc >= -c.Arity
}

// Databases is the number of databases, as Redis's default "databases".
const Databases = 16

// keyspace is one database: its keys and their TTLs.
type keyspace struct {
	keys map[string]*value
	// expiry indexes the keys with a TTL for the sweep (see expiry.go).
	expiry expiryIndex
	// expiring counts keys with a TTL, so that the expiry sweep knows when
	// there is nothing to do.
	expiring int
	// db is the keyspace's index (SWAPDB swaps keyspaces and their
	// indexes), and blk the store's waiters, whose keys put signals
	// (blocking.go).
	db  int
	blk *blockState
	// cfg is the store's replicated configuration, which decides the
	// keyspace notifications its writes produce, and news the keys
	// created whose "new" events wait for the command's next event
	// (notify.go); both are the store's, shared by its keyspaces.
	cfg  *Config
	news *[]newKey
	// ws is what the store's writes share (access.go).
	ws *writeState
}

// Store is the 16 databases and the server-wide state.
//
// The embedded keyspace is the database the running command selected, so
// that commands write s.keys whatever database they run in. Between
// commands it is always database 0: ExecDB selects another for one command
// only, and readers under a shared lock never change it (they read another
// database through View). A command may select another database for part
// of its work (a script's SELECT) but must leave its own selected when it
// returns (SWAPDB keeps it so).
//
// Server-wide state (not per database) belongs in Store itself; View
// copies Store, so it must hold no lock by value.
type Store struct {
	*keyspace
	dbs [Databases]*keyspace
	// blk is the blocked commands' waiters of every database (blocking.go).
	blk *blockState
	// scripts is the script cache and the function libraries: server-wide
	// state, not a keyspace's (scripting.go).
	scripts *scriptState
	// cfg holds the replicated configuration (config.go).
	cfg Config
	// news is the keyspaces' pending "new" events (notify.go).
	news []newKey
	// ws is what writes share with put (access.go).
	ws *writeState
	// acl is the ACL users (acl.go).
	acl *aclState
	// master is the Redis master REPLICAOF named, nil: none (replicaof.go).
	master *Master
}

// New returns an empty store.
func New() *Store {
	s := &Store{blk: &blockState{}, scripts: newScriptState(), cfg: DefaultConfig(), ws: &writeState{}, acl: newACLState()}
	for i := range s.dbs {
		s.dbs[i] = &keyspace{keys: make(map[string]*value), db: i, blk: s.blk, cfg: &s.cfg, news: &s.news, ws: s.ws}
	}
	s.keyspace = s.dbs[0]
	return s
}

// Exec runs one command (args[0] is its name) and appends its RESP reply to
// dst. Unknown commands and wrong argument counts get Redis's errors. A
// command with the Write flag must only run with a leader's Env, in log order,
// on every replica.
func (s *Store) Exec(dst []byte, e *Env, args [][]byte) []byte {
	if len(args) == 0 {
		return dst
	}
	c := Lookup(args[0])
	if c == nil {
		return AppendUnknownCommand(dst, args)
	}
	if !c.CheckArity(len(args)) {
		return AppendWrongArity(dst, c.Name)
	}
	if c.Flags&Write != 0 && !e.ReadOnly { // not a script's local run, under the shared lock
		s.ws.nowMs, s.ws.access = e.NowMs, e.Access
	}
	return c.run(s, e, dst, args)
}

// ExecDB runs one command as Exec does, in database db (0 <= db <
// Databases). It selects db for that command only, so it needs the store
// to itself: writes, under the exclusive lock.
func (s *Store) ExecDB(dst []byte, e *Env, db int, args [][]byte) []byte {
	s.keyspace = s.dbs[db]
	dst = s.Exec(dst, e, args)
	s.keyspace = s.dbs[0] // SWAPDB may have replaced it
	return dst
}

// View returns s as database db sees it, for running read commands under a
// shared lock: s itself for database 0, else into, filled in as a copy of s
// with db selected (s is not changed, as other readers see it). into is the
// caller's own, reused from read to read so that a read allocates nothing.
func (s *Store) View(db int, into *Store) *Store {
	if db == 0 {
		return s
	}
	*into = *s
	into.keyspace = s.dbs[db]
	return into
}

// Len is the number of keys in the selected database (0 between commands),
// expired ones not yet deleted included (as Redis's DBSIZE).
func (s *Store) Len() int { return len(s.keys) }

// AppendUnknownCommand appends Redis 7's error for an unknown command.
// Redis formats it with printf from C strings: every argument ends at its
// first NUL, the name is cut at 128 bytes, and arguments are quoted while
// their list (not the whole message) is under 128 bytes, each cut to what
// is left of those 128.
func AppendUnknownCommand(dst []byte, args [][]byte) []byte {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.Write(truncate(cString(args[0]), 128))
	b.WriteString("', with args beginning with: ")
	var list []byte
	for _, a := range args[1:] {
		if len(list) >= 128 {
			break
		}
		left := 128 - len(list)
		list = append(list, '\'')
		list = append(list, truncate(cString(a), left)...)
		list = append(list, '\'', ' ')
	}
	b.Write(list)
	return resp.AppendError(dst, b.String())
}

// cString is b as C's %s sees it: up to its first NUL.
func cString(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func truncate(b []byte, n int) []byte {
	if n < 0 {
		n = 0
	}
	if len(b) > n {
		return b[:n]
	}
	return b
}

// AppendWrongArity appends Redis's error for a wrong argument count.
func AppendWrongArity(dst []byte, name string) []byte {
	return resp.AppendError(dst, "ERR wrong number of arguments for '"+name+"' command")
}

// Errors shared by the data types, worded as Redis words them.
const (
	errWrongType  = "WRONGTYPE Operation against a key holding the wrong kind of value"
	errNotInt     = "ERR value is not an integer or out of range"
	errNotFloat   = "ERR value is not a valid float"
	errSyntax     = "ERR syntax error"
	errNoSuchKey  = "ERR no such key"
	errOverflow   = "ERR increment or decrement would overflow"
	errOutOfRange = "ERR index out of range"
)

// kind is a value's data type.
type kind uint8

const (
	kindString kind = iota + 1
	kindList
	kindHash
	kindSet
	kindZSet
	kindStream
)

// value is what a key holds: exactly one of the payload fields, by kind.
type value struct {
	kind     kind
	strEnc   strEncoding // a string's encoding, as far as its content does not tell (encodingOf)
	access   uint32      // LRU or LFU data, atomically (access.go)
	str      []byte
	list     *listValue
	hash     *hashValue
	set      *setValue
	zset     *zsetValue
	stream   *streamValue
	expireAt int64 // Unix ms; 0: no expiry
}

// expired reports whether the TTL passed: strictly after expireAt, as
// Redis decides, so a key set with PX n lives at least n ms even though
// the leader's clock is read in whole milliseconds (rounded down).
func (v *value) expired(nowMs int64) bool { return v.expireAt != 0 && v.expireAt < nowMs }

// lookup returns key's live value or nil, recording the access (the
// node's access data, atomically); it changes no replicated state (for
// reads).
func (s *keyspace) lookup(e *Env, key []byte) *value {
	v := s.lookupNoTouch(e, key)
	if v != nil && e.Access != nil {
		e.Access.touch(v, e.NowMs)
	}
	return v
}

// lookupNoTouch is lookup without recording an access, as Redis's
// LOOKUP_NOTOUCH (OBJECT, TYPE, TTL, EXISTS). An expired key is a miss,
// whose deletion the read asks for (Env.FollowUp).
func (s *keyspace) lookupNoTouch(e *Env, key []byte) *value {
	v := s.keys[string(key)]
	if v == nil || v.expired(e.NowMs) {
		if v != nil && e.FollowUp != nil {
			e.FollowUp(s.db, ExpireKeysCommand, key)
		}
		s.notifyMiss(e, key) // Redis's lookupKeyRead: a keyspace miss
		return nil
	}
	return v
}

// lookupWrite returns key's live value or nil, deleting it first if it
// expired at e's time (for writes).
func (s *keyspace) lookupWrite(e *Env, key []byte) *value {
	v := s.keys[string(key)]
	if v == nil {
		return nil
	}
	if v.expired(e.NowMs) {
		s.remove(key)
		s.notify(e, notifyExpired, "expired", key)
		if e.Deleted != nil {
			e.Deleted(s.db, key)
		}
		return nil
	}
	if e.Access != nil {
		e.Access.touch(v, e.NowMs)
	}
	return v
}

// lookupKind looks key up for a command on values of kind k, as a read
// (lookup) or a write (lookupWrite): the live value or nil, and wrong when
// the key holds another kind.
func (s *Store) lookupKind(e *Env, key []byte, k kind, write bool) (v *value, wrong bool) {
	if write {
		v = s.lookupWrite(e, key)
	} else {
		v = s.lookup(e, key)
	}
	if v != nil && v.kind != k {
		return nil, true
	}
	return v, false
}

// put stores v under key, replacing what was there (and its TTL unless v
// carries one).
func (s *keyspace) put(key []byte, v *value) {
	if old := s.keys[string(key)]; old == nil {
		if s.cfg.NotifyKeyspaceEvents&notifyNew != 0 {
			s.noteNew(key)
		}
	} else if old.expireAt != 0 {
		s.expiring--
	}
	k := string(key) // copies key
	s.keys[k] = v
	if a := s.ws.access; a != nil {
		a.created(v, s.ws.nowMs)
	}
	if s.blk.n > 0 { // an overwritten stream's XREADGROUP waiters too
		s.blk.signal(s.db, k)
	}
	if v.expireAt != 0 {
		s.expiring++
		s.track(k, v.expireAt)
	}
}

// remove deletes key; it reports whether it existed (expired or not).
func (s *keyspace) remove(key []byte) bool {
	v := s.keys[string(key)]
	if v == nil {
		return false
	}
	if v.expireAt != 0 {
		s.expiring--
	}
	delete(s.keys, string(key))
	s.signalDeletedStream(key, v)
	return true
}

// setExpire sets or clears (at == 0) the TTL of v, key's value, keeping
// the count and the expiry index right.
func (s *keyspace) setExpire(key []byte, v *value, at int64) {
	switch {
	case v.expireAt == 0 && at != 0:
		s.expiring++
	case v.expireAt != 0 && at == 0:
		s.expiring--
	}
	if at != 0 && at != v.expireAt {
		s.track(string(key), at)
	}
	v.expireAt = at
}
