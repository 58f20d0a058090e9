// Package store is the replicated Redis keyspace: the data types (strings,
// lists, hashes, sets, sorted sets), key expiry and the data commands, with
// replies byte-identical to Redis 7's for the same inputs.
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

	run func(s *Store, e *Env, dst []byte, args [][]byte) []byte
}

// table holds every data command, keyed by lowercase name; the files of each
// data type add theirs in init.
var table = map[string]*Command{}

func register(cmds ...*Command) {
	for _, c := range cmds {
		if _, dup := table[c.Name]; dup {
			panic("store: command registered twice: " + c.Name)
		}
		table[c.Name] = c
	}
}

// Lookup finds a command by name, in any case; nil if there is none.
func Lookup(name []byte) *Command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil
	}
	lower := buf[:len(name)]
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return table[string(lower)]
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

// Store is a keyspace.
type Store struct {
	keys map[string]*value
	// expiry indexes the keys with a TTL for the sweep (see expiry.go).
	expiry expiryIndex
	// expiring counts keys with a TTL, so that the expiry sweep knows when
	// there is nothing to do.
	expiring int
	// cfg holds the replicated configuration (config.go).
	cfg Config
}

// New returns an empty store.
func New() *Store { return &Store{keys: make(map[string]*value), cfg: DefaultConfig()} }

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
	return c.run(s, e, dst, args)
}

// Len is the number of keys, expired ones not yet deleted included (as
// Redis's DBSIZE).
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
)

// value is what a key holds: exactly one of the payload fields, by kind.
type value struct {
	kind     kind
	strEnc   strEncoding // a string's encoding, as far as its content does not tell (encodingOf)
	str      []byte
	list     *listValue
	hash     *hashValue
	set      *setValue
	zset     *zsetValue
	expireAt int64 // Unix ms; 0: no expiry
}

// expired reports whether the TTL passed: strictly after expireAt, as
// Redis decides, so a key set with PX n lives at least n ms even though
// the leader's clock is read in whole milliseconds (rounded down).
func (v *value) expired(nowMs int64) bool { return v.expireAt != 0 && v.expireAt < nowMs }

// lookup returns key's live value or nil; it never mutates (for reads).
func (s *Store) lookup(e *Env, key []byte) *value {
	v := s.keys[string(key)]
	if v == nil || v.expired(e.NowMs) {
		return nil
	}
	return v
}

// lookupWrite returns key's live value or nil, deleting it first if it
// expired at e's time (for writes).
func (s *Store) lookupWrite(e *Env, key []byte) *value {
	v := s.keys[string(key)]
	if v == nil {
		return nil
	}
	if v.expired(e.NowMs) {
		s.remove(key)
		return nil
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
func (s *Store) put(key []byte, v *value) {
	if old := s.keys[string(key)]; old != nil && old.expireAt != 0 {
		s.expiring--
	}
	k := string(key) // copies key
	s.keys[k] = v
	if v.expireAt != 0 {
		s.expiring++
		s.track(k, v.expireAt)
	}
}

// remove deletes key; it reports whether it existed (expired or not).
func (s *Store) remove(key []byte) bool {
	v := s.keys[string(key)]
	if v == nil {
		return false
	}
	if v.expireAt != 0 {
		s.expiring--
	}
	delete(s.keys, string(key))
	return true
}

// setExpire sets or clears (at == 0) the TTL of v, key's value, keeping
// the count and the expiry index right.
func (s *Store) setExpire(key []byte, v *value, at int64) {
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
