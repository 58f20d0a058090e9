package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// The append-only file. Redis's AOF records the commands that changed the
// keyspace, in the forms that replay the same (SPOP as SREM, XADD * with
// its ID, relative expiries as absolute ones). Here the machine is
// already deterministic: a proposal carries the leader's clock and random
// seed, and applying it gives the same state on every replica. So the file
// records the proposals themselves, as Apply applied them, and replaying
// them through Apply rebuilds the state exactly, whatever the commands
// (random picks, generated IDs, times and scripts alike):
//
//	magic      "GOMUAOF1"
//	base size  u64, little-endian
//	base       the store's snapshot (store.Snapshot: what SYNC and state
//	           transfer carry), taken under the machine's write lock
//	records    per proposal applied since the base:
//	           size u32 LE, the proposal, CRC32C (Castagnoli) of both
//
// The file is <dir>/<appendfilename> (CONFIG dir: the process's working
// directory unless set; appendfilename "appendonly.aof"). Turning
// appendonly on, BGREWRITEAOF and a state transfer (Machine.Restore)
// write a new file, base = the state now, to a temporary name and rename
// it over the old one, under the write lock (synchronously: Redis forks,
// this blocks the writes for the time a snapshot takes).
//
// Loading restores the base and replays the records through a scratch
// Machine, whose side effects (Pub/Sub deliveries, blocked clients'
// replies, SYNC taps, script observers) go nowhere. A record cut short or
// failing its checksum ends the file: it and what follows are truncated
// and logged, as Redis does with aof-load-truncated yes. A base that does
// not check out (its snapshot's SHA-256) is refused.
//
// appendonly is each node's own, as in Redis: not replicated. A replica
// that turns it on records, from then on, the same proposals every other
// replica applies, so in a cluster DEBUG LOADAOF gives back exactly the
// live state. A replica of a cluster does not load its file at start: it
// rejoins by state transfer (which rewrites the file); only a standalone
// server loads it (Machine.StartAOF).
//
// Apply records its proposal under the write lock (a copy into the file's
// pending buffer) and writes it after releasing the lock, before it
// returns: whoever writes first writes every record pending, so
// concurrent proposals (a standalone server's connections) share one
// write(2), and one fsync under appendfsync always, as Redis writes its
// AOF buffer once per event loop for all its clients. Every record is
// written to the kernel before Apply returns, whatever the policy, so a
// process crash loses no acknowledged write. appendfsync always fsyncs
// there too; everysec fsyncs from a goroutine once a second; no leaves it
// to the kernel.
//
// A write or fsync that fails stops the file where it was last whole (a
// short write is truncated away), logs an error, sets INFO's
// aof_last_write_status to err and makes this node refuse writes with
// Redis's MISCONF until a rewrite succeeds (BGREWRITEAOF, or appendonly
// off and on), as Redis refuses them while its AOF cannot be written. The
// writes whose records failed were applied (in a cluster, on every
// replica) and are acknowledged: they are in memory, not in this file,
// and the rewrite that lifts the refusal writes them in its new base.

