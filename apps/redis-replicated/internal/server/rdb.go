package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// RDB persistence: SAVE, BGSAVE, LASTSAVE, SHUTDOWN and the file loaded
// at start. The file is Redis 7.0's dump.rdb (store.AppendRDB writes it
// from DUMP's encodings), <dir>/<dbfilename>: dir is the append-only
// file's (CONFIG dir, --dir), dbfilename "dump.rdb" unless --dbfilename or
// CONFIG SET dbfilename says otherwise. Like the append-only file it is
// each node's own: SAVE writes the state this node applied.
//
// The image is the state at one point: it is serialized into memory under
// the machine's read lock (writers wait for the serialization, not for
// the disk), then written to temp-<pid>.rdb, fsynced and renamed over the
// file, the directory fsynced. SAVE does it all before replying; BGSAVE
// serializes before replying, so its point in time is the command's, and
// writes the file from a goroutine (Redis forks: its image is the fork's).
//
// rdb_changes_since_last_save counts the commands applied since the last
// image (Machine.cmds, which Apply already counts: nothing added to the
// hot path), where Redis counts the keys changed.
//
// Loading: a standalone server with appendonly no loads the file at start
// if there is one (StartRDB), through the machine as REPLICAOF loads a
// master's RDB (replink.go): FLUSHALL, then RESTORE … REPLACE ABSTTL per
// key and FUNCTION LOAD per library. With appendonly yes the append-only
// file is the state, as in Redis, and a replica of a cluster gets its
// state by state transfer: neither loads it.
//
// The save parameter has no save points here ("" and fixed): nothing is
// saved on a timer, SHUTDOWN saves only when SHUTDOWN SAVE asks, and
// SIGTERM never.

// rdbState is a Machine's RDB settings and saving state.
type rdbState struct {
	// mu guards filename, scheduled, done, lastBgsaveSec, bgsaveStart
	// and loaded, and is held through a SAVE and a BGSAVE's start (taken
	// before the machine's lock); done is closed when the BGSAVE in
	// progress ends.
	mu                         sync.Mutex
	filename                   string
	scheduled                  bool
	done                       chan struct{}
	lastBgsaveSec, bgsaveStart int64
	loaded                     int64
	inProgress                 atomic.Bool
	bgsaveOK                   atomic.Bool
	lastSave                   atomic.Int64  // Unix s of the last image written (LASTSAVE)
	saves                      atomic.Int64  // images written since start (rdb_saves)
	cmdsAtSave                 atomic.Uint64 // Machine.cmds when the last image was taken
	// keyDelayUs is rdb-key-save-delay: a BGSAVE's writer takes this
	// many µs per key longer (Redis's child sleeps per key saved; tests
	// use it to keep a save in progress), 0 or less: none.
	keyDelayUs atomic.Int64
	logger     *slog.Logger
}

func (r *rdbState) init() {
	r.filename, r.lastBgsaveSec, r.logger = "dump.rdb", -1, slog.Default()
	r.bgsaveOK.Store(true)
	r.lastSave.Store(time.Now().Unix()) // as Redis's lastsave at start
}

// RDBOptions are a server's RDB settings at start (dir is AOFOptions').
type RDBOptions struct {
	// Filename is dbfilename ("": dump.rdb).
	Filename string
	// Load loads the file, if there is one and appendonly is no (a
	// standalone server).
	Load bool
	// Logger receives the saves' and the load's messages (nil: slog's
	// default).
	Logger *slog.Logger
}

// StartRDB applies o, after StartAOF (whose dir it shares) and before the
// server serves.
func (m *Machine) StartRDB(o RDBOptions) error {
	r := &m.rdb
	if o.Logger != nil {
		r.logger = o.Logger
	}
	if o.Filename != "" {
		if msg := checkDBFilename(o.Filename); msg != "" {
			return fmt.Errorf("rdb: dbfilename %q: %s", o.Filename, msg)
		}
		r.filename = o.Filename
	}
	m.mu.RLock()
	aofOn := m.aof.log != nil
	m.mu.RUnlock()
	if !o.Load || aofOn {
		return nil
	}
	path := m.rdbPath()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rdb: %w", err)
	}
	keys, err := m.loadRDB(data)
	if err != nil {
		return fmt.Errorf("rdb: %s: %w", path, err)
	}
	r.mu.Lock()
	r.loaded = int64(keys)
	r.mu.Unlock()
	r.cmdsAtSave.Store(m.cmds.Load()) // loaded is saved, as Redis's dirty is 0
	r.logger.Info("DB loaded from disk", "path", path, "keys", keys, "bytes", len(data))
	return nil
}

