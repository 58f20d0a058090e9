package server

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// serverCommand is a command the server answers itself: connection state,
// introspection, transactions.
type serverCommand struct {
	name    string
	arity   int
	flags   []string
	inMulti bool // runs (or queues itself) inside MULTI
	summary string
	run     func(c *conn, args [][]byte) (quit bool)
	// statsID is its slot of INFO commandstats counters (stats.go).
	statsID int
}

// noAuth: it runs before authentication (Redis's no_auth flag).
func (h *serverCommand) noAuth() bool {
	return h.name == "auth" || h.name == "hello" || h.name == "quit" || h.name == "reset"
}

func (h *serverCommand) check(argc int) bool {
	if h.arity > 0 {
		return argc == h.arity
	}
	return argc >= -h.arity
}

var serverCommands map[string]*serverCommand

func init() {
	serverCommands = map[string]*serverCommand{}
	for _, h := range []*serverCommand{
		{name: "ping", arity: -1, flags: []string{"fast"}, inMulti: true, summary: "Returns the server's liveliness response.", run: cmdPingEcho},
		{name: "echo", arity: 2, flags: []string{"fast"}, inMulti: true, summary: "Returns the given string.", run: cmdPingEcho},
		{name: "quit", arity: -1, flags: []string{"fast"}, inMulti: true, summary: "Closes the connection.", run: cmdQuit},
		{name: "subscribe", arity: -2, flags: []string{"pubsub", "noscript", "loading", "stale"}, summary: "Listens for messages published to channels.", run: cmdSubscribe},
		{name: "psubscribe", arity: -2, flags: []string{"pubsub", "noscript", "loading", "stale"}, summary: "Listens for messages published to channels that match one or more patterns.", run: cmdSubscribe},
		{name: "unsubscribe", arity: -1, flags: []string{"pubsub", "noscript", "loading", "stale"}, summary: "Stops listening to messages posted to channels.", run: cmdUnsubscribe},
		{name: "punsubscribe", arity: -1, flags: []string{"pubsub", "noscript", "loading", "stale"}, summary: "Stops listening to messages published to channels that match one or more patterns.", run: cmdUnsubscribe},
		{name: "pubsub", arity: -2, flags: []string{}, summary: "A container for Pub/Sub commands.", run: cmdPubSub},
		{name: "select", arity: 2, flags: []string{"loading", "stale", "fast"}, inMulti: true, summary: "Changes the selected database.", run: cmdSelect},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, summary: "Returns information and statistics about the server.", run: cmdInfo},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, summary: "Returns detailed information about all commands.", run: cmdCommand},
		{name: "config", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}, inMulti: true, summary: "A container for server configuration commands.", run: cmdConfig},
		{name: "client", arity: -2, flags: []string{"loading", "stale"}, summary: "A container for client connection commands.", run: cmdClient},
		{name: "auth", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, inMulti: true, summary: "Authenticates the connection.", run: cmdAuth},
		{name: "acl", arity: -2, flags: []string{"noscript", "loading", "stale"}, summary: "A container for Access List Control commands.", run: cmdACL},
		{name: "hello", arity: -1, flags: []string{"noscript", "loading", "stale", "fast"}, summary: "Handshakes with the Redis server.", run: cmdHello},
		{name: "time", arity: 1, flags: []string{"loading", "stale", "fast"}, summary: "Returns the server time.", run: cmdTime},
		{name: "multi", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, inMulti: true, summary: "Starts a transaction.", run: cmdMulti},
		{name: "exec", arity: 1, flags: []string{"noscript", "loading", "stale"}, inMulti: true, summary: "Executes all commands in a transaction.", run: cmdExec},
		{name: "watch", arity: -2, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, inMulti: true, summary: "Monitors changes to keys to determine the execution of a transaction.", run: cmdWatch},
		{name: "unwatch", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, summary: "Forgets about watched keys of a transaction.", run: cmdUnwatch},
		{name: "discard", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "allow_busy"}, inMulti: true, summary: "Discards a transaction.", run: cmdDiscard},
		{name: "sync", arity: 1, flags: []string{"admin", "noscript", "no_async_loading", "no_multi"}, summary: "An internal command used in replication.", run: cmdSync},
		{name: "debug", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"}, inMulti: true, summary: "A container for debugging commands.", run: cmdDebug},
		{name: "save", arity: 1, flags: []string{"admin", "noscript", "no_async_loading", "no_multi"}, summary: "Synchronously saves the database(s) to disk.", run: cmdSave},
		{name: "bgsave", arity: -1, flags: []string{"admin", "noscript", "no_async_loading"}, inMulti: true, summary: "Asynchronously saves the database(s) to disk.", run: cmdBgsave},
		{name: "lastsave", arity: 1, flags: []string{"loading", "stale", "fast"}, summary: "Returns the Unix timestamp of the last successful save to disk.", run: cmdLastsave},
		{name: "shutdown", arity: -1, flags: []string{"admin", "noscript", "loading", "stale", "no_multi", "sentinel", "allow_busy"}, summary: "Synchronously saves the database(s) to disk and shuts down the Redis server.", run: cmdShutdown},
		{name: "bgrewriteaof", arity: 1, flags: []string{"admin", "noscript", "no_async_loading"}, summary: "Asynchronously rewrites the append-only file to disk.", run: cmdBgrewriteaof},
		{name: "replicaof", arity: 3, flags: []string{"admin", "noscript", "stale", "no_async_loading"}, inMulti: true, summary: "Configures a server as replica of another, or promotes it to a master.", run: cmdReplicaOf},
		{name: "slaveof", arity: 3, flags: []string{"admin", "noscript", "stale", "no_async_loading"}, inMulti: true, summary: "Sets a Redis server as a replica of another, or promotes it to being a master.", run: cmdReplicaOf},
		{name: "role", arity: 1, flags: []string{"noscript", "loading", "stale", "fast"}, summary: "Returns the replication role.", run: cmdRole},
		{name: "reset", arity: 1, flags: []string{"noscript", "loading", "stale", "fast", "no_auth", "allow_busy"}, inMulti: true, summary: "Resets the connection.", run: cmdReset},
	} {
		serverCommands[h.name] = h
	}
}