const (
	aofMagic  = "GOMUAOF1"
	aofHeader = len(aofMagic) + 8
	// aofFrame is a record's bytes besides the proposal: size and CRC.
	aofFrame = 4 + 4
	// maxSpare bounds the write buffer kept between writes.
	maxSpare = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fsync policies (appendfsync).
const (
	fsyncNo int32 = iota
	fsyncEverysec
	fsyncAlways
)

var fsyncNames = [...]string{fsyncNo: "no", fsyncEverysec: "everysec", fsyncAlways: "always"}

// aofState is a Machine's append-only file and its settings. All of it is
// under the machine's lock but the atomics and lastErr, which the
// connections (refusal), the writers and the everysec goroutine use
// without it.
type aofState struct {
	log *aofLog // nil: appendonly no
	// dir is CONFIG dir ("" : the working directory), filename
	// appendfilename, preamble aof-use-rdb-preamble (stored only: the
	// base is always a gomu snapshot).
	dir, filename string
	preamble      bool
	fsync         atomic.Int32
	// broken: the file failed a write; writes are refused (MISCONF).
	broken atomic.Bool
	// lastErr is the failure broken reports.
	errMu   sync.Mutex
	lastErr error
	// rewriteOK is aof_last_bgrewrite_status; rewrites counts them.
	rewriteOK bool
	rewrites  int64
	logger    *slog.Logger
}

func (a *aofState) init() {
	a.filename, a.preamble, a.rewriteOK = "appendonly.aof", true, true
	a.fsync.Store(fsyncEverysec)
	a.logger = slog.Default()
}

// aofLog is one open file.
type aofLog struct {
	f        *os.File
	a        *aofState
	baseSize int64 // its base's bytes
	// pending are the records not yet written, appended is the file's
	// size once they are: under pmu, held only to append or take them.
	pmu      sync.Mutex
	pending  []byte
	appended int64
	// wmu orders the writes: written is the file's size so far, spare
	// the buffer pending is swapped with; closed, the file is.
	wmu     sync.Mutex
	written int64
	spare   []byte
	closed  bool
	// dirty: written since the last fsync (everysec's).
	dirty atomic.Bool
	stop  chan struct{}
	done  chan struct{}
}

// record appends proposal p to the file's pending records: Apply's, under
// the write lock, only while appendonly is on. It returns the file and
// the size it must reach for p to be written (Apply flushes it). It
// allocates nothing once the buffers have grown.
func (m *Machine) record(p []byte) (*aofLog, int64) {
	l := m.aof.log
	if m.aof.broken.Load() {
		return nil, 0
	}
	l.pmu.Lock()
	n := len(l.pending)
	l.pending = binary.LittleEndian.AppendUint32(l.pending, uint32(len(p)))
	l.pending = append(l.pending, p...)
	l.pending = binary.LittleEndian.AppendUint32(l.pending, crc32.Checksum(l.pending[n:], castagnoli))
	l.appended += int64(len(l.pending) - n)
	upto := l.appended
	l.pmu.Unlock()
	return l, upto
}

// flush writes the pending records, unless the file already holds upto
// bytes (another writer wrote ours) or was closed (a rewrite, whose base
// holds their effects, or appendonly no).
func (l *aofLog) flush(upto int64) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.written >= upto || l.closed {
		return
	}
	l.writePending()
}

// writePending writes the pending records, and fsyncs them under
// appendfsync always; under wmu.
func (l *aofLog) writePending() {
	l.pmu.Lock()
	buf := l.pending
	l.pending = l.spare[:0]
	l.pmu.Unlock()
	l.spare = buf
	if cap(buf) > maxSpare {
		l.spare = nil // one huge write's buffer is not kept
	}
	if len(buf) == 0 || l.a.broken.Load() {
		return
	}
	if _, err := l.f.Write(buf); err != nil {
		l.failed(fmt.Errorf("aof: write: %w", err))
		return
	}
	l.written += int64(len(buf))
	if l.a.fsync.Load() == fsyncAlways {
		if err := l.f.Sync(); err != nil {
			l.failed(fmt.Errorf("aof: fsync: %w", err))
		}
		return
	}
	l.dirty.Store(true)
}

// failed stops the file at its last whole record and refuses writes (see
// above); under wmu.
func (l *aofLog) failed(err error) {
	_ = l.f.Truncate(l.written) // a short write's part record, if the disk allows
	l.a.fail(err)
}

func (a *aofState) fail(err error) {
	a.errMu.Lock()
	a.lastErr = err
	a.errMu.Unlock()
	a.broken.Store(true)
	a.logger.Error("append-only file failed: this node refuses writes (MISCONF) until BGREWRITEAOF succeeds; the writes applied since are in memory only",
		"err", err)
}

// aofPath is the file's path.
func (a *aofState) path() string { return filepath.Join(a.dir, a.filename) }

