package server

import (
	"bufio"
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
// [AUTH password] [AUTH2 username password] [KEYS key ...], as Redis 7.0
// runs it, on the leader (a write: a follower refuses it with READONLY).
// It runs on the calling connection only, never under the machine's lock
// while it talks to the target: it reads the keys (their DUMP payloads,
// TTLs and watch stamps) under the read lock after a read barrier, sends
// AUTH, SELECT and one RESTORE per key to the target over a connection
// cached per host:port (as Redis caches its own for 10 s), each write
// and each reply read within the timeout, and then, without COPY,
// proposes the deletion of the keys the target took as one internal
// write (store.MigratedCommand), so every replica deletes them alike. A
// key written between the read and that proposal is not deleted (the
// stamp no longer holds); Redis, single-threaded, has no such window.
// SYNC's stream sends the deletion as one DEL of those keys, as Redis
// propagates MIGRATE.

const (
	// migrateCacheTTL: a cached target connection idle this long is
	// closed (Redis's MIGRATE_SOCKET_CACHE_TTL, 10 s, checked every
	// second by its cron: here by a timer when it goes idle).
	migrateCacheTTL = 10 * time.Second
	// migrateCacheMax is how many target connections are cached at most
	// (MIGRATE_SOCKET_CACHE_ITEMS).
	migrateCacheMax = 64
	// migrateReplyMax bounds a reply line read from the target, as
	// Redis's 1024-byte buffers do.
	migrateReplyMax = 1024
)

func init() {
	// commands.go's init, which makes the table, runs first (files
	// initialize in name order).
	serverCommands["migrate"] = &serverCommand{name: "migrate", arity: -6, flags: []string{"write"},
		summary: "Atomically transfers a key from a Redis instance to another one.", run: cmdMigrate}
}

// migrateRequest is a parsed MIGRATE.
type migrateRequest struct {
	addr               string // host:port
	keys               [][]byte
	keyAt              []int // where args name keys, for ACL
	db, timeoutMs      int64
	copy, replace      bool
	username, password []byte // nil: no AUTH; username nil: AUTH password
}

// parseMigrate parses MIGRATE's arguments as Redis does, options first,
// then timeout and database; an error reply's text if they are wrong.
func parseMigrate(args [][]byte) (migrateRequest, string) {
	// The port as Redis's atoi reads it: "notaport" is port 0.
	port := strconv.Itoa(atoi(args[2]))
	r := migrateRequest{addr: net.JoinHostPort(string(args[1]), port), keys: args[3:4], keyAt: []int{3}}
	for j := 6; j < len(args); j++ {
		more := len(args) - 1 - j
		switch {
		case lowerEq(args[j], "copy"):
			r.copy = true
		case lowerEq(args[j], "replace"):
			r.replace = true
		case lowerEq(args[j], "auth") && more >= 1:
			j++
			r.password = args[j]
		case lowerEq(args[j], "auth2") && more >= 2:
			r.username, r.password = args[j+1], args[j+2]
			j += 2
		case lowerEq(args[j], "keys"):
			if len(args[3]) != 0 {
				return r, "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string"
			}
			r.keys, r.keyAt = args[j+1:], nil // the empty key is none (as Redis's ACL sees it)
			for at := j + 1; at < len(args); at++ {
				r.keyAt = append(r.keyAt, at)
			}
			j = len(args)
		default:
			return r, "ERR syntax error"
		}
	}
	var ok bool
	if r.timeoutMs, ok = parseLong(args[5]); !ok {
		return r, "ERR value is not an integer or out of range"
	}
	if r.db, ok = parseLong(args[4]); !ok {
		return r, "ERR value is not an integer or out of range"
	}
	if r.timeoutMs <= 0 {
		r.timeoutMs = 1000
	}
	r.timeoutMs = min(r.timeoutMs, math.MaxInt64/int64(time.Millisecond)) // as a Duration
	return r, ""
}

// atoi is C's: the leading decimal digits (a sign before them), 0 if
// none.
func atoi(b []byte) int {
	neg := len(b) > 0 && b[0] == '-'
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' || n > 1<<20 {
			break
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		return -n
	}
	return n
}

// parseLong parses a signed 64-bit decimal as Redis's string2ll: no
// spaces, no plus sign.
func parseLong(b []byte) (int64, bool) {
	if len(b) == 0 || b[0] == '+' || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil
}