func lookupServerCommand(name []byte) *serverCommand {
	if len(name) > 16 {
		return nil
	}
	var buf [16]byte
	return serverCommands[string(lowerInto(buf[:0], name))]
}

func lowerInto(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

func cmdPingEcho(c *conn, args [][]byte) bool {
	if c.multi {
		// Queued with the transaction (the store knows both).
		c.queued.add(args)
		out := c.reply()
		*out = resp.AppendSimple(*out, "QUEUED")
		return false
	}
	out := c.reply()
	switch {
	case c.subscribed() && c.proto.Load() != 3 && lowerEq(args[0], "ping") && len(args) <= 2:
		*out = appendSubscribedPong(*out, args)
	case lowerEq(args[0], "echo"):
		*out = resp.AppendBulk(*out, args[1])
	case len(args) == 1:
		*out = resp.AppendSimple(*out, "PONG")
	case len(args) == 2:
		*out = resp.AppendBulk(*out, args[1])
	default:
		*out = store.AppendWrongArity(*out, "ping")
	}
	return false
}

func cmdQuit(c *conn, _ [][]byte) bool {
	out := c.reply()
	*out = resp.AppendOK(*out)
	return true
}

// cmdSelect changes the connection's database: its later writes carry it
// in their proposals, its reads see it. Inside MULTI it is queued, and
// switches the database of the commands queued after it when the
// transaction runs (see decoder.exec), and the connection's if it does.
func cmdSelect(c *conn, args [][]byte) bool {
	db, msg := store.ParseDB(args[1])
	if c.multi {
		c.queued.add(args)
		if msg == "" {
			c.queued.db = db
		}
		if c.proto.Load() == 3 {
			c.queuedShapes = append(c.queuedShapes, shapeOf(args))
		}
		c.state.multiLen.Add(1)
		out := c.reply()
		*out = resp.AppendSimple(*out, "QUEUED")
		return false
	}
	out := c.reply()
	if msg != "" {
		*out = resp.AppendError(*out, msg)
		return false
	}
	c.state.db.Store(int32(db))
	*out = resp.AppendOK(*out)
	return false
}

func cmdTime(c *conn, _ [][]byte) bool {
	out := c.reply()
	now := time.Now()
	*out = resp.AppendArrayLen(*out, 2)
	*out = resp.AppendBulkInt(*out, now.Unix())
	*out = resp.AppendBulkInt(*out, int64(now.Nanosecond()/1000))
	return false
}

func cmdMulti(c *conn, _ [][]byte) bool {
	out := c.reply()
	if c.multi {
		*out = resp.AppendError(*out, "ERR MULTI calls can not be nested")
		return false
	}
	c.multi, c.multiDirty, c.multiWrite, c.multiDenyOOM = true, false, false, false
	c.multiDenyStale, c.multiClientWrite = false, false
	c.queuedShapes = c.queuedShapes[:0]
	c.queuedSlots = c.queuedSlots[:0]
	c.queuedLocal = nil
	c.state.multiLen.Store(0)
	if cap(c.queued.buf) > c.s.cfg.MaxProposal {
		c.queued.buf = nil // do not keep a huge transaction's buffer
	}
	c.queued.reset(propTx)
	c.queued.use(int(c.state.db.Load()))
	*out = resp.AppendOK(*out)
	return false
}

func cmdDiscard(c *conn, _ [][]byte) bool {
	out := c.reply()
	if !c.multi {
		*out = resp.AppendError(*out, "ERR DISCARD without MULTI")
		return false
	}
	c.multi, c.watched = false, nil
	c.state.multiLen.Store(-1)
	*out = resp.AppendOK(*out)
	return false
}

// watchedKey is one key WATCH noted, in its database.
type watchedKey struct {
	db    int
	key   []byte
	stamp store.WatchStamp
}

// cmdWatch notes the keys' stamps (store.WatchStamp): EXEC then runs its
// transaction only if they still hold, decided where the transaction is
// applied, on every replica alike. The stamps are read as a read is, after
// the batch's read barrier, so they are at least as new as every write
// acknowledged before WATCH.
func cmdWatch(c *conn, args [][]byte) bool {
	out := c.reply()
	if c.multi {
		*out = resp.AppendError(*out, "ERR WATCH inside MULTI is not allowed")
		return false
	}
	if !c.readBarrier(out) {
		return false
	}
	c.env.NowMs = time.Now().UnixMilli()
	db := int(c.state.db.Load())
	c.s.cfg.Machine.read(func(st *store.Store) {
		for _, k := range args[1:] {
			c.watched = append(c.watched, watchedKey{db: db, key: append([]byte(nil), k...), stamp: st.Stamp(&c.env, db, k)})
		}
	})
	*out = resp.AppendOK(*out)
	return false
}

func cmdUnwatch(c *conn, _ [][]byte) bool {
	c.watched = nil
	out := c.reply()
	*out = resp.AppendOK(*out)
	return false
}

// withWatch returns the transaction to run: the queued commands, behind
// the watch check when keys are watched.
func (c *conn) withWatch(watched []watchedKey) *proposal {
	if len(watched) == 0 {
		return &c.queued
	}
	p := &c.watchTx
	p.reset(propTx)
	args := make([][]byte, 0, 1+3*len(watched))
	args = append(args, []byte(watchCommand))
	for _, w := range watched {
		args = append(args, strconv.AppendInt(nil, int64(w.db), 10), w.key, w.stamp[:])
	}
	p.add(args)
	p.appendCommands(&c.queued)
	return p
}

// cmdExec runs the queued transaction: replicated as one proposal when it
// writes, locally after one read barrier when it only reads.
func cmdExec(c *conn, _ [][]byte) bool {
	out := c.reply()
	if !c.multi {
		*out = resp.AppendError(*out, "ERR EXEC without MULTI")
		return false
	}
	watched := c.watched
	c.multi, c.watched = false, nil // EXEC unwatches, whatever comes of it
	c.state.multiLen.Store(-1)
	if c.multiDirty {
		*out = resp.AppendError(*out, "EXECABORT Transaction discarded because of previous errors.")
		return false
	}
	if c.multiClientWrite && c.s.minReplicas.Load() != 0 && c.s.lacksReplicas() {
		*out = resp.AppendError(*out, "EXECABORT Transaction discarded because of: "+errNoReplicas)
		return false
	}
	if c.multiDenyOOM && c.s.outOfMemory() {
		*out = resp.AppendError(*out, "EXECABORT Transaction discarded because of: "+errOOM)
		return false
	}
	if c.queued.replies() == 0 && len(watched) == 0 {
		*out = resp.AppendArrayLen(*out, 0)
		return false
	}
	sealed := c.withWatch(watched).seal(time.Now().UnixMilli(), rand.Uint64())
	if c.multiWrite {
		if !c.s.link.Leads() {
			*out = resp.AppendError(*out, "EXECABORT Transaction discarded because of previous errors.")
			return false
		}
		c.fence()
		res, err := c.s.replicate(c.ctx, sealed)
		if err != nil {
			c.queued.buf, c.watchTx.buf = nil, nil // the engine may still read them (see flushWrites)
			*out = resp.AppendError(*out, c.s.replicationError(err))
			return false
		}
		res = c.runLocals(res)
		c.ranTx(res)
		c.countTx(res)
		start := len(*out)
		*out = append(*out, res...)
		if c.proto.Load() == 3 {
			*out = c.resp3Exec(*out, start, c.queuedShapes)
		}
		return false
	}
	if !c.readBarrier(out) {
		return false
	}
	// Only reads: run them on the local state, not replicated, decoded
	// with this connection's buffers (other readers hold the read lock).
	c.env.NowMs = time.Now().UnixMilli()
	start := len(*out)
	res, err := c.s.cfg.Machine.readTx(*out, sealed, &c.txDec, &c.env)
	if err != nil {
		*out = resp.AppendError(*out, "ERR gomu: "+err.Error())
		return false
	}
	*out = res
	if len(c.queuedLocal) > 0 {
		*out = append((*out)[:start], c.runLocals(bytes.Clone(res[start:]))...)
	}
	c.ranTx((*out)[start:])
	c.countTx((*out)[start:])
	if c.proto.Load() == 3 {
		*out = c.resp3Exec(*out, start, c.queuedShapes)
	}
	return false
}

// ranTx notes what a transaction that ran (its EXEC reply res) did to the
// connection: unless the watch check aborted it, its last valid SELECT is
// the connection's database now.
func (c *conn) ranTx(res []byte) {
	if !bytes.HasPrefix(res, []byte("*-1\r\n")) {
		c.state.db.Store(int32(c.queued.db))
	}
}

func cmdHello(c *conn, args [][]byte) bool {
	out := c.reply()
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil {
			*out = resp.AppendError(*out, "ERR Protocol version is not an integer or out of range")
			return false
		}
		if v != 2 && v != 3 {
			*out = resp.AppendError(*out, "NOPROTO unsupported protocol version")
			return false
		}
		var user, password, name []byte
		for i := 2; i < len(args); i++ {
			switch {
			case lowerEq(args[i], "setname") && i+1 < len(args):
				name = args[i+1]
				i++
			case lowerEq(args[i], "auth") && i+2 < len(args):
				user, password = args[i+1], args[i+2]
				i += 2
			default:
				*out = resp.AppendError(*out, "ERR Syntax error in HELLO option '"+string(args[i])+"'")
				return false
			}
		}
		if user != nil && !c.authenticate(user, password) {
			*out = resp.AppendError(*out, errWrongPass)
			return false
		}
		if !c.authed && c.authRequired() {
			*out = resp.AppendError(*out, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
			return false
		}
		if name != nil {
			c.setName(name)
		}
		c.proto.Store(int32(v))
		c.env.RESP3 = v == 3 // a script's reply, in this protocol (store.Env.RESP3)
	}
	role := "master"
	if !c.s.link.Leads() || c.s.cfg.Machine.master.Load() != nil {
		role = "replica"
	}
	*out = c.appendMapLen(*out, 7)
	*out = resp.AppendBulkString(*out, "server")
	*out = resp.AppendBulkString(*out, "redis")
	*out = resp.AppendBulkString(*out, "version")
	*out = resp.AppendBulkString(*out, redisVersion)
	*out = resp.AppendBulkString(*out, "proto")
	*out = resp.AppendInt(*out, int64(c.proto.Load()))
	*out = resp.AppendBulkString(*out, "id")
	*out = resp.AppendInt(*out, c.id)
	*out = resp.AppendBulkString(*out, "mode")
	*out = resp.AppendBulkString(*out, "standalone")
	*out = resp.AppendBulkString(*out, "role")
	*out = resp.AppendBulkString(*out, role)
	*out = resp.AppendBulkString(*out, "modules")
	*out = resp.AppendArrayLen(*out, 0)
	return false
}

// redisVersion is the Redis version whose behaviour the server follows.
const redisVersion = "7.0.15"

func cmdClient(c *conn, args [][]byte) bool {
	out := c.reply()
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "setname" && len(args) == 3:
		for _, b := range args[2] {
			if b < '!' || b > '~' {
				*out = resp.AppendError(*out, "ERR Client names cannot contain spaces, newlines or special characters.")
				return false
			}
		}
		c.setName(args[2])
		*out = resp.AppendOK(*out)
	case sub == "getname" && len(args) == 2:
		if n := c.clientName(); n == "" {
			*out = resp.AppendNull(*out)
		} else {
			*out = resp.AppendBulkString(*out, n)
		}
	case sub == "id" && len(args) == 2:
		*out = resp.AppendInt(*out, c.id)
	case sub == "list":
		*out = c.clientList(*out, args)
	case sub == "info" && len(args) == 2:
		*out = c.appendText(*out, c.appendClientLine(nil, c, "client|info"))
	case sub == "kill" && len(args) >= 3:
		r, self := c.clientKill(args)
		*out = append(*out, r...)
		return self
	case sub == "reply" && len(args) == 3:
		return c.clientReply(out, args[2])
	case sub == "no-evict" && len(args) == 3:
		switch {
		case lowerEq(args[2], "on"):
			c.state.noEvict.Store(true)
		case lowerEq(args[2], "off"):
			c.state.noEvict.Store(false)
		default:
			*out = resp.AppendError(*out, "ERR syntax error")
			return false
		}
		*out = resp.AppendOK(*out)
	case sub == "unblock" && (len(args) == 3 || len(args) == 4):
		*out = append(*out, c.clientUnblock(args)...)
	case sub == "unblock" && len(args) < 3:
		*out = resp.AppendError(*out, "ERR wrong number of arguments for 'client|unblock' command")
	case sub == "unblock":
		*out = resp.AppendError(*out, "ERR unknown subcommand or wrong number of arguments for '"+truncated(args[1])+"'. Try CLIENT HELP.")
	case sub == "setname" || sub == "getname" || sub == "id" || sub == "info" || sub == "kill" || sub == "no-evict" || sub == "reply":
		*out = resp.AppendError(*out, "ERR wrong number of arguments for 'client|"+sub+"' command")
	default:
		*out = resp.AppendError(*out, "ERR unknown subcommand '"+truncated(args[1])+"'. Try CLIENT HELP.")
	}
	return false
}