// writeAOF writes a new file with the store's state as its base, to a
// temporary name renamed over the file, and returns it open for
// appending; under the write lock.
func (m *Machine) writeAOF() (*aofLog, error) {
	path := m.aof.path()
	tmp, err := os.CreateTemp(filepath.Dir(path), "temp-rewriteaof-*.aof")
	if err != nil {
		return nil, fmt.Errorf("aof: rewrite: %w", err)
	}
	fail := func(err error) (*aofLog, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("aof: rewrite %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil { // as Redis creates its files
		return fail(err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<16)
	var hdr [aofHeader]byte
	copy(hdr[:], aofMagic)
	bw.Write(hdr[:]) // the base size is filled in below
	if err := m.st.Snapshot(bw); err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	end, err := tmp.Seek(0, io.SeekCurrent)
	if err != nil {
		return fail(err)
	}
	binary.LittleEndian.PutUint64(hdr[len(aofMagic):], uint64(end-int64(aofHeader)))
	if _, err := tmp.WriteAt(hdr[:], 0); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(err)
	}
	syncDir(filepath.Dir(path))
	return newAOFLog(tmp, end, end-int64(aofHeader), &m.aof), nil
}

// syncDir makes a rename in dir durable (best effort: not every file
// system can fsync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// newAOFLog takes f, positioned at its end (size), for appending, and
// starts its everysec goroutine.
func newAOFLog(f *os.File, size, baseSize int64, a *aofState) *aofLog {
	l := &aofLog{f: f, a: a, baseSize: baseSize, appended: size, written: size, stop: make(chan struct{}), done: make(chan struct{})}
	go l.syncLoop()
	return l
}

// syncLoop fsyncs the file once a second while appendfsync is everysec
// and something was written, until close. It takes no machine lock: Apply
// may append while it syncs.
func (l *aofLog) syncLoop() {
	a := l.a
	defer close(l.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if a.fsync.Load() != fsyncEverysec || !l.dirty.Swap(false) {
			continue
		}
		if err := l.f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
			a.fail(fmt.Errorf("aof: fsync: %w", err))
		}
	}
}

// close writes the pending records, flushes the file to disk and closes
// it; under the machine's write lock.
func (l *aofLog) close() error {
	close(l.stop)
	<-l.done
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.writePending()
	l.closed = true
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// setAOF turns appendonly on (writing a file of the state now) or off;
// this node's own, as Redis's. The error is Redis's CONFIG SET text.
func (m *Machine) setAOF(on bool) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := &m.aof
	if on == (a.log != nil) {
		return ""
	}
	if !on {
		if err := a.log.close(); err != nil {
			a.logger.Error("append-only file: closing", "err", err)
		}
		a.log = nil
		a.broken.Store(false)
		return ""
	}
	if errText := m.rewriteLocked(); errText != "" {
		return "Unable to turn on AOF. Check server logs."
	}
	return ""
}

// rewriteAOF is BGREWRITEAOF: a new file with the state now as its base
// (with appendonly off too, as Redis writes one then). It reports the
// error, logged.
func (m *Machine) rewriteAOF() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aof.log == nil {
		l, err := m.writeAOF()
		if err != nil {
			m.aof.rewriteOK = false
			m.aof.logger.Error("append-only file rewrite failed", "err", err)
			return err.Error()
		}
		l.close()
		m.aof.rewriteOK = true
		m.aof.rewrites++
		return ""
	}
	return m.rewriteLocked()
}

// rewriteLocked replaces the open file (if any) by a new one; under the
// write lock. A success lifts a write failure's refusal.
func (m *Machine) rewriteLocked() string {
	a := &m.aof
	l, err := m.writeAOF()
	if err != nil {
		a.rewriteOK = false
		a.logger.Error("append-only file rewrite failed", "err", err)
		return err.Error()
	}
	if a.log != nil {
		if err := a.log.close(); err != nil {
			a.logger.Warn("append-only file: closing the rewritten file", "err", err)
		}
	}
	a.log, a.rewriteOK = l, true
	a.errMu.Lock()
	a.lastErr = nil
	a.errMu.Unlock()
	a.rewrites++
	a.broken.Store(false)
	return ""
}