func cmdMigrate(c *conn, args [][]byte) bool {
	out := c.reply() // the batch's earlier writes applied first
	req, msg := parseMigrate(args)
	switch {
	case msg != "":
		*out = resp.AppendError(*out, msg)
	case c.migrateKeyDenied(args, req.keyAt):
		*out = resp.AppendError(*out, "NOPERM this user has no permissions to access one of the keys used as arguments")
	case !c.s.link.Leads():
		*out = resp.AppendError(*out, c.s.readOnlyError())
	case !c.readBarrier(out):
	default:
		*out = c.migrate(*out, req)
	}
	return false
}

// migrateKeyDenied reports whether the connection's user may not read
// and write one of the keys (noted in the ACL log, as the dispatch notes
// a data command's keys).
func (c *conn) migrateKeyDenied(args [][]byte, keyAt []int) bool {
	u := c.user.Load()
	if u.Unrestricted() {
		return false
	}
	at := u.KeyDenied(args, keyAt)
	if at < 0 {
		return false
	}
	c.s.acl.note(c, store.ACLDeniedKey, "toplevel", string(args[at]), u.Name())
	return true
}

// migrate runs a parsed MIGRATE and appends its reply.
func (c *conn) migrate(out []byte, req migrateRequest) []byte {
	db := int(c.state.db.Load())
	moves, msg := c.readMigrations(db, req.keys)
	if msg != "" {
		return resp.AppendError(out, msg)
	}
	if len(moves) == 0 {
		return resp.AppendSimple(out, "NOKEY")
	}
	res := c.s.migrations.transfer(req, moves)
	if !req.copy && len(res.acked) > 0 {
		if reply, ok := c.proposeMigrated(db, res.acked); !ok {
			return append(out, reply...) // the move's deletion did not commit: say why
		}
	}
	switch {
	case res.targetErr != "":
		return resp.AppendError(out, "ERR Target instance replied with error: "+res.targetErr)
	case res.ioErr != "":
		return resp.AppendError(out, res.ioErr)
	}
	return resp.AppendOK(out)
}

// readMigrations reads the keys that exist, in database db, under the
// read lock.
func (c *conn) readMigrations(db int, keys [][]byte) ([]store.Migration, string) {
	c.env.NowMs = time.Now().UnixMilli()
	var moves []store.Migration
	var msg string
	c.s.cfg.Machine.read(func(st *store.Store) {
		for _, k := range keys {
			m, ok, bad := st.ReadMigration(&c.env, db, k)
			if bad != "" {
				msg = bad
				return
			}
			if ok {
				moves = append(moves, m)
			}
		}
	})
	return moves, msg
}

// proposeMigrated proposes the deletion of the moved keys in database db;
// false, with the reply to give, if it did not commit.
func (c *conn) proposeMigrated(db int, moved []store.Migration) ([]byte, bool) {
	args := make([][]byte, 0, 1+2*len(moved))
	args = append(args, []byte(store.MigratedCommand))
	for i := range moved {
		args = append(args, moved[i].Key, moved[i].Stamp[:])
	}
	var p proposal
	p.reset(propBatch)
	p.use(db)
	p.add(args)
	res, err := c.s.replicate(c.ctx, p.seal(time.Now().UnixMilli(), rand.Uint64()))
	if err != nil {
		return resp.AppendError(nil, c.s.replicationError(err)), false
	}
	if len(res) > 0 && res[0] == '-' {
		return res, false
	}
	return nil, true
}

// migrateResult is how a transfer went: the keys the target took, and
// the error to reply, if any (the target's own, else an I/O one).
type migrateResult struct {
	acked     []store.Migration
	targetErr string
	ioErr     string
}

// migrateConn is a connection to a MIGRATE target, cached between uses.
type migrateConn struct {
	nc     net.Conn
	rd     *bufio.Reader
	lastDB int64 // the target's selected database; -1: unknown
	idle   time.Time
}

// migrateCache holds idle target connections by host:port. A connection
// in use is out of the cache, so two MIGRATEs never share one; it is in
// inUse, so that the server's Close ends its wait at once.
type migrateCache struct {
	mu     sync.Mutex
	conns  map[string]*migrateConn
	inUse  map[*migrateConn]struct{}
	closed bool
}

// cached is how many connections the cache holds (INFO's
// migrate_cached_sockets).
func (mc *migrateCache) cached() int {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return len(mc.conns)
}

// take returns the cached connection to addr, or a new one, in use.
func (mc *migrateCache) take(addr string, timeout time.Duration) (*migrateConn, error) {
	mc.mu.Lock()
	mconn := mc.conns[addr]
	delete(mc.conns, addr)
	mc.mu.Unlock()
	if mconn == nil {
		nc, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return nil, err
		}
		mconn = &migrateConn{nc: nc, rd: bufio.NewReader(nc), lastDB: -1}
	}
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.closed {
		mconn.nc.Close()
		return nil, net.ErrClosed
	}
	if mc.inUse == nil {
		mc.inUse = map[*migrateConn]struct{}{}
	}
	mc.inUse[mconn] = struct{}{}
	return mconn, nil
}