func truncated(b []byte) string {
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}

// configParams are the parameters CONFIG GET answers: what redis-benchmark
// and common clients ask for, with this server's fixed values.
var configParams = [][2]string{
	{"acllog-max-len", "128"},
	{"save", ""},
	{"appendonly", ""}, // this node's append-only file (aof.go)
	{"appendfsync", ""},
	{"appendfilename", ""},
	{"aof-use-rdb-preamble", ""},
	{"dir", ""},
	{"dbfilename", ""}, // this node's RDB file (rdb.go)
	{"rdb-key-save-delay", ""},
	{"databases", "16"}, // store.Databases
	// This node's memory limit and eviction (maxmemory.go).
	{"maxmemory", ""},
	{"maxmemory-policy", ""},
	{"maxmemory-samples", ""},
	{"lfu-log-factor", ""},
	{"lfu-decay-time", ""},
	{"timeout", "0"},
	{"proto-max-bulk-len", ""}, // filled from the reader's bulk limit
	{"port", ""},               // filled from the listener
	{"bind", ""},
	{"maxclients", "10000"},
	// REPLICAOF's settings (replicaof.go).
	{"slave-read-only", ""},
	{"replica-read-only", ""},
	{"replica-serve-stale-data", ""},
	{"slave-serve-stale-data", ""},
	{"masterauth", ""},
	{"masteruser", ""},
	{"repl-timeout", ""},
	// SYNC's stream pings every this many seconds (sync.go).
	{"repl-ping-replica-period", ""},
	{"repl-ping-slave-period", ""},
	// The store's encoding thresholds (OBJECT ENCODING, set and hash
	// orders follow them): replicated state, read from the store and
	// changed through the log (store.ConfigCommand).
	{"set-max-intset-entries", ""},
	{"hash-max-listpack-entries", ""},
	{"hash-max-ziplist-entries", ""},
	{"hash-max-listpack-value", ""},
	{"hash-max-ziplist-value", ""},
	{"zset-max-listpack-entries", ""},
	{"zset-max-ziplist-entries", ""},
	{"zset-max-listpack-value", ""},
	{"zset-max-ziplist-value", ""},
	{"list-max-listpack-size", ""},
	{"list-max-ziplist-size", ""},
	{"list-compress-depth", ""},
	{"hll-sparse-max-bytes", ""},
	{"stream-node-max-bytes", ""},
	{"stream-node-max-entries", ""},
	// Keyspace notifications: replicated, so every replica produces the
	// same events (store's notify.go).
	{"notify-keyspace-events", ""},
	// How long a script runs before other clients get BUSY.
	{"lua-time-limit", ""},       // filled from the machine
	{"busy-reply-threshold", ""}, // filled from the machine
	// This server's refusal of writes without replicas (minreplicas.go).
	{"min-replicas-to-write", ""},
	{"min-slaves-to-write", ""},
	{"min-replicas-max-lag", ""},
	{"min-slaves-max-lag", ""},
	// This replica's INFO latencystats (stats.go).
	{"latency-tracking", ""},
	{"latency-tracking-info-percentiles", ""},
}

