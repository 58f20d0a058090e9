package store

import (
	"bytes"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// ReloadCommand is the internal write command DEBUG RELOAD proposes:
// every replica saves its store to a snapshot and loads it back in place,
// as Redis saves and reloads its RDB, in log order.
const ReloadCommand = "gomu.reload"

func init() {
	register(&Command{Name: ReloadCommand, Arity: 1, Flags: Write | Internal, Group: "server",
		Summary: "Save the keyspace to a snapshot and load it back (DEBUG RELOAD)", run: cmdReload})
}

// cmdReload is gomu.reload. Loading drops the keys whose TTL passed (a
// Redis master does not load them) and gives every collection the
// encoding Redis's RDB loading gives it (reencode); the rest of the state
// comes back as it was.
func cmdReload(s *Store, e *Env, dst []byte, _ [][]byte) []byte {
	for _, ks := range s.dbs {
		for k, v := range ks.keys {
			if v.expired(e.NowMs) {
				ks.remove([]byte(k)) // deleting the current key is safe in a range
			}
		}
	}
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		return resp.AppendError(dst, "ERR "+err.Error())
	}
	if err := s.Restore(&buf); err != nil {
		return resp.AppendError(dst, "ERR "+err.Error())
	}
	for _, ks := range s.dbs {
		for _, v := range ks.keys {
			s.reencode(v)
		}
	}
	return resp.AppendOK(dst)
}

// reencode sets v's encoding as Redis 7.0 sets a value's when it loads it
// from an RDB file: a small encoding is kept unless the value has too many
// elements for it now; a large one is turned small when the value fits.
func (s *Store) reencode(v *value) {
	c := &s.cfg
	switch v.kind {
	case kindString:
		v.strEnc = strAuto // loaded strings are encoded by content
	case kindSet:
		n := int64(v.set.len())
		if v.set.intset {
			v.set.intset = n <= c.SetMaxIntsetEntries
		} else {
			v.set.intset = n <= c.SetMaxIntsetEntries && allInts(v.set.members)
		}
	case kindHash:
		h := v.hash
		if !h.table {
			h.table = int64(h.len()) > c.HashMaxListpackEntries
			return
		}
		long := false
		h.each(func(en *hashEntry) {
			if int64(len(en.field)) > c.HashMaxListpackValue || int64(len(en.val)) > c.HashMaxListpackValue {
				long = true
			}
		})
		h.table = int64(h.len()) > c.HashMaxListpackEntries || long
	case kindZSet:
		z := v.zset
		if !z.skiplist {
			z.skiplist = int64(z.len()) > c.ZSetMaxListpackEntries
			return
		}
		long := false
		z.each(func(en zentry) {
			if int64(len(en.member)) > c.ZSetMaxListpackValue {
				long = true
			}
		})
		z.skiplist = int64(z.len()) > c.ZSetMaxListpackEntries || long
	}
}
