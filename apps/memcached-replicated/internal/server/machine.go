package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/internal/memcache"
)

// A proposal is what a connection replicates for one batch of writes:
//
//	now     i64  the leader's clock, Unix ns: every replica expires by it
//	origin  u64  the proposing process's nonce
//	slot    u32  the proposing connection's reply slot
//	seq     u64  the proposal's number, unique in its process
//	count   u32  commands
//	per command: proto u8, len u32, the request as the client sent it
//
// Integers are little-endian. Every replica parses each request again with
// its protocol's parser and executes it at the leader's time, so whatever
// a command decides from the clock (expiry, a delayed flush_all) or from
// the store's state (CAS values, eviction) is decided the same everywhere.
//
// Replies are not returned through the engine, which would need a fresh
// slice per proposal: the replica that proposed writes them into the
// proposing connection's reply slot, found by origin, slot and seq; any
// other replica, or a proposal its connection gave up on, writes them into
// a scratch buffer nobody reads.
const propHeader = 8 + 8 + 4 + 8 + 4

// proposal builds one proposal in a reusable buffer.
type proposal struct {
	buf   []byte
	count int
}

func (p *proposal) reset() {
	p.buf = append(p.buf[:0], make([]byte, propHeader)...)
	p.count = 0
}

// add appends cmd's request.
func (p *proposal) add(cmd *memcache.Command) {
	p.buf = append(p.buf, byte(cmd.Proto), 0, 0, 0, 0)
	at := len(p.buf)
	p.buf = cmd.AppendRequest(p.buf)
	binary.LittleEndian.PutUint32(p.buf[at-4:], uint32(len(p.buf)-at))
	p.count++
}

// addDelete appends a noreply delete of key: the effect of a set refused
// as too large, which drops the item it would have replaced.
func (p *proposal) addDelete(key []byte) {
	p.buf = append(p.buf, byte(memcache.ProtoText), 0, 0, 0, 0)
	at := len(p.buf)
	p.buf = append(p.buf, "delete "...)
	p.buf = append(p.buf, key...)
	p.buf = append(p.buf, " noreply\r\n"...)
	binary.LittleEndian.PutUint32(p.buf[at-4:], uint32(len(p.buf)-at))
	p.count++
}

// seal fills in the header.
func (p *proposal) seal(nowNs int64, origin uint64, slot int, seq uint64) []byte {
	binary.LittleEndian.PutUint64(p.buf[0:], uint64(nowNs))
	binary.LittleEndian.PutUint64(p.buf[8:], origin)
	binary.LittleEndian.PutUint32(p.buf[16:], uint32(slot))
	binary.LittleEndian.PutUint64(p.buf[20:], seq)
	binary.LittleEndian.PutUint32(p.buf[28:], uint32(p.count))
	return p.buf
}

// replySlot is where Apply leaves the replies of a connection's proposal.
type replySlot struct {
	want atomic.Uint64 // the seq of the proposal in flight, 0 none
	buf  []byte        // written by Apply when want matches, read after Propose returns
}

// Machine is the replicated state machine: a memcache.Store, changed only
// by Apply (the engine's goroutine, or a standalone server's connection);
// local reads go to the store directly, which shares its lock among them.
type Machine struct {
	st    *memcache.Store
	nonce uint64

	slotMu sync.Mutex
	slots  []replySlot // fixed length: Apply indexes it without the lock
	free   []int
	seq    atomic.Uint64

	// applyMu is held by Apply for a whole proposal and by Digest, so
	// that a digest sees the state between two proposals, as every
	// replica passes through it, never a batch half applied. (Local reads
	// need no such care: each command is atomic under the store's lock.)
	applyMu sync.Mutex

	// Apply's own, used on the engine's goroutine only.
	req     *requestParser
	cmd     memcache.Command
	scratch []byte

	count atomic.Uint64 // proposals applied
	cmds  atomic.Uint64 // commands applied
}

// NewMachine returns a machine over an empty store of maxBytes (evicting
// when full if evict), with reply slots for maxConns connections.
func NewMachine(maxBytes int64, evict bool, maxConns int) *Machine {
	m := &Machine{st: memcache.NewStore(maxBytes, evict), nonce: rand.Uint64() | 1,
		slots: make([]replySlot, maxConns)}
	m.st.UseHugePages()
	for i := maxConns - 1; i >= 0; i-- {
		m.free = append(m.free, i)
	}
	m.req = newRequestParser()
	return m
}

// Store is the machine's item store.
func (m *Machine) Store() *memcache.Store { return m.st }