// configValue is parameter name's value here, and whether there is one.
func (c *conn) configValue(name string) (string, bool) {
	for _, p := range configParams {
		if p[0] != name {
			continue
		}
		if store.IsConfigParam(name) {
			var v string
			c.s.cfg.Machine.read(func(st *store.Store) { v, _ = st.ConfigGet(name) })
			return v, true
		}
		switch name {
		case "maxmemory":
			return c.s.maxMemoryValue(), true
		case "maxmemory-policy":
			return store.PolicyNames[c.s.cfg.Machine.access.Policy()], true
		case "maxmemory-samples":
			return strconv.Itoa(int(c.s.evict.samples.Load())), true
		case "lfu-log-factor":
			return strconv.Itoa(int(c.s.cfg.Machine.access.LFULogFactor())), true
		case "lfu-decay-time":
			return strconv.Itoa(int(c.s.cfg.Machine.access.LFUDecayTime())), true
		case "repl-ping-replica-period", "repl-ping-slave-period":
			return strconv.FormatInt(c.s.replPingPeriod.Load(), 10), true
		case "proto-max-bulk-len":
			return strconv.Itoa(resp.DefaultMaxBulk), true
		case "port":
			return portOf(c.s.Addr()), true
		case "lua-time-limit", "busy-reply-threshold":
			return c.s.cfg.Machine.busyThreshold(), true
		case "min-replicas-to-write", "min-slaves-to-write":
			return strconv.FormatInt(c.s.minReplicas.Load(), 10), true
		case "min-replicas-max-lag", "min-slaves-max-lag":
			return strconv.FormatInt(c.s.minReplicasLag.Load(), 10), true
		case "latency-tracking":
			return yesNo(c.s.latencyTracking.Load()), true
		case "acllog-max-len":
			return strconv.FormatInt(c.s.acl.maxLen(), 10), true
		case "latency-tracking-info-percentiles":
			return c.s.percentilesValue(), true
		case "appendonly", "appendfsync", "appendfilename", "aof-use-rdb-preamble", "dir":
			return c.s.cfg.Machine.aofConfigValue(name)
		case "dbfilename":
			return c.s.cfg.Machine.dbFilename(), true
		case "rdb-key-save-delay":
			return strconv.FormatInt(c.s.cfg.Machine.rdb.keyDelayUs.Load(), 10), true
		case "replica-read-only", "slave-read-only", "replica-serve-stale-data", "slave-serve-stale-data", "masterauth", "masteruser", "repl-timeout":
			return c.s.replConfigValue(name)
		case "bind":
			if i := strings.LastIndexByte(c.s.Addr(), ':'); i >= 0 {
				return c.s.Addr()[:i], true
			}
		}
		return p[1], true
	}
	return "", false
}

