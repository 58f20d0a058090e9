package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/deadline"
)

// The link to a Redis master (REPLICAOF), run by the leader (or the
// standalone server) alone. It speaks Redis's replica protocol: PING,
// AUTH (masterauth, masteruser), REPLCONF listening-port and capa eof
// psync2, then PSYNC ? -1, which a master answers with +FULLRESYNC and the
// RDB ($<len> from its disk, or diskless, $EOF:<mark> … <mark>). The RDB
// is loaded through the log: a flush, then each key as RESTORE takes it
// (store.WalkRDB), in batches. Then every command the master sends is
// proposed in order, each wrapped as "gomu.replicaof run <epoch> …", so
// that none lands once REPLICAOF changed; REPLCONF GETACK is answered,
// and REPLCONF ACK sent every second. Every wait has a deadline; a link
// that fails (or a malformed RDB, or a master silent for longer than
// repl-timeout) is logged, marked down, and retried a second later, as Redis's replica cron does. A new leader starts over
// with a full resync: there is no partial resync.

// Link timing: connecting before the link is given up (any silence from
// the master longer than repl-timeout, 60 s by default, gives it up too; a
// master pings its replicas every 10 s); the pause before a retry; the ACK
// period.
const (
	replConnectTimeout = 5 * time.Second
	replRetry          = time.Second
	replAckPeriod      = time.Second
	// replBatch bounds the bytes of one proposal of the RDB's keys or the
	// stream's commands (a larger one goes alone).
	replBatch = 256 << 10
)

// linkRun is a running link and how to stop it.
type linkRun struct {
	epoch  uint64
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *linkRun) stop() {
	l.cancel()
	<-l.done
}

// replicaManager starts and stops the link as the role and the leadership
// change: a link runs while the store names a master and this replica
// leads (or is standalone).
func (s *Server) replicaManager() {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var cur *linkRun
	defer func() {
		if cur != nil {
			cur.stop()
		}
	}()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.cfg.Machine.roleChanged:
		}
		want := s.cfg.Machine.master.Load()
		if want != nil && !s.link.Leads() {
			want = nil
		}
		if cur != nil && (want == nil || want.Epoch != cur.epoch) {
			cur.stop()
			cur = nil
			s.repl.state.Store(linkIdle)
		}
		if cur == nil && want != nil {
			cur = s.startLink(want)
		}
	}
}

func (s *Server) startLink(m *store.Master) *linkRun {
	ctx, cancel := context.WithCancel(context.Background())
	l := &linkRun{epoch: m.Epoch, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		s.runLink(ctx, m)
	}()
	return l
}

// runLink syncs with m until ctx ends, retrying every replRetry.
func (s *Server) runLink(ctx context.Context, m *store.Master) {
	addr := net.JoinHostPort(m.Host, m.Port)
	epoch := m.EpochString()
	// As Redis: the offsets stay those of the last master until the next
	// sync, and the link is down since now if there was one (else INFO
	// says -1).
	if s.repl.offset.Load() > 0 {
		s.repl.downSince.Store(time.Now().UnixMilli())
	} else {
		s.repl.downSince.Store(0)
	}
	if m.LinkUp { // a new leader: the link the old one marked up is gone
		_ = s.proposeLinkState(epoch, false)
	}
	for {
		l := &replicaLink{s: s, m: m, epoch: epoch, ctx: deadline.New()}
		err := l.run(ctx, addr)
		s.repl.state.Store(linkIdle) // "connect" until the next attempt, as Redis's ROLE says
		if ctx.Err() != nil {
			return
		}
		s.cfg.Logger.Warn("replicaof: link with master down, retrying", "master", addr, "err", err)
		if l.up {
			s.repl.downSince.Store(time.Now().UnixMilli())
			_ = s.proposeLinkState(epoch, false)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(replRetry):
		}
	}
}

// replicaLink is one connection to the master.
type replicaLink struct {
	s     *Server
	m     *store.Master
	epoch string
	ctx   *deadline.Context // each proposal's
	nc    net.Conn
	br    *bufio.Reader
	wmu   sync.Mutex // the ACK ticker writes too
	up    bool       // it proposed the link up
	// offset is the master's stream offset applied; db is the database
	// the stream selected.
	offset atomic.Int64
	db     int
	prop   proposal
	// pending counts the stream's bytes read but not yet applied.
	pending int64
}

// stallReader refreshes the read deadline before every read, so that only
// silence longer than repl-timeout fails, and notes the time of each byte.
type stallReader struct {
	nc     net.Conn
	lastIO *atomic.Int64
	// timeout is repl-timeout, in seconds.
	timeout *atomic.Int64
}

