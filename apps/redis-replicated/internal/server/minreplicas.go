package server

import (
	"math"
	"strconv"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
)

// min-replicas-to-write. As in Redis, a leader with fewer good replicas
// than min-replicas-to-write (and min-replicas-max-lag not 0) refuses
// write commands with NOREPLICAS, as well as calls of scripts with flags
// that may write, before they run; a script without flags has its writes
// fail with NOREPLICAS (its speculative run's: store.Env.NoReplicas).
// Good replicas are the consensus followers this leader hears
// from (INFO's connected_slaves); a standalone server has none. This
// server's own setting, not replicated, as in Redis.

const errNoReplicas = "NOREPLICAS Not enough good replicas to write."

// goodReplicas counts the followers the leader hears from.
func (s *Server) goodReplicas() int {
	r := s.link.Replica
	if r == nil {
		return 0
	}
	n := 0
	for _, p := range r.Stats().Peers {
		if p.Active {
			n++
		}
	}
	return n
}

// lacksReplicas reports whether writes are refused for want of replicas.
func (s *Server) lacksReplicas() bool {
	want := s.minReplicas.Load()
	return want > 0 && s.minReplicasLag.Load() > 0 && s.link.Leads() && int64(s.goodReplicas()) < want
}

// refuseNoReplicas answers a write refused for want of replicas (flagging
// a transaction being queued, as Redis does) and reports whether it did.
func (c *conn) refuseNoReplicas() bool {
	if !c.s.lacksReplicas() {
		return false
	}
	return c.refuse(errNoReplicas)
}

// refuseScriptNoReplicas is refuseNoReplicas for a call of a script with
// flags that may write (store.ScriptDeclaresWrites).
func (c *conn) refuseScriptNoReplicas(args [][]byte) bool {
	if !c.s.lacksReplicas() {
		return false
	}
	declares := false
	c.s.cfg.Machine.read(func(st *store.Store) { declares = st.ScriptDeclaresWrites(args) })
	return declares && c.refuseNoReplicas()
}

// setMinReplicas sets min-replicas-to-write (lag: min-replicas-max-lag)
// from CONFIG SET's argument; it returns Redis's complaint about it, ""
// when it is set.
func (s *Server) setMinReplicas(arg []byte, lag bool) string {
	n, err := strconv.ParseInt(string(arg), 10, 64)
	switch {
	case err != nil:
		return "argument couldn't be parsed into an integer"
	case n < 0 || n > math.MaxInt32:
		return "argument must be between 0 and 2147483647 inclusive"
	case lag:
		s.minReplicasLag.Store(n)
	default:
		s.minReplicas.Store(n)
	}
	return ""
}