// loadAOF is DEBUG LOADAOF: the file flushed to disk, then this replica's
// state rebuilt from it and put in place of the live one, under the write
// lock. In a cluster the result is the live state (the file holds every
// proposal applied here since its base): that is what it checks.
func (m *Machine) loadAOF() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := &m.aof
	if a.log == nil {
		return errors.New("appendonly is no: no append-only file is being written")
	}
	if a.broken.Load() {
		return errors.New("the append-only file failed a write: it lacks the writes since (BGREWRITEAOF writes a whole one)")
	}
	l := a.log
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.writePending() // nothing is pending after: Apply waits for the lock
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("aof: fsync: %w", err)
	}
	st, size, err := loadAOFFile(a.path(), a.logger)
	if err != nil {
		return err
	}
	if size < l.written { // a torn tail truncated: appends go on after it
		if _, err := l.f.Seek(size, io.SeekStart); err != nil {
			return fmt.Errorf("aof: %w", err)
		}
		l.pmu.Lock()
		l.written, l.appended = size, size
		l.pmu.Unlock()
	}
	m.st = st
	m.publishMaster(st.Master())
	return nil
}

// AOFOptions are a server's append-only file settings at start.
type AOFOptions struct {
	// Dir is CONFIG dir ("": the working directory), Filename
	// appendfilename ("": appendonly.aof), Fsync appendfsync ("":
	// everysec).
	Dir, Filename, Fsync string
	// Enable turns appendonly on. Load first loads the file, if there is
	// one (a standalone server: a cluster's replica gets its state by
	// state transfer, and the file is written anew).
	Enable, Load bool
	// Logger receives the file's errors (nil: slog's default).
	Logger *slog.Logger
}

// StartAOF applies o, before the server serves.
func (m *Machine) StartAOF(o AOFOptions) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := &m.aof
	if o.Logger != nil {
		a.logger = o.Logger
	}
	if o.Fsync != "" {
		policy, ok := parseFsync(o.Fsync)
		if !ok {
			return fmt.Errorf("aof: appendfsync %q: want always, everysec or no", o.Fsync)
		}
		a.fsync.Store(policy)
	}
	if o.Filename != "" {
		a.filename = o.Filename
	}
	if o.Dir != "" {
		dir, err := filepath.Abs(o.Dir)
		if err != nil {
			return fmt.Errorf("aof: dir: %w", err)
		}
		a.dir = dir
	}
	if !o.Enable {
		return nil
	}
	path := a.path()
	if _, err := os.Stat(path); !o.Load || errors.Is(err, os.ErrNotExist) {
		if errText := m.rewriteLocked(); errText != "" {
			return errors.New(errText)
		}
		return nil
	}
	st, size, err := loadAOFFile(path, a.logger)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("aof: %w", err)
	}
	base, err := readBaseSize(f)
	if err != nil {
		f.Close()
		return err
	}
	m.st = st
	m.publishMaster(st.Master())
	a.log = newAOFLog(f, size, base, a)
	a.logger.Info("append-only file loaded", "path", path, "bytes", size)
	return nil
}

func readBaseSize(f *os.File) (int64, error) {
	var hdr [aofHeader]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, fmt.Errorf("aof: %s: header: %w", f.Name(), err)
	}
	return int64(binary.LittleEndian.Uint64(hdr[len(aofMagic):])), nil
}

// loadAOFFile reads the file at path into a new store: the base restored,
// the records replayed through a scratch machine. A torn or corrupt tail
// is truncated (logged); it returns the size of the file kept.
func loadAOFFile(path string, logger *slog.Logger) (*store.Store, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("aof: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("aof: %w", err)
	}
	var hdr [aofHeader]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil || string(hdr[:len(aofMagic)]) != aofMagic {
		return nil, 0, fmt.Errorf("aof: %s: not a gomu append-only file (bad header)", path)
	}
	base := int64(binary.LittleEndian.Uint64(hdr[len(aofMagic):]))
	if base > fi.Size()-int64(aofHeader) {
		return nil, 0, fmt.Errorf("aof: %s: corrupt base: %d bytes announced, %d in the file", path, base, fi.Size()-int64(aofHeader))
	}
	scratch := NewMachine()
	if err := scratch.st.Restore(io.NewSectionReader(f, int64(aofHeader), base)); err != nil {
		return nil, 0, fmt.Errorf("aof: %s: corrupt base: %w", path, err)
	}
	start := int64(aofHeader) + base
	end, n, why := replayRecords(scratch, io.NewSectionReader(f, start, fi.Size()-start), start)
	if why != "" {
		logger.Warn("append-only file: truncating its tail (aof-load-truncated)", "path", path,
			"reason", why, "records", n, "kept", end, "dropped", fi.Size()-end)
		if err := f.Truncate(end); err != nil {
			return nil, 0, fmt.Errorf("aof: %s: truncating a torn tail: %w", path, err)
		}
	}
	return scratch.st, end, nil
}