// loadRDB applies the RDB file data to the machine, in proposals of
// RESTORE and FUNCTION LOAD (see above), and returns the keys loaded.
func (m *Machine) loadRDB(data []byte) (int, error) {
	var p proposal
	p.reset(propBatch)
	p.add([][]byte{[]byte("FLUSHALL")})
	p.add([][]byte{[]byte("FUNCTION"), []byte("FLUSH")})
	keys := 0
	apply := func() error {
		res := m.Apply(0, p.seal(time.Now().UnixMilli(), 0))
		p.reset(propBatch)
		if len(res) > 0 && res[0] == '-' || strings.Contains(string(res), "\r\n-") {
			return fmt.Errorf("loading failed: %.256s", res)
		}
		return nil
	}
	err := store.WalkRDB(data, func(e *store.RDBEntry) error {
		args := [][]byte{[]byte("FUNCTION"), []byte("LOAD"), []byte("REPLACE"), e.Function}
		if e.Function == nil {
			keys++
			args = [][]byte{[]byte("RESTORE"), e.Key, strconv.AppendInt(nil, e.ExpireAt, 10), e.Payload, []byte("REPLACE"), []byte("ABSTTL")}
		}
		if p.count > 0 && len(p.buf)+commandSize(args)+selectSize > replBatch {
			if err := apply(); err != nil {
				return err
			}
		}
		p.use(e.DB)
		p.add(args)
		return nil
	})
	if err == nil && p.count > 0 {
		err = apply()
	}
	return keys, err
}

func (m *Machine) rdbPath() string {
	m.rdb.mu.Lock()
	defer m.rdb.mu.Unlock()
	return m.rdbPathLocked()
}

// rdbPathLocked is the file's path; under m.rdb.mu.
func (m *Machine) rdbPathLocked() string {
	m.mu.RLock()
	dir := m.aof.dir
	m.mu.RUnlock()
	return filepath.Join(dir, m.rdb.filename)
}

// rdbImage serializes the state now, under the read lock, with the count
// of commands applied that it holds.
func (m *Machine) rdbImage() ([]byte, uint64, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.mu.RLock()
	defer m.mu.RUnlock()
	img, err := m.st.AppendRDB(nil, store.RDBInfo{NowMs: time.Now().UnixMilli(), UsedMem: int64(ms.HeapAlloc)})
	return img, m.cmds.Load(), err
}

// writeRDBFile writes img to path atomically: a temporary file in its
// directory, fsynced, renamed over path, the directory fsynced.
func writeRDBFile(path string, img []byte) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "temp-"+strconv.Itoa(os.Getpid())+".rdb")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("rdb: %w", err)
	}
	_, err = f.Write(img)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rdb: %w", err)
	}
	syncDir(dir)
	return nil
}

// saved records an image of cmds commands written.
func (r *rdbState) saved(cmds uint64) {
	r.cmdsAtSave.Store(cmds)
	r.lastSave.Store(time.Now().Unix())
	r.saves.Add(1)
}

// save is SAVE: the image written before it returns. It holds r.mu
// throughout, so saves never write the temporary file at once (Redis, one
// thread, has one at a time).
func (m *Machine) save() error {
	r := &m.rdb
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inProgress.Load() {
		return errBgsaveInProgress
	}
	path := m.rdbPathLocked()
	img, cmds, err := m.rdbImage()
	if err == nil {
		err = writeRDBFile(path, img)
	}
	if err != nil {
		r.logger.Error("Failed saving the DB", "err", err)
		return err
	}
	r.saved(cmds)
	r.bgsaveOK.Store(true)
	r.logger.Info("DB saved on disk", "path", path)
	return nil
}

var errBgsaveInProgress = errors.New("Background save already in progress")

