package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/internal/cluster"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Command tags, the first byte of every command. A measured command carries
// its sequence number in the next 8 bytes (little endian), then random
// bytes; done ends the run.
const (
	tagMeasured = 0
	tagDone     = 1
	seqSize     = 8
	// MinPayload is the smallest measured command: tag and sequence number.
	MinPayload = 1 + seqSize
)

// replica is one etcd raft node with its storage, transport and state
// machine.
type replica struct {
	id      uint64
	o       Options
	node    raft.Node
	storage *raft.MemoryStorage
	tr      *transport

	// applied counts measured commands applied here.
	applied atomic.Int64
	// done is closed when the done command is applied.
	done     chan struct{}
	doneOnce sync.Once

	// pending maps a sequence number the leader proposed to the channel
	// of the proposer waiting for it.
	mu      sync.Mutex
	pending map[uint64]chan struct{}

	stopc    chan struct{} // closed to end the Ready loop
	loopDone chan struct{}
	loopErr  error
}

// startReplica starts node o.ID serving ln and its Ready loop.
func startReplica(o Options, ln net.Listener) *replica {
	r := &replica{
		id: uint64(o.ID), o: o, storage: raft.NewMemoryStorage(),
		done: make(chan struct{}), pending: map[uint64]chan struct{}{},
		stopc: make(chan struct{}), loopDone: make(chan struct{}),
	}
	cfg := &raft.Config{
		ID:              r.id,
		ElectionTick:    o.ElectionTicks,
		HeartbeatTick:   1,
		Storage:         r.storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          newLogger(o.ID, o.Verbose),
	}
	peers := make([]raft.Peer, len(o.Peers))
	for i := range peers {
		peers[i] = raft.Peer{ID: uint64(i + 1)}
	}
	r.node = raft.StartNode(cfg, peers)
	r.tr = newTransport(r.id, ln, o.Peers, r.node.Step, r.node.ReportUnreachable)
	go r.loop()
	return r
}

// stop stops the node and the transport and waits for the Ready loop.
func (r *replica) stop() {
	close(r.stopc)
	<-r.loopDone
	r.node.Stop()
	r.tr.close()
}

// loop is the Ready loop: tick, persist what raft hands over to the
// in-memory storage, send its messages, apply what is committed, advance.
func (r *replica) loop() {
	defer close(r.loopDone)
	t := time.NewTicker(r.o.Tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.node.Tick()
		case rd := <-r.node.Ready():
			if err := r.handle(rd); err != nil {
				r.loopErr = err
				return
			}
			r.node.Advance()
		case <-r.stopc:
			return
		}
	}
}

func (r *replica) handle(rd raft.Ready) error {
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := r.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("apply snapshot: %w", err)
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := r.storage.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("save hard state: %w", err)
		}
	}
	if err := r.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append entries: %w", err)
	}
	r.tr.send(rd.Messages)
	for _, e := range rd.CommittedEntries {
		switch e.Type {
		case raftpb.EntryNormal:
			r.apply(e.Data)
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("decode conf change at %d: %w", e.Index, err)
			}
			r.node.ApplyConfChange(cc)
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("decode conf change at %d: %w", e.Index, err)
			}
			r.node.ApplyConfChange(cc)
		}
	}
	return nil
}

// apply is the benchmark's state machine: it counts measured commands,
// wakes the proposer of each, and notices the done command. The empty
// entries a new leader appends are skipped.
func (r *replica) apply(cmd []byte) {
	if len(cmd) == 0 {
		return
	}
	if cmd[0] == tagDone {
		r.doneOnce.Do(func() { close(r.done) })
		return
	}
	if len(cmd) < MinPayload {
		return
	}
	r.applied.Add(1)
	seq := binary.LittleEndian.Uint64(cmd[1:])
	r.mu.Lock()
	ch, ok := r.pending[seq]
	delete(r.pending, seq)
	r.mu.Unlock()
	if ok {
		ch <- struct{}{} // buffered; its proposer waits for nothing else
	}
}

