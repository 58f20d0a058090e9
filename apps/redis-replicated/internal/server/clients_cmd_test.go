package server

import (
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestClientCommands: CLIENT LIST and INFO describe the connections in
// Redis 7.0's layout (ids, names, flags for subscribers, MULTI and
// NO-EVICT, subscription counts, the command each ran last); CLIENT KILL by
// filter and by address closes the connection it names; the errors match
// Debian's redis-server's.
func TestClientCommands(t *testing.T) {
	srv := startStandalone(t)
	a := redistest.Dial(t, srv.Addr())
	b := redistest.Dial(t, srv.Addr())
	if r := b.Do("CLIENT", "SETNAME", "worker"); r != "+OK\r\n" {
		t.Fatalf("SETNAME: %q", r)
	}
	bID := strings.TrimSuffix(strings.TrimPrefix(b.Do("CLIENT", "ID"), ":"), "\r\n")
	b.Do("SUBSCRIBE", "jobs")
	m := redistest.Dial(t, srv.Addr())
	if r := m.Do("CLIENT", "NO-EVICT", "on"); r != "+OK\r\n" {
		t.Fatalf("NO-EVICT on: %q", r)
	}
	mID := strings.TrimSuffix(strings.TrimPrefix(m.Do("CLIENT", "ID"), ":"), "\r\n")
	m.Do("MULTI")
	m.Do("SET", "k", "v")
	list := a.Do("CLIENT", "LIST")
	line := regexp.MustCompile(`id=(\d+) addr=\S+ laddr=\S+ fd=-?\d+ name=(\S*) age=\d+ idle=\d+ flags=(\S+) db=0 sub=(\d+) psub=(\d+) ssub=0 multi=(-?\d+) .* cmd=(\S+) user=default redir=-1 resp=2`)
	lines := line.FindAllStringSubmatch(list, -1)
	if len(lines) != 3 {
		t.Fatalf("CLIENT LIST: want 3 lines in Redis's layout, got %q", list)
	}
	for _, l := range lines {
		switch l[1] {
		case bID:
			if l[2] != "worker" || l[3] != "P" || l[4] != "1" || l[5] != "0" || l[6] != "-1" || l[7] != "subscribe" {
				t.Fatalf("subscriber's line: %q", l[0])
			}
		case mID:
			if l[2] != "" || l[3] != "xe" || l[6] != "1" || l[7] != "set" {
				t.Fatalf("line of the client in MULTI with NO-EVICT on and one command queued: %q", l[0])
			}
		default:
			if l[3] != "N" || l[6] != "-1" || l[7] != "client|list" {
				t.Fatalf("own line: %q", l[0])
			}
		}
	}
	m.Do("DISCARD")
	if r := a.Do("CLIENT", "LIST", "TYPE", "pubsub"); !strings.Contains(r, "name=worker") || strings.Count(r, "id=") != 1 {
		t.Fatalf("CLIENT LIST TYPE pubsub: %q", r)
	}
	if r := a.Do("CLIENT", "INFO"); !strings.Contains(r, "cmd=client|info") || strings.Count(r, "id=") != 1 {
		t.Fatalf("CLIENT INFO: %q", r)
	}
	if r := a.Do("CLIENT", "KILL", "ID", bID); r != ":1\r\n" {
		t.Fatalf("CLIENT KILL ID %s: %q", bID, r)
	}
	if r, err := b.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("the killed connection still reads: %q, %v", r, err)
	}
	if r := a.Do("CLIENT", "KILL", "SKIPME", "yes"); r != ":1\r\n" {
		t.Fatalf("CLIENT KILL SKIPME yes, the other client left: %q", r)
	}
	if r, err := m.Read(); !errors.Is(err, io.EOF) {
		t.Fatalf("the killed connection still reads: %q, %v", r, err)
	}
	if r := a.Do("CLIENT", "KILL", "SKIPME", "yes"); r != ":0\r\n" {
		t.Fatalf("CLIENT KILL SKIPME yes with no one else: %q", r)
	}

	redis := redistest.Dial(t, redistest.Start(t))
	ours := redistest.Dial(t, srv.Addr())
	for _, args := range [][]string{
		{"CLIENT", "KILL", "127.0.0.1:1"},
		{"CLIENT", "KILL", "ID", "0"},
		{"CLIENT", "KILL", "TYPE", "nope"},
		{"CLIENT", "KILL", "ID"},
		{"CLIENT", "LIST", "TYPE", "nope"},
		{"CLIENT", "LIST", "ID", "x"},
		{"CLIENT", "NO-EVICT", "maybe"},
		{"CONFIG", "SET", "no-such-option", "1"},
		{"CONFIG", "SET", "maxmemory", "0"},
		{"CONFIG", "SET", "appendonly", "no", "save", ""},
		{"CONFIG", "GET", "set-max-intset-entries"},
		{"CONFIG", "GET", "zset-max-listpack-entries"},
		{"CONFIG", "SET", "set-max-intset-entries", "512"},
		{"FUNCTION", "FLUSH"},
		{"FUNCTION", "FLUSH", "ASYNC"},
		{"FUNCTION", "FLUSH", "LATER"},
		{"FUNCTION", "LIST"},
	} {
		if got, want := ours.Do(args...), redis.Do(args...); got != want {
			t.Errorf("%q: got %q, want %q", args, got, want)
		}
	}
	// The configuration is fixed: a change is refused, never pretended.
	for _, args := range [][]string{
		{"CONFIG", "SET", "maxclients", "1"},
		{"CONFIG", "SET", "appendonly", "yes", "save", "900 1"}, // all or nothing
	} {
		if r := ours.Do(args...); !strings.HasPrefix(r, "-ERR gomu: CONFIG SET") {
			t.Errorf("%q: got %q, want a refusal", args, r)
		}
	}
	if r := ours.Do("CONFIG", "GET", "appendonly"); r != "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n" {
		t.Errorf("after the refused CONFIG SET, CONFIG GET appendonly: %q", r)
	}
}