func cmdConfig(c *conn, args [][]byte) bool {
	if c.multi {
		c.queueLocal(lookupServerCommand(args[0]), args) // multilocal.go
		return false
	}
	out := c.reply()
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "get":
		if len(args) < 3 {
			*out = resp.AppendError(*out, "ERR wrong number of arguments for 'config|get' command")
			return false
		}
		var pairs [][2]string
		replicated := false
		for _, p := range configParams {
			for _, pat := range args[2:] {
				if store.Match(bytes.ToLower(pat), []byte(p[0])) {
					pairs = append(pairs, [2]string{p[0], ""})
					replicated = replicated || store.IsConfigParam(p[0])
					break
				}
			}
		}
		// The encoding thresholds are replicated state: read as a read
		// is, after the batch's read barrier.
		if replicated && !c.readBarrier(out) {
			return false
		}
		for i := range pairs {
			pairs[i][1], _ = c.configValue(pairs[i][0])
		}
		*out = c.appendMapLen(*out, len(pairs))
		for _, p := range pairs {
			*out = resp.AppendBulkString(*out, p[0])
			*out = resp.AppendBulkString(*out, p[1])
		}
	case "set":
		if len(args) < 4 || len(args)%2 != 0 {
			*out = resp.AppendError(*out, "ERR wrong number of arguments for 'config|set' command")
			return false
		}
		// The encoding thresholds are replicated state: they change
		// through the log (proposeInternal). The rest of the
		// configuration is fixed: setting a parameter to the value it
		// has succeeds (as a no-op it is true), anything else is refused,
		// the whole call as Redis refuses it, so no client believes a
		// change took effect.
		replicated := [][]byte{[]byte(store.ConfigCommand)}
		for i := 2; i < len(args); i += 2 {
			name := strings.ToLower(string(args[i]))
			if name == "repl-ping-replica-period" || name == "repl-ping-slave-period" {
				if n, err := strconv.ParseInt(string(args[i+1]), 10, 32); err != nil || n < 1 {
					*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - argument must be between 1 and 2147483647 inclusive")
					return false
				}
				continue
			}
			if name == "latency-tracking" && !lowerEq(args[i+1], "yes") && !lowerEq(args[i+1], "no") {
				*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - argument(s) must be one of the following: yes, no")
				return false
			}
			if name == "latency-tracking-info-percentiles" {
				if _, ok := parsePercentiles(args[i+1]); !ok {
					*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - Invalid latency-tracking-info-percentiles parameters")
					return false
				}
				continue
			}
			if name == "latency-tracking" {
				continue
			}
			if name == "maxmemory" {
				// Checked here, set below once the whole call is valid.
				if _, ok := parseMemoryValue(args[i+1]); !ok {
					*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - argument must be a memory value")
					return false
				}
				continue
			}
			if msg := checkEvictionParam(name, args[i+1]); msg != "" {
				*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - "+msg)
				return false
			} else if evictionParams[name] {
				continue
			}
			if store.IsConfigParam(name) {
				canon, v, errText := store.ParseConfig(name, args[i+1])
				if errText != "" {
					*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - "+errText)
					return false
				}
				replicated = append(replicated, []byte(canon), strconv.AppendInt(nil, v, 10))
				continue
			}
			if known, errText := checkReplConfig(name, args[i+1]); known {
				if errText != "" {
					*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - "+errText)
					return false
				}
				continue
			}
			if known, errText := checkAOFConfig(name, args[i+1]); known {
				if errText != "" {
					*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - "+errText)
					return false
				}
				continue
			}
			v, known := c.configValue(name)
			switch {
			case !known:
				*out = resp.AppendError(*out, "ERR Unknown option or number of arguments for CONFIG SET - '"+truncated(args[i])+"'")
				return false
			case name == "acllog-max-len":
				// This replica's own log (acl.go).
				n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
				if err != nil || n < 0 {
					*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - argument couldn't be parsed into an integer")
					return false
				}
				c.s.acl.setMaxLen(n)
			case name == "lua-time-limit" || name == "busy-reply-threshold":
				// This replica's own setting, as in Redis: it decides
				// when its clients get BUSY, nothing replicated.
				if !c.s.cfg.Machine.setBusyThreshold(args[i+1]) {
					*out = resp.AppendError(*out, "ERR Invalid argument '"+truncated(args[i+1])+"' for CONFIG SET '"+name+"' - argument couldn't be parsed into an integer")
					return false
				}
			case strings.HasPrefix(name, "min-replicas-") || strings.HasPrefix(name, "min-slaves-"):
				if msg := c.s.setMinReplicas(args[i+1], strings.HasSuffix(name, "-lag")); msg != "" {
					*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+truncated(args[i])+"') - "+msg)
					return false
				}
			case string(args[i+1]) != v:
				*out = resp.AppendError(*out, "ERR gomu: CONFIG SET "+name+" is not supported: this server's value is fixed ('"+v+"')")
				return false
			}
		}
		// The replicated part first: this node's own settings change only
		// once it took effect, so the call stays all or nothing.
		if len(replicated) > 1 {
			if res := c.proposeInternal(nil, replicated); len(res) == 0 || res[0] != '+' {
				*out = append(*out, res...)
				return false
			}
		}
		evict := false
		for i := 2; i < len(args); i += 2 {
			if errText := c.s.cfg.Machine.setAOFConfig(strings.ToLower(string(args[i])), args[i+1]); errText != "" {
				*out = resp.AppendError(*out, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - "+errText)
				return false
			}
		}
		for i := 2; i < len(args); i += 2 {
			if lowerEq(args[i], "maxmemory") {
				c.s.setMaxMemory(args[i+1])
				evict = true
			}
			c.s.setEvictionParam(strings.ToLower(string(args[i])), args[i+1])
			if known, _ := checkReplConfig(strings.ToLower(string(args[i])), args[i+1]); known {
				c.s.setReplConfig(strings.ToLower(string(args[i])), args[i+1])
			}
			if lowerEq(args[i], "latency-tracking") {
				c.s.latencyTracking.Store(lowerEq(args[i+1], "yes"))
			}
			if lowerEq(args[i], "latency-tracking-info-percentiles") {
				ps, _ := parsePercentiles(args[i+1])
				c.s.latencyPercentiles.Store(&ps)
			}
			if lowerEq(args[i], "repl-ping-replica-period") || lowerEq(args[i], "repl-ping-slave-period") {
				n, _ := strconv.ParseInt(string(args[i+1]), 10, 32)
				c.s.replPingPeriod.Store(n)
			}
		}
		if evict && c.s.outOfMemory() {
			c.evictToFit() // a lower limit evicts at once, as Redis's does
		}
		*out = resp.AppendOK(*out)
	case "resetstat":
		c.resetStats()
		*out = resp.AppendOK(*out)
	case "rewrite":
		*out = resp.AppendOK(*out)
	default:
		*out = resp.AppendError(*out, "ERR unknown subcommand '"+truncated(args[1])+"'. Try CONFIG HELP.")
	}
	return false
}

