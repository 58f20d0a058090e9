package server

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestSyncStream: SYNC answers the state as one payload, then streams the
// writes applied from then on, a transaction between MULTI and EXEC,
// never a read, a failed or ineffective write, a failed watch or the
// server's own writes, and a SELECT wherever the database changes.
func TestSyncStream(t *testing.T) {
	srv := startStandalone(t)
	c := redistest.Dial(t, srv.Addr())
	c.Do("SET", "before", "1")
	c.Do("CONFIG", "SET", "repl-ping-replica-period", "3600")
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "SYNC\r\n")
	br := bufio.NewReader(nc)
	head, err := br.ReadString('\n')
	if err != nil || head[0] != '$' {
		t.Fatalf("SYNC head %q: %v", head, err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	if _, err := io.ReadFull(br, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	c.Do("SET", "a", "1")
	c.Do("GET", "a")
	c.Do("CONFIG", "SET", "set-max-intset-entries", "10")
	c.Do("MULTI")
	c.Do("INCR", "a")
	c.Do("GET", "a")
	c.Do("DEL", "before")
	c.Do("EXEC")
	w := redistest.Dial(t, srv.Addr())
	w.Do("WATCH", "a")
	c.Do("SET", "a", "changed")
	w.Do("MULTI")
	w.Do("SET", "a", "lost")
	w.Do("EXEC")
	c.Do("PING")
	c.Do("RPUSH", "l", "x")
	c.Do("INCR", "l")      // fails: not sent
	c.Do("DEL", "missing") // no effect: not sent
	c.Do("MULTI")
	c.Do("DEL", "missing")
	c.Do("EXEC") // nothing took effect: nothing sent
	c.Do("MULTI")
	c.Do("SADD", "s", "m")
	c.Do("SADD", "s", "m")
	c.Do("EXEC") // one write took effect: sent alone
	c.Do("SET", "end", "1")
	d := redistest.Dial(t, srv.Addr())
	d.Do("SELECT", "5")
	d.Do("SET", "x", "1") // after a SELECT of its database
	c.Do("MULTI")
	c.Do("SET", "z", "1")
	c.Do("SELECT", "2")
	c.Do("SET", "y", "1")
	c.Do("EXEC") // a SELECT before MULTI, and one inside
	want := "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n" +
		"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n" +
		"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*2\r\n$3\r\nDEL\r\n$6\r\nbefore\r\n*1\r\n$4\r\nEXEC\r\n" +
		"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$7\r\nchanged\r\n" +
		"*3\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\nx\r\n" +
		"*3\r\n$4\r\nSADD\r\n$1\r\ns\r\n$1\r\nm\r\n" +
		"*3\r\n$3\r\nSET\r\n$3\r\nend\r\n$1\r\n1\r\n" +
		"*2\r\n$6\r\nSELECT\r\n$1\r\n5\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n" +
		"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$1\r\n1\r\n" +
		"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$3\r\nSET\r\n$1\r\ny\r\n$1\r\n1\r\n*1\r\n$4\r\nEXEC\r\n"
	got := make([]byte, len(want))
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatalf("stream: %v after %q", err, got)
	}
	if string(got) != want {
		t.Errorf("stream\n got %q\nwant %q", got, want)
	}
}

// TestSyncStreamExpiredKeys: a key deleted because its TTL passed goes out
// as a DEL where Redis's stream has it: before the write that met it, and
// after the EXEC whose blocked client's serving found it expired (the
// transaction's DEBUG SLEEP let its TTL pass).
func TestSyncStreamExpiredKeys(t *testing.T) {
	srv := startStandalone(t)
	next := syncTap(t, srv.Addr())
	c, waiter := redistest.Dial(t, srv.Addr()), redistest.Dial(t, srv.Addr())
	c.Do("SET", "e", "v", "PX", "20")
	time.Sleep(50 * time.Millisecond) // the leader's sweep may delete it first: the same DEL
	c.Do("RPUSH", "e", "x")
	c.Do("DEBUG", "SET-ACTIVE-EXPIRE", "0")
	if err := waiter.Send(command("BRPOP", "k", "0")); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, srv, 1)
	c.Do("MULTI")
	c.Do("RPUSH", "k", "hello")
	c.Do("PEXPIRE", "k", "100")
	c.Do("DEBUG", "SLEEP", "0.2")
	c.Do("EXEC")
	c.Do("SET", "end", "1")
	want := []string{"select 0", "set e v PXAT T", "del e", "rpush e x",
		"multi", "rpush k hello", "pexpireat k T", "exec", "del k", "set end 1"}
	got := next(len(want))
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("stream\n got %q\nwant %q", got, want)
	}
}
