package server

import (
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// debugSub answers the DEBUG subcommands Redis's test suite uses, other
// than DIGEST (cmdDebug) and OBJECT; it reports false for any other, left
// to cmdDebug.
//
//   - RELOAD saves the keyspace and loads it back, on every replica: the
//     store's gomu.reload, proposed as a write (see debugReload).
//   - SET-ACTIVE-EXPIRE 0|1 stops or resumes the leader's expiry sweeps.
//   - SLEEP seconds sleeps this connection (Redis's whole server sleeps);
//     inside MULTI it moves the transaction's clock on (execDebugSleep).
//   - DIGEST-VALUE key ... digests each key's value (store.ValueDigest).
//   - LOADAOF rebuilds this replica's state from its append-only file
//     (aof.go), not replicated, as Redis's.
//   - PROTOCOL type replies a sample of a RESP type, as Redis does.
//   - SET-DISABLE-DENY-SCRIPTS 0|1 lets scripts call DEBUG, on every
//     replica (store.DenyScriptsCommand).
//   - QUICKLIST-PACKED-THRESHOLD, CHANGE-REPL-ID, JMAP change nothing
//     here (no quicklist nodes, no replication IDs, no JVM) and answer OK.
func (c *conn) debugSub(out *[]byte, args [][]byte) bool {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "reload" && len(args) >= 2:
		*out = c.debugReload(*out, args[2:])
	case sub == "set-active-expire" && len(args) == 3:
		n, _ := strconv.Atoi(string(args[2])) // atoi, as Redis reads it
		c.s.noActiveExpire.Store(n == 0)
		*out = resp.AppendOK(*out)
	case sub == "sleep" && len(args) == 3:
		secs, _ := strconv.ParseFloat(string(args[2]), 64)
		if secs > 0 {
			time.Sleep(time.Duration(secs * float64(time.Second)))
		}
		*out = resp.AppendOK(*out)
	case sub == "quicklist-packed-threshold" && len(args) == 3:
		// Redis accepts a memory value up to 4 GB less 1 MB (0: its
		// default).
		if n, ok := parseMemoryValue(args[2]); !ok || n > 1<<32-1<<20 {
			*out = resp.AppendError(*out, "ERR argument must be a memory value bigger than 1 and smaller than 4gb")
		} else {
			*out = resp.AppendOK(*out)
		}
	case (sub == "change-repl-id" || sub == "jmap") && len(args) == 2:
		*out = resp.AppendOK(*out)
	case sub == "digest-value":
		if !c.readBarrier(out) {
			return true
		}
		c.env.NowMs = time.Now().UnixMilli()
		*out = resp.AppendArrayLen(*out, len(args)-2)
		c.readDB(func(st *store.Store) {
			for _, k := range args[2:] {
				d := st.ValueDigest(&c.env, k)
				*out = resp.AppendBulkString(*out, hex.EncodeToString(d[:]))
			}
		})
	case sub == "set-disable-deny-scripts" && len(args) == 3:
		*out = c.proposeInternal(*out, [][]byte{[]byte(store.DenyScriptsCommand), args[2]})
	case sub == "loadaof" && len(args) == 2:
		*out = c.debugLoadAOF(*out)
	case sub == "protocol" && len(args) == 3:
		*out = c.appendDebugProtocol(*out, strings.ToLower(string(args[2])))
	default:
		return false
	}
	return true
}

// queueDebug queues a DEBUG inside MULTI. Only SLEEP can be: it runs in
// the transaction, on every replica, as execDebugSleep; the others act on
// this server, not on the keyspace, and make the transaction fail.
func queueDebug(c *conn, args [][]byte) bool {
	if !lowerEq(args[1], "sleep") || len(args) != 3 {
		c.multiDirty = true
		out := c.reply()
		*out = resp.AppendError(*out, "ERR gomu: only DEBUG SLEEP can be queued in a transaction")
		return false
	}
	c.queued.add(args)
	if c.proto.Load() == 3 {
		c.queuedShapes = append(c.queuedShapes, shapeOf(args))
	}
	c.state.multiLen.Add(1)
	out := c.reply()
	*out = resp.AppendSimple(*out, "QUEUED")
	return false
}

// execDebugSleep runs a DEBUG SLEEP queued in a transaction: nothing
// sleeps, but the transaction's clock moves on by the time given, on
// every replica alike, so the commands after it, and the blocked clients
// served at EXEC, see the keys expired that a Redis sleeping inside EXEC
// would find expired.
func execDebugSleep(out []byte, args [][]byte, env *store.Env) []byte {
	if secs, err := strconv.ParseFloat(string(args[2]), 64); err == nil && secs > 0 && secs < 1e6 {
		env.NowMs += int64(secs * 1000)
	}
	return resp.AppendOK(out)
}

// parseMemoryValue reads a memory value as Redis's memtoull (see
// store.ParseMemory), up to the largest uint64.
func parseMemoryValue(b []byte) (uint64, bool) {
	return store.ParseMemory(b, math.MaxUint64)
}

// appendDebugProtocol is DEBUG PROTOCOL's sample of the RESP type name, in
// this connection's protocol (the store's, which scripts call too).
func (c *conn) appendDebugProtocol(b []byte, name string) []byte {
	return store.AppendDebugProtocol(b, name, c.proto.Load() == 3)
}

// debugReload is DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]. gomu.reload saves
// the state and loads it back as it is, so NOSAVE and MERGE change
// nothing; NOFLUSH without MERGE fails as Redis's load fails then, on the
// function libraries already there (on a key already there Redis's load
// panics; this one loads as usual).
func (c *conn) debugReload(out []byte, opts [][]byte) []byte {
	noflush, merge := false, false
	for _, o := range opts {
		switch {
		case lowerEq(o, "merge"):
			merge = true
		case lowerEq(o, "noflush"):
			noflush = true
		case lowerEq(o, "nosave"):
		default:
			return resp.AppendError(out, "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
		}
	}
	if noflush && !merge {
		libs := 0
		c.s.cfg.Machine.read(func(st *store.Store) { libs = st.LibraryCount() })
		if libs > 0 {
			return resp.AppendError(out, "ERR Error trying to load the RDB dump")
		}
	}
	return c.proposeInternal(out, [][]byte{[]byte(store.ReloadCommand)})
}
