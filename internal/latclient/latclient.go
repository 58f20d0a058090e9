// Package latclient is the closed-loop latency client behind
// redis-puts-only, redis-gets-only and redis-puts-gets, and
// memcached-puts-only, memcached-gets-only and memcached-puts-gets, after
// Mu's key-value clients: one request outstanding over one TCP connection,
// raw RESP or memcached's text protocol (Config.Protocol), every request
// timed end to end and reported through internal/latency.
//
// What follows is worded for Redis. The memcached clients do the same with
// set, get, stats gomu and SERVER_ERROR gomu: ... lines instead of SET,
// GET, INFO replication and -READONLY/-TRYAGAIN (memcached.go has the
// mapping); a protocol is a codec (protocol.go), and the client, the router
// and the report are shared.
//
// # Following the leader
//
// The client is meant to measure a replicated server through its faults:
// a leader paused, stopped (SIGSTOP) or killed must show up as one long
// sample, a hiccup, not end the run. So it knows every replica of the
// cluster: the addresses it is given (Config.Addr first, then
// Config.Replicas) and those it discovers. At start, and again whenever a
// whole round of known replicas was unreachable, it sends
//
//	INFO replication
//
// and reads redis-server-replicated's
//
//	gomu_id:<id>
//	gomu_leader_id:<id>
//	gomu_leader_addr:<host:port>
//	gomu_replica_addrs:<id>=<host:port>,<id>=<host:port>,...
//
// keeping the id of each address, so that a redirect naming only an id
// still resolves, and starting on the leader, so that the first timed
// request is not a redirect. A standalone server or real Redis prints none
// of these, and the client uses what it was given.
//
// Each attempt of a request gets Config.Timeout for its write and reply (or
// its dial). The request moves on to another replica when the attempt
//
//   - gets no reply within the timeout: the replica is hung or paused, and
//     its connection is dropped, since a late reply would otherwise be read
//     as the next request's;
//   - finds the connection refused, reset or closed;
//   - gets -READONLY ... leader=<id> addr=<host:port>, or leader=none;
//   - gets -TRYAGAIN ..., with or without leader=<id> addr=<host:port>
//     (no leader yet, a paused replica, one catching up).
//
// Where it goes is router's decision (router.go): to the leader a reply
// names unless that is the replica that answered or one that just timed
// out or refused, otherwise to the next replica in turn; with a back-off
// growing from 100 µs to 50 ms after each whole round of replicas without
// an answer. When no other replica is left it asks the same one again, on
// the same connection if the fault was a reply. It sends the same request
// again: a SET resent after a lost reply writes the same value, a GET
// reads. A request that finds no answer within Config.RetryFor of its
// first fault fails the run, with what every replica last answered. The
// preload's pipelined batches go the same way, resent whole, each attempt
// given at least a second.
//
// A request that met faults is still one sample, from its first send to its
// final reply; Result counts the faults and names the longest stall. After
// such a request, untimed, the client asks the replica that answered for
// the leader and moves there (settle): followers serve GETs, and a run
// that measured the leader should not go on measuring a follower.
//
// # Hot path
//
// A request answered at the first attempt costs what it did before the
// client followed leaders: one SetDeadline (a runtime timer, no system
// call), one write and one read, and no allocation
// (TestRequestDoesNotAllocate). Everything above lives in the slow path.
package latclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/poll"
)

// Mode is the request mix of a run.
type Mode int

const (
	// PutsOnly sends SET of a fresh random key and value per request.
	PutsOnly Mode = iota
	// GetsOnly preloads the key space, then times GETs of random keys of it.
	GetsOnly
	// PutsGets preloads the key space, then times a 50/50 random mix of SET
	// and GET, both of random keys of it.
	PutsGets
)