// bgsave is BGSAVE: the image taken now, written by a goroutine. With
// schedule, one asked for while another is in progress runs after it.
func (m *Machine) bgsave(schedule bool) (string, error) {
	r := &m.rdb
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inProgress.Load() {
		if !schedule {
			return "", errBgsaveInProgress
		}
		r.scheduled = true
		return "Background saving scheduled", nil
	}
	if err := m.startBgsave(); err != nil {
		return "", err
	}
	return "Background saving started", nil
}

// startBgsave takes the image and starts its writer; under r.mu.
func (m *Machine) startBgsave() error {
	r := &m.rdb
	img, cmds, err := m.rdbImage()
	if err != nil {
		r.bgsaveOK.Store(false)
		return err
	}
	var delay time.Duration
	if us := r.keyDelayUs.Load(); us > 0 {
		keys := 0
		m.mu.RLock()
		for db := range store.Databases {
			n, _ := m.st.DBStats(db)
			keys += n
		}
		m.mu.RUnlock()
		delay = time.Duration(us*int64(keys)) * time.Microsecond
	}
	r.inProgress.Store(true)
	r.bgsaveStart = time.Now().UnixMilli()
	done := make(chan struct{})
	r.done = done
	path := m.rdbPathLocked()
	r.logger.Info("Background saving started", "path", path)
	go func() {
		time.Sleep(delay)
		err := writeRDBFile(path, img)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.logger.Error("Background saving error", "err", err)
		} else {
			r.saved(cmds)
			r.logger.Info("Background saving terminated with success")
		}
		r.bgsaveOK.Store(err == nil)
		r.lastBgsaveSec = (time.Now().UnixMilli() - r.bgsaveStart) / 1000
		r.inProgress.Store(false)
		close(done)
		if r.scheduled {
			r.scheduled = false
			if err := m.startBgsave(); err != nil {
				r.logger.Error("Background saving error", "err", err)
			}
		}
	}()
	return nil
}

// waitBgsave waits for the BGSAVE in progress (and any scheduled) to end.
func (m *Machine) waitBgsave() {
	r := &m.rdb
	for {
		r.mu.Lock()
		done, busy := r.done, r.inProgress.Load()
		r.mu.Unlock()
		if !busy {
			return
		}
		<-done
	}
}

// writeRDBInfo writes INFO persistence's RDB fields, as Redis 7.0 names
// them.
func (m *Machine) writeRDBInfo(field func(name string, v any)) {
	r := &m.rdb
	r.mu.Lock()
	lastSec, start, loaded := r.lastBgsaveSec, r.bgsaveStart, r.loaded
	r.mu.Unlock()
	current := int64(-1)
	if r.inProgress.Load() {
		current = (time.Now().UnixMilli() - start) / 1000
	}
	status := "ok"
	if !r.bgsaveOK.Load() {
		status = "err"
	}
	field("rdb_changes_since_last_save", m.cmds.Load()-r.cmdsAtSave.Load())
	field("rdb_bgsave_in_progress", boolInt(r.inProgress.Load()))
	field("rdb_last_save_time", r.lastSave.Load())
	field("rdb_last_bgsave_status", status)
	field("rdb_last_bgsave_time_sec", lastSec)
	field("rdb_current_bgsave_time_sec", current)
	field("rdb_saves", r.saves.Load())
	field("rdb_last_cow_size", 0)
	field("rdb_last_load_keys_expired", 0)
	field("rdb_last_load_keys_loaded", loaded)
}

// checkDBFilename is Redis's reason for refusing dbfilename name ("": ok).
func checkDBFilename(name string) string {
	if name == "" || strings.ContainsRune(name, '/') {
		return "dbfilename can't be a path, just a filename"
	}
	return ""
}

func (m *Machine) dbFilename() string {
	m.rdb.mu.Lock()
	defer m.rdb.mu.Unlock()
	return m.rdb.filename
}

func (m *Machine) setDBFilename(name string) {
	m.rdb.mu.Lock()
	m.rdb.filename = name
	m.rdb.mu.Unlock()
}

