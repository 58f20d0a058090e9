package server

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// clientState is what CLIENT LIST and CLIENT INFO report of a connection,
// kept where other connections' goroutines may read it: atomics, stored
// by the connection's own goroutine (a name on SETNAME, the time once per
// batch, the command's static name once per command, which allocates
// nothing).
type clientState struct {
	created  time.Time
	name     atomic.Pointer[string]
	active   atomic.Int64 // Unix ms of the last batch
	cmd      atomic.Pointer[string]
	noEvict  atomic.Bool
	multiLen atomic.Int32 // commands queued in MULTI, -1 outside
	db       atomic.Int32 // the selected database (SELECT)
	// killed: CLIENT KILL closed it; it is gone for CLIENT LIST and KILL
	// at once, though its goroutine leaves the server's set a little later.
	killed atomic.Bool
	// blocked: it waits in a blocking command (flag b).
	blocked atomic.Bool
}

func (cs *clientState) init() {
	cs.created = time.Now()
	cs.active.Store(cs.created.UnixMilli())
	cs.multiLen.Store(-1)
}

// setName records the connection's name (CLIENT SETNAME, HELLO SETNAME).
func (c *conn) setName(b []byte) {
	s := string(b)
	c.state.name.Store(&s)
}

// clientName is the connection's name, "" if none.
func (c *conn) clientName() string {
	if p := c.state.name.Load(); p != nil {
		return *p
	}
	return ""
}

// noted records the command about to run for CLIENT LIST's cmd=.
func (c *conn) noted(name *string) { c.state.cmd.Store(name) }

// appendClientLine appends c's CLIENT LIST line in Redis 7.0's layout. The
// fields this server does not track the way Redis does are given what they
// mean here: fd=-1 (no file descriptor of Redis's own), memory figures 0.
func (c *conn) appendClientLine(b []byte, self *conn, selfCmd string) []byte {
	now := time.Now()
	cs := &c.state
	flags := ""
	h := c.s.cfg.Machine.hub
	h.mu.Lock() // c.sub and its maps are written under it
	sub, psub := 0, 0
	if c.sub != nil {
		sub, psub = len(c.sub.channels), len(c.sub.patterns)
	}
	h.mu.Unlock()
	if sub+psub > 0 {
		flags += "P"
	}
	if cs.multiLen.Load() >= 0 {
		flags += "x"
	}
	if cs.blocked.Load() {
		flags += "b"
	}
	if cs.noEvict.Load() {
		flags += "e"
	}
	if flags == "" {
		flags = "N"
	}
	cmd := "NULL"
	if p := cs.cmd.Load(); p != nil {
		cmd = *p
	}
	if c == self {
		cmd = selfCmd
	}
	b = append(b, "id="...)
	b = strconv.AppendInt(b, c.id, 10)
	b = append(b, " addr="...)
	b = append(b, c.nc.RemoteAddr().String()...)
	b = append(b, " laddr="...)
	b = append(b, c.nc.LocalAddr().String()...)
	b = append(b, " fd=-1 name="...)
	b = append(b, c.clientName()...)
	b = append(b, " age="...)
	b = strconv.AppendInt(b, int64(now.Sub(cs.created)/time.Second), 10)
	b = append(b, " idle="...)
	b = strconv.AppendInt(b, (now.UnixMilli()-cs.active.Load())/1000, 10)
	b = append(b, " flags="...)
	b = append(b, flags...)
	b = append(b, " db="...)
	b = strconv.AppendInt(b, int64(cs.db.Load()), 10)
	b = append(b, " sub="...)
	b = strconv.AppendInt(b, int64(sub), 10)
	b = append(b, " psub="...)
	b = strconv.AppendInt(b, int64(psub), 10)
	b = append(b, " ssub=0 multi="...)
	b = strconv.AppendInt(b, int64(cs.multiLen.Load()), 10)
	b = append(b, " qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd="...)
	b = append(b, cmd...)
	b = append(b, " user="...)
	b = append(b, c.user.Load().Name()...)
	b = append(b, " redir=-1 resp="...)
	b = strconv.AppendInt(b, int64(c.proto.Load()), 10)
	return append(b, '\n')
}