func (m Mode) String() string {
	switch m {
	case PutsOnly:
		return "SET"
	case GetsOnly:
		return "GET"
	case PutsGets:
		return "SET/GET 50/50"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config is one run.
type Config struct {
	Mode     Mode
	Protocol Protocol // Redis (the zero value) or Memcached
	Addr     string   // host:port of a replica (the leader, ideally)
	Replicas []string // host:port of other replicas; more are discovered through INFO or stats gomu
	// KeySize is the bytes per key, > 0; ValueSize the bytes per value, >= 0.
	KeySize   int
	ValueSize int
	Requests  int // timed requests
	Keys      int // key space for the preload and GETs; 0: min(Requests, DefaultKeys)
	Seed      uint64
	// Timeout bounds each attempt: a dial, or a request's write and reply.
	// A replica that does not answer within it is taken as hung or paused
	// and the request moves on, so it is also how long a stopped leader
	// stalls a request before the client looks elsewhere. A reply that
	// legitimately takes longer (huge values, an overloaded machine) is
	// taken as a hang too: raise it then. Default DefaultTimeout.
	Timeout time.Duration
	// RetryFor bounds how long one request may keep moving between
	// replicas before the run fails. Default DefaultRetryFor.
	RetryFor time.Duration
	// Stay keeps the timed requests on Addr instead of the leader: at the
	// start and after a fault the client goes back to Addr, not to the
	// leader. A read-only run on a follower then measures follower reads;
	// writes are still redirected to the leader each time.
	Stay bool
}

// Defaults of Config.
const (
	// DefaultKeys caps the default key space, so that the preload of a
	// long run stays short and its memory small.
	DefaultKeys = 100_000
	// DefaultTimeout is short enough that a stopped leader costs a
	// fraction of a second beyond the fail-over, and long enough for a
	// request of a loaded but healthy cluster.
	DefaultTimeout = 250 * time.Millisecond
	// DefaultRetryFor outlasts an election and a replica's restart.
	DefaultRetryFor = 30 * time.Second
)

// maxLatency is the histogram's range; longer values are clamped to it.
const maxLatency = 60 * time.Second

// maxBulk bounds the replies the client accepts: a GET returns a value it
// wrote, so anything far larger is a broken stream.
const maxBulk = 512 << 20

// preloadTimeout is the least timeout of a preload batch, which carries
// preloadBatch SETs in one proposal.
const preloadTimeout = time.Second

// Result is what a run measured. The fault counters cover the preload too.
type Result struct {
	Rec     *latency.Recorder // one sample per request, in request order
	Elapsed time.Duration     // wall time of the timed requests

	Timeouts   int // attempts without a reply (or connection) within Timeout
	Broken     int // connections refused, reset or closed
	Redirects  int // -READONLY replies (memcached: SERVER_ERROR gomu: not the leader)
	TryAgains  int // -TRYAGAIN replies (memcached: the other SERVER_ERROR gomu: replies)
	Reconnects int // connections made after a fault

	Retried      int           // timed requests that took more than one attempt
	Longest      time.Duration // the longest timed request: the worst stall
	LongestAt    int           // its index
	LongestTries int           // its attempts

	Errors     int    // other error replies; they end their request
	FirstError string // the first of those, for the report

	Addr     string   // the replica the run ended on
	Replicas []string // the replicas known at the end, given and discovered
}

// Check validates c and fills in defaults.
func (c *Config) Check() error {
	if c.Protocol.codec() == nil {
		return fmt.Errorf("unknown protocol %v", c.Protocol)
	}
	if c.KeySize <= 0 {
		return fmt.Errorf("key_size must be at least 1, got %d", c.KeySize)
	}
	if c.Protocol == Memcached && c.KeySize > maxMemcachedKey {
		return fmt.Errorf("key_size must be at most %d for memcached, got %d", maxMemcachedKey, c.KeySize)
	}
	if c.ValueSize < 0 {
		return fmt.Errorf("value_size must not be negative, got %d", c.ValueSize)
	}
	if c.Requests <= 0 {
		return fmt.Errorf("--requests must be at least 1, got %d", c.Requests)
	}
	if c.Keys < 0 {
		return fmt.Errorf("--keys must not be negative, got %d", c.Keys)
	}
	for _, a := range c.Replicas {
		if err := checkAddr(a); err != nil {
			return fmt.Errorf("--replicas: %w", err)
		}
	}
	if c.Keys == 0 {
		c.Keys = min(c.Requests, DefaultKeys)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RetryFor <= 0 {
		c.RetryFor = DefaultRetryFor
	}
	return nil
}

// checkAddr accepts host:port with a TCP port.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return fmt.Errorf("%q is not host:port", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a TCP port", a, port)
	}
	return nil
}

// client is one connection, the buffers it reuses for every request, the
// codec that writes and reads them, and the router that picks the replica.
type client struct {
	cfg     *Config
	codec   codec
	timeout time.Duration // of each attempt: cfg.Timeout, longer in the preload
	rt      *router
	dialer  net.Dialer
	conn    net.Conn // nil between a fault and the next connection
	gone    fault    // why conn is nil after start, if it is
	br      *bufio.Reader
	out     []byte // the command(s) being sent
	in      []byte // the reply being read
	tries   int    // attempts of the last request
	res     *Result
	// away: with Config.Stay, a fault moved the run off the replica it was
	// given, which was held then; it goes back once it may.
	away bool
}

// newClient makes the client of a checked cfg, not yet connected.
func newClient(cfg *Config, res *Result) *client {
	return &client{
		cfg: cfg, codec: cfg.Protocol.codec(), timeout: cfg.Timeout, res: res,
		rt:     newRouter(append([]string{cfg.Addr}, cfg.Replicas...), cfg.Timeout),
		dialer: net.Dialer{Timeout: cfg.Timeout},
		br:     bufio.NewReaderSize(nil, 64<<10),
	}
}

// Run connects to the cluster, preloads when the mode reads, and times
// cfg.Requests requests. An error means the run could not complete (no
// given replica reachable at start, or a request that found no answer
// within RetryFor); error replies are counted in the Result instead.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	res := &Result{Rec: latency.New(maxLatency, cfg.Requests)}
	c := newClient(&cfg, res)
	if err := c.start(); err != nil {
		return nil, err
	}
	defer c.drop()

	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	var keys []byte // cfg.Keys keys of KeySize bytes, back to back
	if cfg.Mode != PutsOnly {
		keys = make([]byte, cfg.Keys*cfg.KeySize)
		fillPrintable(rng, keys)
		if err := c.preload(ctx, keys, rng); err != nil {
			return nil, err
		}
		if cfg.Stay {
			// The preload's SETs went to the leader: come back.
			c.moveTo(0)
			c.away = c.rt.cur != 0
		}
	}
	key := make([]byte, cfg.KeySize)
	val := make([]byte, cfg.ValueSize)

	start := time.Now()
	for i := 0; i < cfg.Requests; i++ {
		// Checked now and then rather than per request: a cancelled run
		// stops soon enough, and the timed loop stays lean.
		if i&1023 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		put := cfg.Mode == PutsOnly || (cfg.Mode == PutsGets && rng.Uint64()&1 == 0)
		k := key
		if cfg.Mode == PutsOnly {
			fillPrintable(rng, key)
		} else {
			j := rng.IntN(cfg.Keys)
			k = keys[j*cfg.KeySize : (j+1)*cfg.KeySize]
		}
		if put {
			fillPrintable(rng, val)
			c.out = c.codec.appendSet(c.out[:0], k, val)
		} else {
			c.out = c.codec.appendGet(c.out[:0], k)
		}
		c.tries = 1
		t0 := time.Now()
		if err := c.do(ctx, 1); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		d := time.Since(t0)
		res.Rec.Record(d)
		if d > res.Longest {
			res.Longest, res.LongestAt, res.LongestTries = d, i, c.tries
		}
		if c.tries > 1 {
			res.Retried++
			c.settle()
		} else if c.away {
			c.moveTo(0)
			c.away = c.rt.cur != 0
		}
	}
	res.Elapsed = time.Since(start)
	res.Addr = c.rt.reps[c.rt.cur].addr
	res.Replicas = c.rt.addrs()
	return res, nil
}

