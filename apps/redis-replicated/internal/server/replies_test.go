package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// pipelineBytes sends cmds in one write and returns every byte answered
// until the connection stays quiet (CLIENT REPLY leaves some unanswered).
func pipelineBytes(t *testing.T, addr string, cmds [][]string) string {
	t.Helper()
	c := redistest.Dial(t, addr)
	var raw []byte
	for _, cmd := range cmds {
		args := make([][]byte, len(cmd))
		for i, a := range cmd {
			args[i] = []byte(a)
		}
		raw = resp.AppendCommand(raw, args...)
	}
	// A last PING marks the end of the replies.
	raw = resp.AppendCommand(raw, []byte("PING"), []byte("end-of-test"))
	if err := c.Send(raw); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasSuffix(got.String(), "$11\r\nend-of-test\r\n") && time.Now().Before(deadline) {
		r, err := c.Read()
		if err != nil {
			t.Fatalf("read after %q: %v", got.String(), err)
		}
		got.WriteString(r)
	}
	return got.String()
}

// TestClientReplyAndDebugDiff: CLIENT REPLY ON/OFF/SKIP silence what
// Redis silences, writes and reads alike, pushes excepted; DEBUG PROTOCOL
// answers Redis's samples in RESP2 and RESP3.
func TestClientReplyAndDebugDiff(t *testing.T) {
	redis := redistest.Start(t)
	ours := startStandalone(t).Addr()
	for _, script := range [][][]string{
		{{"CLIENT", "REPLY", "OFF"}, {"SET", "a", "1"}, {"GET", "a"}, {"CLIENT", "REPLY", "ON"}, {"GET", "a"}},
		{{"CLIENT", "REPLY", "SKIP"}, {"INCR", "n"}, {"INCR", "n"}, {"GET", "n"}},
		{{"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "ON"}, {"PING"}},
		{{"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "SKIP"}, {"PING", "x"}, {"PING", "y"}},
		{{"CLIENT", "REPLY", "OFF"}, {"CLIENT", "REPLY", "SKIP"}, {"PING", "x"}, {"CLIENT", "REPLY", "ON"}, {"PING", "y"}},
		{{"CLIENT", "REPLY", "MAYBE"}, {"CLIENT", "REPLY"}},
		{{"HELLO", "3"}, {"CLIENT", "REPLY", "OFF"}, {"SUBSCRIBE", "ch"}, {"UNSUBSCRIBE", "ch"}, {"CLIENT", "REPLY", "ON"}},
		{{"DEBUG", "PROTOCOL", "string"}, {"DEBUG", "PROTOCOL", "integer"}, {"DEBUG", "PROTOCOL", "double"},
			{"DEBUG", "PROTOCOL", "bignum"}, {"DEBUG", "PROTOCOL", "null"}, {"DEBUG", "PROTOCOL", "array"},
			{"DEBUG", "PROTOCOL", "set"}, {"DEBUG", "PROTOCOL", "map"}, {"DEBUG", "PROTOCOL", "attrib"},
			{"DEBUG", "PROTOCOL", "push"}, {"DEBUG", "PROTOCOL", "true"}, {"DEBUG", "PROTOCOL", "false"},
			{"DEBUG", "PROTOCOL", "verbatim"}, {"DEBUG", "PROTOCOL", "nope"}},
		{{"HELLO", "3"}, {"DEBUG", "PROTOCOL", "double"}, {"DEBUG", "PROTOCOL", "bignum"}, {"DEBUG", "PROTOCOL", "null"},
			{"DEBUG", "PROTOCOL", "set"}, {"DEBUG", "PROTOCOL", "map"}, {"DEBUG", "PROTOCOL", "attrib"},
			{"DEBUG", "PROTOCOL", "push"}, {"DEBUG", "PROTOCOL", "true"}, {"DEBUG", "PROTOCOL", "verbatim"}},
		{{"DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1b"}, {"DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0"},
			{"DEBUG", "SET-ACTIVE-EXPIRE", "1"}, {"DEBUG", "SLEEP", "0"}, {"DEBUG", "CHANGE-REPL-ID"}},
	} {
		// HELLO's reply names the server's id and version: compared apart.
		want := pipelineBytes(t, redis, script)
		got := pipelineBytes(t, ours, script)
		if script[0][0] == "HELLO" {
			want, got = afterHello(want), afterHello(got)
		}
		if got != want {
			t.Errorf("%q:\n got %q\nwant %q", script, got, want)
		}
	}
}

// afterHello drops a RESP3 HELLO reply (a map of 7 entries) from raw.
func afterHello(raw string) string {
	i := strings.Index(raw, "modules\r\n*0\r\n")
	if i < 0 {
		return raw
	}
	return raw[i+len("modules\r\n*0\r\n"):]
}

// TestDebugReloadKeepsState: DEBUG RELOAD keeps the keyspace, drops what
// expired and gives collections the encodings Redis's loading gives.
func TestDebugReloadKeepsState(t *testing.T) {
	c := redistest.Dial(t, startStandalone(t).Addr())
	for _, cmd := range [][]string{
		{"CONFIG", "SET", "hash-max-listpack-entries", "2"},
		{"HSET", "h", "a", "1", "b", "2", "c", "3"},
		{"HDEL", "h", "c"},
		{"SET", "s", "v"},
		{"APPEND", "s", "w"},
	} {
		c.Do(cmd...)
	}
	if r := c.Do("OBJECT", "ENCODING", "h"); r != "$9\r\nhashtable\r\n" {
		t.Fatalf("before reload: %q", r)
	}
	before := c.Do("DEBUG", "DIGEST")
	if r := c.Do("DEBUG", "RELOAD"); r != "+OK\r\n" {
		t.Fatalf("DEBUG RELOAD: %q", r)
	}
	if r := c.Do("OBJECT", "ENCODING", "h"); r != "$8\r\nlistpack\r\n" {
		t.Errorf("after reload: %q, want listpack", r)
	}
	if r := c.Do("OBJECT", "ENCODING", "s"); r != "$6\r\nembstr\r\n" {
		t.Errorf("string after reload: %q, want embstr", r)
	}
	if r := c.Do("HGETALL", "h"); r != "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n" {
		t.Errorf("HGETALL after reload: %q", r)
	}
	if c.Do("DEBUG", "DIGEST") == before {
		t.Error("the digest did not see the encoding change")
	}
	if r := c.Do("CONFIG", "GET", "hash-max-listpack-entries"); r != "*2\r\n$25\r\nhash-max-listpack-entries\r\n$1\r\n2\r\n" {
		t.Errorf("CONFIG GET after reload: %q", r)
	}
}

// TestCommandGetKeysDiff: COMMAND GETKEYS finds the keys Redis finds.
func TestCommandGetKeysDiff(t *testing.T) {
	script := [][]string{
		{"COMMAND", "GETKEYS", "get", "k"},
		{"COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"},
		{"COMMAND", "GETKEYS", "del", "a", "b", "c"},
		{"COMMAND", "GETKEYS", "sort", "abc", "store", "def"},
		{"COMMAND", "GETKEYS", "sort_ro", "abc"},
		{"COMMAND", "GETKEYS", "sort", "abc", "store", "invalid", "store", "stillbad", "store", "def"},
		{"COMMAND", "GETKEYS", "sort", "abc", "by", "store", "get", "store", "limit", "0", "1"},
		{"COMMAND", "GETKEYS", "zunionstore", "d", "2", "a", "b", "weights", "1", "2"},
		{"COMMAND", "GETKEYS", "zunion", "2", "a", "b"},
		{"COMMAND", "GETKEYS", "zunion", "3", "a", "b"},
		{"COMMAND", "GETKEYS", "lmpop", "1", "l", "left"},
		{"COMMAND", "GETKEYS", "eval", "return 1", "2", "x", "y", "arg"},
		{"COMMAND", "GETKEYS", "evalsha_ro", "abc", "1", "x"},
		{"COMMAND", "GETKEYS", "eval", "return 1", "0"},
		{"COMMAND", "GETKEYS", "fcall", "test", "1", "x", "foo"},
		{"COMMAND", "GETKEYS", "get"},
		{"COMMAND", "GETKEYS", "nosuch", "x"},
		{"COMMAND", "GETKEYS", "ping"},
		{"COMMAND", "GETKEYS"},
	}
	want := pipelineBytes(t, redistest.Start(t), script)
	got := pipelineBytes(t, startStandalone(t).Addr(), script)
	if got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

// TestMaxMemoryDiff: under maxmemory 1 the commands that may grow memory
// are refused, and MULTI queues nothing but EXEC, DISCARD and QUIT, as
// Redis refuses them; reads and EXEC of reads still run.
func TestMaxMemoryDiff(t *testing.T) {
	script := [][]string{
		{"SET", "x", "v"},
		{"CONFIG", "SET", "maxmemory", "1"},
		{"CONFIG", "GET", "maxmemory"},
		{"SET", "y", "1"}, {"GET", "x"}, {"DEL", "x"}, {"SET", "x", "v2"},
		{"MULTI"}, {"GET", "x"}, {"PING"}, {"DISCARD"},
		{"CONFIG", "SET", "maxmemory", "0"},
		{"SET", "x", "v3"},
		{"CONFIG", "SET", "maxmemory", "bad"},
	}
	want := pipelineBytes(t, redistest.Start(t), script)
	got := pipelineBytes(t, startStandalone(t).Addr(), script)
	if got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	for _, addr := range []string{redistest.Start(t), startStandalone(t).Addr()} {
		a, b := redistest.Dial(t, addr), redistest.Dial(t, addr)
		a.Do("MULTI")
		a.Do("GET", "x")
		b.Do("CONFIG", "SET", "maxmemory", "1")
		if r := a.Do("EXEC"); r != "*1\r\n$-1\r\n" {
			t.Errorf("%s: EXEC of a read under OOM: %q", addr, r)
		}
		b.Do("CONFIG", "SET", "maxmemory", "0")
		a.Do("MULTI")
		a.Do("PING")
		a.Do("SET", "x", "1")
		b.Do("CONFIG", "SET", "maxmemory", "1")
		if r := a.Do("EXEC"); r != "-EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'.\r\n" {
			t.Errorf("%s: EXEC of a write under OOM: %q", addr, r)
		}
		b.Do("CONFIG", "SET", "maxmemory", "0")
	}
}
