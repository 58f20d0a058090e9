package store

import (
	"bytes"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// MIGRATE is the server's (it talks to another server); the store gives it
// what it sends of each key and the write that ends the move.

// MigratedCommand is the internal write command the leader proposes once
// MIGRATE's target took keys (without COPY): "gomu.migrated key stamp
// [key stamp ...]" deletes each key whose WatchStamp is still stamp, so a
// key written since MIGRATE read it stays, on every replica alike. It
// replies with the array of the keys it deleted, which SYNC's stream
// sends as one DEL, as Redis propagates MIGRATE.
const MigratedCommand = "gomu.migrated"

func init() {
	register(&Command{Name: MigratedCommand, Arity: -3, Flags: Write | Internal, Group: "generic",
		Summary: "Delete the keys MIGRATE moved, unless written since (the leader's, after MIGRATE)", run: cmdMigrated})
}

// Migration is what MIGRATE sends of a key: its DUMP payload (DUMP's own
// encoding), its expiry and its stamp, for the deletion after the move.
type Migration struct {
	Key, Payload []byte
	ExpireAt     int64 // Unix ms; 0: none
	Stamp        WatchStamp
}

// ReadMigration reads key in database db for MIGRATE at e's time: false if
// it does not exist (or expired); a message for a value DUMP cannot
// serialize. It only reads, so it may run under a shared lock.
func (s *Store) ReadMigration(e *Env, db int, key []byte) (Migration, bool, string) {
	v := s.dbs[db].lookup(e, key)
	if v == nil {
		return Migration{}, false, ""
	}
	p, ok := dumpPayload(v)
	if !ok {
		return Migration{}, false, "ERR gomu: DUMP of a " + v.kind.String() + " is not supported yet"
	}
	return Migration{Key: key, Payload: p, ExpireAt: v.expireAt, Stamp: s.Stamp(e, db, key)}, true, ""
}

func cmdMigrated(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args)%2 != 1 {
		return AppendWrongArity(dst, MigratedCommand)
	}
	var deleted [][]byte
	for i := 1; i+1 < len(args); i += 2 {
		k := args[i]
		st := s.Stamp(e, s.db, k)
		if st == (WatchStamp{}) || !bytes.Equal(st[:], args[i+1]) {
			continue // gone, or written since MIGRATE read it
		}
		if s.lookupWrite(e, k) != nil {
			s.remove(k)
			s.notify(e, notifyGeneric, "del", k)
			deleted = append(deleted, k)
		}
	}
	dst = resp.AppendArrayLen(dst, len(deleted))
	for _, k := range deleted {
		dst = resp.AppendBulk(dst, k)
	}
	return dst
}

// KeyDenied is the first of positions whose key in args u may not both
// read and write (as MIGRATE's key specs need), -1 if none: for a server
// command's keys, which Check does not find.
func (u *ACLUser) KeyDenied(args [][]byte, positions []int) int {
	if u == nil {
		return -1
	}
	p := u.perms.Load()
	if p.free || p.allKeys {
		return -1
	}
	for _, at := range positions {
		if !p.keyAllowed(args[at], aclAll) {
			return at
		}
	}
	return -1
}
