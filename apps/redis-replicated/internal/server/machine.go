package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// A proposal is what a connection replicates for one batch of write
// commands (or one transaction):
//
//	kind     u8   propBatch or propTx
//	now      i64  the leader's clock, Unix ms: every replica judges expiry by it
//	seed     u64  the leader's random seed for this proposal
//	count    u32  commands
//	per command: argc u32, then per argument: len u32, bytes
//
// Integers are little-endian. Applying a proposal returns the commands'
// replies, concatenated (a batch) or as one array (a transaction).
const (
	propBatch = 1
	propTx    = 2

	propHeader = 1 + 8 + 8 + 4
)

// proposal builds one proposal in a reusable buffer.
type proposal struct {
	buf   []byte
	count int
}

func (p *proposal) reset(kind byte) {
	p.buf = append(p.buf[:0], kind)
	p.buf = append(p.buf, make([]byte, propHeader-1)...)
	p.count = 0
}

// size is the encoded size of args as one command.
func commandSize(args [][]byte) int {
	n := 4
	for _, a := range args {
		n += 4 + len(a)
	}
	return n
}

func (p *proposal) add(args [][]byte) {
	p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(args)))
	for _, a := range args {
		p.buf = binary.LittleEndian.AppendUint32(p.buf, uint32(len(a)))
		p.buf = append(p.buf, a...)
	}
	p.count++
}

// seal fills in the header: the time and seed the leader decides.
func (p *proposal) seal(nowMs int64, seed uint64) []byte {
	binary.LittleEndian.PutUint64(p.buf[1:], uint64(nowMs))
	binary.LittleEndian.PutUint64(p.buf[9:], seed)
	binary.LittleEndian.PutUint32(p.buf[17:], uint32(p.count))
	return p.buf
}

// span locates one decoded command in Machine.args.
type span struct{ argc, off int }

var errMalformed = errors.New("malformed proposal")

// Machine is the replicated state machine: a store.Store behind a
// read-write lock. Apply (the consensus engine's goroutine, or a
// standalone server's connection) takes the write lock; local reads take
// the read lock.
type Machine struct {
	mu    sync.RWMutex
	st    *store.Store
	pcg   *rand.PCG
	rnd   *rand.Rand
	args  [][]byte
	spans []span
	count atomic.Uint64 // proposals applied
	cmds  atomic.Uint64 // commands applied
}

// NewMachine returns a machine over an empty store.
func NewMachine() *Machine {
	pcg := rand.NewPCG(0, 0)
	return &Machine{st: store.New(), pcg: pcg, rnd: rand.New(pcg)}
}

// Apply implements consensus.StateMachine. A proposal that does not decode
// is answered with an error on every replica alike: no replica applies part
// of it.
func (m *Machine) Apply(_ uint64, cmd []byte) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	out, err := m.apply(nil, cmd)
	if err != nil {
		return resp.AppendError(nil, "ERR gomu: "+err.Error())
	}
	return out
}

func (m *Machine) apply(out, p []byte) ([]byte, error) {
	if len(p) < propHeader || (p[0] != propBatch && p[0] != propTx) {
		return out, errMalformed
	}
	kind := p[0]
	now := int64(binary.LittleEndian.Uint64(p[1:]))
	m.pcg.Seed(binary.LittleEndian.Uint64(p[9:]), 0)
	count := int(binary.LittleEndian.Uint32(p[17:]))
	rest := p[propHeader:]
	// Decode everything before running anything.
	spans := m.spans[:0]
	m.args = m.args[:0]
	for range count {
		if len(rest) < 4 {
			return out, errMalformed
		}
		argc := int(binary.LittleEndian.Uint32(rest))
		rest = rest[4:]
		if argc == 0 || argc > len(rest)/4 {
			return out, errMalformed
		}
		spans = append(spans, span{argc, len(m.args)})
		for range argc {
			if len(rest) < 4 {
				return out, errMalformed
			}
			n := int(binary.LittleEndian.Uint32(rest))
			if n > len(rest)-4 {
				return out, errMalformed
			}
			m.args = append(m.args, rest[4:4+n])
			rest = rest[4+n:]
		}
	}
	m.spans = spans
	if len(rest) != 0 {
		return out, errMalformed
	}
	env := store.Env{NowMs: now, Rand: m.rnd}
	if kind == propTx {
		out = resp.AppendArrayLen(out, count)
	}
	for _, s := range spans {
		out = m.st.Exec(out, &env, m.args[s.off:s.off+s.argc])
		m.cmds.Add(1)
	}
	m.count.Add(1)
	return out, nil
}

// read runs fn under the read lock.
func (m *Machine) read(fn func(st *store.Store)) {
	m.mu.RLock()
	fn(m.st)
	m.mu.RUnlock()
}

// Snapshot implements consensus.StateMachine.
func (m *Machine) Snapshot(w io.Writer) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if err := m.st.Snapshot(w); err != nil {
		return fmt.Errorf("redis snapshot: %w", err)
	}
	return nil
}

// Restore implements consensus.StateMachine.
func (m *Machine) Restore(r io.Reader) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := store.New()
	if err := st.Restore(r); err != nil {
		return fmt.Errorf("redis restore: %w", err)
	}
	m.st = st
	return nil
}

// Digest is the store's state digest (equal on replicas in the same state).
func (m *Machine) Digest() [32]byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.Digest()
}
