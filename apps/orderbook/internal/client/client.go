// Package client is a trader's connection to the replicated exchange: one
// verbsrpc connection to every replica, requests sent to the leader, and
// the leader followed through redirects, timeouts and dead replicas. A
// write keeps its client order id across resends, so the exchange applies
// it once however many times it is sent.
package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/internal/deadline"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbsrpc"
)

// Config configures a Client.
type Config struct {
	// RPC is how to reach the replicas: the device, the registry (an
	// observer is enough), the service name ("orderbook" if empty).
	RPC verbsrpc.Config
	// IDs are the replicas' ids; a standalone exchange is one id.
	IDs []int
	// Trader is this trader's id (0: a random one).
	Trader uint64
	// Attempt bounds one send to one replica before the client tries
	// another (default 20 ms). A paused or dead leader costs about this.
	Attempt time.Duration
	// Timeout bounds a request over all its attempts (default 10 s).
	Timeout time.Duration
	// DialTimeout bounds connecting to one replica (default 2 s), at start
	// and when a replica that went down is dialed again in the background.
	DialTimeout time.Duration
}

// Stats counts what following the leader took.
type Stats struct {
	Requests, Attempts, Redirects, Timeouts, Retries, Reconnects uint64
}

// Client is one trader's session. It is not safe for concurrent use: a
// trader has one request in flight, as in the Mu experiment; run one
// Client per trader.
type Client struct {
	cfg    Config
	conns  []*verbsrpc.Conn // by position in cfg.IDs; nil while down
	leader int              // position of the replica tried first
	next   uint64           // the last ClOrd used
	ctx    *deadline.Context
	out    []byte
	resp   []byte
	stats  Stats
	closed atomic.Bool
	// redial is where a background dial of a replica that was down
	// leaves its connection; dialing marks one under way.
	redial []atomic.Pointer[verbsrpc.Conn]
	// silentUntil is, per replica, until when it is not taken for the
	// leader again after an attempt on it timed out.
	silentUntil []time.Time
	dialing     []atomic.Bool
	lastDial    []time.Time
}

// ErrGaveUp is returned when no replica applied a request within Timeout.
var ErrGaveUp = errors.New("orderbook client: no replica answered in time")

// Dial connects to every replica it can reach within DialTimeout; it
// fails only if it reaches none.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if len(cfg.IDs) == 0 {
		return nil, errors.New("orderbook client: no replica ids")
	}
	if cfg.RPC.Name == "" {
		cfg.RPC.Name = "orderbook"
	}
	if cfg.Trader == 0 {
		cfg.Trader = rand.Uint64() | 1
	}
	if cfg.Attempt <= 0 {
		cfg.Attempt = 20 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	c := &Client{cfg: cfg, conns: make([]*verbsrpc.Conn, len(cfg.IDs)), ctx: deadline.New(),
		out: make([]byte, 0, wire.RequestSize), resp: make([]byte, 64<<10), lastDial: make([]time.Time, len(cfg.IDs)),
		redial: make([]atomic.Pointer[verbsrpc.Conn], len(cfg.IDs)), dialing: make([]atomic.Bool, len(cfg.IDs)),
		silentUntil: make([]time.Time, len(cfg.IDs))}
	var errs []error
	for i, id := range cfg.IDs {
		dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		conn, err := verbsrpc.DialID(dctx, cfg.RPC, id)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("replica %d: %w", id, err))
			continue
		}
		c.conns[i] = conn
	}
	if len(errs) == len(cfg.IDs) {
		return nil, fmt.Errorf("orderbook client: no replica reachable: %w", errors.Join(errs...))
	}
	for i, conn := range c.conns {
		if conn != nil {
			c.leader = i
			break
		}
	}
	return c, nil
}

// Trader is the client's trader id.
func (c *Client) Trader() uint64 { return c.cfg.Trader }

// Stats returns the counts so far.
func (c *Client) Stats() Stats { return c.stats }

// Leader is the id of the replica the client sends to first.
func (c *Client) Leader() int { return c.cfg.IDs[c.leader] }

// nextClOrd reserves the next client order id.
func (c *Client) nextClOrd() uint64 {
	c.next++
	return c.next
}

// Close closes every connection (a background dial still under way
// closes its own when it ends).
func (c *Client) Close() error {
	var errs []error
	for i, conn := range c.conns {
		if conn != nil {
			errs = append(errs, conn.Close())
			c.conns[i] = nil
		}
		if conn := c.redial[i].Swap(nil); conn != nil {
			errs = append(errs, conn.Close())
		}
	}
	c.closed.Store(true)
	return errors.Join(errs...)
}

