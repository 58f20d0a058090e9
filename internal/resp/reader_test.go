package resp_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// chunkReader returns its data in pieces: the sizes in chunks in turn (the
// last one repeated), so tests control where reads split commands.
type chunkReader struct {
	data   []byte
	chunks []int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.chunks) > 0 {
		n = min(n, c.chunks[0])
		if len(c.chunks) > 1 {
			c.chunks = c.chunks[1:]
		}
	}
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// readAll parses every command from rd, copying args into strings. It checks
// that args returned since the last Fill stay intact until the next Fill.
func readAll(t *testing.T, rd io.Reader, lim resp.Limits) ([][]string, error) {
	t.Helper()
	r := resp.NewReader(rd, lim)
	var cmds [][]string
	for {
		var batch [][][]byte
		var want [][]string
		for {
			args, ok, err := r.Next()
			if err != nil {
				return append(cmds, want...), err
			}
			if !ok {
				break
			}
			batch = append(batch, args)
			want = append(want, strs(args))
		}
		// Every command of the batch must still hold its bytes after the
		// later Next calls.
		for i, args := range batch {
			if got := strs(args); !equal(got, want[i]) {
				t.Fatalf("command %d of batch clobbered: %q, was %q", i, got, want[i])
			}
		}
		cmds = append(cmds, want...)
		if err := r.Fill(); err != nil {
			if err == io.EOF {
				if _, ok, perr := r.Next(); ok || perr != nil {
					t.Fatalf("Next after EOF with nothing new: ok=%v err=%v", ok, perr)
				}
				return cmds, nil
			}
			return cmds, err
		}
	}
}