// replTimeout is repl-timeout as a duration.
func replTimeout(seconds *atomic.Int64) time.Duration {
	return time.Duration(seconds.Load()) * time.Second
}

func (r stallReader) Read(p []byte) (int, error) {
	_ = r.nc.SetReadDeadline(time.Now().Add(replTimeout(r.timeout)))
	n, err := r.nc.Read(p)
	if n > 0 {
		r.lastIO.Store(time.Now().UnixMilli())
	}
	return n, err
}

func (l *replicaLink) run(ctx context.Context, addr string) error {
	s := l.s
	s.repl.state.Store(linkConnecting)
	d := net.Dialer{Timeout: replConnectTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	l.nc = nc
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() }) // unblocks every read and write
	defer stop()
	l.br = bufio.NewReaderSize(stallReader{nc: nc, lastIO: &s.repl.lastIO, timeout: &s.repl.timeout}, 64<<10)
	s.repl.state.Store(linkHandshake)
	replid, offset, err := l.handshake()
	if err != nil {
		return err
	}
	s.repl.replid.Store(&replid)
	s.repl.state.Store(linkSync)
	rdb, err := l.readRDB()
	if err != nil {
		return err
	}
	if err := l.load(rdb); err != nil {
		return err
	}
	rdb = nil
	l.offset.Store(offset)
	s.repl.offset.Store(offset)
	s.repl.readOffset.Store(offset)
	if err := s.proposeLinkState(l.epoch, true); err != nil {
		return err
	}
	l.up = true
	s.repl.state.Store(linkConnected)
	s.cfg.Logger.Info("replicaof: MASTER <-> REPLICA sync: finished with success", "master", addr)
	acks := make(chan struct{})
	defer close(acks)
	go l.ackLoop(acks)
	return l.stream()
}

// command sends one command and reads its one-line reply.
func (l *replicaLink) command(args ...string) (string, error) {
	if err := l.send(args...); err != nil {
		return "", err
	}
	return l.readLine()
}

func (l *replicaLink) send(args ...string) error {
	var b []byte
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, "\r\n"...)
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, "\r\n"...)
		b = append(b, a...)
		b = append(b, "\r\n"...)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = l.nc.SetWriteDeadline(time.Now().Add(replTimeout(&l.s.repl.timeout)))
	_, err := l.nc.Write(b)
	if err != nil {
		return fmt.Errorf("write to master: %w", err)
	}
	return nil
}

func (l *replicaLink) readLine() (string, error) {
	line, err := l.br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from master: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// handshake runs the replica handshake up to PSYNC's +FULLRESYNC.
func (l *replicaLink) handshake() (replid string, offset int64, err error) {
	r, err := l.command("PING")
	if err != nil {
		return "", 0, err
	}
	// NOAUTH and NOPERM are fine before AUTH, as Redis allows.
	if strings.HasPrefix(r, "-") && !strings.HasPrefix(r, "-NOAUTH") && !strings.HasPrefix(r, "-NOPERM") {
		return "", 0, fmt.Errorf("error reply to PING: %s", r[1:])
	}
	if pass := *l.s.repl.masterAuth.Load(); pass != "" {
		args := []string{"AUTH", pass}
		if user := *l.s.repl.masterUser.Load(); user != "" {
			args = []string{"AUTH", user, pass}
		}
		if r, err = l.command(args...); err != nil {
			return "", 0, err
		}
		if strings.HasPrefix(r, "-") {
			return "", 0, fmt.Errorf("unable to AUTH to MASTER: %s", r[1:])
		}
	}
	if r, err = l.command("REPLCONF", "listening-port", portOf(l.s.Addr())); err != nil {
		return "", 0, err
	}
	if strings.HasPrefix(r, "-") {
		l.s.cfg.Logger.Info("replicaof: master does not understand REPLCONF listening-port", "reply", r)
	}
	if r, err = l.command("REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		return "", 0, err
	}
	if strings.HasPrefix(r, "-") {
		l.s.cfg.Logger.Info("replicaof: master does not understand REPLCONF capa", "reply", r)
	}
	if r, err = l.command("PSYNC", "?", "-1"); err != nil {
		return "", 0, err
	}
	f := strings.Fields(r)
	if len(f) != 3 || f[0] != "+FULLRESYNC" {
		return "", 0, fmt.Errorf("unexpected reply to PSYNC: %q", r)
	}
	offset, err = strconv.ParseInt(f[2], 10, 64)
	if err != nil || len(f[1]) != 40 {
		return "", 0, fmt.Errorf("bad +FULLRESYNC reply: %q", r)
	}
	return f[1], offset, nil
}

// readRDB reads the RDB payload: $<len> and the bytes, or $EOF:<40 bytes>
// and the bytes up to that mark. Newlines before it are the master's
// keepalives while it prepares the RDB.
func (l *replicaLink) readRDB() ([]byte, error) {
	var line string
	for {
		var err error
		if line, err = l.readLine(); err != nil {
			return nil, err
		}
		if line != "" {
			break
		}
	}
	if !strings.HasPrefix(line, "$") {
		return nil, fmt.Errorf("bad RDB transfer header from master: %q", line)
	}
	l.s.repl.syncRead.Store(0)
	if mark, ok := strings.CutPrefix(line, "$EOF:"); ok {
		if len(mark) != 40 {
			return nil, fmt.Errorf("bad RDB EOF mark from master: %q", line)
		}
		l.s.repl.syncTotal.Store(-1)
		return l.readUntilMark([]byte(mark))
	}
	n, err := strconv.ParseInt(line[1:], 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("bad RDB length from master: %q", line)
	}
	l.s.repl.syncTotal.Store(n)
	rdb := make([]byte, 0, min(n, 64<<20))
	for int64(len(rdb)) < n {
		chunk := min(n-int64(len(rdb)), 1<<20)
		start := len(rdb)
		rdb = append(rdb, make([]byte, chunk)...)
		if _, err := io.ReadFull(l.br, rdb[start:]); err != nil {
			return nil, fmt.Errorf("read RDB from master (%d of %d bytes): %w", start, n, err)
		}
		l.s.repl.syncRead.Store(int64(len(rdb)))
	}
	return rdb, nil
}

func (l *replicaLink) readUntilMark(mark []byte) ([]byte, error) {
	var rdb []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := l.br.Read(buf)
		rdb = append(rdb, buf[:n]...)
		l.s.repl.syncRead.Store(int64(len(rdb)))
		if bytes.HasSuffix(rdb, mark) {
			return rdb[:len(rdb)-len(mark)], nil
		}
		if err != nil {
			return nil, fmt.Errorf("read diskless RDB from master (%d bytes): %w", len(rdb), err)
		}
	}
}

