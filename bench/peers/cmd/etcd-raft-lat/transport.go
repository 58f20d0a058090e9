package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// The wire format between replicas: a connection opens with the sender's id
// (8 bytes, big endian), then carries frames of a 4-byte big-endian length
// followed by one raftpb.Message in its protobuf encoding. Each replica dials
// one connection to every peer for what it sends and accepts the peers'
// connections for what it receives.
const (
	helloSize = 8
	// maxFrame bounds a frame a reader accepts; a message carries at most
	// MaxSizePerMsg of entries plus one entry, far below it.
	maxFrame = 64 << 20
	// sendQueue is how many messages may wait for one peer's connection;
	// beyond it messages are dropped, which raft tolerates (it resends).
	sendQueue = 4096
	// redialEvery paces the attempts to (re)connect to a peer.
	redialEvery = 10 * time.Millisecond
)

// transport carries raft messages between replicas over TCP.
type transport struct {
	id    uint64
	ln    net.Listener
	peers map[uint64]*peer
	// step delivers a received message to the local node.
	step func(context.Context, raftpb.Message) error
	// unreachable tells the local node that a message to a peer was lost.
	unreachable func(id uint64)

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{} // accepted, to close on shutdown
	inbound map[uint64]*atomic.Int32
}

// peer is the sending side towards one other replica.
type peer struct {
	id   uint64
	addr string
	q    chan raftpb.Message
}

// newTransport serves ln and sends to addrs[i] for replica i+1 (its own
// entry is not dialled). Received messages go to step.
func newTransport(id uint64, ln net.Listener, addrs []string, step func(context.Context, raftpb.Message) error, unreachable func(uint64)) *transport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &transport{
		id: id, ln: ln, peers: map[uint64]*peer{}, step: step, unreachable: unreachable,
		ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}, inbound: map[uint64]*atomic.Int32{},
	}
	for i, a := range addrs {
		pid := uint64(i + 1)
		t.inbound[pid] = new(atomic.Int32)
		if pid == id {
			continue
		}
		p := &peer{id: pid, addr: a, q: make(chan raftpb.Message, sendQueue)}
		t.peers[pid] = p
		t.wg.Add(1)
		go t.sendLoop(p)
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t
}

// send queues msgs for their destinations without blocking.
func (t *transport) send(msgs []raftpb.Message) {
	for _, m := range msgs {
		p, ok := t.peers[m.To]
		if !ok {
			continue
		}
		select {
		case p.q <- m:
		default:
			t.unreachable(m.To)
		}
	}
}

// connectedFrom reports how many connections from replica id are open.
func (t *transport) connectedFrom(id uint64) int {
	if c, ok := t.inbound[id]; ok {
		return int(c.Load())
	}
	return 0
}

// close stops every goroutine and closes every connection.
func (t *transport) close() {
	t.cancel()
	t.ln.Close()
	t.mu.Lock()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

func (t *transport) sendLoop(p *peer) {
	defer t.wg.Done()
	var buf []byte
	for t.ctx.Err() == nil {
		conn, err := t.dial(p)
		if err != nil {
			return // shutting down
		}
		bw := bufio.NewWriterSize(conn, 64<<10)
		err = func() error {
			for {
				var m raftpb.Message
				select {
				case <-t.ctx.Done():
					return t.ctx.Err()
				case m = <-p.q:
				}
				// Write what is queued, then flush once.
				for more := true; more; {
					buf = frame(buf[:0], m)
					if _, err := bw.Write(buf); err != nil {
						return err
					}
					select {
					case m = <-p.q:
					default:
						more = false
					}
				}
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}()
		conn.Close()
		if t.ctx.Err() == nil {
			t.unreachable(p.id)
		}
	}
}

// dial connects to p, retrying until it succeeds or the transport closes.
func (t *transport) dial(p *peer) (net.Conn, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(t.ctx, "tcp", p.addr)
		if err == nil {
			var hello [helloSize]byte
			binary.BigEndian.PutUint64(hello[:], t.id)
			if _, err = conn.Write(hello[:]); err == nil {
				return conn, nil
			}
			conn.Close()
		}
		select {
		case <-t.ctx.Done():
			return nil, t.ctx.Err()
		case <-time.After(redialEvery):
		}
	}
}

// frame appends m's frame to b.
func frame(b []byte, m raftpb.Message) []byte {
	n := m.Size()
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	start := len(b)
	b = slices.Grow(b, n)[:start+n]
	// Marshalling into a buffer of exactly Size() bytes cannot fail.
	_, _ = m.MarshalTo(b[start:])
	return b
}

func (t *transport) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept()
		if err != nil {
			return // closed
		}
		t.mu.Lock()
		if t.ctx.Err() != nil {
			t.mu.Unlock()
			conn.Close()
			return
		}
		t.conns[conn] = struct{}{}
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.receive(conn)
			t.mu.Lock()
			delete(t.conns, conn)
			t.mu.Unlock()
			conn.Close()
		}()
	}
}

// receive reads one peer's connection until it ends.
func (t *transport) receive(conn net.Conn) {
	br := bufio.NewReaderSize(conn, 64<<10)
	var hello [helloSize]byte
	if _, err := io.ReadFull(br, hello[:]); err != nil {
		return
	}
	from := binary.BigEndian.Uint64(hello[:])
	counter, ok := t.inbound[from]
	if !ok {
		return // not one of ours
	}
	counter.Add(1)
	defer counter.Add(-1)
	var buf []byte
	for {
		m, err := readFrame(br, &buf)
		if err != nil {
			return
		}
		if err := t.step(t.ctx, m); err != nil {
			return // the node stopped
		}
	}
}

// readFrame reads one frame into a message; buf is reused between calls
// (unmarshalling copies what the message keeps).
func readFrame(r io.Reader, buf *[]byte) (raftpb.Message, error) {
	var m raftpb.Message
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return m, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return m, fmt.Errorf("frame of %d bytes exceeds %d", n, maxFrame)
	}
	if cap(*buf) < int(n) {
		*buf = make([]byte, n)
	}
	b := (*buf)[:n]
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return m, err
	}
	if err := m.Unmarshal(b); err != nil {
		return m, fmt.Errorf("decode message: %w", err)
	}
	return m, nil
}