// configSetReplicated proposes the internal store command args (CONFIG
// SET of replicated parameters, or another server-made write) as a
// proposal of its own and appends its reply.
func (c *conn) proposeInternal(out []byte, args [][]byte) []byte {
	if !c.s.link.Leads() {
		return resp.AppendError(out, c.s.readOnlyError())
	}
	var p proposal
	p.reset(propBatch)
	p.add(args)
	res, err := c.s.replicate(c.ctx, p.seal(time.Now().UnixMilli(), rand.Uint64()))
	if err != nil {
		return resp.AppendError(out, c.s.replicationError(err))
	}
	return append(out, res...)
}

func cmdDebug(c *conn, args [][]byte) bool {
	if c.multi {
		return queueDebug(c, args)
	}
	out := c.reply()
	if lowerEq(args[1], "object") && len(args) == 3 {
		return debugObject(c, out, args[2])
	}
	if c.debugSub(out, args) {
		return false
	}
	if !lowerEq(args[1], "digest") || len(args) != 2 {
		*out = resp.AppendError(*out, "ERR gomu: DEBUG supports DIGEST, DIGEST-VALUE, OBJECT, SLEEP, RELOAD, LOADAOF, SET-ACTIVE-EXPIRE, "+
			"QUICKLIST-PACKED-THRESHOLD, SET-DISABLE-DENY-SCRIPTS, PROTOCOL, CHANGE-REPL-ID and JMAP")
		return false
	}
	if !c.readBarrier(out) {
		return false
	}
	d := c.s.cfg.Machine.Digest()
	*out = resp.AppendBulkString(*out, hex.EncodeToString(d[:]))
	return false
}

