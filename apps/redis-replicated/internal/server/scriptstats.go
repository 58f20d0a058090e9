package server

import (
	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/consensus"
)

// The commands scripts call count in INFO commandstats and errorstats as
// in Redis 7.0 (store.CallCounter), on the replica that answers the
// script's caller: a local run (EVAL_RO, a no-writes script, a
// speculative run that was not abandoned) counts on its connection's
// server; a replicated run counts where it is applied while the replica
// leads (a standalone server always), since the leader is the replica
// that took the call. The store notes each call; the counts reach the
// shared counters when the run ends, and a speculative run abandoned at
// its first write counts nothing (its replicated run counts the calls).
// Plain commands never pass here.

// scriptCall is one command a script called, as counted.
type scriptCall struct {
	slot             int32 // its commandstats slot, -1: none (an unknown command)
	rejected, failed bool
	// code is its error's code for errorstats ("" if it succeeded, or
	// if the script's own reply counts its error).
	code string
}

// scriptCalls gathers a run's calls (a store.CallCounter); count, when
// set, counts them when the run ends.
type scriptCalls struct {
	calls []scriptCall
	count func(calls []scriptCall)
}

// ScriptCall implements store.CallCounter.
func (sc *scriptCalls) ScriptCall(cmd *store.Command, args [][]byte, rejected bool, errText string) {
	if sc.count == nil {
		return
	}
	code := ""
	if errText != "" {
		code = string(errorCode([]byte("-" + errText)))
	}
	sc.calls = append(sc.calls, scriptCall{slot: int32(scriptCallSlot(cmd, args)), rejected: rejected, failed: code != "", code: code})
}

// ScriptDone implements store.CallCounter. A script that fails with a
// called command's error counts that error through its own reply (the
// connection counts the script's reply): the call's own count of it, the
// last with that code, is dropped here, so it counts once, as in Redis.
func (sc *scriptCalls) ScriptDone(abandoned bool, counted string) {
	if sc.count != nil && !abandoned && len(sc.calls) > 0 {
		if counted != "" {
			code := string(errorCode([]byte("-" + counted)))
			for i := len(sc.calls) - 1; i >= 0; i-- {
				if sc.calls[i].code == code {
					sc.calls[i].code = ""
					break
				}
			}
		}
		sc.count(sc.calls)
	}
	clear(sc.calls) // their codes
	sc.calls = sc.calls[:0]
}

// scriptCallSlot is the commandstats slot of a call of cmd with args
// (nil cmd: a server command by its name), -1 for none.
func scriptCallSlot(cmd *store.Command, args [][]byte) int {
	if cmd != nil {
		return statSlot(cmd.StatsID, args)
	}
	if len(args) == 0 {
		return -1
	}
	if h := lookupServerCommand(args[0]); h != nil {
		return statSlot(h.statsID, args)
	}
	return -1
}

// countScriptCalls adds a script run's calls to the server's counters.
// Their time is the script's (Redis times each; here the call's batch
// counts it all).
func (s *Server) countScriptCalls(calls []scriptCall) {
	for _, c := range calls {
		if c.slot >= 0 {
			st := &s.stats[c.slot]
			switch {
			case c.rejected:
				st.rejected.Add(1)
			case c.failed:
				st.calls.Add(1)
				st.failed.Add(1)
			default:
				st.calls.Add(1)
			}
		}
		if c.code != "" {
			s.errs.countCode(c.code)
		}
	}
}

// countAppliedScriptCalls is the Machine's counting of replicated runs:
// they count on the replica that leads, which took their calls (and on a
// standalone server). It runs in Apply, on the replica's goroutine, which
// may apply before SetReplica: so it reads the replica SetReplica
// published atomically, not s.link's field.
func (s *Server) countAppliedScriptCalls(calls []scriptCall) {
	if r := s.applyReplica.Load(); r == nil || r.Role() == consensus.Leader && !r.Paused() {
		s.countScriptCalls(calls)
	}
}

// countCode counts one error reply of code.
func (e *errorStats) countCode(code string) {
	e.mu.Lock()
	if e.counts == nil {
		e.counts = map[string]uint64{}
	}
	e.counts[code]++
	e.total++
	e.mu.Unlock()
}

// countScriptCallsWith makes count the machine's counting of the calls of
// the scripts it applies (nil: none).
func (m *Machine) countScriptCallsWith(count func([]scriptCall)) {
	m.mu.Lock()
	m.scriptCalls.count = count
	m.mu.Unlock()
}
