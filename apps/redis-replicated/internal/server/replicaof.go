package server

import (
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// REPLICAOF / SLAVEOF: the whole server (every replica of a cluster)
// becomes a replica of a real Redis master. The role is replicated state
// (the store's replicaof.go: gomu.replicaof through the log, kept in the
// snapshot); the link to the master runs on the leader only (replink.go),
// and everything it receives, the RDB of a full resync and then the
// command stream, is proposed through the log, so every replica has it.
//
// While the role is set, client writes answer READONLY (replica-read-only
// yes), and with replica-serve-stale-data no and the link down, the
// commands Redis does not flag stale-ok answer MASTERDOWN. Both checks
// hide behind one atomic load of Machine.master, nil for a master.

// Errors of a replica, worded as Redis 7.0's.
const (
	errReadOnlyReplica = "READONLY You can't write against a read only replica."
	errMasterDown      = "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
)

// replState is the server's side of REPLICAOF: the replica-* settings
// (this node's, as in Redis) and what the leader's link reports for INFO
// and ROLE.
type replState struct {
	readOnly   atomic.Bool // replica-read-only
	serveStale atomic.Bool // replica-serve-stale-data
	masterAuth atomic.Pointer[string]
	masterUser atomic.Pointer[string]
	timeout    atomic.Int64 // repl-timeout, seconds
	// The link (replink.go), on the replica that runs it.
	state      atomic.Int32 // linkIdle…linkConnected
	lastIO     atomic.Int64 // Unix ms of the last byte from the master
	offset     atomic.Int64 // the master's stream offset applied here
	readOffset atomic.Int64 // … and read
	replid     atomic.Pointer[string]
	downSince  atomic.Int64 // Unix ms the link went down
	syncTotal  atomic.Int64 // the RDB's size (-1: EOF-marked, unknown)
	syncRead   atomic.Int64 // its bytes read so far
}

// Link states, as ROLE names them.
const (
	linkIdle = iota
	linkConnecting
	linkHandshake
	linkSync
	linkConnected
)

var linkStateNames = [...]string{"connect", "connecting", "handshake", "sync", "connected"}

func (r *replState) init() {
	r.readOnly.Store(true)
	r.serveStale.Store(true)
	r.timeout.Store(60) // Redis's default
	empty := ""
	r.masterAuth.Store(&empty)
	r.masterUser.Store(&empty)
	r.replid.Store(&empty)
}

// refuseAsReplica refuses, on a replica of master m, what Redis refuses
// there: client writes (READONLY) and, while the link is down under
// replica-serve-stale-data no, the commands not flagged stale (MASTERDOWN).
// EXEC judges its queued commands, and aborts the transaction.
func (c *conn) refuseAsReplica(m *store.Master, args [][]byte) bool {
	write, stale, ok := c.replicaView(args)
	if !ok {
		return false // an unknown command or a wrong arity: answered as usual
	}
	msg := ""
	switch {
	case write && c.s.repl.readOnly.Load():
		msg = errReadOnlyReplica
	case !stale && !m.LinkUp && !c.s.repl.serveStale.Load():
		msg = errMasterDown
	default:
		return false
	}
	if c.multi && lowerEq(args[0], "exec") {
		c.multi, c.watched = false, nil
		c.state.multiLen.Store(-1)
		out := c.reply()
		*out = resp.AppendError(*out, "EXECABORT Transaction discarded because of: "+msg)
		c.rejected(-1)
		return true
	}
	c.refuse(msg)
	c.rejected(-1)
	return true
}

// replicaView is what a replica asks of a command: whether it writes,
// whether Redis flags it stale-ok, and whether it is a known command of
// the right arity at all.
func (c *conn) replicaView(args [][]byte) (write, stale, ok bool) {
	if h := lookupServerCommand(args[0]); h != nil {
		if h.name == "exec" {
			if !c.multi {
				return false, true, false
			}
			return c.multiClientWrite, !c.multiDenyStale, true
		}
		return false, serverCommandStale(h), h.check(len(args))
	}
	cmd := store.Lookup(args[0])
	if cmd == nil || cmd.Flags&store.Internal != 0 || !cmd.CheckArity(len(args)) {
		return false, false, false
	}
	// A script call is judged by its speculative run, which answers a
	// call that turns out to only read (conn.dispatch refuses the rest).
	write = cmd.Flags&(store.Write|store.Scripted) == store.Write
	if cmd.Name == "publish" {
		write = false // allowed on a Redis replica: it replicates as any PUBLISH here
	}
	return write, storeCommandStale(cmd.Name), true
}

// serverCommandStale: Redis flags the command stale-ok.
func serverCommandStale(h *serverCommand) bool { return slices.Contains(h.flags, "stale") }

// storeCommandStale: the store's commands Redis 7.0 flags stale-ok.
func storeCommandStale(name string) bool {
	switch name {
	case "publish", "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "lastsave":
		return true
	}
	return false
}

// cmdReplicaOf is REPLICAOF (and SLAVEOF) host port | NO ONE: proposed as
// gomu.replicaof, so every replica takes the role; queued inside MULTI as
// Redis 7.0 queues it.
func cmdReplicaOf(c *conn, args [][]byte) bool {
	cmd := [][]byte{[]byte(store.ReplicaOfCommand), args[1], args[2]}
	if lowerEq(args[1], "no") && lowerEq(args[2], "one") {
		cmd[1], cmd[2] = []byte("no"), []byte("one")
	} else if _, err := strconv.ParseInt(string(args[2]), 10, 64); err != nil && !c.multi {
		out := c.reply()
		*out = resp.AppendError(*out, "ERR value is not an integer or out of range")
		return false
	}
	if c.multi {
		c.queueTx(cmd, args, statSlot(lookupServerCommand(args[0]).statsID, args))
		c.multiWrite = true
		out := c.reply()
		*out = resp.AppendSimple(*out, "QUEUED")
		return false
	}
	out := c.reply()
	*out = c.proposeInternal(*out, cmd)
	return false
}

// cmdRole answers ROLE as Redis: the master form, or the slave form with
// the master, the link state and the offset.
func cmdRole(c *conn, _ [][]byte) bool {
	out := c.reply()
	if m := c.s.cfg.Machine.master.Load(); m != nil {
		port, _ := strconv.ParseInt(m.Port, 10, 64)
		st := int(c.s.repl.state.Load())
		if m.LinkUp && st < linkConnected {
			st = linkConnected // a follower: the leader's link is up
		}
		*out = resp.AppendArrayLen(*out, 5)
		*out = resp.AppendBulkString(*out, "slave")
		*out = resp.AppendBulkString(*out, m.Host)
		*out = resp.AppendInt(*out, port)
		*out = resp.AppendBulkString(*out, linkStateNames[st])
		off := int64(-1) // no master connected, as Redis's ROLE
		if st == linkConnected {
			off = max(c.s.repl.offset.Load(), 0)
		}
		*out = resp.AppendInt(*out, off)
		return false
	}
	if r := c.s.link.Replica; r != nil && !c.s.link.Leads() {
		_, addr := c.s.link.LeaderAddr()
		host, port := addr, int64(0)
		if i := strings.LastIndexByte(addr, ':'); i >= 0 {
			host = addr[:i]
			port, _ = strconv.ParseInt(addr[i+1:], 10, 64)
		}
		state := "connected"
		if addr == "" {
			state = "connect"
		}
		*out = resp.AppendArrayLen(*out, 5)
		*out = resp.AppendBulkString(*out, "slave")
		*out = resp.AppendBulkString(*out, host)
		*out = resp.AppendInt(*out, port)
		*out = resp.AppendBulkString(*out, state)
		*out = resp.AppendInt(*out, int64(r.Stats().Applied))
		return false
	}
	*out = resp.AppendArrayLen(*out, 3)
	*out = resp.AppendBulkString(*out, "master")
	*out = resp.AppendInt(*out, int64(c.s.cfg.Machine.count.Load()))
	*out = resp.AppendArrayLen(*out, 0)
	return false
}

// writeReplicaOfInfo writes INFO replication's lines of a replica of m,
// Redis 7.0's fields in its order.
func (s *Server) writeReplicaOfInfo(b *strings.Builder, m *store.Master) {
	now := time.Now().UnixMilli()
	st := int(s.repl.state.Load())
	lastIO := int64(-1)
	if t := s.repl.lastIO.Load(); t != 0 && st == linkConnected {
		lastIO = (now - t) / 1000
	}
	link := "down"
	if m.LinkUp {
		link = "up"
	}
	syncing := st == linkSync
	w := func(name string, v any) { b.WriteString(name + ":" + toString(v) + "\r\n") }
	b.WriteString("role:slave\r\n")
	w("master_host", m.Host)
	w("master_port", m.Port)
	w("master_link_status", link)
	w("master_last_io_seconds_ago", lastIO)
	w("master_sync_in_progress", boolInt(syncing))
	w("slave_read_repl_offset", s.repl.readOffset.Load())
	w("slave_repl_offset", s.repl.offset.Load())
	if syncing {
		total, read := s.repl.syncTotal.Load(), s.repl.syncRead.Load()
		w("master_sync_total_bytes", total)
		w("master_sync_read_bytes", read)
		w("master_sync_left_bytes", total-read)
		perc := 0.0
		if total > 0 {
			perc = float64(read) * 100 / float64(total)
		}
		w("master_sync_perc", strconv.FormatFloat(perc, 'f', 2, 64))
		w("master_sync_last_io_seconds_ago", (now-s.repl.lastIO.Load())/1000)
	}
	if !m.LinkUp {
		down := int64(-1)
		if t := s.repl.downSince.Load(); t != 0 {
			down = (now - t) / 1000
		}
		w("master_link_down_since_seconds", down)
	}
	w("slave_priority", 100)
	w("slave_read_only", boolInt(s.repl.readOnly.Load()))
	w("replica_announced", 1)
	w("connected_slaves", 0)
	w("master_failover_state", "no-failover")
	replid := *s.repl.replid.Load()
	if replid == "" {
		replid = runID
	}
	w("master_replid", replid)
	w("master_replid2", "0000000000000000000000000000000000000000")
	w("master_repl_offset", max(s.repl.offset.Load(), 0))
	w("second_repl_offset", -1)
	w("repl_backlog_active", 0)
	w("repl_backlog_size", 1048576)
	w("repl_backlog_first_byte_offset", 0)
	w("repl_backlog_histlen", 0)
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// replConfigValue is a replica-* parameter's value, and whether name is one.
func (s *Server) replConfigValue(name string) (string, bool) {
	switch name {
	case "replica-read-only", "slave-read-only":
		return yesNo(s.repl.readOnly.Load()), true
	case "replica-serve-stale-data", "slave-serve-stale-data":
		return yesNo(s.repl.serveStale.Load()), true
	case "masterauth":
		return *s.repl.masterAuth.Load(), true
	case "masteruser":
		return *s.repl.masterUser.Load(), true
	case "repl-timeout":
		return strconv.FormatInt(s.repl.timeout.Load(), 10), true
	}
	return "", false
}

// checkReplConfig checks CONFIG SET of a replica-* parameter: whether name
// is one, and the error text if value is not valid.
func checkReplConfig(name string, value []byte) (bool, string) {
	switch name {
	case "replica-read-only", "slave-read-only", "replica-serve-stale-data", "slave-serve-stale-data":
		if !lowerEq(value, "yes") && !lowerEq(value, "no") {
			return true, "argument(s) must be one of the following: yes, no"
		}
		return true, ""
	case "masterauth", "masteruser":
		return true, ""
	case "repl-timeout":
		if n, err := strconv.ParseInt(string(value), 10, 32); err != nil || n < 1 {
			return true, "argument must be between 1 and 2147483647 inclusive"
		}
		return true, ""
	}
	return false, ""
}

// setReplConfig sets a parameter checkReplConfig accepted.
func (s *Server) setReplConfig(name string, value []byte) {
	v := string(value)
	switch name {
	case "replica-read-only", "slave-read-only":
		s.repl.readOnly.Store(lowerEq(value, "yes"))
	case "replica-serve-stale-data", "slave-serve-stale-data":
		s.repl.serveStale.Store(lowerEq(value, "yes"))
	case "masterauth":
		s.repl.masterAuth.Store(&v)
	case "masteruser":
		s.repl.masterUser.Store(&v)
	case "repl-timeout":
		n, _ := strconv.ParseInt(v, 10, 32)
		s.repl.timeout.Store(n)
	}
}

// publishMaster makes m the master the connections see (nil: none) and
// wakes the link manager.
func (m *Machine) publishMaster(p *store.Master) {
	m.master.Store(p)
	select {
	case m.roleChanged <- struct{}{}:
	default:
	}
}
