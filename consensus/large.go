package consensus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gomu-rdma/gomu/consensus/internal/logring"
	"github.com/gomu-rdma/gomu/verbs"
)

// Large commands: a command too long for one entry (CommandSize(len) >
// MaxBatch) is appended as a sequence of chunk entries (logring's special
// payloads: the command's total length, the chunk's offset in it, its
// bytes), as many as the pipeline and the ring admit per turn, exactly like
// batches: the ring only ever holds Outstanding entries in flight, so a
// command far larger than the ring goes through it chunk by chunk, each
// freed once applied.
//
// Every replica, the leader included, reassembles in log order (assembly):
// a chunk at offset 0 starts a command, the next chunk must continue it
// where it stopped, and the chunk that completes it hands the whole command
// to Apply, once, at that chunk's index. Nothing of it reaches the state
// machine before. The leader appends one large command at a time (ms.big);
// batches of small commands go on in entries between its chunks, so small
// proposals are not held up behind it, and a second large command waits in
// the queue until the first is appended (as the proposals queued behind it).
// A large command takes effect at its last chunk: commands queued after it
// may take effect before it, as concurrent proposals may in any order.
//
// Leader changes: a leader that loses its position fails the large command
// it was appending with ErrNotLeader (its first chunks may be committed,
// never the whole command unless its last chunk is), and a new leader that
// finds chunks among what it adopted, or is itself in the middle of an
// assembly, first appends a drop entry: every replica discards the partial
// command there, at the same index. A stray chunk (one that does not
// continue the assembly) discards it too, so the rule depends on the log
// alone and every replica reaches the same verdict.
//
// State transfer: a snapshot is taken between two applies, possibly in the
// middle of a command; the partial assembly is part of the transfer (a
// prefix before the state machine's snapshot), so the follower restoring
// it goes on with the next chunk from the ring like everyone else.

// assembly is a large command being reassembled (main goroutine).
type assembly struct {
	buf   []byte // the bytes so far; cap is the command's length
	total uint64
	on    bool
}

// feed takes the next special payload in log order and returns the whole
// command when s completes one. The command is a fresh buffer the caller
// owns.
func (a *assembly) feed(s logring.Special) ([]byte, bool) {
	if s.Kind == logring.KindDrop {
		a.reset()
		return nil, false
	}
	if s.Offset == 0 {
		a.reset()
		a.buf, a.total, a.on = make([]byte, 0, s.Total), s.Total, true
	} else if !a.on || s.Total != a.total || s.Offset != uint64(len(a.buf)) {
		a.reset() // a stray chunk: it continues nothing we hold
		return nil, false
	}
	a.buf = append(a.buf, s.Data...)
	if uint64(len(a.buf)) < a.total {
		return nil, false
	}
	cmd := a.buf
	a.reset()
	return cmd, true
}

func (a *assembly) reset() { *a = assembly{} }

// applySpecial applies a special payload (either role): it feeds the
// assembly and applies the command the payload completes, if any.
func (r *Replica) applySpecial(index uint64, payload []byte) (res []byte, whole bool) {
	s, err := logring.ParseSpecial(payload)
	if err != nil {
		// A committed, checksummed entry cannot be malformed unless a
		// writer is broken: stop rather than diverge.
		r.broken("a committed special entry is well formed", "index", index, "err", err)
	}
	cmd, whole := r.ms.asm.feed(s)
	if !whole {
		return nil, false
	}
	return r.sm.Apply(index, cmd), true
}

// errLargeDiscarded answers a large command whose last chunk committed
// without completing it: a broken invariant short of a panic, since every
// replica discarded the same command.
var errLargeDiscarded = errors.New("consensus: large command discarded before its last chunk")

// answerLarge answers the proposer of a large command whose last chunk the
// leader appended and has just applied.
func (r *Replica) answerLarge(res []byte, whole bool) {
	ms := &r.ms
	if ms.wqLen == 0 {
		return
	}
	var err error
	if !whole {
		res, err = nil, errLargeDiscarded
	}
	r.finish(ms.wq[ms.wqHead], res, err)
	ms.answered++
	ms.wqHead = (ms.wqHead + 1) % len(ms.wq)
	ms.wqLen--
}

// appendChunk appends the next chunk of the large command being appended,
// if the pipeline and the ring have room. The last chunk puts the proposer
// in the answer queue, behind the small ones appended before it.
func (r *Replica) appendChunk() bool {
	ms := &r.ms
	next := ms.wring.Next()
	if next-1-r.applied.Load() >= uint64(r.cfg.Outstanding) {
		return false
	}
	cmd := r.waiters[ms.big].cmd
	n := min(len(cmd)-ms.bigOff, r.cfg.MaxBatch-logring.SpecialHeaderSize)
	size := logring.SpecialHeaderSize + n
	off, wrapAt, ok := ms.wring.Reserve(size)
	if !ok {
		return false
	}
	r.roleMu.Lock()
	if r.deposed.Load() {
		r.roleMu.Unlock()
		r.finish(ms.big, nil, r.notLeader())
		ms.big = -1
		return true
	}
	logring.PutChunk(r.ring[off+logring.EntryHeaderSize:], uint64(len(cmd)), uint64(ms.bigOff), cmd[ms.bigOff:ms.bigOff+n])
	esize := r.sealEntry(next, off, wrapAt, size)
	r.roleMu.Unlock()
	answers := 0
	if ms.bigOff += n; ms.bigOff == len(cmd) {
		ms.wq[(ms.wqHead+ms.wqLen)%len(ms.wq)] = ms.big
		ms.wqLen++
		ms.big = -1
		answers = 1
		r.stats.commands.Add(1)
	}
	r.sendEntry(next, off, wrapAt, size, esize, answers)
	return true
}