// replayRecords applies the records read from r (at offset off in the
// file) to scratch until the end or a record cut short or corrupt (why
// says which). It returns the offset after the last whole record and
// how many there were.
func replayRecords(scratch *Machine, r io.Reader, off int64) (int64, int, string) {
	br := bufio.NewReaderSize(r, 1<<16)
	var head [4]byte
	var buf []byte
	n := 0
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			if err == io.EOF {
				return off, n, ""
			}
			return off, n, "record size cut short"
		}
		size := int(binary.LittleEndian.Uint32(head[:]))
		if size < propHeader || size > 1<<31 {
			return off, n, fmt.Sprintf("record of %d bytes", size)
		}
		if need := aofFrame + size; cap(buf) < need {
			buf = make([]byte, need)
		}
		buf = buf[:aofFrame+size]
		copy(buf, head[:])
		if _, err := io.ReadFull(br, buf[4:]); err != nil {
			return off, n, "record cut short"
		}
		body := buf[:4+size]
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(buf[4+size:]) {
			return off, n, "record checksum mismatch"
		}
		scratch.Apply(0, body[4:])
		off += int64(len(buf))
		n++
	}
}

// parseFsync reads an appendfsync value.
func parseFsync(v string) (int32, bool) {
	for i, name := range fsyncNames {
		if strings.EqualFold(v, name) {
			return int32(i), true
		}
	}
	return 0, false
}

// aofConfigValue is CONFIG GET's value of an AOF parameter (or dir), and
// whether name is one.
func (m *Machine) aofConfigValue(name string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a := &m.aof
	switch name {
	case "appendonly":
		return yesNo(a.log != nil), true
	case "appendfsync":
		return fsyncNames[a.fsync.Load()], true
	case "appendfilename":
		return a.filename, true
	case "aof-use-rdb-preamble":
		return yesNo(a.preamble), true
	case "dir":
		if a.dir != "" {
			return a.dir, true
		}
		wd, _ := os.Getwd()
		return wd, true
	}
	return "", false
}

// checkAOFConfig checks CONFIG SET's value v for an AOF parameter (or
// dir): known reports whether name is one, errText is Redis's reason for
// refusing v.
func checkAOFConfig(name string, v []byte) (known bool, errText string) {
	switch name {
	case "appendonly", "aof-use-rdb-preamble":
		if !lowerEq(v, "yes") && !lowerEq(v, "no") {
			return true, "argument must be 'yes' or 'no'"
		}
	case "appendfsync":
		if _, ok := parseFsync(string(v)); !ok {
			return true, "argument(s) must be one of the following: everysec, always, no"
		}
	case "appendfilename":
		return true, "can't set immutable config"
	case "dir":
		// As Redis 7.0's enable-protected-configs no: --dir sets it.
		return true, "can't set protected config"
	case "dbfilename": // rdb.go's, checked and set with these
		return true, checkDBFilename(string(v))
	case "rdb-key-save-delay":
		if _, err := strconv.ParseInt(string(v), 10, 64); err != nil {
			return true, "argument couldn't be parsed into an integer"
		}
		if _, err := strconv.ParseInt(string(v), 10, 32); err != nil {
			return true, "argument must be between -2147483648 and 2147483647 inclusive"
		}
	default:
		return false, ""
	}
	return true, ""
}

// strerror words err as C's strerror does (Redis's CONFIG SET dir).
func strerror(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	s := errno.Error()
	return strings.ToUpper(s[:1]) + s[1:]
}

// setAOFConfig applies CONFIG SET of an AOF parameter, checked
// by checkAOFConfig; the error is Redis's reason text.
func (m *Machine) setAOFConfig(name string, v []byte) string {
	switch name {
	case "appendonly":
		return m.setAOF(lowerEq(v, "yes"))
	case "appendfsync":
		p, _ := parseFsync(string(v))
		m.aof.fsync.Store(p)
	case "aof-use-rdb-preamble":
		m.mu.Lock()
		m.aof.preamble = lowerEq(v, "yes")
		m.mu.Unlock()
	case "dbfilename":
		m.setDBFilename(string(v))
	case "rdb-key-save-delay":
		us, _ := strconv.ParseInt(string(v), 10, 32)
		m.rdb.keyDelayUs.Store(us)
	}
	return ""
}