// clientList appends the answer to CLIENT LIST [TYPE
// normal|pubsub|master|replica] [ID id ...] to out.
func (c *conn) clientList(out []byte, args [][]byte) []byte {
	var ids map[int64]bool
	typ := ""
	for i := 2; i < len(args); i++ {
		switch {
		case lowerEq(args[i], "type") && i+1 < len(args):
			typ = strings.ToLower(string(args[i+1]))
			if typ != "normal" && typ != "pubsub" && typ != "master" && typ != "replica" && typ != "slave" {
				return resp.AppendError(out, "ERR Unknown client type '"+string(args[i+1])+"'")
			}
			i++
		case lowerEq(args[i], "id") && i+1 < len(args):
			ids = map[int64]bool{}
			for i++; i < len(args); i++ {
				id, err := strconv.ParseInt(string(args[i]), 10, 64)
				if err != nil || id <= 0 {
					return resp.AppendError(out, "ERR Invalid client ID")
				}
				ids[id] = true
			}
		default:
			return resp.AppendError(out, "ERR syntax error")
		}
	}
	var lines []byte
	for _, o := range c.s.connsByID() {
		if ids != nil && !ids[o.id] {
			continue
		}
		switch typ {
		case "master", "replica", "slave":
			continue // this server has no replication clients of Redis's kind
		case "pubsub":
			if !o.subscribedShared() {
				continue
			}
		case "normal":
			if o.subscribedShared() {
				continue
			}
		}
		lines = o.appendClientLine(lines, c, "client|list")
	}
	return c.appendText(out, lines)
}

// subscribedShared is subscribed for a look from another goroutine.
func (c *conn) subscribedShared() bool {
	if c.sub == nil {
		return false
	}
	h := c.s.cfg.Machine.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.sub.count() > 0
}

// connsByID returns the server's connections in id order, the killed ones
// left out.
func (s *Server) connsByID() []*conn {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if !c.state.killed.Load() {
			cs = append(cs, c)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(cs, func(a, b *conn) int { return cmp.Compare(a.id, b.id) })
	return cs
}

// clientKill answers CLIENT KILL addr (the old form: +OK, or an error if
// no such client) and CLIENT KILL with filters (ID, ADDR, LADDR, TYPE,
// SKIPME; the number killed). A killed connection's socket is closed; its
// goroutine ends when its read fails, as a Redis client is freed.
func (c *conn) clientKill(args [][]byte) ([]byte, bool) {
	if len(args) == 3 {
		for _, o := range c.s.connsByID() {
			if o.nc.RemoteAddr().String() == string(args[2]) {
				o.kill(c)
				return resp.AppendOK(nil), o == c
			}
		}
		return resp.AppendError(nil, "ERR No such client"), false
	}
	var id int64
	var addr, laddr, typ string
	skipMe := true
	if len(args)%2 != 0 {
		return resp.AppendError(nil, "ERR syntax error"), false
	}
	for i := 2; i < len(args); i += 2 {
		v := string(args[i+1])
		switch strings.ToLower(string(args[i])) {
		case "id":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return resp.AppendError(nil, "ERR client-id should be greater than 0"), false
			}
			id = n
		case "addr":
			addr = v
		case "laddr":
			laddr = v
		case "type":
			typ = strings.ToLower(v)
			if typ != "normal" && typ != "pubsub" && typ != "master" && typ != "replica" && typ != "slave" {
				return resp.AppendError(nil, "ERR Unknown client type '"+v+"'"), false
			}
		case "skipme":
			switch strings.ToLower(v) {
			case "yes":
				skipMe = true
			case "no":
				skipMe = false
			default:
				return resp.AppendError(nil, "ERR syntax error"), false
			}
		case "user":
			// Every client is the default user.
			if v != "default" {
				return resp.AppendError(nil, "ERR No such user '"+v+"'"), false
			}
		default:
			return resp.AppendError(nil, "ERR syntax error"), false
		}
	}
	killed, self := 0, false
	for _, o := range c.s.connsByID() {
		switch {
		case id != 0 && o.id != id,
			addr != "" && o.nc.RemoteAddr().String() != addr,
			laddr != "" && o.nc.LocalAddr().String() != laddr,
			typ == "master" || typ == "replica" || typ == "slave",
			typ == "pubsub" && !o.subscribedShared(),
			typ == "normal" && o.subscribedShared(),
			skipMe && o == c:
			continue
		}
		o.kill(c)
		killed++
		self = self || o == c
	}
	return resp.AppendInt(nil, int64(killed)), self
}

// kill ends connection o for CLIENT KILL, run on connection by: another's
// socket is closed now, ours after the reply (the caller returns quit).
func (o *conn) kill(by *conn) {
	o.state.killed.Store(true)
	if o != by {
		o.nc.Close()
	}
}
