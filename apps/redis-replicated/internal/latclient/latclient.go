// Package latclient is the closed-loop latency client behind
// redis-puts-only, redis-gets-only and redis-puts-gets, after Mu's
// key-value clients: one request outstanding over one TCP connection, raw
// RESP, every request timed end to end and reported through
// internal/latency.
//
// The client follows redis-server-replicated's leader: an error reply
//
//	-READONLY You can't write against a read only replica. leader=<id> addr=<host:port>
//
// makes it reconnect to addr and send the same request again, and a broken
// connection makes it reconnect (to the current address, then the one it
// was started with) until a deadline, so that a run survives a leader
// change. Such a request is still one sample: its latency runs from its
// first send to its final reply. SET and GET are idempotent enough for a
// benchmark that a request resent after a lost reply does no harm.
package latclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/resp"
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
	Mode      Mode
	Addr      string // host:port of the server (the leader, ideally)
	KeySize   int    // bytes per key, > 0
	ValueSize int    // bytes per value, >= 0
	Requests  int    // timed requests
	Keys      int    // key space for the preload and GETs; 0: min(Requests, DefaultKeys)
	Seed      uint64
	// Timeout bounds each network read, write and dial.
	Timeout time.Duration
	// RetryFor bounds how long one request may spend being redirected and
	// reconnecting before the run gives up.
	RetryFor time.Duration
}

// DefaultKeys caps the default key space, so that the preload of a long run
// stays short and its memory small.
const DefaultKeys = 100_000

// maxLatency is the histogram's range; longer values are clamped to it.
const maxLatency = 60 * time.Second

// maxBulk bounds the replies the client accepts: a GET returns a value it
// wrote, so anything far larger is a broken stream.
const maxBulk = 512 << 20

// Result is what a run measured.
type Result struct {
	Rec        *latency.Recorder // one sample per request, in request order
	Elapsed    time.Duration     // wall time of the timed requests
	Redirects  int               // -READONLY replies followed
	Reconnects int               // connections re-established after an error
	Errors     int               // other error replies
	FirstError string            // the first of those, for the report
	Addr       string            // the address the run ended on
}