// start connects to the first given replica that accepts, asks it about
// the cluster, and moves to the leader it names. No given replica
// reachable is an error at once (a wrong address should not wait for
// RetryFor); one that accepts but does not answer INFO is left to the
// first request, which moves on from it as from any fault.
func (c *client) start() error {
	rt := c.rt
	hung, hungFault := -1, fault{}
	var refused []string
	for i := range rt.reps {
		rt.cur = i
		ci, f, dialed := c.connect(true)
		switch {
		case f.kind == noFault:
			c.home(ci)
			return nil
		case dialed && hung < 0:
			hung, hungFault = i, f
		case !dialed:
			refused = append(refused, rt.reps[i].addr+": "+f.msg)
		}
	}
	if hung < 0 {
		return fmt.Errorf("no replica reachable: %s", strings.Join(refused, "; "))
	}
	rt.cur, c.gone = hung, hungFault
	return nil
}

// home moves the connection to where the timed requests belong: the
// leader INFO named, or with Config.Stay the replica the run was given.
func (c *client) home(ci clusterInfo) {
	if c.cfg.Stay {
		c.moveTo(0)
		c.away = c.rt.cur != 0
		return
	}
	if ci.leader == 0 {
		return
	}
	c.moveTo(c.rt.learn(ci.leader, ci.leaderAddr))
}