// waitLeader waits until this replica leads and every replica's log has
// caught up with its commit index, so the measurement starts on a formed
// cluster.
func (r *replica) waitLeader(ctx context.Context) error {
	deadline := time.Now().Add(r.o.StartTimeout)
	campaigned := time.Time{}
	for {
		st := r.node.Status()
		if st.RaftState == raft.StateLeader && st.Applied >= st.Commit && r.allMatch(st) {
			return nil
		}
		// Stand for election once the bootstrap configuration is applied,
		// and again when a vote got lost while the peers were starting.
		if st.RaftState == raft.StateFollower && st.Lead == raft.None && st.Applied >= st.Commit && time.Since(campaigned) > time.Duration(r.o.ElectionTicks)*r.o.Tick {
			if err := r.node.Campaign(ctx); err != nil {
				return fmt.Errorf("campaign: %w", err)
			}
			campaigned = time.Now()
		}
		if st.Lead != raft.None && st.Lead != r.id {
			// Another replica won; ask it to hand over.
			r.node.TransferLeadership(ctx, st.Lead, r.id)
		}
		if err := r.sleep(ctx, deadline, time.Millisecond); err != nil {
			return fmt.Errorf("replica %d did not lead a formed cluster within %v (state %v, leader %d, commit %d): %w",
				r.id, r.o.StartTimeout, st.RaftState, st.Lead, st.Commit, err)
		}
	}
}

// allMatch reports whether, on a leader, every replica has the log up to
// the commit index.
func (r *replica) allMatch(st raft.Status) bool {
	if len(st.Progress) < len(r.o.Peers) {
		return false
	}
	for _, pr := range st.Progress {
		if pr.Match < st.Commit {
			return false
		}
	}
	return true
}

// sleep waits for d, failing when the deadline passed, ctx ended or the
// Ready loop stopped.
func (r *replica) sleep(ctx context.Context, deadline time.Time, d time.Duration) error {
	if time.Now().After(deadline) {
		return errors.New("deadline passed")
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-r.loopDone:
		if r.loopErr != nil {
			return r.loopErr
		}
		return errors.New("raft node stopped")
	case <-time.After(d):
		return nil
	}
}

// Result is what the leader measured.
type Result struct {
	Elapsed   time.Duration
	Latencies []int64 // ns per command, in the order they were issued
	Retries   int64
}

