package server

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestDebugObjectDumpRestore drives DEBUG OBJECT, DUMP, RESTORE (a
// replicated write) and MEMORY USAGE through a server.
func TestDebugObjectDumpRestore(t *testing.T) {
	srv := startStandalone(t)
	c := redistest.Dial(t, srv.Addr())
	c.Do("RPUSH", "l", "a", "b", "c")
	got := c.Do("DEBUG", "OBJECT", "l")
	want := regexp.MustCompile(`^\+Value at:0x[0-9a-f]+ refcount:1 encoding:quicklist serializedlength:19 lru:\d+ lru_seconds_idle:0 ` +
		`ql_nodes:1 ql_avg_node:3.00 ql_listpack_max:-2 ql_compressed:0 ql_uncompressed_size:16\r\n$`)
	if !want.MatchString(got) {
		t.Fatalf("DEBUG OBJECT l: %q", got)
	}
	if got := c.Do("DEBUG", "OBJECT", "nokey"); got != "-ERR no such key\r\n" {
		t.Fatalf("DEBUG OBJECT nokey: %q", got)
	}
	payload := c.Do("DUMP", "l")
	if payload[0] != '$' {
		t.Fatalf("DUMP: %q", payload)
	}
	raw := payload[strings.Index(payload, "\r\n")+2 : len(payload)-2]
	if got := c.Do("RESTORE", "l2", "0", raw); got != "+OK\r\n" {
		t.Fatalf("RESTORE: %q", got)
	}
	if got := c.Do("LRANGE", "l2", "0", "-1"); got != "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n" {
		t.Fatalf("LRANGE of the restored list: %q", got)
	}
	if got := c.Do("MEMORY", "USAGE", "l"); got != ":144\r\n" {
		t.Fatalf("MEMORY USAGE: %q", got)
	}
	// In another database, DEBUG OBJECT and DIGEST-VALUE see that
	// database's keys.
	c.Do("SELECT", "9")
	c.Do("SET", "foo", "20000")
	if got := c.Do("DEBUG", "OBJECT", "foo"); !strings.HasPrefix(got, "+Value at:0x") || !strings.Contains(got, "encoding:int") {
		t.Fatalf("DEBUG OBJECT foo in db 9: %q", got)
	}
	if got := c.Do("DEBUG", "OBJECT", "l"); got != "-ERR no such key\r\n" {
		t.Fatalf("DEBUG OBJECT of db 0's key from db 9: %q", got)
	}
	if got := c.Do("DEBUG", "DIGEST-VALUE", "foo"); got == "*1\r\n$40\r\n"+strings.Repeat("0", 40)+"\r\n" || !strings.HasPrefix(got, "*1\r\n$") {
		t.Fatalf("DEBUG DIGEST-VALUE foo in db 9: %q", got)
	}
}

// TestMemoryRESP3 compares the RESP3 types of MEMORY STATS (a map, db.0
// a nested map, ratios doubles) and MEMORY DOCTOR (verbatim text) with
// Redis's, the figures aside.
func TestMemoryRESP3(t *testing.T) {
	digits := regexp.MustCompile(`[:,]-?[0-9.e+-]+\r\n`)
	run := func(addr string) []string {
		c := redistest.Dial(t, addr)
		c.Do("HELLO", "3")
		c.Do("SET", "k", "v")
		return []string{digits.ReplaceAllString(c.Do("MEMORY", "STATS"), "N"), c.Do("MEMORY", "DOCTOR")}
	}
	want, got := run(redistest.Start(t)), run(startStandalone(t).Addr())
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reply %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}