// moveTo moves the connection to replica to, if it is another replica, not
// held, and accepts; otherwise the connection stays.
func (c *client) moveTo(to int) {
	if to < 0 || to == c.rt.cur || c.rt.held(to, time.Now()) {
		return
	}
	conn, err := c.dial(c.rt.reps[to].addr)
	if err != nil {
		return
	}
	c.drop()
	c.use(conn)
	c.rt.cur = to
}

// settle runs after a timed request that met faults, untimed: the replica
// that answered it may be a follower (followers serve GETs), so the client
// asks it for the leader and moves there (or, with Config.Stay, back to
// the replica it was given). The timed requests thus keep measuring the
// leader, as Mu's clients do, before and after a fault.
func (c *client) settle() {
	if c.conn == nil {
		return
	}
	ci, f := c.discover()
	if f.kind != noFault {
		c.drop()
		c.gone = f
		return
	}
	c.home(ci)
}

// do sends c.out, n commands, and reads their n replies, the last left in
// c.in. The first attempt is the whole of the hot path; faults go to
// recover. Error replies other than those that move the request on are
// counted, not returned.
func (c *client) do(ctx context.Context, n int) error {
	f := c.attempt(n)
	if f.kind == noFault {
		return nil
	}
	return c.recover(ctx, n, f)
}

// attempt writes c.out to the current replica and reads n replies. A reply
// that moves the request on does not stop the reading: with all n read,
// the connection stays in step, and recover may keep it.
func (c *client) attempt(n int) fault {
	if c.conn == nil {
		f := c.gone
		if f.kind == noFault {
			f = fault{kind: broken, msg: "not connected"}
		}
		return f
	}
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return c.ioFault("request", err)
	}
	if _, err := c.conn.Write(c.out); err != nil {
		return c.ioFault("request", err)
	}
	var moved fault
	for i := 0; i < n; i++ {
		var err error
		c.in, err = c.codec.readReply(c.br, c.in[:0])
		if err != nil {
			return c.ioFault("request", err)
		}
		if f, errReply := c.codec.classify(c.in); f.kind != noFault {
			if moved.kind == noFault {
				moved = f
			}
		} else if errReply {
			c.res.Errors++
			if c.res.FirstError == "" {
				c.res.FirstError = string(bytes.TrimRight(c.in, "\r\n"))
			}
		}
	}
	return moved
}

// recover is do's slow path: the current attempt met f. It asks the
// router where to go and tries there, until an attempt is answered or
// RetryFor has passed since the first fault. The connection is dropped,
// since a late reply would be read as the next one's, unless the fault was
// a reply (the stream is in step) and the router keeps the replica.
func (c *client) recover(ctx context.Context, n int, f fault) error {
	rt := c.rt
	rt.begin()
	start := time.Now()
	for {
		c.count(f)
		from, now := rt.cur, time.Now()
		to, wait := rt.next(f, now)
		if to != from || (f.kind != readOnly && f.kind != tryAgain) || c.br.Buffered() > 0 {
			c.drop()
		}
		if now.Sub(start) >= c.cfg.RetryFor {
			return fmt.Errorf("no replica answered within --retry-for %v (%d attempts); last answers: %s",
				c.cfg.RetryFor, rt.tries, rt.lastFaults())
		}
		if err := poll.SleepContext(ctx, wait); err != nil {
			return err
		}
		f = fault{}
		if c.conn == nil {
			var dialed bool
			if _, f, dialed = c.connect(rt.rediscover); dialed {
				c.res.Reconnects++
			}
		}
		if f.kind == noFault {
			f = c.attempt(n)
		}
		if f.kind == noFault {
			c.tries = rt.tries + 1
			return nil
		}
	}
}

// count adds f to the Result's fault counters.
func (c *client) count(f fault) {
	switch f.kind {
	case timedOut:
		c.res.Timeouts++
	case broken:
		c.res.Broken++
	case readOnly:
		c.res.Redirects++
	case tryAgain:
		c.res.TryAgains++
	}
}