// Check validates c and fills in defaults.
func (c *Config) Check() error {
	if c.KeySize <= 0 {
		return fmt.Errorf("key_size must be at least 1, got %d", c.KeySize)
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
	if c.Keys == 0 {
		c.Keys = min(c.Requests, DefaultKeys)
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.RetryFor <= 0 {
		c.RetryFor = 10 * time.Second
	}
	return nil
}

// client is one connection and the buffers it reuses for every request.
type client struct {
	cfg   *Config
	addr  string // current target
	conn  net.Conn
	br    *bufio.Reader
	out   []byte // the command being sent
	in    []byte // the reply being read
	args  [3][]byte
	redir string // address named by the last -READONLY, if any
	res   *Result
}

var (
	cmdSET = []byte("SET")
	cmdGET = []byte("GET")
)

// Run connects to cfg.Addr, preloads when the mode reads, and times
// cfg.Requests requests. An error means the run could not complete (no
// connection, or a request that could not be answered within RetryFor);
// error replies are counted in the Result instead.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	res := &Result{Rec: latency.New(maxLatency, cfg.Requests)}
	c := &client{cfg: &cfg, addr: cfg.Addr, res: res}
	// The first dial is a single attempt: a wrong address should fail at
	// once, not after the reconnect deadline.
	if err := c.dial(cfg.Addr); err != nil {
		return nil, err
	}
	defer func() { c.conn.Close() }()

	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	var keys []byte // cfg.Keys keys of KeySize bytes, back to back
	if cfg.Mode != PutsOnly {
		keys = make([]byte, cfg.Keys*cfg.KeySize)
		fillPrintable(rng, keys)
		if err := c.preload(ctx, keys, rng); err != nil {
			return nil, err
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
			c.args = [3][]byte{cmdSET, k, val}
			c.out = resp.AppendCommand(c.out[:0], c.args[:3]...)
		} else {
			c.args = [3][]byte{cmdGET, k, nil}
			c.out = resp.AppendCommand(c.out[:0], c.args[:2]...)
		}
		t0 := time.Now()
		if err := c.do(ctx); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		res.Rec.Record(time.Since(t0))
	}
	res.Elapsed = time.Since(start)
	res.Addr = c.addr
	return res, nil
}

// do sends c.out and reads its reply into c.in, following redirects and
// reconnecting as needed. An error reply other than a redirect is counted,
// not returned.
func (c *client) do(ctx context.Context) error {
	deadline := time.Now().Add(c.cfg.RetryFor)
	redirects := 0
	for {
		err := c.roundTrip()
		if err == nil {
			if c.redirect() {
				c.res.Redirects++
				redirects++
				if redirects > 1 {
					// Two servers naming each other, or a leader not yet
					// elected: do not spin.
					time.Sleep(10 * time.Millisecond)
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("still redirected after %v (last to %s)", c.cfg.RetryFor, c.redir)
				}
				if err := c.reconnect(ctx, deadline, c.redir); err != nil {
					return err
				}
				continue
			}
			if len(c.in) > 0 && c.in[0] == '-' {
				c.res.Errors++
				if c.res.FirstError == "" {
					c.res.FirstError = string(bytes.TrimRight(c.in, "\r\n"))
				}
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A server that accepts connections but never answers would
		// otherwise keep this loop going.
		if time.Now().After(deadline) {
			return fmt.Errorf("no reply within %v: %w", c.cfg.RetryFor, err)
		}
		// The stream is broken or out of step: start over on a fresh
		// connection, the current target first, then the one we were given.
		if rerr := c.reconnect(ctx, deadline, c.addr, c.cfg.Addr); rerr != nil {
			return fmt.Errorf("%v; %w", err, rerr)
		}
	}
}

// roundTrip writes c.out and reads one reply, with the per-request deadline.
func (c *client) roundTrip() error {
	if err := c.conn.SetDeadline(time.Now().Add(c.cfg.Timeout)); err != nil {
		return err
	}
	if _, err := c.conn.Write(c.out); err != nil {
		return fmt.Errorf("send to %s: %w", c.addr, err)
	}
	var err error
	c.in, err = resp.ReadReply(c.br, c.in[:0], maxBulk)
	if err != nil {
		return fmt.Errorf("reply from %s: %w", c.addr, err)
	}
	return nil
}

var (
	readOnly = []byte("-READONLY")
	addrKey  = []byte("addr=")
)

// redirect reports whether c.in is a -READONLY naming a leader address, and
// stores that address in c.redir.
func (c *client) redirect() bool {
	addr, ok := ParseRedirect(c.in)
	if ok {
		c.redir = addr
	}
	return ok
}

// ParseRedirect returns the leader address of a -READONLY error reply that
// carries addr=<host:port>; ok is false for any other reply.
func ParseRedirect(reply []byte) (addr string, ok bool) {
	if !bytes.HasPrefix(reply, readOnly) {
		return "", false
	}
	i := bytes.Index(reply, addrKey)
	if i < 0 {
		return "", false
	}
	a := reply[i+len(addrKey):]
	if j := bytes.IndexAny(a, " \r\n"); j >= 0 {
		a = a[:j]
	}
	if len(a) == 0 {
		return "", false
	}
	return string(a), true
}

func (c *client) dial(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, c.cfg.Timeout)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.addr = conn, addr
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 64<<10)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

// reconnect dials the addresses in turn until one answers or deadline
// passes; 50 ms between rounds, so a dead leader costs no busy loop.
func (c *client) reconnect(ctx context.Context, deadline time.Time, addrs ...string) error {
	var last error
	for {
		for _, a := range addrs {
			if last = c.dial(a); last == nil {
				c.res.Reconnects++
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no server reachable within %v: %w", c.cfg.RetryFor, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// preloadBatch is how many SETs the preload pipelines per round trip.
const preloadBatch = 256

// preload SETs every key of the key space, pipelined and untimed, so that
// the timed GETs hit. A batch answered by a redirect is resent to the
// leader as a whole.
func (c *client) preload(ctx context.Context, keys []byte, rng *rand.Rand) error {
	ks := c.cfg.KeySize
	n := len(keys) / ks
	val := make([]byte, c.cfg.ValueSize)
	for lo := 0; lo < n; lo += preloadBatch {
		hi := min(lo+preloadBatch, n)
		c.out = c.out[:0]
		for j := lo; j < hi; j++ {
			fillPrintable(rng, val)
			c.args = [3][]byte{cmdSET, keys[j*ks : (j+1)*ks], val}
			c.out = resp.AppendCommand(c.out, c.args[:3]...)
		}
		deadline := time.Now().Add(c.cfg.RetryFor)
		for {
			redirected, err := c.preloadRound(hi - lo)
			if err == nil && !redirected {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("preload: keys %d..%d not stored within %v: %v", lo, hi, c.cfg.RetryFor, err)
			}
			if err != nil {
				var re replyError
				if errors.As(err, &re) {
					return fmt.Errorf("preload: %w", err)
				}
				err = c.reconnect(ctx, deadline, c.addr, c.cfg.Addr)
			} else {
				c.res.Redirects++
				time.Sleep(10 * time.Millisecond)
				err = c.reconnect(ctx, deadline, c.redir)
			}
			if err != nil {
				return fmt.Errorf("preload: %w", err)
			}
		}
	}
	return nil
}

// replyError is an error reply to the preload, which is fatal: the timed
// GETs would measure misses.
type replyError string

func (e replyError) Error() string { return "server replied " + string(e) }

// preloadRound sends the batch in c.out and reads its n replies.
func (c *client) preloadRound(n int) (redirected bool, err error) {
	if err := c.conn.SetDeadline(time.Now().Add(c.cfg.Timeout)); err != nil {
		return false, err
	}
	if _, err := c.conn.Write(c.out); err != nil {
		return false, fmt.Errorf("send to %s: %w", c.addr, err)
	}
	for i := 0; i < n; i++ {
		c.in, err = resp.ReadReply(c.br, c.in[:0], maxBulk)
		if err != nil {
			return false, fmt.Errorf("reply from %s: %w", c.addr, err)
		}
		if c.redirect() {
			redirected = true
		} else if len(c.in) > 0 && c.in[0] == '-' && !redirected {
			return false, replyError(bytes.TrimRight(c.in, "\r\n"))
		}
	}
	return redirected, nil
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
