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
//     store's gomu.reload, proposed as a write.
//   - SET-ACTIVE-EXPIRE 0|1 stops or resumes the leader's expiry sweeps.
//   - SLEEP seconds sleeps this connection (Redis's whole server sleeps);
//     inside MULTI it moves the transaction's clock on (execDebugSleep).
//   - DIGEST-VALUE key ... digests each key's value (store.ValueDigest).
//   - LOADAOF rebuilds this replica's state from its append-only file
//     (aof.go), not replicated, as Redis's.
//   - PROTOCOL type replies a sample of a RESP type, as Redis does.
//   - QUICKLIST-PACKED-THRESHOLD, CHANGE-REPL-ID, JMAP change nothing
//     here (no quicklist nodes, no replication IDs, no JVM) and answer OK.
func (c *conn) debugSub(out *[]byte, args [][]byte) bool {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "reload" && len(args) >= 2:
		*out = c.proposeInternal(*out, [][]byte{[]byte(store.ReloadCommand)})
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
// this connection's protocol.
func (c *conn) appendDebugProtocol(b []byte, name string) []byte {
	resp3 := c.proto.Load() == 3
	appendBool := func(b []byte, t bool) []byte {
		switch {
		case resp3 && t:
			return append(b, "#t\r\n"...)
		case resp3:
			return append(b, "#f\r\n"...)
		case t:
			return resp.AppendInt(b, 1)
		}
		return resp.AppendInt(b, 0)
	}
	aggregate := func(b []byte, typ byte, n int) []byte {
		if !resp3 {
			return resp.AppendArrayLen(b, n)
		}
		return appendRESP3Len(b, typ, n)
	}
	switch name {
	case "string":
		return resp.AppendBulkString(b, "Hello World")
	case "integer":
		return resp.AppendInt(b, 12345)
	case "double":
		if resp3 {
			return append(b, ",3.141\r\n"...)
		}
		return resp.AppendBulkString(b, "3.141")
	case "bignum":
		if resp3 {
			return append(b, "(1234567999999999999999999999999999999\r\n"...)
		}
		return resp.AppendBulkString(b, "1234567999999999999999999999999999999")
	case "null":
		if resp3 {
			return append(b, "_\r\n"...)
		}
		return resp.AppendNull(b)
	case "array", "set":
		typ := byte('*')
		if name == "set" {
			typ = '~'
		}
		b = aggregate(b, typ, 3)
		for j := range 3 {
			b = resp.AppendInt(b, int64(j))
		}
		return b
	case "map":
		b = c.appendMapLen(b, 3)
		for j := range 3 {
			b = resp.AppendInt(b, int64(j))
			b = appendBool(b, j == 1)
		}
		return b
	case "attrib":
		if resp3 {
			b = append(b, "|1\r\n"...)
			b = resp.AppendBulkString(b, "key-popularity")
			b = resp.AppendArrayLen(b, 2)
			b = resp.AppendBulkString(b, "key:123")
			b = resp.AppendInt(b, 90)
		}
		return resp.AppendBulkString(b, "Some real reply following the attribute")
	case "push":
		if !resp3 {
			return resp.AppendError(b, "ERR RESP2 is not supported by this command")
		}
		b = append(b, ">2\r\n"...)
		b = resp.AppendBulkString(b, "server-cpu-usage")
		b = resp.AppendInt(b, 42)
		return resp.AppendBulkString(b, "Some real reply following the push reply")
	case "true", "false":
		return appendBool(b, name == "true")
	case "verbatim":
		return c.appendText(b, []byte("This is a verbatim\nstring"))
	}
	return resp.AppendError(b, "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false")
}