func strs(args [][]byte) []string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = string(a)
	}
	return s
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalCmds(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func cmd(args ...string) []string { return args }

var small = resp.Limits{MaxBulk: 100, MaxArgs: 5, MaxInline: 20}

var readerCases = []struct {
	name string
	in   string
	lim  resp.Limits
	want [][]string
	err  string // ProtocolError text, "" for none
}{
	{name: "multibulk", in: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", want: [][]string{cmd("GET", "k")}},
	{name: "empty bulk", in: "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", want: [][]string{cmd("ECHO", "")}},
	{name: "binary", in: "*1\r\n$6\r\n\x00\r\n\xff*$\r\n", want: [][]string{cmd("\x00\r\n\xff*$")}},
	{name: "pipelined", in: "*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
		want: [][]string{cmd("PING"), cmd("PING"), cmd("ECHO", "hi")}},
	{name: "zero and negative counts skipped", in: "*0\r\n*-1\r\n*-5\r\n*1\r\n$1\r\nx\r\n", want: [][]string{cmd("x")}},
	{name: "count line LF not checked", in: "*1\rX$4\r\nPING\r\n", want: [][]string{cmd("PING")}},
	{name: "inline", in: "SET k v\r\nGET k\n", want: [][]string{cmd("SET", "k", "v"), cmd("GET", "k")}},
	{name: "inline blank lines skipped", in: "\r\n\n \t \r\nPING\r\n", want: [][]string{cmd("PING")}},
	{name: "inline spaces", in: "  a\t\tb  c\r\r\n", want: [][]string{cmd("a", "b", "c")}},
	{name: "inline vt is not a separator in a token", in: "a\vb\r\n", want: [][]string{cmd("a\vb")}},
	{name: "inline double quotes", in: `SET "a b" "\n\r\t\b\a\\\"\x41\x4g\q"` + "\r\n",
		want: [][]string{cmd("SET", "a b", "\n\r\t\b\a\\\"Ax4gq")}},
	{name: "inline single quotes", in: `SET 'a "b' 'it\'s\n'` + "\n", want: [][]string{cmd("SET", `a "b`, `it's\n`)}},
	{name: "inline quote mid token", in: `a"b c" d` + "\n", want: [][]string{cmd("ab c", "d")}},
	{name: "inline empty quoted", in: `ECHO "" ''` + "\n", want: [][]string{cmd("ECHO", "", "")}},
	{name: "inline NUL byte", in: "ECHO a\x00b\n", want: [][]string{cmd("ECHO", "a\x00b")}},
	{name: "inline at limit", lim: small, in: strings.Repeat("x", 20) + "\r\n", want: [][]string{cmd(strings.Repeat("x", 20))}},
	{name: "args at limit", lim: small, in: "*5\r\n" + strings.Repeat("$1\r\na\r\n", 5), want: [][]string{cmd("a", "a", "a", "a", "a")}},
	{name: "bulk at limit", lim: small, in: "*1\r\n$100\r\n" + strings.Repeat("b", 100) + "\r\n", want: [][]string{cmd(strings.Repeat("b", 100))}},
	{name: "half command", in: "*2\r\n$3\r\nGET\r\n$1\r\n", want: nil},

	{name: "bad count", in: "*x\r\n", err: "ERR Protocol error: invalid multibulk length"},
	{name: "empty count", in: "*\r\n", err: "ERR Protocol error: invalid multibulk length"},
	{name: "leading zero count", in: "*01\r\n", err: "ERR Protocol error: invalid multibulk length"},
	{name: "plus count", in: "*+1\r\n", err: "ERR Protocol error: invalid multibulk length"},
	{name: "huge count", in: "*3000000000\r\n", err: "ERR Protocol error: invalid multibulk length"},
	{name: "overflow count", in: "*99999999999999999999\r\n", err: "ERR Protocol error: invalid multibulk length"},
	{name: "count over default MaxArgs", in: "*1048577\r\n", err: "ERR Protocol error: invalid multibulk length"},
	{name: "count over MaxArgs", lim: small, in: "*6\r\n", err: "ERR Protocol error: invalid multibulk length"},
	{name: "not dollar", in: "*1\r\nx\r\n", err: "ERR Protocol error: expected '$', got 'x'"},
	{name: "not dollar CR", in: "*1\r\n\r\n", err: "ERR Protocol error: expected '$', got ' '"},
	{name: "not dollar high byte", in: "*1\r\n\xff\r\n", err: "ERR Protocol error: expected '$', got '\xff'"},
	{name: "second arg not dollar", in: "*2\r\n$1\r\na\r\n:1\r\n", err: "ERR Protocol error: expected '$', got ':'"},
	{name: "negative bulk", in: "*1\r\n$-1\r\n", err: "ERR Protocol error: invalid bulk length"},
	{name: "minus zero bulk", in: "*1\r\n$-0\r\n", err: "ERR Protocol error: invalid bulk length"},
	{name: "bad bulk", in: "*1\r\n$1x\r\n", err: "ERR Protocol error: invalid bulk length"},
	{name: "bulk over default MaxBulk", in: "*1\r\n$536870913\r\n", err: "ERR Protocol error: invalid bulk length"},
	{name: "bulk over MaxBulk", lim: small, in: "*1\r\n$101\r\n", err: "ERR Protocol error: invalid bulk length"},
	{name: "bulk overflow", in: "*1\r\n$9223372036854775808\r\n", err: "ERR Protocol error: invalid bulk length"},
	{name: "bulk without CRLF", in: "*1\r\n$4\r\nPINGxx", err: "ERR Protocol error: bulk argument not followed by CRLF"},
	{name: "long inline", lim: small, in: strings.Repeat("x", 21) + "\r\n", err: "ERR Protocol error: too big inline request"},
	{name: "long inline no LF", lim: small, in: strings.Repeat("x", 30), err: "ERR Protocol error: too big inline request"},
	{name: "long count line", lim: small, in: "*" + strings.Repeat("1", 30), err: "ERR Protocol error: too big mbulk count string"},
	{name: "long bulk line", lim: small, in: "*1\r\n$" + strings.Repeat("1", 30), err: "ERR Protocol error: too big bulk count string"},
	{name: "unbalanced double", in: "ECHO \"abc\r\n", err: "ERR Protocol error: unbalanced quotes in request"},
	{name: "unbalanced single", in: "ECHO 'abc\n", err: "ERR Protocol error: unbalanced quotes in request"},
	{name: "text after quote", in: "ECHO \"a\"b\r\n", err: "ERR Protocol error: unbalanced quotes in request"},
	{name: "text after single quote", in: "ECHO 'a'b\r\n", err: "ERR Protocol error: unbalanced quotes in request"},
	{name: "trailing backslash", in: "ECHO \"a\\\r\n", err: "ERR Protocol error: unbalanced quotes in request"},
	{name: "error after good commands", in: "PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n?\r\n", want: [][]string{cmd("PING"), cmd("PING")},
		err: "ERR Protocol error: expected '$', got '?'"},
}

func checkResult(t *testing.T, how string, got [][]string, err error, wantCmds [][]string, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil {
			t.Fatalf("%s: error %v", how, err)
		}
	} else {
		var pe *resp.ProtocolError
		if !errors.As(err, &pe) || pe.Error() != wantErr {
			t.Fatalf("%s: error %v, want ProtocolError %q", how, err, wantErr)
		}
	}
	if !equalCmds(got, wantCmds) {
		t.Fatalf("%s: commands %q, want %q", how, got, wantCmds)
	}
}

func TestReader(t *testing.T) {
	for _, tc := range readerCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, strings.NewReader(tc.in), tc.lim)
			checkResult(t, "one read", got, err, tc.want, tc.err)
			got, err = readAll(t, &chunkReader{data: []byte(tc.in), chunks: []int{1}}, tc.lim)
			checkResult(t, "1-byte reads", got, err, tc.want, tc.err)
			for i := 1; i < len(tc.in); i++ {
				got, err = readAll(t, &chunkReader{data: []byte(tc.in), chunks: []int{i, len(tc.in)}}, tc.lim)
				checkResult(t, "split", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestReaderPipelineSplits parses a pipelined batch of mixed commands split
// at every byte boundary.
func TestReaderPipelineSplits(t *testing.T) {
	var in []byte
	var want [][]string
	for i := range 20 {
		switch i % 3 {
		case 0:
			args := [][]byte{[]byte("SET"), []byte("key"), bytes.Repeat([]byte{byte(i)}, i*7)}
			in = resp.AppendCommand(in, args...)
			want = append(want, strs(args))
		case 1:
			in = append(in, "INCR  \"c\\x01\" \r\n"...)
			want = append(want, cmd("INCR", "c\x01"))
		case 2:
			in = append(in, "*0\r\n\r\n"...)
		}
	}
	for i := 0; i <= len(in); i++ {
		got, err := readAll(t, &chunkReader{data: bytes.Clone(in), chunks: []int{i, 1}}, resp.Limits{})
		checkResult(t, "split", got, err, want, "")
	}
}

func TestReaderLargeBulk(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB
	in := resp.AppendCommand(nil, []byte("SET"), []byte("k"), big)
	in = resp.AppendCommand(in, []byte("GET"), []byte("k"))
	for _, chunks := range [][]int{{len(in)}, {1000}, {3, 65536}} {
		got, err := readAll(t, &chunkReader{data: bytes.Clone(in), chunks: chunks}, resp.Limits{MaxBulk: len(big)})
		checkResult(t, "large", got, err, [][]string{cmd("SET", "k", string(big)), cmd("GET", "k")}, "")
	}
	_, err := readAll(t, &chunkReader{data: in, chunks: []int{1000}}, resp.Limits{MaxBulk: len(big) - 1})
	checkResult(t, "over limit", nil, err, nil, "ERR Protocol error: invalid bulk length")
}

func TestReaderBuffered(t *testing.T) {
	r := resp.NewReader(strings.NewReader("PING\r\n*1\r\n$4\r\nPI"), resp.Limits{})
	if err := r.Fill(); err != nil {
		t.Fatal(err)
	}
	if n := r.Buffered(); n != 16 {
		t.Fatalf("Buffered = %d before Next, want 16", n)
	}
	if _, ok, err := r.Next(); !ok || err != nil {
		t.Fatalf("Next: ok=%v err=%v", ok, err)
	}
	if _, ok, err := r.Next(); ok || err != nil {
		t.Fatalf("Next of half command: ok=%v err=%v", ok, err)
	}
	if n := r.Buffered(); n != 10 {
		t.Fatalf("Buffered = %d, want 10", n)
	}
}

// TestReaderAppendSafe checks that appending to a returned argument or
// argument list cannot overwrite what another Next returned.
func TestReaderAppendSafe(t *testing.T) {
	r := resp.NewReader(strings.NewReader("*2\r\n$1\r\na\r\n$1\r\nb\r\nc d\r\n"), resp.Limits{})
	if err := r.Fill(); err != nil {
		t.Fatal(err)
	}
	a1, _, _ := r.Next()
	a2, _, _ := r.Next()
	_ = append(a1[0], 'X')
	_ = append(a1, []byte("Y"))
	if got := strs(a1); !equal(got, cmd("a", "b")) {
		t.Fatalf("first = %q", got)
	}
	if got := strs(a2); !equal(got, cmd("c", "d")) {
		t.Fatalf("second = %q", got)
	}
}

func TestReaderNoAllocs(t *testing.T) {
	var batch []byte
	for range 50 {
		batch = resp.AppendCommand(batch, []byte("SET"), []byte("key:000123"), []byte("some value bytes"))
		batch = append(batch, "GET \"key:000123\"\r\n"...)
	}
	src := &loopReader{data: batch}
	r := resp.NewReader(src, resp.Limits{})
	round := func() {
		if err := r.Fill(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			_, ok, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			n++
		}
		if n != 100 {
			t.Fatalf("parsed %d commands, want 100", n)
		}
	}
	round() // warm up: grow the buffer and the arena
	if allocs := testing.AllocsPerRun(100, round); allocs != 0 {
		t.Fatalf("%v allocations per pipelined batch, want 0", allocs)
	}
}

// loopReader returns all of data on every Read.
type loopReader struct{ data []byte }

func (l *loopReader) Read(p []byte) (int, error) { return copy(p, l.data), nil }

// TestReaderMatchesRedis sends each malformed input to a real Redis and
// checks that the Reader's ProtocolError is Redis's error reply.
func TestReaderMatchesRedis(t *testing.T) {
	addr := redistest.Start(t)
	long := strings.Repeat("1", 100_000)
	inputs := []string{
		"*x\r\n",
		"*\r\n",
		"*01\r\n",
		"*+1\r\n",
		"*3000000000\r\n",
		"*99999999999999999999\r\n",
		"*1\r\nx\r\n",
		"*1\r\n\r\n",
		"*1\r\n\xff\r\n",
		"*2\r\n$1\r\na\r\n:1\r\n",
		"*1\r\n$-1\r\n",
		"*1\r\n$-0\r\n",
		"*1\r\n$1x\r\n",
		"*1\r\n$536870913\r\n",
		"*1\r\n$9223372036854775808\r\n",
		long,
		"*" + long,
		"*1\r\n$" + long,
		"ECHO \"abc\r\n",
		"ECHO 'abc\n",
		"ECHO \"a\"b\r\n",
		"ECHO 'a'b\r\n",
		"ECHO \"a\\\r\n",
	}
	for _, in := range inputs {
		_, err := readAll(t, strings.NewReader(in), resp.Limits{})
		var pe *resp.ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%.40q: error %v, want a ProtocolError", in, err)
			continue
		}
		c := redistest.Dial(t, addr)
		if err := c.Send([]byte(in)); err != nil {
			t.Fatal(err)
		}
		reply, err := c.Read()
		if err != nil {
			t.Errorf("%.40q: Redis reply: %v", in, err)
			continue
		}
		if want := strings.TrimSuffix(strings.TrimPrefix(reply, "-"), "\r\n"); pe.Error() != want {
			t.Errorf("%.40q: error %q, Redis says %q", in, pe.Error(), want)
		}
		c.Close()
	}
}