// drop closes mconn, in use, for good.
func (mc *migrateCache) drop(mconn *migrateConn) {
	mc.mu.Lock()
	delete(mc.inUse, mconn)
	mc.mu.Unlock()
	mconn.nc.Close()
}

// put caches mconn for addr, closing an older one to make room, and
// arms the timer that closes it once idle for migrateCacheTTL.
func (mc *migrateCache) put(addr string, mconn *migrateConn) {
	mconn.idle = time.Now()
	mc.mu.Lock()
	defer mc.mu.Unlock()
	delete(mc.inUse, mconn)
	if mc.closed {
		mconn.nc.Close()
		return
	}
	if old := mc.conns[addr]; old != nil {
		old.nc.Close()
	} else if len(mc.conns) >= migrateCacheMax {
		for a, victim := range mc.conns { // any one, as Redis picks a random one
			victim.nc.Close()
			delete(mc.conns, a)
			break
		}
	}
	if mc.conns == nil {
		mc.conns = map[string]*migrateConn{}
	}
	mc.conns[addr] = mconn
	time.AfterFunc(migrateCacheTTL+time.Millisecond, mc.closeIdle)
}

// closeIdle closes the connections idle for migrateCacheTTL or longer.
func (mc *migrateCache) closeIdle() {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	for a, mconn := range mc.conns {
		if time.Since(mconn.idle) >= migrateCacheTTL {
			mconn.nc.Close()
			delete(mc.conns, a)
		}
	}
}

// close closes every cached connection, for good (the server's Close).
func (mc *migrateCache) close() {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	mc.closed = true
	for a, mconn := range mc.conns {
		mconn.nc.Close()
		delete(mc.conns, a)
	}
	for mconn := range mc.inUse {
		mconn.nc.Close() // its MIGRATE fails with IOERR now
	}
}

// transfer sends the keys to req's target and reads its replies. As
// Redis, it tries once more on a fresh connection when a connection
// failed, not by a timeout, before any reply came (a cached one the
// target has closed since).
func (mc *migrateCache) transfer(req migrateRequest, moves []store.Migration) migrateResult {
	timeout := time.Duration(req.timeoutMs) * time.Millisecond
	for attempt := 0; ; attempt++ {
		mconn, err := mc.take(req.addr, timeout)
		var res migrateResult
		var replied bool
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			// Redis connects without blocking, so a refusal shows when it
			// writes (and it tries again).
			err = errors.Join(errMigrateWrite, err)
		case err != nil:
			return migrateResult{ioErr: "IOERR error or timeout connecting to the client"}
		default:
			res, replied, err = mconn.send(req, moves, timeout)
			if err == nil {
				mc.put(req.addr, mconn)
				return res
			}
			mc.drop(mconn)
		}
		if !replied && attempt == 0 && !isTimeout(err) {
			continue
		}
		if res.targetErr == "" {
			if errors.Is(err, errMigrateWrite) {
				res.ioErr = "IOERR error or timeout writing to target instance"
			} else {
				res.ioErr = "IOERR error or timeout reading to target instance"
			}
		}
		return res
	}
}

var errMigrateWrite = errors.New("migrate: write to the target failed")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// send writes AUTH, SELECT (when the target's database is another) and a
// RESTORE per key, then reads their replies; replied: a RESTORE's reply
// came (so no retry). An error means the connection is unusable.
func (mconn *migrateConn) send(req migrateRequest, moves []store.Migration, timeout time.Duration) (res migrateResult, replied bool, err error) {
	now := time.Now().UnixMilli()
	var buf []byte
	if req.password != nil {
		if req.username != nil {
			buf = resp.AppendCommand(buf, []byte("AUTH"), req.username, req.password)
		} else {
			buf = resp.AppendCommand(buf, []byte("AUTH"), req.password)
		}
	}
	selecting := mconn.lastDB != req.db
	if selecting {
		buf = resp.AppendCommand(buf, []byte("SELECT"), strconv.AppendInt(nil, req.db, 10))
	}
	sent := moves[:0:0]
	for _, m := range moves {
		var ttl int64
		if m.ExpireAt != 0 {
			if ttl = m.ExpireAt - now; ttl < 0 {
				continue // expired since it was read
			}
			ttl = max(ttl, 1)
		}
		restore := [][]byte{[]byte("RESTORE"), m.Key, strconv.AppendInt(nil, ttl, 10), m.Payload}
		if req.replace {
			restore = append(restore, []byte("REPLACE"))
		}
		buf = resp.AppendCommand(buf, restore...)
		sent = append(sent, m)
	}
	if err := mconn.write(buf, timeout); err != nil {
		return res, false, err
	}
	var authReply, selectReply string
	if req.password != nil {
		if authReply, err = mconn.readLine(timeout); err != nil {
			return res, false, err
		}
	}
	if selecting {
		if selectReply, err = mconn.readLine(timeout); err != nil {
			return res, false, err
		}
	}
	for i, m := range sent {
		line, err := mconn.readLine(timeout)
		if err != nil {
			return res, i > 0, err
		}
		failed := ""
		switch {
		case isErrLine(authReply):
			failed = authReply
		case isErrLine(selectReply):
			failed = selectReply
		case isErrLine(line):
			failed = line
		}
		if failed == "" {
			res.acked = append(res.acked, m)
		} else if res.targetErr == "" {
			res.targetErr = failed[1:]
		}
	}
	if res.targetErr != "" {
		mconn.lastDB = -1 // as Redis: SELECT again next time
	} else {
		mconn.lastDB = req.db
	}
	return res, true, nil
}

