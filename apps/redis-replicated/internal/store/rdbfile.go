package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Reading a whole RDB file, as a Redis master sends it to a replica in a
// full resync (the server's replicaof.go loads it through the log). Each
// key's value is a DUMP payload's body (its type byte and encoding), so the
// walker finds where it ends with RESTORE's own decoder (loadObject) and
// hands it on as a DUMP payload, for RESTORE to decode again on every
// replica: no second decoder.

// RDB opcodes (Redis 7.0's rdb.h).
const (
	rdbOpFunction2    = 245
	rdbOpFunction     = 246
	rdbOpModuleAux    = 247
	rdbOpIdle         = 248
	rdbOpFreq         = 249
	rdbOpAux          = 250
	rdbOpResizeDB     = 251
	rdbOpExpireTimeMs = 252
	rdbOpExpireTime   = 253
	rdbOpSelectDB     = 254
	rdbOpEOF          = 255
)

// RDBEntry is one thing an RDB file holds that a replica loads: a key
// (Payload set) or a function library (Function set).
type RDBEntry struct {
	DB  int
	Key []byte
	// Payload is the key's value as a DUMP payload (RESTORE's argument).
	Payload []byte
	// ExpireAt is the key's expiry, Unix ms (0: none).
	ExpireAt int64
	// Idle (seconds) and Freq are the key's access data, -1 when absent.
	Idle int64
	Freq int
	// Function is a function library's code (FUNCTION LOAD's argument).
	Function []byte
}

// ErrBadRDB wraps every WalkRDB failure caused by the file's content.
var ErrBadRDB = errors.New("bad RDB")

// WalkRDB reads the RDB file rdb and calls fn for every key and function
// library, in file order; an error of fn stops it and is returned. The
// file's CRC-64 (when not zero) is checked before anything is reported.
func WalkRDB(rdb []byte, fn func(*RDBEntry) error) error {
	if len(rdb) < 9+1 || string(rdb[:5]) != "REDIS" {
		return fmt.Errorf("%w: no REDIS header", ErrBadRDB)
	}
	version := 0
	for _, c := range rdb[5:9] {
		if c < '0' || c > '9' {
			return fmt.Errorf("%w: bad version %q", ErrBadRDB, rdb[5:9])
		}
		version = version*10 + int(c-'0')
	}
	if version < 1 || version > rdbVersion {
		return fmt.Errorf("%w: RDB version %d not supported", ErrBadRDB, version)
	}
	body := rdb
	if version >= 5 {
		if len(rdb) < 9+1+8 {
			return fmt.Errorf("%w: truncated", ErrBadRDB)
		}
		body = rdb[:len(rdb)-8]
		want := binary.LittleEndian.Uint64(rdb[len(rdb)-8:])
		if want != 0 && crc64Update(0, body) != want {
			return fmt.Errorf("%w: CRC-64 mismatch", ErrBadRDB)
		}
	}
	w := rdbWalker{r: &rdbReader{p: body[9:]}, fn: fn, version: version}
	return w.walk()
}

type rdbWalker struct {
	r       *rdbReader
	fn      func(*RDBEntry) error
	version int
	e       RDBEntry
}

func (w *rdbWalker) walk() error {
	r := w.r
	w.e = RDBEntry{Idle: -1, Freq: -1}
	for {
		op := r.byte1()
		if r.err != nil {
			return fmt.Errorf("%w: %v", ErrBadRDB, r.err)
		}
		switch op {
		case rdbOpEOF:
			if len(r.p) != 0 {
				return fmt.Errorf("%w: %d bytes after EOF", ErrBadRDB, len(r.p))
			}
			return nil
		case rdbOpSelectDB:
			db := r.length()
			if db >= Databases {
				return fmt.Errorf("%w: database %d", ErrBadRDB, db)
			}
			w.e.DB = int(db)
		case rdbOpResizeDB:
			r.length()
			r.length()
		case rdbOpAux:
			r.str()
			r.str()
		case rdbOpExpireTimeMs:
			w.e.ExpireAt = int64(binary.LittleEndian.Uint64(r.take(8)))
		case rdbOpExpireTime:
			w.e.ExpireAt = int64(binary.LittleEndian.Uint32(r.take(4))) * 1000
		case rdbOpIdle:
			w.e.Idle = int64(r.length())
		case rdbOpFreq:
			w.e.Freq = int(r.byte1())
		case rdbOpFunction2:
			code := r.str()
			if r.err == nil {
				e := RDBEntry{DB: w.e.DB, Function: code, Idle: -1, Freq: -1}
				if err := w.fn(&e); err != nil {
					return err
				}
			}
		case rdbOpFunction, rdbOpModuleAux:
			return fmt.Errorf("%w: opcode %d (pre-release functions or modules) not supported", ErrBadRDB, op)
		default:
			if err := w.key(op); err != nil {
				return err
			}
		}
		if r.err != nil {
			return fmt.Errorf("%w: %v", ErrBadRDB, r.err)
		}
	}
}

// key reads a key and its value of RDB type typ and reports it.
func (w *rdbWalker) key(typ byte) error {
	r := w.r
	key := r.str()
	if r.err != nil {
		return fmt.Errorf("%w: key: %v", ErrBadRDB, r.err)
	}
	start := r.p
	if _, err := loadObject(r, typ); err != nil || r.err != nil {
		if err == nil {
			err = r.err
		}
		return fmt.Errorf("%w: key %q: rdb type %d: %v", ErrBadRDB, key, typ, err)
	}
	n := len(start) - len(r.p)
	payload := make([]byte, 0, 1+n+10)
	payload = append(payload, typ)
	payload = append(payload, start[:n]...)
	payload = AppendDumpFooter(payload)
	w.e.Key, w.e.Payload = bytes.Clone(key), payload
	err := w.fn(&w.e)
	w.e = RDBEntry{DB: w.e.DB, Idle: -1, Freq: -1}
	return err
}

// AppendDumpFooter appends a DUMP payload's footer to body (a type byte
// and its encoding): the RDB version and the CRC-64 of all before it.
func AppendDumpFooter(body []byte) []byte {
	body = binary.LittleEndian.AppendUint16(body, rdbVersion)
	return binary.LittleEndian.AppendUint64(body, crc64Update(0, body))
}

// CRC64 is Redis's CRC-64 (Jones) of p, as RDB files and DUMP payloads
// carry it.
func CRC64(p []byte) uint64 { return crc64Update(0, p) }
