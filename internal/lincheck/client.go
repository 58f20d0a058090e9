package lincheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/gomu-rdma/gomu/internal/poll"
)

// Back-off after a failed attempt: doubled on each failure in a row.
const (
	minBackoff = time.Millisecond
	maxBackoff = 100 * time.Millisecond
)

// client is what the Redis and Memcache targets share whatever the
// protocol: one connection per server, where writes go and whether to ask
// who leads before the next one, the back-off after a failure, and which
// servers reads avoid for a while.
type client struct {
	addrs, names []string
	dialer       func(ctx context.Context, network, addr string) (net.Conn, error)
	rng          *rand.Rand

	conns   map[string]*serverConn
	leader  int  // index in addrs where writes go
	doubt   bool // ask who leads before the next write
	backoff time.Duration
	wait    time.Duration // what Prepare waits first
	reads   *ReadRouter
}

type serverConn struct {
	nc net.Conn
	br *bufio.Reader
}

// newClient sets up client number n of the servers at addrs (names
// label them; shun is the first shun, 0 for the default of 1 s).
func newClient(addrs, names []string, shun time.Duration, seed uint64, dial func(ctx context.Context, network, addr string) (net.Conn, error), n int) client {
	if shun == 0 {
		shun = time.Second
	}
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	return client{addrs: addrs, names: names, dialer: dial, rng: rng, reads: NewReadRouter(len(addrs), shun, rng),
		conns: map[string]*serverConn{}, leader: rng.IntN(len(addrs)), doubt: true,
	}
}

// where names server at for the history.
func (c *client) where(at int) string {
	if at < len(c.names) {
		return c.names[at]
	}
	return c.addrs[at]
}

// prepare waits out the back-off and, before a write when in doubt, asks
// the servers in turn, starting with the presumed leader, until one says
// it leads: whoLeads(at) reports whether server at leads, and which server
// it names as the leader (-1: none).
func (c *client) prepare(ctx context.Context, write bool, whoLeads func(at int) (leads bool, next int)) error {
	if err := poll.SleepContext(ctx, c.wait); err != nil {
		return err
	}
	c.wait = 0
	if !c.doubt || !write {
		return nil
	}
	var probe time.Duration
	for at := c.leader; ; {
		for range len(c.addrs) {
			leads, next := whoLeads(at)
			if leads {
				c.leader, c.doubt = at, false
				return nil
			}
			if next < 0 || next == at {
				next = (at + 1) % len(c.addrs)
			}
			at = next
		}
		// Nobody leads yet (an election is on): ask again soon. A
		// question is cheap, unlike a write sent to the wrong server,
		// so rounds follow each other at 1 ms doubling to 10 ms, not at
		// the failures' back-off: the client finds the new leader within
		// a few ms of its election.
		probe = min(max(2*probe, minProbe), maxProbe)
		if err := poll.SleepContext(ctx, probe); err != nil {
			return err
		}
	}
}

// Pauses between rounds of questions about who leads.
const (
	minProbe = time.Millisecond
	maxProbe = 10 * time.Millisecond
)

// index is the server at addr, -1 for none.
func (c *client) index(addr string) int {
	for i, a := range c.addrs {
		if a == addr {
			return i
		}
	}
	return -1
}

func (c *client) shun(at int)                          { c.reads.Failed(at) }
func (c *client) answered(at int)                      { c.reads.Reset(at) }
func (c *client) readAnswered(at int, d time.Duration) { c.reads.Answered(at, d) }
func (c *client) readFrom() int                        { return c.reads.Pick() }

// failed steers the next write after a failed attempt at server at (-1:
// leave the leader alone): to leader if it names another server, else,
// after a back-off, to whichever server says it leads.
func (c *client) failed(at int, leader string) {
	if at >= 0 && leader != "" && leader != c.addrs[at] {
		if i := c.index(leader); i >= 0 {
			c.leader = i
			return
		}
	}
	if at >= 0 {
		c.leader, c.doubt = (at+1)%len(c.addrs), true
	}
	c.pause()
}

// succeeded ends the back-off after an attempt that worked.
func (c *client) succeeded() { c.backoff = 0 }

func (c *client) pause() {
	c.backoff = min(max(2*c.backoff, minBackoff), maxBackoff)
	c.wait = c.backoff
}

// errNotSent marks a request that never left: dialing failed.
var errNotSent = errors.New("not sent")

// roundTrip sends the request req to addr and reads the raw reply with
// read, all by deadline. On any error the connection is dropped, so that
// a late reply is never taken for the next request's.
func (c *client) roundTrip(addr string, req []byte, deadline time.Time, read func(*bufio.Reader) ([]byte, error)) ([]byte, error) {
	sc := c.conns[addr]
	if sc == nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		nc, err := c.dial(ctx, "tcp", addr)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotSent, err)
		}
		sc = &serverConn{nc: nc, br: bufio.NewReader(nc)}
		c.conns[addr] = sc
	}
	_ = sc.nc.SetDeadline(deadline)
	_, err := sc.nc.Write(req)
	var raw []byte
	if err == nil {
		raw, err = read(sc.br)
	}
	if err != nil {
		sc.nc.Close()
		delete(c.conns, addr)
		return nil, err
	}
	return raw, nil
}

func (c *client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.dialer != nil {
		return c.dialer(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Close drops every connection.
func (c *client) Close() error {
	for a, sc := range c.conns {
		sc.nc.Close()
		delete(c.conns, a)
	}
	return nil
}
