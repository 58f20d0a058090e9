package server

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// SYNC turns a connection into a tap on this replica's stream of applied
// writes, as Redis's SYNC makes it a replica: it answers with the state as
// one bulk payload (a gomu snapshot, not an RDB file), then sends every
// write command this replica applies from that point, in log order, as
// RESP commands, each after a SELECT where its database differs from the
// one before it (the first one always), transactions between MULTI and EXEC,
// and a PING every repl-ping-replica-period seconds. Redis's test suite
// reads it to see what a master propagates.
//
// Only the writes that took effect are sent, as Redis sends them: not a
// failed one, not one whose reply says it changed nothing (noEffect), not
// the reads of a transaction, which is wrapped in MULTI/EXEC only when
// more than one of its commands is sent.
//
// Commands go out as clients sent them, or in the form Redis gives them
// where propagate.go knows it (absolute expiry times, LMPOP as LPOP …).
//
// A key deleted because its TTL passed (by the leader's expiry sweep, or
// a write meeting it) or by eviction goes out as a DEL where it happened: before the
// command that met it, or after the one whose blocked clients' serving
// did. A blocked client served goes out as Redis sends it (LPOP for
// BLPOP …) after the write that served it.
//
// A script call (EVAL, EVALSHA, FCALL) goes out as its effects, as Redis
// 7.0 replicates scripts: the writes it ran that took effect, in their
// propagated forms, between MULTI and EXEC when more than one
// (noteScripted); the log itself carries the script, which every replica
// runs deterministically.
//
// Differences from Redis: the forms propagate.go does not know (RESTORE's
// …) go out as sent; a write whose
// reply does not tell whether it changed anything (SET, say) is sent
// even when it did not, and the server's other writes of its own (CONFIG
// SET of the encoding thresholds, DEBUG RELOAD) are not sent.

// tap is one SYNC connection's queue, fed by Machine.Apply.
type tap struct {
	mu     sync.Mutex
	buf    []byte
	failed bool
	wake   chan struct{}
	// db is the database of the last command sent, -1 before the first:
	// as Redis's stream, the first command comes after a SELECT.
	db int
}

// send queues b for the tap's connection, dropping a tap that lets more
// than pushLimit bytes pile up.
func (t *tap) send(b []byte) {
	t.mu.Lock()
	if !t.failed {
		t.buf = append(t.buf, b...)
		if len(t.buf) > pushLimit {
			t.failed, t.buf = true, nil
		}
	}
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// take returns what is queued, and whether the tap failed.
func (t *tap) take() ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	t.buf = nil
	return b, t.failed
}

// attach takes a snapshot and adds a tap fed from the next write on,
// atomically: no write falls between the two.
func (m *Machine) attach() ([]byte, *tap, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var snap bytes.Buffer
	if err := m.st.Snapshot(&snap); err != nil {
		return nil, nil, err
	}
	t := &tap{wake: make(chan struct{}, 1), db: -1}
	m.taps = append(m.taps, t)
	m.env.Deleted, m.env.Served, m.env.Scripted = m.noteDeleted, m.noteServed, m.noteScripted
	return snap.Bytes(), t, nil
}

// detach removes t.
func (m *Machine) detach(t *tap) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range m.taps {
		if x == t {
			m.taps = append(m.taps[:i], m.taps[i+1:]...)
			break
		}
	}
	if len(m.taps) == 0 {
		m.env.Deleted, m.env.Served, m.env.Scripted = nil, nil, nil
	}
}

// tapEvent is a command the stream carries for what happened at decoder
// step step.
type tapEvent struct {
	step int
	cmd  tapCommand
}

// noteDeleted is the store's Deleted hook while taps listen: a DEL.
func (m *Machine) noteDeleted(db int, key []byte) {
	m.tapEvents = append(m.tapEvents, tapEvent{step: m.dec.step,
		cmd: tapCommand{db: db, args: [][]byte{[]byte("DEL"), []byte(key)}}})
}