// allCommands describes every command for COMMAND, in name order.
type commandInfo struct {
	name              string
	arity             int
	flags             []string
	first, last, step int
	group, summary    string
}

func allCommands() []commandInfo {
	var cs []commandInfo
	for _, h := range serverCommands {
		cs = append(cs, commandInfo{name: h.name, arity: h.arity, flags: h.flags, group: "server", summary: h.summary})
	}
	for _, d := range store.Commands() {
		if d.Flags&store.Internal != 0 || serverCommands[d.Name] != nil {
			continue
		}
		cs = append(cs, commandInfo{name: d.Name, arity: d.Arity, flags: storeFlags(d.Flags),
			first: d.FirstKey, last: d.LastKey, step: d.Step, group: d.Group, summary: d.Summary})
	}
	slices.SortFunc(cs, func(a, b commandInfo) int { return strings.Compare(a.name, b.name) })
	return cs
}

func storeFlags(f store.Flags) []string {
	var out []string
	for _, x := range []struct {
		f    store.Flags
		name string
	}{{store.Write, "write"}, {store.ReadOnly, "readonly"}, {store.DenyOOM, "denyoom"}, {store.Blocking, "blocking"},
		{store.Fast, "fast"}, {store.MovableKeys, "movablekeys"}} {
		if f&x.f != 0 {
			out = append(out, x.name)
		}
	}
	return out
}

func appendCommandInfo(dst []byte, ci commandInfo) []byte {
	dst = resp.AppendArrayLen(dst, 10)
	dst = resp.AppendBulkString(dst, ci.name)
	dst = resp.AppendInt(dst, int64(ci.arity))
	dst = resp.AppendArrayLen(dst, len(ci.flags))
	for _, f := range ci.flags {
		dst = resp.AppendSimple(dst, f)
	}
	dst = resp.AppendInt(dst, int64(ci.first))
	dst = resp.AppendInt(dst, int64(ci.last))
	dst = resp.AppendInt(dst, int64(ci.step))
	for range 4 { // ACL categories, tips, key specs, subcommands
		dst = resp.AppendArrayLen(dst, 0)
	}
	return dst
}

