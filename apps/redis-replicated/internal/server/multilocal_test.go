package server

import (
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// TestConfigInMulti: CONFIG queues inside MULTI and runs at EXEC, its
// reply in its place among the others (an error too, as Redis's "MULTI
// with config error"); a transaction WATCH aborts runs none of it; in a
// cluster, a replicated parameter set in a transaction reaches every
// replica.
func TestConfigInMulti(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	r, other := redistest.Dial(t, lead.Addr()), redistest.Dial(t, lead.Addr())
	steps := []struct {
		conn *redistest.Conn
		args []string
		want string
	}{
		{r, []string{"MULTI"}, "+OK\r\n"},
		{r, []string{"SET", "foo", "bar"}, "+QUEUED\r\n"},
		{r, []string{"CONFIG", "SET", "maxmemory", "bla"}, "+QUEUED\r\n"},
		{r, []string{"CONFIG", "GET", "maxmemory"}, "+QUEUED\r\n"},
		{r, []string{"GET", "foo"}, "+QUEUED\r\n"},
		{r, []string{"EXEC"}, "*4\r\n+OK\r\n-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n" +
			"*2\r\n" + bulk("maxmemory") + bulk("0") + bulk("bar")},
		// Reads only, and a replicated parameter.
		{r, []string{"MULTI"}, "+OK\r\n"},
		{r, []string{"CONFIG", "SET", "hash-max-listpack-entries", "77"}, "+QUEUED\r\n"},
		{r, []string{"GET", "foo"}, "+QUEUED\r\n"},
		{r, []string{"EXEC"}, "*2\r\n+OK\r\n" + bulk("bar")},
		{r, []string{"CONFIG", "GET", "hash-max-listpack-entries"}, "*2\r\n" + bulk("hash-max-listpack-entries") + bulk("77")},
		// Aborted by WATCH: the CONFIG SET never runs.
		{r, []string{"WATCH", "foo"}, "+OK\r\n"},
		{other, []string{"SET", "foo", "changed"}, "+OK\r\n"},
		{r, []string{"MULTI"}, "+OK\r\n"},
		{r, []string{"CONFIG", "SET", "hash-max-listpack-entries", "99"}, "+QUEUED\r\n"},
		{r, []string{"SET", "foo", "mine"}, "+QUEUED\r\n"},
		{r, []string{"EXEC"}, "*-1\r\n"},
		{r, []string{"CONFIG", "GET", "hash-max-listpack-entries"}, "*2\r\n" + bulk("hash-max-listpack-entries") + bulk("77")},
		// DISCARD drops a queued CONFIG.
		{r, []string{"MULTI"}, "+OK\r\n"},
		{r, []string{"CONFIG", "SET", "hash-max-listpack-entries", "99"}, "+QUEUED\r\n"},
		{r, []string{"DISCARD"}, "+OK\r\n"},
		{r, []string{"MULTI"}, "+OK\r\n"},
		{r, []string{"PING"}, "+QUEUED\r\n"},
		{r, []string{"EXEC"}, "*1\r\n+PONG\r\n"},
		{r, []string{"CONFIG", "GET", "hash-max-listpack-entries"}, "*2\r\n" + bulk("hash-max-listpack-entries") + bulk("77")},
	}
	for i, s := range steps {
		if got := s.conn.Do(s.args...); got != s.want {
			t.Fatalf("step %d %q: %q, want %q", i, s.args, got, s.want)
		}
	}
	for _, f := range c.Followers(lead) {
		fc := redistest.Dial(t, f.Addr())
		if !replicatest.WaitFor(func() bool {
			return strings.HasSuffix(fc.Do("CONFIG", "GET", "hash-max-listpack-entries"), bulk("77"))
		}) {
			t.Fatalf("follower %d: the transaction's replicated CONFIG SET never arrived", f.ID)
		}
	}
	// RESP3: CONFIG GET's map in EXEC's array.
	r.Do("HELLO", "3")
	r.Do("MULTI")
	r.Do("CONFIG", "GET", "maxmemory")
	if got, want := r.Do("EXEC"), "*1\r\n%1\r\n"+bulk("maxmemory")+bulk("0"); got != want {
		t.Fatalf("RESP3 EXEC: %q, want %q", got, want)
	}
}
