package server

import (
	"testing"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
)

// setProposal is a sealed one-command SET proposal.
func setProposal() []byte {
	var p proposal
	p.reset(propBatch)
	p.add([][]byte{[]byte("SET"), []byte("key"), []byte("value")})
	return p.seal(1_700_000_000_000, 1)
}

// BenchmarkApplySet is the replicated hot path without waiters: what
// blocking commands must not slow down.
func BenchmarkApplySet(b *testing.B) {
	m := NewMachine()
	p := setProposal()
	b.ReportAllocs()
	for b.Loop() {
		m.Apply(0, p)
	}
}

// TestApplyAllocsWithoutWaiters: applying a SET allocates only its reply,
// with or without waiters elsewhere in the store.
func TestApplyAllocsWithoutWaiters(t *testing.T) {
	m := NewMachine()
	p := setProposal()
	before := testing.AllocsPerRun(1000, func() { m.Apply(0, p) })
	if before > 1 {
		t.Fatalf("Apply(SET) allocates %v times, want at most the reply", before)
	}
	var q proposal
	q.reset(propBatch)
	q.add([][]byte{[]byte(store.BlockCommand), []byte("some-waiter-id"), []byte("BLPOP"), []byte("other"), []byte("0")})
	if r := m.Apply(0, q.seal(1_700_000_000_000, 2)); len(r) != 0 {
		t.Fatalf("BLPOP did not block: %q", r)
	}
	if with := testing.AllocsPerRun(1000, func() { m.Apply(0, p) }); with != before {
		t.Fatalf("Apply(SET) allocates %v times with a waiter on another key, %v without", with, before)
	}
}