func cmdCommand(c *conn, args [][]byte) bool {
	out := c.reply()
	cs := allCommands()
	find := func(name []byte) (commandInfo, bool) {
		i := slices.IndexFunc(cs, func(ci commandInfo) bool { return lowerEq(name, ci.name) })
		if i < 0 {
			return commandInfo{}, false
		}
		return cs[i], true
	}
	if len(args) == 1 {
		*out = resp.AppendArrayLen(*out, len(cs))
		for _, ci := range cs {
			*out = appendCommandInfo(*out, ci)
		}
		return false
	}
	sub := strings.ToLower(string(args[1]))
	switch sub {
	case "count":
		*out = resp.AppendInt(*out, int64(len(cs)))
	case "getkeys":
		if len(args) < 4 { // Redis's arity for it is -4
			*out = store.AppendWrongArity(*out, "command|getkeys")
			return false
		}
		*out = appendGetKeys(*out, args[2:])
	case "info":
		*out = resp.AppendArrayLen(*out, len(args)-2)
		for _, n := range args[2:] {
			if ci, ok := find(n); ok {
				*out = appendCommandInfo(*out, ci)
			} else {
				*out = resp.AppendNullArray(*out)
			}
		}
	case "docs":
		var sel []commandInfo
		if len(args) == 2 {
			sel = cs
		} else {
			for _, n := range args[2:] {
				if ci, ok := find(n); ok {
					sel = append(sel, ci)
				}
			}
		}
		*out = resp.AppendArrayLen(*out, 2*len(sel))
		for _, ci := range sel {
			*out = resp.AppendBulkString(*out, ci.name)
			*out = resp.AppendArrayLen(*out, 4)
			*out = resp.AppendBulkString(*out, "summary")
			*out = resp.AppendBulkString(*out, ci.summary)
			*out = resp.AppendBulkString(*out, "group")
			*out = resp.AppendBulkString(*out, ci.group)
		}
	default:
		*out = resp.AppendError(*out, "ERR unknown subcommand '"+truncated(args[1])+"'. Try COMMAND HELP.")
	}
	return false
}

// cmdInfo answers INFO with the sections clients look at; replication
// describes the gomu cluster.

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// writeReplication writes INFO's replication section: Redis's role fields
// (master / slave with the leader's address) and gomu's own.
func (s *Server) writeReplication(b *strings.Builder) {
	r := s.link.Replica
	if m := s.cfg.Machine.master.Load(); m != nil {
		s.writeReplicaOfInfo(b, m)
		if r == nil {
			fmt.Fprintf(b, "gomu_mode:standalone\r\ngomu_applied_proposals:%d\r\n", s.cfg.Machine.count.Load())
			return
		}
	}
	if r == nil {
		applied := s.cfg.Machine.count.Load()
		fmt.Fprintf(b, "role:master\r\nconnected_slaves:0\r\nmaster_repl_offset:%d\r\n", applied)
		fmt.Fprintf(b, "gomu_mode:standalone\r\ngomu_applied_proposals:%d\r\n", applied)
		return
	}
	st := r.Stats()
	lid, laddr := s.link.LeaderAddr()
	replicaOf := s.cfg.Machine.master.Load() != nil // its role lines are written
	switch {
	case replicaOf:
	case st.Role == consensus.Leader:
		b.WriteString("role:master\r\n")
		active := 0
		for _, p := range st.Peers {
			if p.Active {
				active++
			}
		}
		fmt.Fprintf(b, "connected_slaves:%d\r\n", active)
	default:
		b.WriteString("role:slave\r\n")
		host, port := laddr, ""
		if i := strings.LastIndexByte(laddr, ':'); i >= 0 {
			host, port = laddr[:i], laddr[i+1:]
		}
		fmt.Fprintf(b, "master_host:%s\r\nmaster_port:%s\r\n", host, port)
		link := "down"
		if lid != 0 {
			link = "up"
		}
		fmt.Fprintf(b, "master_link_status:%s\r\n", link)
	}
	// The replication offset is the log index applied here (standalone:
	// the proposals applied), the same on every replica at the same state.
	if !replicaOf {
		fmt.Fprintf(b, "master_repl_offset:%d\r\n", st.Applied)
	}
	fmt.Fprintf(b, "gomu_id:%d\r\ngomu_role:%s\r\ngomu_leader_id:%d\r\ngomu_leader_addr:%s\r\n", st.ID, strings.ToLower(st.Role.String()), lid, laddr)
	fmt.Fprintf(b, "gomu_commit_index:%d\r\ngomu_applied_index:%d\r\ngomu_applied_proposals:%d\r\ngomu_paused:%d\r\n",
		st.Commit, st.Applied, s.cfg.Machine.count.Load(), boolInt(r.Paused()))
	fmt.Fprintf(b, "gomu_catching_up:%d\r\ngomu_state_transfers:%d\r\n", boolInt(st.Behind), st.Transfers)
	fmt.Fprintf(b, "gomu_follower_reads:%s\r\n", s.followerReads())
	// Every replica's client address, its own included, so that a client
	// given one address finds the others.
	b.WriteString("gomu_replica_addrs:")
	ids := []int{st.ID}
	for _, p := range st.Peers {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(b, "%d=%s", id, r.Meta(id))
	}
	b.WriteString("\r\n")
	for _, p := range st.Peers {
		fmt.Fprintf(b, "gomu_peer%d:alive=%d,active=%d,acked=%d,applied=%d,lagging=%d,catching_up=%d\r\n",
			p.ID, boolInt(p.Alive), boolInt(p.Active), p.Acked, p.Applied, boolInt(p.Lagging), boolInt(p.Behind))
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