// Do sends req until a replica answers it for good and returns the
// answer's bytes (valid until the next call) and decoded result. A write
// gets the client's trader id and, if it has none, the next ClOrd; a
// resend after an error keeps both. StatusRejected is an answer, not an
// error.
func (c *Client) Do(req *wire.Request) (wire.Result, []byte, error) {
	if req.Op.IsWrite() || req.Op == wire.OpTrader {
		if req.Trader == 0 {
			req.Trader = c.cfg.Trader
		}
	}
	if req.Op.IsWrite() && req.ClOrd == 0 {
		req.ClOrd = c.nextClOrd()
	}
	c.out = req.Append(c.out[:0])
	c.stats.Requests++
	var res wire.Result
	start := time.Now()
	var last error
	for try := 0; ; try++ {
		if try > 0 && time.Since(start) > c.cfg.Timeout {
			return res, nil, fmt.Errorf("%w (%v, %d attempts; last: %v)", ErrGaveUp, c.cfg.Timeout, try, last)
		}
		i := c.leader
		conn := c.conn(i)
		if conn == nil {
			last = fmt.Errorf("replica %d unreachable", c.cfg.IDs[i])
			c.moveOn(0)
			continue
		}
		c.stats.Attempts++
		c.ctx.Arm(c.cfg.Attempt)
		n, err := conn.Call(c.ctx, c.out, c.resp)
		c.ctx.Disarm()
		if err != nil {
			last = fmt.Errorf("replica %d: %w", c.cfg.IDs[i], err)
			if errors.Is(err, verbsrpc.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				c.stats.Timeouts++
				c.silentUntil[i] = time.Now().Add(c.cfg.Attempt)
			} else {
				conn.Close()
				c.conns[i] = nil
			}
			c.moveOn(0)
			continue
		}
		text, err := wire.DecodeResult(c.resp[:n], &res)
		if err != nil {
			return res, nil, fmt.Errorf("orderbook client: replica %d answered garbage: %w", c.cfg.IDs[i], err)
		}
		switch res.Status {
		case wire.StatusNotLeader, wire.StatusRetry, wire.StatusUnavailable:
			if res.Status == wire.StatusNotLeader {
				c.stats.Redirects++
			} else {
				c.stats.Retries++
			}
			last = fmt.Errorf("replica %d: %v %s", c.cfg.IDs[i], res.Status, text)
			c.moveOn(int(res.Leader))
			continue
		case wire.StatusBadRequest:
			return res, c.resp[:n], fmt.Errorf("orderbook client: bad request: %s", text)
		}
		return res, c.resp[:n], nil
	}
}

// moveOn picks the replica to try next: the one named leader, unless it
// is the one just tried, is down, or has just let an attempt time out
// (the others keep naming a paused or dead leader until they elect a new
// one; going back to it would cost another whole attempt each time, so it
// is left alone for one attempt's time while the others are asked), else
// the next in turn. A full round with no leader named backs off a little,
// so that an election is not flooded.
func (c *Client) moveOn(leader int) {
	for i, id := range c.cfg.IDs {
		if id == leader && i != c.leader && c.conns[i] != nil && time.Now().After(c.silentUntil[i]) {
			c.leader = i
			return
		}
	}
	c.leader = (c.leader + 1) % len(c.cfg.IDs)
	if c.leader == 0 {
		// time.Sleep would sleep a whole millisecond on some kernels.
		poll.Nap(50 * time.Microsecond)
	}
}

// conn returns the connection to replica i, nil while it is down. A
// replica that is down is dialed again in the background (at most every
// 100 ms, within DialTimeout): a dead replica's registry record stays
// until it restarts, and dialing it on the request's path would stall the
// request for the whole dial timeout while a live leader waits.
func (c *Client) conn(i int) *verbsrpc.Conn {
	if c.conns[i] != nil {
		return c.conns[i]
	}
	if conn := c.redial[i].Swap(nil); conn != nil {
		c.stats.Reconnects++
		c.conns[i] = conn
		return conn
	}
	if time.Since(c.lastDial[i]) >= 100*time.Millisecond && c.dialing[i].CompareAndSwap(false, true) {
		c.lastDial[i] = time.Now()
		go c.dial(i)
	}
	return nil
}

// redialTimeout bounds one background dial of a replica that was down.
// The dial may begin against the record of a process that just died (a
// replica killed and restarted within a second, as in a crash loop), and
// nothing dials that replica again while it waits: a whole DialTimeout
// spent on the dead record kept traders off a new leader that had
// restarted meanwhile for up to two seconds. A live replica answers a dial
// in milliseconds; the next attempt follows within 100 ms.
const redialTimeout = 300 * time.Millisecond

// dial connects to replica i on a goroutine of its own.
func (c *Client) dial(i int) {
	defer c.dialing[i].Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), min(c.cfg.DialTimeout, redialTimeout))
	defer cancel()
	conn, err := verbsrpc.DialID(ctx, c.cfg.RPC, c.cfg.IDs[i])
	if err != nil {
		return
	}
	if c.closed.Load() {
		conn.Close()
		return
	}
	if old := c.redial[i].Swap(conn); old != nil {
		old.Close()
	}
}