// wrap is args as the link proposes them: gomu.replicaof run <epoch> args….
func (l *replicaLink) wrap(args ...[]byte) [][]byte {
	return append([][]byte{[]byte(store.ReplicaOfCommand), []byte("run"), []byte(l.epoch)}, args...)
}

// load proposes the RDB: a flush of the data and the functions, then every
// key and function library, in batches.
func (l *replicaLink) load(rdb []byte) error {
	l.prop.reset(propBatch)
	l.prop.add(l.wrap([]byte("FLUSHALL")))
	l.prop.add(l.wrap([]byte("FUNCTION"), []byte("FLUSH")))
	keys := 0
	err := store.WalkRDB(rdb, func(e *store.RDBEntry) error {
		var args [][]byte
		if e.Function != nil {
			args = l.wrap([]byte("FUNCTION"), []byte("LOAD"), []byte("REPLACE"), e.Function)
		} else {
			keys++
			args = l.wrap([]byte("RESTORE"), e.Key, strconv.AppendInt(nil, e.ExpireAt, 10), e.Payload, []byte("REPLACE"), []byte("ABSTTL"))
			switch {
			case e.Idle >= 0:
				args = append(args, []byte("IDLETIME"), strconv.AppendInt(nil, e.Idle, 10))
			case e.Freq >= 0:
				args = append(args, []byte("FREQ"), strconv.AppendInt(nil, int64(e.Freq), 10))
			}
		}
		return l.addToBatch(e.DB, args)
	})
	if err != nil {
		return fmt.Errorf("load RDB from master: %w", err)
	}
	if err := l.flush(); err != nil {
		return err
	}
	l.s.cfg.Logger.Info("replicaof: RDB loaded", "keys", keys, "bytes", len(rdb))
	return nil
}

// addToBatch adds a command in database db, proposing the batch first if
// it would grow past replBatch.
func (l *replicaLink) addToBatch(db int, args [][]byte) error {
	if l.prop.count > 0 && len(l.prop.buf)+commandSize(args)+selectSize > replBatch {
		if err := l.flush(); err != nil {
			return err
		}
	}
	l.prop.use(db)
	l.prop.add(args)
	return nil
}

// flush proposes the batch; an error reply of a command is logged.
func (l *replicaLink) flush() error {
	if l.prop.count == 0 {
		return nil
	}
	l.ctx.Arm(l.s.cfg.Timeout)
	res, err := l.s.replicate(l.ctx, l.prop.seal(time.Now().UnixMilli(), rand.Uint64()))
	l.ctx.Disarm()
	l.prop.buf = nil // the engine may still read it (see flushWrites)
	l.prop.reset(propBatch)
	if err != nil {
		return fmt.Errorf("replicate: %s", l.s.replicationError(err))
	}
	if len(res) > 0 && res[0] == '-' || bytes.Contains(res, []byte("\r\n-")) {
		l.s.cfg.Logger.Warn("replicaof: a command from the master failed here", "replies", truncatedBytes(res, 256))
	}
	return nil
}

func truncatedBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// proposeLink proposes the link's state, for every replica's INFO and
// MASTERDOWN.
func (s *Server) proposeLinkState(epoch string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	var p proposal
	p.reset(propBatch)
	p.add([][]byte{[]byte(store.ReplicaOfCommand), []byte("link"), []byte(epoch), []byte(state)})
	ctx := deadline.New()
	ctx.Arm(s.cfg.Timeout)
	defer ctx.Disarm()
	if _, err := s.replicate(ctx, p.seal(time.Now().UnixMilli(), rand.Uint64())); err != nil {
		return fmt.Errorf("replicate the link state: %s", s.replicationError(err))
	}
	return nil
}

// stream applies the master's command stream until it fails.
func (l *replicaLink) stream() error {
	l.prop.reset(propBatch)
	inTx := false
	for {
		args, n, err := readStreamCommand(l.br)
		if err != nil {
			return fmt.Errorf("master stream: %w", err)
		}
		l.s.repl.readOffset.Add(n)
		name := strings.ToLower(string(args[0]))
		switch {
		case name == "ping":
		case name == "select" && len(args) == 2:
			db, err := strconv.Atoi(string(args[1]))
			if err != nil || db < 0 || db >= store.Databases {
				return fmt.Errorf("master stream: SELECT %q: this server has databases 0 to %d", args[1], store.Databases-1)
			}
			l.db = db
		case name == "multi":
			inTx = true
		case name == "exec":
			inTx = false
		case name == "replconf":
			if len(args) >= 2 && strings.EqualFold(string(args[1]), "getack") {
				if err := l.applyPending(); err != nil {
					return err
				}
				if err := l.send("REPLCONF", "ACK", strconv.FormatInt(l.offset.Load(), 10)); err != nil {
					return err
				}
			}
		default:
			if err := l.addToBatch(l.db, l.wrap(args...)); err != nil {
				return err
			}
		}
		l.pending += n
		// A transaction stays in one proposal; otherwise propose what
		// arrived together.
		if !inTx && l.br.Buffered() == 0 || len(l.prop.buf) > replBatch {
			if err := l.applyPending(); err != nil {
				return err
			}
		}
	}
}

// applyPending proposes the batch read so far and advances the offset.
func (l *replicaLink) applyPending() error {
	if err := l.flush(); err != nil {
		return err
	}
	off := l.offset.Add(l.pending)
	l.pending = 0
	l.s.repl.offset.Store(off)
	return nil
}

// ackLoop sends REPLCONF ACK <offset> every replAckPeriod until done.
func (l *replicaLink) ackLoop(done <-chan struct{}) {
	t := time.NewTicker(replAckPeriod)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if l.send("REPLCONF", "ACK", strconv.FormatInt(l.offset.Load(), 10)) != nil {
				return
			}
		}
	}
}

// readStreamCommand reads one command of the master's stream (a RESP
// array of bulk strings) and the bytes it took.
func readStreamCommand(br *bufio.Reader) ([][]byte, int64, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, 0, err
	}
	n := int64(len(line))
	if len(line) < 4 || line[0] != '*' {
		return nil, n, fmt.Errorf("protocol error: %q", truncatedBytes(line, 64))
	}
	argc, err := strconv.Atoi(string(bytes.TrimRight(line[1:], "\r\n")))
	if err != nil || argc < 1 || argc > maxArgs {
		return nil, n, fmt.Errorf("protocol error: bad array length %q", truncatedBytes(line, 64))
	}
	args := make([][]byte, 0, min(argc, 1024))
	for range argc {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, n, err
		}
		n += int64(len(line))
		if len(line) < 4 || line[0] != '$' {
			return nil, n, fmt.Errorf("protocol error: %q", truncatedBytes(line, 64))
		}
		size, err := strconv.Atoi(string(bytes.TrimRight(line[1:], "\r\n")))
		if err != nil || size < 0 || size > 512<<20 {
			return nil, n, fmt.Errorf("protocol error: bad bulk length %q", truncatedBytes(line, 64))
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, n, err
		}
		n += int64(size + 2)
		if b[size] != '\r' || b[size+1] != '\n' {
			return nil, n, errors.New("protocol error: bulk not ended by CRLF")
		}
		args = append(args, b[:size])
	}
	return args, n, nil
}
