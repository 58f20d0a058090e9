package exchange

import (
	"bufio"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// askStats sends one command to a stats port and returns the answer's
// STAT pairs, or the one line of an answer that has none.
func askStats(t *testing.T, addr, cmd string) (map[string]string, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, hang)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(hang))
	if _, err := nc.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	f := map[string]string{}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s to %s: %v", cmd, addr, err)
		}
		line = strings.TrimRight(line, "\r\n")
		kv, ok := strings.CutPrefix(line, "STAT ")
		if !ok {
			return f, line
		}
		k, v, _ := strings.Cut(kv, " ")
		f[k] = v
	}
}

// TestStatsPort asks every replica of a cluster its role and digest over
// the stats port: one leader every replica names, and once the followers
// applied the orders, one digest, the machines' own.
func TestStatsPort(t *testing.T) {
	r := newRig(t, "shm")
	r.stats = &sync.Map{}
	startClusterRig(t, 3, r)
	lead := r.c.WaitLeader()
	addr := func(id int) string {
		a, _ := r.stats.Load(id)
		return a.(string)
	}
	c := r.trader()
	for k := range 20 {
		do(t, c, order(book.Side(k%2+1), 10, book.Price(1000+k%3)))
	}
	r.waitSame()
	want := lead.M.Digest()
	for _, id := range r.ids {
		f, end := askStats(t, addr(id), "stats gomu")
		role := "follower"
		if id == lead.ID {
			role = "leader"
		}
		if end != "END" || f["gomu_role"] != role || f["gomu_leader_id"] != strconv.Itoa(lead.ID) || f["gomu_paused"] != "0" || f["gomu_digest"] != "" {
			t.Errorf("replica %d: stats gomu = %v, %q (leader %d)", id, f, end, lead.ID)
		}
		if f["gomu_applied_orders"] != "20" {
			t.Errorf("replica %d: %s orders applied, want 20", id, f["gomu_applied_orders"])
		}
		f, _ = askStats(t, addr(id), "stats  gomu digest")
		if len(f["gomu_digest"]) != 64 || f["gomu_digest"] != hex.EncodeToString(want[:]) || f["gomu_role"] != role {
			t.Errorf("replica %d: stats gomu digest = %v, want digest %x", id, f, want)
		}
		if _, line := askStats(t, addr(id), "stats"); line != "ERROR" {
			t.Errorf("replica %d: a bare stats answered %q, want ERROR", id, line)
		}
	}
}

// TestStatsStandalone: a standalone exchange has no role to tell, and a
// closed server's port is closed.
func TestStatsStandalone(t *testing.T) {
	r := newRig(t, "shm")
	r.stats = &sync.Map{}
	srv, _, err := r.newServer(1)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.stats.Load(1)
	addr := a.(string)
	// Before Serve: starting.
	if f, _ := askStats(t, addr, "stats gomu"); f["gomu_mode"] != "starting" || f["gomu_role"] != "" {
		t.Errorf("before Serve: %v", f)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	ok := replicatest.WaitFor(func() bool { return srv.serving.Load() })
	if !ok {
		t.Fatal("the server did not serve")
	}
	if f, _ := askStats(t, addr, "stats gomu digest"); f["gomu_mode"] != "standalone" || f["gomu_role"] != "" || len(f["gomu_digest"]) != 64 {
		t.Errorf("standalone: %v", f)
	}
	// A connection left open does not hold Close up.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if nc, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		nc.Close()
		t.Error("the stats port still accepts after Close")
	}
}