func isErrLine(s string) bool { return len(s) > 0 && s[0] == '-' }

// write sends buf within timeout.
func (mconn *migrateConn) write(buf []byte, timeout time.Duration) error {
	mconn.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := mconn.nc.Write(buf); err != nil {
		return errors.Join(errMigrateWrite, err)
	}
	return nil
}

// readLine reads one reply line within timeout, without its CRLF, cut
// to migrateReplyMax bytes.
func (mconn *migrateConn) readLine(timeout time.Duration) (string, error) {
	mconn.nc.SetReadDeadline(time.Now().Add(timeout))
	var line []byte
	for {
		chunk, isPrefix, err := mconn.rd.ReadLine()
		if err != nil {
			return "", err
		}
		if len(line) < migrateReplyMax {
			line = append(line, chunk[:min(len(chunk), migrateReplyMax-len(line))]...)
		}
		if !isPrefix {
			break
		}
	}
	if len(line) == 0 {
		return "", errors.New("migrate: empty reply line")
	}
	return string(line), nil
}

// migratedPropagated is SYNC's form of a store.MigratedCommand that
// replied reply (the keys it deleted): DEL of those keys, as Redis
// propagates MIGRATE; nil when it deleted none.
func migratedPropagated(reply []byte) [][]byte {
	if len(reply) < 4 || reply[0] != '*' || string(reply) == "*0\r\n" {
		return nil
	}
	rest := reply[bytes.IndexByte(reply, '\n')+1:]
	p := [][]byte{[]byte("DEL")}
	for len(rest) > 0 {
		n := replyLen(rest)
		k, ok := bulkOf(rest[:n])
		if !ok {
			return nil
		}
		p = append(p, bytes.Clone(k))
		rest = rest[n:]
	}
	return p
}

// appendMigrateKeys answers COMMAND GETKEYS MIGRATE ...: the keys as
// Redis 7.0 finds them. Its key specs first: the key argument, and the
// arguments after a KEYS found searching back from the next to last;
// when one is found, the spec being incomplete, Redis reads the options
// forward instead (migrateGetKeys), where KEYS after a non-empty key
// gives none.
func appendMigrateKeys(dst []byte, args [][]byte) []byte {
	if len(args) < 6 {
		return resp.AppendError(dst, "ERR Invalid number of arguments specified for command")
	}
	keyAt := []int{3}
	for i := len(args) - 2; i > 1; i-- {
		if lowerEq(args[i], "keys") {
			keyAt = migrateKeysForward(args)
			break
		}
	}
	if len(keyAt) == 0 {
		return resp.AppendError(dst, "ERR Invalid arguments specified for command")
	}
	dst = resp.AppendArrayLen(dst, len(keyAt))
	for _, at := range keyAt {
		dst = resp.AppendBulk(dst, args[at])
	}
	return dst
}

// migrateKeysForward finds the keys reading the options forward, skipping
// AUTH's and AUTH2's arguments.
func migrateKeysForward(args [][]byte) []int {
	for i := 6; i < len(args); i++ {
		switch {
		case lowerEq(args[i], "keys"):
			if len(args[3]) > 0 {
				return nil // MIGRATE itself refuses it
			}
			var at []int
			for j := i + 1; j < len(args); j++ {
				at = append(at, j)
			}
			return at
		case lowerEq(args[i], "auth"):
			i++
		case lowerEq(args[i], "auth2"):
			i += 2
		}
	}
	return []int{3}
}