// noteServed is the store's Served hook while taps listen: the served
// command in the form Redis propagates it (LPOP for BLPOP …), if a write.
func (m *Machine) noteServed(db int, args [][]byte, reply []byte) {
	if cmd := store.Lookup(args[0]); cmd == nil || cmd.Flags&store.Write == 0 {
		return // XREAD
	}
	if claims := xreadgroupClaims(args, reply, m.env.NowMs); claims != nil {
		m.noteEffects(db, claims, true)
		return
	}
	if p := propagated(args, reply, m.env.NowMs); p != nil {
		p = cloneArgs(p)
		if lowerEq(args[0], "blmove") { // Redis's own words for a served one
			p[3], p[4] = bytes.ToLower(p[3]), bytes.ToLower(p[4])
		}
		m.tapEvents = append(m.tapEvents, tapEvent{step: m.dec.step, cmd: tapCommand{db: db, args: p}})
	}
}

// noteScripted is the store's Scripted hook while taps listen: a write a
// script ran, in the form Redis propagates it, if it took effect (see
// feedTaps). A script's effects stand for it in the stream.
func (m *Machine) noteScripted(db int, args [][]byte, reply []byte) {
	if !tookEffect(args, reply) {
		return
	}
	if claims := xreadgroupClaims(args, reply, m.env.NowMs); claims != nil {
		m.noteEffects(db, claims, false) // the script's effects are wrapped already
		return
	}
	if p := propagated(args, reply, m.env.NowMs); p != nil {
		m.tapEvents = append(m.tapEvents, tapEvent{step: m.dec.step, cmd: tapCommand{db: db, args: cloneArgs(p)}})
	}
}

// noteEffects adds the commands one command propagates as (copied), see
// effectCommands.
func (m *Machine) noteEffects(db int, effects [][][]byte, wrap bool) {
	for _, c := range effectCommands(db, effects, wrap) {
		c.args = cloneArgs(c.args)
		m.tapEvents = append(m.tapEvents, tapEvent{step: m.dec.step, cmd: c})
	}
}

// effectCommands are the commands one command propagates as, between
// MULTI and EXEC when wrap and there are several, as Redis wraps them.
func effectCommands(db int, effects [][][]byte, wrap bool) []tapCommand {
	cmds := make([]tapCommand, len(effects))
	for i, p := range effects {
		cmds[i] = tapCommand{db: db, args: p}
		if wrap && len(effects) > 1 {
			cmds[i].multi, cmds[i].exec = i == 0, i == len(effects)-1
		}
	}
	return cmds
}

// tookEffect reports whether a write replied reply took effect: not a
// failed one, nor one whose reply says it changed nothing (noEffect).
func tookEffect(args [][]byte, reply []byte) bool {
	return len(reply) > 0 && reply[0] != '-' && (string(reply) != ":0\r\n" || !noEffect[string(lowerInto(nil, args[0]))])
}

// isScriptCall reports whether args call a script (EVAL, EVALSHA, FCALL):
// SYNC's stream carries its effects instead (noteScripted).
func isScriptCall(args [][]byte) bool {
	return lowerEq(args[0], "eval") || lowerEq(args[0], "evalsha") || lowerEq(args[0], "fcall")
}

// cloneArgs copies args, which may point into buffers reused after the
// call.
func cloneArgs(args [][]byte) [][]byte {
	c := make([][]byte, len(args))
	for i, a := range args {
		c[i] = bytes.Clone(a)
	}
	return c
}

