package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
)

// Writing a whole RDB file, as Redis 7.0 writes dump.rdb (SAVE, BGSAVE,
// SHUTDOWN SAVE); WalkRDB (rdbfile.go) reads it back. The layout:
//
//	"REDIS0010"
//	AUX fields: redis-ver, redis-bits, ctime, used-mem, aof-base
//	FUNCTION2 per function library (its code), in name order
//	per non-empty database, in index order:
//	  SELECTDB index, RESIZEDB keys and keys with a TTL
//	  per key, in sorted key order: EXPIRETIME_MS when it has a TTL,
//	  then its type byte, its name and its value's encoding: DUMP's body
//	  (dumpObject), so the file holds the encodings DUMP gives
//	EOF, then the CRC-64 of everything before it, little-endian
//
// Keys logically expired but not yet deleted are written with their
// expiry, as Redis writes them; a loader drops them (RESTORE ABSTTL of a
// past time deletes). No LRU/LFU data is written.

// rdbRedisVersion is the redis-ver aux field: the Redis this file's
// encodings are.
const rdbRedisVersion = "7.0.15"

// RDBInfo is what an RDB file's aux fields say besides the data.
type RDBInfo struct {
	// NowMs is ctime's time (Unix ms; written in seconds), UsedMem
	// used-mem (bytes).
	NowMs, UsedMem int64
}

// AppendRDB appends the whole RDB file of the store to dst: its data in
// every database and its function libraries. It reads the store (the
// caller holds the read lock) and never changes it.
func (s *Store) AppendRDB(dst []byte, info RDBInfo) ([]byte, error) {
	start := len(dst)
	dst = fmt.Appendf(dst, "REDIS%04d", rdbVersion)
	dst = appendRDBAux(dst, "redis-ver", []byte(rdbRedisVersion))
	dst = appendRDBAux(dst, "redis-bits", []byte("64"))
	dst = appendRDBAux(dst, "ctime", strconv.AppendInt(nil, info.NowMs/1000, 10))
	dst = appendRDBAux(dst, "used-mem", strconv.AppendInt(nil, info.UsedMem, 10))
	dst = appendRDBAux(dst, "aof-base", []byte("0"))
	for _, name := range s.scripts.libraryNames() {
		dst = append(dst, rdbOpFunction2)
		dst = appendRDBString(dst, s.scripts.libs[name].code)
	}
	for i, ks := range s.dbs {
		if len(ks.keys) == 0 {
			continue
		}
		var err error
		if dst, err = ks.appendRDB(dst, i); err != nil {
			return dst[:start], err
		}
	}
	dst = append(dst, rdbOpEOF)
	return binary.LittleEndian.AppendUint64(dst, crc64Update(0, dst[start:])), nil
}

// appendRDBAux appends an AUX field; its value's string encoding is an
// integer's when it reads as one, as Redis's rdbSaveAuxField writes it.
func appendRDBAux(dst []byte, key string, val []byte) []byte {
	dst = append(dst, rdbOpAux)
	dst = appendRDBString(dst, []byte(key))
	return appendRDBString(dst, val)
}

// appendRDB appends database db's SELECTDB, RESIZEDB and keys.
func (ks *keyspace) appendRDB(dst []byte, db int) ([]byte, error) {
	keys := make([]string, 0, len(ks.keys))
	expiring := 0
	for k, v := range ks.keys {
		keys = append(keys, k)
		if v.expireAt != 0 {
			expiring++
		}
	}
	slices.Sort(keys)
	dst = append(dst, rdbOpSelectDB)
	dst = appendRDBLen(dst, uint64(db))
	dst = append(dst, rdbOpResizeDB)
	dst = appendRDBLen(dst, uint64(len(keys)))
	dst = appendRDBLen(dst, uint64(expiring))
	for _, k := range keys {
		v := ks.keys[k]
		typ, body, ok := dumpObject(v)
		if !ok {
			return dst, fmt.Errorf("rdb: key %q in db %d: a %s has no RDB encoding", k, db, v.kind)
		}
		if v.expireAt != 0 {
			dst = append(dst, rdbOpExpireTimeMs)
			dst = binary.LittleEndian.AppendUint64(dst, uint64(v.expireAt))
		}
		dst = append(dst, typ)
		dst = appendRDBString(dst, []byte(k))
		dst = append(dst, body...)
	}
	return dst, nil
}