func cmdSave(c *conn, _ [][]byte) bool {
	out := c.reply()
	switch err := c.s.cfg.Machine.save(); {
	case errors.Is(err, errBgsaveInProgress):
		*out = resp.AppendError(*out, "ERR "+err.Error())
	case err != nil:
		*out = resp.AppendError(*out, "ERR") // Redis's shared.err
	default:
		*out = resp.AppendOK(*out)
	}
	return false
}

// cmdBgsave is BGSAVE [SCHEDULE]; queued inside MULTI, it runs at EXEC
// (multilocal.go).
func cmdBgsave(c *conn, args [][]byte) bool {
	if c.multi {
		c.queueLocal(lookupServerCommand(args[0]), args)
		return false
	}
	out := c.reply()
	schedule := false
	switch {
	case len(args) == 2 && lowerEq(args[1], "schedule"):
		schedule = true
	case len(args) > 1:
		*out = resp.AppendError(*out, "ERR syntax error")
		return false
	}
	msg, err := c.s.cfg.Machine.bgsave(schedule)
	switch {
	case errors.Is(err, errBgsaveInProgress):
		*out = resp.AppendError(*out, "ERR "+err.Error())
	case err != nil:
		*out = resp.AppendError(*out, "ERR") // Redis's shared.err
	default:
		*out = resp.AppendSimple(*out, msg)
	}
	return false
}

func cmdLastsave(c *conn, _ [][]byte) bool {
	out := c.reply()
	*out = resp.AppendInt(*out, c.s.cfg.Machine.rdb.lastSave.Load())
	return false
}

// cmdShutdown is SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: it saves
// when asked (SAVE: there are no save points, see above), fsyncs the
// append-only file, then closes the server, which ends the process
// (replicaproc.Process.Serve returns as on SIGTERM). It never replies on
// success: the connection closes. NOW changes nothing (no replica lags
// behind here), and a shutdown is never in progress for ABORT to stop.
func cmdShutdown(c *conn, args [][]byte) bool {
	out := c.reply()
	var save, nosave, abort, force bool
	for _, a := range args[1:] {
		switch {
		case lowerEq(a, "save"):
			save = true
		case lowerEq(a, "nosave"):
			nosave = true
		case lowerEq(a, "now"):
		case lowerEq(a, "force"):
			force = true
		case lowerEq(a, "abort"):
			abort = true
		default:
			*out = resp.AppendError(*out, "ERR syntax error")
			return false
		}
	}
	if save && nosave || abort && len(args) > 2 {
		*out = resp.AppendError(*out, "ERR syntax error")
		return false
	}
	if abort {
		*out = resp.AppendError(*out, "ERR No shutdown in progress.")
		return false
	}
	// A script past its busy time lets SHUTDOWN through (allow_busy), but
	// only NOSAVE, as in Redis: a save would wait for the script.
	if since := c.s.cfg.Machine.scripts.since.Load(); since != 0 && !nosave {
		if msg := c.s.cfg.Machine.scripts.busyError(since); msg != "" {
			*out = resp.AppendError(*out, msg)
			return false
		}
	}
	if err := c.s.cfg.Machine.prepareShutdown(save, force); err != nil {
		*out = resp.AppendError(*out, "ERR Errors trying to SHUTDOWN. Check logs.")
		return false
	}
	c.s.cfg.Logger.Warn("SHUTDOWN: Redis is now ready to exit, bye bye...")
	go c.s.Close() // it waits for this connection to end
	return true
}

// prepareShutdown does what SHUTDOWN does before the server closes: the
// save asked for and the append-only file's fsync. With force, their
// failures are logged and ignored.
func (m *Machine) prepareShutdown(save, force bool) error {
	m.waitBgsave()
	var errs []error
	if save {
		errs = append(errs, m.save())
	}
	errs = append(errs, m.syncAOF())
	err := errors.Join(errs...)
	if err != nil {
		m.rdb.logger.Error("SHUTDOWN", "err", err, "force", force)
		if force {
			return nil
		}
	}
	return err
}

// syncAOF writes the append-only file's pending records and fsyncs it,
// if appendonly is on.
func (m *Machine) syncAOF() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.aof.log
	if l == nil {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.writePending()
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("aof: fsync: %w", err)
	}
	return nil
}