// lead proposes o.Count commands from o.Outstanding concurrent proposers
// and times each from its Propose call until it is applied here.
func (r *replica) lead(ctx context.Context, progress io.Writer) (*Result, error) {
	o := r.o
	res := &Result{Latencies: make([]int64, o.Count)}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, acked, retries atomic.Int64
	var wg sync.WaitGroup
	stopProgress := cluster.ReportProgress(progress, &acked, o.Count)
	start := time.Now()
	for range o.Outstanding {
		wg.Add(1)
		go func() {
			defer wg.Done()
			woken := make(chan struct{}, 1)
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for {
				i := next.Add(1) - 1
				if i >= int64(o.Count) || ctx.Err() != nil {
					return
				}
				cmd := make([]byte, o.Payload)
				fill(cmd[MinPayload:])
				cmd[0] = tagMeasured
				binary.LittleEndian.PutUint64(cmd[1:], uint64(i))
				r.mu.Lock()
				r.pending[uint64(i)] = woken
				r.mu.Unlock()
				t0 := time.Now()
				if err := r.commit(ctx, cmd, woken, timer, &retries); err != nil {
					cancel(fmt.Errorf("command %d: %w", i, err))
					return
				}
				res.Latencies[i] = int64(time.Since(t0))
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	stopProgress()
	res.Retries = retries.Load()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("propose: %w", err)
	}
	return res, nil
}

// maxAttempts bounds how often one command is proposed: raft may drop a
// proposal (no leader for a moment), so one that is not applied within
// ProposeTimeout is proposed again.
const maxAttempts = 5

// commit proposes cmd and waits until it is applied here.
func (r *replica) commit(ctx context.Context, cmd []byte, woken chan struct{}, timer *time.Timer, retries *atomic.Int64) error {
	for attempt := 1; ; attempt++ {
		if err := r.node.Propose(ctx, cmd); err != nil {
			return err
		}
		timer.Reset(r.o.ProposeTimeout)
		select {
		case <-woken:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-r.loopDone:
			return fmt.Errorf("raft node stopped: %v", r.loopErr)
		case <-timer.C:
		}
		if attempt == maxAttempts {
			return fmt.Errorf("not applied after %d proposals %v apart", maxAttempts, r.o.ProposeTimeout)
		}
		retries.Add(1)
	}
}

// finish proposes the done command and waits until it is applied here and
// every follower has it.
func (r *replica) finish(ctx context.Context) error {
	deadline := time.Now().Add(EndTimeout)
	if err := r.node.Propose(ctx, []byte{tagDone}); err != nil {
		return fmt.Errorf("propose the done command: %w", err)
	}
	for {
		select {
		case <-r.done:
			st := r.node.Status()
			if r.allMatch(st) {
				return nil
			}
		default:
		}
		if err := r.sleep(ctx, deadline, time.Millisecond); err != nil {
			return fmt.Errorf("the done command did not reach every replica within %v: %w", EndTimeout, err)
		}
	}
}

// follow runs a follower until the done command is applied and the leader
// then goes away (or EndTimeout passes). A follower that sees no leader for
// StartTimeout gives up.
func (r *replica) follow(ctx context.Context, leader uint64) error {
	lastLeader := time.Now()
	for {
		select {
		case <-r.done:
			end := time.Now().Add(EndTimeout)
			for r.tr.connectedFrom(leader) > 0 && r.sleep(ctx, end, time.Millisecond) == nil {
			}
			return nil
		default:
		}
		if r.node.Status().Lead != raft.None {
			lastLeader = time.Now()
		}
		if err := r.sleep(ctx, lastLeader.Add(r.o.StartTimeout), 10*time.Millisecond); err != nil {
			return fmt.Errorf("no leader for %v (%d commands applied): %w", r.o.StartTimeout, r.applied.Load(), err)
		}
	}
}

// fill writes random bytes to b.
func fill(b []byte) {
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
}

// logger is raft's logger: warnings and errors on stderr, the rest only
// when verbose.
type logger struct {
	l       *log.Logger
	verbose bool
}

func newLogger(id int, verbose bool) *logger {
	return &logger{l: log.New(os.Stderr, fmt.Sprintf("raft %d: ", id), log.Lmicroseconds), verbose: verbose}
}

func (g *logger) out(level string, verbose bool, s string) {
	if verbose && !g.verbose {
		return
	}
	g.l.Output(3, level+" "+s)
}

func (g *logger) Debug(v ...interface{})            { g.out("DEBUG", true, fmt.Sprint(v...)) }
func (g *logger) Debugf(f string, v ...interface{}) { g.out("DEBUG", true, fmt.Sprintf(f, v...)) }
func (g *logger) Info(v ...interface{})             { g.out("INFO", true, fmt.Sprint(v...)) }
func (g *logger) Infof(f string, v ...interface{})  { g.out("INFO", true, fmt.Sprintf(f, v...)) }
func (g *logger) Warning(v ...interface{})          { g.out("WARN", false, fmt.Sprint(v...)) }
func (g *logger) Warningf(f string, v ...interface{}) {
	g.out("WARN", false, fmt.Sprintf(f, v...))
}
func (g *logger) Error(v ...interface{})            { g.out("ERROR", false, fmt.Sprint(v...)) }
func (g *logger) Errorf(f string, v ...interface{}) { g.out("ERROR", false, fmt.Sprintf(f, v...)) }
func (g *logger) Fatal(v ...interface{})            { g.out("FATAL", false, fmt.Sprint(v...)); os.Exit(1) }
func (g *logger) Fatalf(f string, v ...interface{}) {
	g.out("FATAL", false, fmt.Sprintf(f, v...))
	os.Exit(1)
}
func (g *logger) Panic(v ...interface{}) { s := fmt.Sprint(v...); g.out("PANIC", false, s); panic(s) }
func (g *logger) Panicf(f string, v ...interface{}) {
	s := fmt.Sprintf(f, v...)
	g.out("PANIC", false, s)
	panic(s)
}