// connect dials the current replica and, when discover is set, asks it
// about the cluster. dialed reports whether the dial succeeded, even if
// INFO then failed.
func (c *client) connect(discover bool) (ci clusterInfo, f fault, dialed bool) {
	conn, err := c.dial(c.rt.reps[c.rt.cur].addr)
	if err != nil {
		return ci, c.ioFault("connect", err), false
	}
	c.use(conn)
	if !discover {
		return ci, fault{}, true
	}
	ci, f = c.discover()
	if f.kind != noFault {
		c.drop()
		return ci, f, true
	}
	c.rt.rediscover = false
	return ci, fault{}, true
}

// discover sends INFO replication (stats gomu) on the fresh connection and
// learns the cluster from the reply. An error reply (INFO refused, plain
// memcached, or a fake) is no fault: the stream is still in step, there is
// just nothing to learn.
func (c *client) discover() (clusterInfo, fault) {
	cmd, name := c.codec.discovery()
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return clusterInfo{}, c.ioFault(name, err)
	}
	if _, err := c.conn.Write(cmd); err != nil {
		return clusterInfo{}, c.ioFault(name, err)
	}
	var err error
	c.in, err = c.codec.readReply(c.br, c.in[:0])
	if err != nil {
		return clusterInfo{}, c.ioFault(name, err)
	}
	ci := c.codec.clusterInfo(c.in)
	c.rt.learnInfo(ci)
	return ci, fault{}
}

func (c *client) dial(addr string) (net.Conn, error) {
	conn, err := c.dialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return conn, nil
}

// use makes conn the connection.
func (c *client) use(conn net.Conn) {
	c.conn = conn
	c.br.Reset(conn)
}

// drop closes the connection, if any.
func (c *client) drop() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// ioFault words a network error met in stage ("connect", "request", or the
// discovery's "INFO" or "stats gomu") as a fault: a timeout is a hung replica, anything else a broken
// connection.
func (c *client) ioFault(stage string, err error) fault {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if stage == "connect" {
			return fault{kind: timedOut, msg: fmt.Sprintf("connect: no answer within %v", c.timeout)}
		}
		return fault{kind: timedOut, msg: fmt.Sprintf("%s: no reply within %v", stage, c.timeout)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fault{kind: broken, msg: stage + ": connection closed by the server"}
	}
	// The system call's error is the useful part ("connect: connection
	// refused", "read: connection reset by peer"); the report names the
	// address already.
	var se *os.SyscallError
	if errors.As(err, &se) {
		if stage == "connect" {
			return fault{kind: broken, msg: se.Error()}
		}
		return fault{kind: broken, msg: stage + ": " + se.Error()}
	}
	return fault{kind: broken, msg: stage + ": " + err.Error()}
}

// preloadBatch is how many SETs the preload pipelines per round trip.
const preloadBatch = 256

// preload SETs every key of the key space, pipelined and untimed, so that
// the timed GETs hit. A batch that meets a fault is resent whole, wherever
// the router says. An error reply ends the run: the timed GETs would
// measure misses.
func (c *client) preload(ctx context.Context, keys []byte, rng *rand.Rand) error {
	c.timeout = max(c.cfg.Timeout, preloadTimeout)
	defer func() { c.timeout = c.cfg.Timeout }()
	ks := c.cfg.KeySize
	n := len(keys) / ks
	val := make([]byte, c.cfg.ValueSize)
	for lo := 0; lo < n; lo += preloadBatch {
		hi := min(lo+preloadBatch, n)
		c.out = c.out[:0]
		for j := lo; j < hi; j++ {
			fillPrintable(rng, val)
			c.out = c.codec.appendSet(c.out, keys[j*ks:(j+1)*ks], val)
		}
		if err := c.do(ctx, hi-lo); err != nil {
			return fmt.Errorf("preload of keys %d..%d: %w", lo, hi-1, err)
		}
		if c.res.Errors > 0 {
			return fmt.Errorf("preload: server replied %s", c.res.FirstError)
		}
	}
	return nil
}

// printable is the alphabet of keys and values: printable ASCII without
// space, as Mu's clients use, so that dumps and redis-cli stay readable.
const printable = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

// fillPrintable fills b with random printable bytes, eight per random
// number: the slight modulo bias does not matter for a benchmark.
func fillPrintable(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); {
		r := rng.Uint64()
		for j := 0; j < 8 && i < len(b); j++ {
			b[i] = printable[byte(r)%byte(len(printable))]
			r >>= 8
			i++
		}
	}
}