// feedTaps sends the commands of the proposal just applied (decoded in
// m.dec, header h, replied out) to the taps, as Redis propagates: only
// the writes that took effect (not a failed one, nor one whose reply says
// it changed nothing: noEffect), nothing of a transaction whose watched
// keys had changed.
func (m *Machine) feedTaps(h header, out []byte) {
	events := m.tapEvents
	m.tapEvents = m.tapEvents[:0]
	spans := m.dec.spans
	if h.kind == propTx {
		if len(spans) > 0 && string(m.dec.args[spans[0].off]) == watchCommand {
			spans = spans[1:]
		}
		if string(out) == "*-1\r\n" {
			return // the watch check failed: nothing ran
		}
		out = out[bytes.IndexByte(out, '\n')+1:] // the array's header
	}
	var cmds []tapCommand
	// upTo adds the events up to step.
	upTo := func(step int) {
		for len(events) > 0 && events[0].step <= step {
			cmds = append(cmds, events[0].cmd)
			events = events[1:]
		}
	}
	db := 0
	for i, s := range spans {
		upTo(2*i - 1)
		from := len(cmds) // what command i did starts here
		upTo(2 * i)
		args := m.dec.args[s.off : s.off+s.argc]
		if isSelectCommand(args[0]) { // no reply
			db, _ = selectedDB(args)
			continue
		}
		n := replyLen(out)
		reply := out[:n]
		out = out[n:]
		if h.kind == propTx && lowerEq(args[0], "select") {
			if reply[0] == '+' {
				db, _ = store.ParseDB(args[1])
			}
			continue
		}
		if string(args[0]) == store.RESP3Command {
			args = args[1:] // a RESP3 client's script call
		}
		if len(reply) > 0 { // served at once: as the command itself
			switch string(args[0]) {
			case store.BlockCommand:
				args = args[2:]
			case store.BlockAtCommand:
				args = args[3:]
			}
		}
		if string(args[0]) == store.AsUserCommand {
			args = args[2:] // a restricted user's script call (acl.go): as itself
		}
		if string(args[0]) == store.ReplicaOfCommand && len(args) > 3 && string(args[1]) == "run" {
			args = args[3:] // what the Redis master sent (replink.go): as itself
		}
		if string(args[0]) == store.MigratedCommand { // MIGRATE's: as a DEL (migrate.go)
			if p := migratedPropagated(reply); p != nil {
				cmds = append(cmds, tapCommand{db: db, args: p})
			}
			continue
		}
		if cmd := store.Lookup(args[0]); cmd == nil || cmd.Flags&(store.Write|store.Internal) != store.Write {
			continue // reads queued in a transaction, the server's own writes
		}
		if lowerEq(args[0], "script") {
			continue // SCRIPT LOAD and FLUSH: Redis 7.0 replicates effects, not scripts
		}
		if isScriptCall(args) {
			// Its effects came as events; in a batch, more than one go
			// between MULTI and EXEC, as Redis 7.0 wraps them.
			if effects := cmds[from:]; h.kind == propBatch && len(effects) > 1 {
				effects[0].multi, effects[len(effects)-1].exec = true, true
			}
			continue
		}
		if !tookEffect(args, reply) {
			continue
		}
		if claims := xreadgroupClaims(args, reply, h.now); claims != nil {
			// A transaction's are between its MULTI and EXEC already.
			cmds = append(cmds, effectCommands(db, claims, h.kind == propBatch)...)
			continue
		}
		if p := propagated(args, reply, h.now); p != nil {
			cmds = append(cmds, tapCommand{db: db, args: p})
		}
	}
	upTo(2*len(spans) - 1)
	body := len(cmds) // a transaction's; what its EXEC's serving did follows
	upTo(2 * len(spans))
	if len(cmds) == 0 {
		return
	}
	tx := h.kind == propTx && body > 1
	for _, t := range m.taps {
		t.send(t.encode(cmds, tx, body))
	}
}

// tapCommand is one propagated command and the database it ran in.
type tapCommand struct {
	db   int
	args [][]byte
	// multi, exec: a script's effects in a batch go between MULTI (before
	// the first) and EXEC (after the last).
	multi, exec bool
}