// takeSlot reserves a reply slot for a connection; false when all are
// taken.
func (m *Machine) takeSlot() (int, bool) {
	m.slotMu.Lock()
	defer m.slotMu.Unlock()
	if len(m.free) == 0 {
		return 0, false
	}
	i := m.free[len(m.free)-1]
	m.free = m.free[:len(m.free)-1]
	return i, true
}

func (m *Machine) releaseSlot(i int) {
	m.slots[i].want.Store(0)
	m.slotMu.Lock()
	m.free = append(m.free, i)
	m.slotMu.Unlock()
}

// Apply implements consensus.StateMachine. It returns nil: replies go to
// the proposer's reply slot.
func (m *Machine) Apply(_ uint64, p []byte) []byte {
	if len(p) < propHeader {
		return nil // nothing a leader of this version proposes
	}
	now := int64(binary.LittleEndian.Uint64(p[0:]))
	origin := binary.LittleEndian.Uint64(p[8:])
	slot := int(binary.LittleEndian.Uint32(p[16:]))
	seq := binary.LittleEndian.Uint64(p[20:])
	count := int(binary.LittleEndian.Uint32(p[28:]))
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	var rs *replySlot
	out := m.scratch[:0]
	if origin == m.nonce && slot < len(m.slots) && m.slots[slot].want.Load() == seq {
		rs = &m.slots[slot]
		out = rs.buf[:0]
	}
	for rest := p[propHeader:]; ; {
		proto, req, next, ok := nextRequest(rest)
		if !ok {
			break
		}
		if err := m.req.parse(&m.cmd, proto, req); err != nil {
			// Not reachable with requests a leader parsed; answered the
			// same on every replica all the same.
			out = memcache.AppendCommandError(out, &m.cmd, err)
		} else {
			out = m.st.Exec(out, &m.cmd, now)
		}
		rest = next
	}
	if rs != nil {
		rs.buf = out
	} else if cap(out) <= 1<<20 {
		m.scratch = out[:0]
	}
	m.cmds.Add(uint64(count))
	m.count.Add(1)
	return nil
}

// nextRequest splits the first request off a proposal's commands.
func nextRequest(b []byte) (proto memcache.Proto, req, rest []byte, ok bool) {
	if len(b) < 5 {
		return 0, nil, nil, false
	}
	n := int(binary.LittleEndian.Uint32(b[1:]))
	if n > len(b)-5 {
		return 0, nil, nil, false
	}
	return memcache.Proto(b[0]), b[5 : 5+n], b[5+n:], true
}

// requestParser parses requests taken from a proposal, with the same
// parsers that read them from the client.
type requestParser struct {
	src  bytes.Reader
	br   *bufio.Reader
	text *memcache.Parser
	bin  *memcache.BinaryParser
}

func newRequestParser() *requestParser {
	rp := &requestParser{}
	rp.br = bufio.NewReaderSize(&rp.src, 64<<10)
	// A replica must take whatever a leader accepted: no limits of its
	// own beyond the proposal's size.
	lim := memcache.Limits{MaxValueLen: 1 << 30}
	rp.text = memcache.NewParser(rp.br, lim)
	rp.bin = memcache.NewBinaryParser(rp.br, lim)
	return rp
}

func (rp *requestParser) parse(cmd *memcache.Command, proto memcache.Proto, req []byte) error {
	rp.src.Reset(req)
	rp.br.Reset(&rp.src)
	if proto == memcache.ProtoBinary {
		return rp.bin.Parse(cmd)
	}
	return rp.text.Parse(cmd)
}

// Snapshot implements consensus.StateMachine.
func (m *Machine) Snapshot(w io.Writer) error {
	if err := m.st.Snapshot(w); err != nil {
		return fmt.Errorf("memcached snapshot: %w", err)
	}
	return nil
}

// Restore implements consensus.StateMachine.
func (m *Machine) Restore(r io.Reader) error {
	if err := m.st.Restore(r); err != nil {
		return fmt.Errorf("memcached restore: %w", err)
	}
	return nil
}

// Digest is the store's state digest (equal on replicas in the same
// state), taken between two proposals. It is safe to call while Apply
// runs, and holds off writes while it hashes the whole store.
func (m *Machine) Digest() [32]byte {
	m.applyMu.Lock()
	defer m.applyMu.Unlock()
	return m.st.Digest()
}

// Applied returns the number of proposals and commands applied.
func (m *Machine) Applied() (proposals, commands uint64) { return m.count.Load(), m.cmds.Load() }
