package store

// The commands across databases (MOVE, SWAPDB), the parsing of a database
// index they share with SELECT and COPY ... DB, and the per-database figures
// INFO keyspace reports.
//
// SELECT itself is connection state, the server's: a connection's writes
// carry their database in the proposal (ExecDB runs them there), its reads
// run on a View of it.

import (
	"math"

	"github.com/gomu-rdma/gomu/internal/resp"
)

func init() {
	register(
		&Command{Name: "move", Arity: 3, Flags: Write | Fast, FirstKey: 1, LastKey: 1, Step: 1,
			Group: "generic", Summary: "Move a key to another database", run: cmdMove},
		&Command{Name: "swapdb", Arity: 3, Flags: Write | Fast, Group: "server",
			Summary: "Swaps two Redis databases", run: cmdSwapDB},
	)
}

// Errors about database indexes, worded as Redis words them.
const (
	errDBRange    = "ERR DB index is out of range"
	errIntRange   = "ERR value is out of range, value must between -2147483648 and 2147483647"
	errSameObject = "ERR source and destination objects are the same"
)

// parseInt32 parses b as Redis's getIntFromObjectOrReply does: notInt is
// the error for what is no integer, and for an integer beyond 32 bits too
// when given, else errIntRange is.
func parseInt32(b []byte, notInt string) (int64, string) {
	n, ok := collInt(b)
	switch {
	case !ok && notInt != "":
		return 0, notInt
	case !ok:
		return 0, errNotInt
	case n < math.MinInt32 || n > math.MaxInt32:
		if notInt != "" {
			return 0, notInt
		}
		return 0, errIntRange
	}
	return n, ""
}

// ParseDB parses a database index as SELECT does: the index, or the error
// SELECT replies with ("" when the index is valid).
func ParseDB(b []byte) (int, string) {
	n, msg := parseInt32(b, "")
	if msg != "" {
		return 0, msg
	}
	if n < 0 || n >= Databases {
		return 0, errDBRange
	}
	return int(n), ""
}

// cmdMove is MOVE key db: the key, its value and TTL, go to database db
// unless a live key of that name is there already.
func cmdMove(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	db, msg := ParseDB(args[2])
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	to := s.dbs[db]
	if to == s.keyspace {
		return resp.AppendError(dst, errSameObject)
	}
	v := s.lookupWrite(e, args[1])
	if v == nil || to.lookupWrite(e, args[1]) != nil {
		return resp.AppendInt(dst, 0)
	}
	s.remove(args[1])
	to.put(args[1], v)
	s.notify(e, notifyGeneric, "move_from", args[1])
	s.notifyDB(e, notifyGeneric, "move_to", args[1], to.db)
	return resp.AppendInt(dst, 1)
}

// cmdSwapDB is SWAPDB index1 index2: the two databases trade contents, so
// that every connection that selected one sees the other's keys, as in
// Redis.
func cmdSwapDB(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	a, msg := parseInt32(args[1], "ERR invalid first DB index")
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	b, msg := parseInt32(args[2], "ERR invalid second DB index")
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	if a < 0 || a >= Databases || b < 0 || b >= Databases {
		return resp.AppendError(dst, errDBRange)
	}
	// Their XREADGROUP waiters are unblocked if their stream goes.
	s.blk.signalStreams(s.dbs[a])
	s.blk.signalStreams(s.dbs[b])
	// The running command stays on its index, now the other's keyspace.
	switch s.keyspace {
	case s.dbs[a]:
		s.keyspace = s.dbs[b]
	case s.dbs[b]:
		s.keyspace = s.dbs[a]
	}
	s.dbs[a], s.dbs[b] = s.dbs[b], s.dbs[a]
	s.dbs[a].db, s.dbs[b].db = int(a), int(b)
	// Waiters stay with their database's index, as clients stay with
	// theirs: what the swap brought them may serve them.
	s.signalDatabases(int(a), int(b))
	return resp.AppendOK(dst)
}

// flush empties the database.
func (s *keyspace) flush() {
	s.blk.signalStreams(s)
	clear(s.keys)
	s.expiring = 0
	s.expiry = s.expiry[:0]
}

// DBStats is what INFO keyspace reports of database db: its keys and the
// keys with a TTL, expired ones not yet deleted included (as Redis counts
// them).
func (s *Store) DBStats(db int) (keys, expires int) {
	ks := s.dbs[db]
	return len(ks.keys), ks.expiring
}