// encode writes cmds as t's stream sends them, a SELECT before each whose
// database is not the stream's (a transaction's first one before its
// MULTI, as Redis's), the first body of them between MULTI and EXEC if
// tx; it is called under the machine's write lock, the only writer of
// t.db.
func (t *tap) encode(cmds []tapCommand, tx bool, body int) []byte {
	var b []byte
	for i, c := range cmds {
		if tx && i == body {
			b = resp.AppendCommand(b, []byte("EXEC"))
		}
		if c.db != t.db {
			b = resp.AppendCommand(b, []byte("SELECT"), strconv.AppendInt(nil, int64(c.db), 10))
			t.db = c.db
		}
		if tx && i == 0 || c.multi {
			b = resp.AppendCommand(b, []byte("MULTI"))
		}
		b = resp.AppendCommand(b, c.args...)
		if c.exec {
			b = resp.AppendCommand(b, []byte("EXEC"))
		}
	}
	if tx && body == len(cmds) {
		b = resp.AppendCommand(b, []byte("EXEC"))
	}
	return b
}

// cmdSync serves SYNC: the snapshot, then the stream until the client
// leaves or the server closes. The connection reads nothing more.
func cmdSync(c *conn, _ [][]byte) bool {
	out := c.reply()
	if c.multi || c.sub != nil {
		*out = resp.AppendError(*out, "ERR Replica can't interact with the keyspace")
		return false
	}
	c.write()
	snap, t, err := c.s.cfg.Machine.attach()
	if err != nil {
		*out = resp.AppendError(*out, "ERR gomu: "+err.Error())
		return false
	}
	defer c.s.cfg.Machine.detach(t)
	// The client sends nothing we answer (a Redis replica's REPLCONF
	// ACKs are dropped); reading notices when it leaves.
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, c.nc)
		close(gone)
	}()
	head := append([]byte{'$'}, strconv.Itoa(len(snap))+"\r\n"...)
	if _, err := c.nc.Write(append(head, snap...)); err != nil {
		return true
	}
	lastPing := time.Now()
	for {
		period := time.Duration(c.s.replPingPeriod.Load()) * time.Second
		wait := time.NewTimer(time.Until(lastPing.Add(period)))
		select {
		case <-c.s.stop:
			wait.Stop()
			return true
		case <-gone:
			wait.Stop()
			return true
		case <-t.wake:
		case <-wait.C:
			t.send(resp.AppendCommand(nil, []byte("PING")))
			lastPing = time.Now()
		}
		wait.Stop()
		b, failed := t.take()
		if failed {
			return true
		}
		if len(b) > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(6 * c.s.cfg.Timeout))
			if _, err := c.nc.Write(b); err != nil {
				return true
			}
		}
	}
}

// noEffect are the writes whose integer reply 0 means they changed
// nothing, so that Redis does not propagate them.
var noEffect = map[string]bool{
	"del": true, "unlink": true, "expire": true, "pexpire": true, "expireat": true, "pexpireat": true,
	"persist": true, "setnx": true, "msetnx": true, "renamenx": true, "copy": true,
	"lpushx": true, "rpushx": true, "lrem": true, "sadd": true, "srem": true, "smove": true,
	"hdel": true, "hsetnx": true, "zrem": true, "zremrangebyscore": true, "zremrangebyrank": true,
	"zremrangebylex": true,
}

// replyLen is the length of the RESP2 reply at the start of b (what the
// store replies: simple strings, errors, integers, bulks, arrays), or
// len(b) if it is cut short.
func replyLen(b []byte) int {
	eol := bytes.IndexByte(b, '\n')
	if eol < 0 || len(b) == 0 {
		return len(b)
	}
	switch b[0] {
	case '$':
		n, err := strconv.Atoi(string(b[1 : eol-1]))
		if err != nil || n < 0 {
			return eol + 1
		}
		return min(len(b), eol+1+n+2)
	case '*':
		n, err := strconv.Atoi(string(b[1 : eol-1]))
		if err != nil || n < 0 {
			return eol + 1
		}
		at := eol + 1
		for range n {
			at += replyLen(b[at:])
		}
		return min(at, len(b))
	}
	return eol + 1
}