// aofRefusesWrites reports whether this node refuses writes for a failed
// append-only file, and Redis's MISCONF error then.
func (m *Machine) aofRefusesWrites() (string, bool) {
	if !m.aof.broken.Load() {
		return "", false
	}
	m.aof.errMu.Lock()
	err := m.aof.lastErr
	m.aof.errMu.Unlock()
	reason := "unknown error"
	var errno syscall.Errno
	if errors.As(err, &errno) {
		reason = strerror(errno)
	}
	return "MISCONF Errors writing to the AOF file: " + reason, true
}

// aofInfo is INFO persistence's AOF fields, Redis 7.0's.
type aofInfo struct {
	enabled, writeOK, rewriteOK bool
	rewrites                    int64
	current, base               int64
}

func (m *Machine) aofInfo() aofInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a := &m.aof
	i := aofInfo{enabled: a.log != nil, writeOK: !a.broken.Load(), rewriteOK: a.rewriteOK, rewrites: a.rewrites}
	if l := a.log; l != nil {
		l.pmu.Lock()
		i.current, i.base = l.appended, l.baseSize+int64(aofHeader)
		l.pmu.Unlock()
	}
	return i
}

// CloseAOF closes the file, if open (the process ends).
func (m *Machine) CloseAOF() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.aof.log == nil {
		return nil
	}
	err := m.aof.log.close()
	m.aof.log = nil
	return err
}

// cmdBgrewriteaof is BGREWRITEAOF: done before the reply (see above), so
// INFO's aof_rewrite_in_progress is 0 by the time a client asks.
func cmdBgrewriteaof(c *conn, _ [][]byte) bool {
	out := c.reply()
	if errText := c.s.cfg.Machine.rewriteAOF(); errText != "" {
		*out = resp.AppendError(*out, "ERR Can't execute an AOF background rewriting. Please check the server logs for more information.")
		return false
	}
	*out = resp.AppendSimple(*out, "Background append only file rewriting started")
	return false
}

// debugLoadAOF is DEBUG LOADAOF. Redis, with appendonly no, loads
// whatever file is on disk (or exits if there is none): here it is
// refused, as a file no longer written would roll this replica back.
func (c *conn) debugLoadAOF(out []byte) []byte {
	if err := c.s.cfg.Machine.loadAOF(); err != nil {
		return resp.AppendError(out, "ERR gomu: DEBUG LOADAOF: "+err.Error())
	}
	return resp.AppendOK(out)
}

// writeAOFInfo writes INFO persistence's AOF fields, as Redis 7.0 names
// them; a rewrite is never in progress nor scheduled (it is done before
// BGREWRITEAOF answers).
func (m *Machine) writeAOFInfo(field func(name string, v any)) {
	i := m.aofInfo()
	okErr := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "err"
	}
	field("aof_enabled", boolInt(i.enabled))
	field("aof_rewrite_in_progress", 0)
	field("aof_rewrite_scheduled", 0)
	field("aof_last_bgrewrite_status", okErr(i.rewriteOK))
	field("aof_rewrites", i.rewrites)
	field("aof_last_write_status", okErr(i.writeOK))
	if i.enabled {
		field("aof_current_size", i.current)
		field("aof_base_size", i.base)
		field("aof_pending_rewrite", 0)
		field("aof_buffer_length", 0)
	}
}

// refuseMisconf answers a write refused while the append-only file cannot
// be written and reports whether it did: one atomic load (inlined) on a
// write's path otherwise.
func (c *conn) refuseMisconf() bool {
	return c.s.cfg.Machine.aof.broken.Load() && c.misconf()
}

// misconf answers MISCONF (flagging a transaction being queued, as Redis
// does), if the file still cannot be written.
func (c *conn) misconf() bool {
	msg, refused := c.s.cfg.Machine.aofRefusesWrites()
	if !refused {
		return false
	}
	return c.refuse(msg)
}