// appendDrop appends the drop a new leader owes (see mayHoldPartial).
func (r *Replica) appendDrop() bool {
	ms := &r.ms
	next := ms.wring.Next()
	if next-1-r.applied.Load() >= uint64(r.cfg.Outstanding) {
		return false
	}
	off, wrapAt, ok := ms.wring.Reserve(logring.SpecialHeaderSize)
	if !ok {
		return false
	}
	r.roleMu.Lock()
	if r.deposed.Load() {
		r.roleMu.Unlock()
		return false // the step-down that follows clears needDrop
	}
	logring.PutDrop(r.ring[off+logring.EntryHeaderSize:])
	esize := r.sealEntry(next, off, wrapAt, logring.SpecialHeaderSize)
	r.roleMu.Unlock()
	ms.needDrop = false
	r.sendEntry(next, off, wrapAt, logring.SpecialHeaderSize, esize, 0)
	return true
}

// mayHoldPartial reports whether a leader taking over might leave a
// partial command behind: it is assembling one, or the entries it adopted
// and has not applied yet hold chunks (whether they complete a command is
// not worth working out: a drop without a partial command is harmless).
func (r *Replica) mayHoldPartial() bool {
	ms := &r.ms
	if ms.asm.on {
		return true
	}
	for c := ms.cur; c.Next < ms.wring.Next(); {
		e, ok := c.Poll(r.ring)
		if !ok || logring.IsSpecial(e.Payload) {
			return true // unreadable: drop to be safe
		}
	}
	return false
}

// sealEntry writes the wrap marker, if any, and seals the entry whose
// payload of size bytes is in place at off; the caller holds roleMu.
func (r *Replica) sealEntry(next uint64, off, wrapAt, size int) (esize int) {
	if wrapAt >= 0 {
		logring.EncodeWrap(r.ring[wrapAt:], next)
	}
	return logring.Seal(r.ring[off:], next, r.proposal.Load(), r.commit.Load(), size)
}

// sendEntry accounts for a sealed entry carrying answers proposals and
// posts it to every active follower.
func (r *Replica) sendEntry(next uint64, off, wrapAt, size, esize, answers int) {
	ms := &r.ms
	if err := ms.wring.Appended(next, off, size); err != nil {
		r.broken("the leader appends where its ring accounting reserved", "index", next, "err", err)
	}
	ms.meta[next%uint64(len(ms.meta))] = entryMeta{index: next, n: answers}
	r.stats.entries.Add(1)
	for _, p := range r.others {
		if !p.active {
			continue
		}
		if wrapAt >= 0 {
			r.post(p, wrEntry, 0, logring.HeaderSize+wrapAt, logring.EntryHeaderSize, 0)
		}
		r.post(p, wrEntry, next, logring.HeaderSize+off, esize, verbs.Signaled)
	}
}

// Transfer prefix: a state transfer carries the producer's partial
// assembly ahead of the state machine's snapshot: the command's length (0:
// none), the bytes assembled so far (u64 little-endian each), those bytes.
const assemblyPrefix = 16

// snapshotAssembly writes the transfer prefix into w.
func (r *Replica) snapshotAssembly(w *bytes.Buffer) {
	a := &r.ms.asm
	var h [assemblyPrefix]byte
	if a.on {
		binary.LittleEndian.PutUint64(h[:], a.total)
		binary.LittleEndian.PutUint64(h[8:], uint64(len(a.buf)))
	}
	w.Write(h[:])
	w.Write(a.buf)
}

// restoreAssembly reads the transfer prefix off data and returns the rest,
// the state machine's snapshot, with the assembly it describes to install
// once the state machine has restored.
func restoreAssembly(data []byte) (rest []byte, a assembly, err error) {
	if len(data) < assemblyPrefix {
		return nil, a, fmt.Errorf("state transfer of %d bytes: no assembly prefix", len(data))
	}
	total := binary.LittleEndian.Uint64(data)
	n := binary.LittleEndian.Uint64(data[8:])
	data = data[assemblyPrefix:]
	if n > total || n > uint64(len(data)) || total == 0 && n != 0 {
		return nil, a, fmt.Errorf("state transfer: an assembly of %d of %d bytes in %d", n, total, len(data))
	}
	if total > 0 {
		a.buf = make([]byte, n, total)
		copy(a.buf, data[:n])
		a.total, a.on = total, true
	}
	return data[n:], a, nil
}
