package memcache

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParse(t *testing.T) {
	type want struct {
		op      Op
		keys    []string
		flags   uint32
		exptime int64
		cas     uint64
		delta   uint64
		value   string
		noreply bool
		err     error
	}
	tests := []struct {
		in   string
		want want
	}{
		{"get a b c\r\n", want{op: OpGet, keys: []string{"a", "b", "c"}}},
		{"gets a\n", want{op: OpGets, keys: []string{"a"}}},
		{"gat -5 a b\r\n", want{op: OpGat, exptime: -5, keys: []string{"a", "b"}}},
		{"gats 10 a\r\n", want{op: OpGats, exptime: 10, keys: []string{"a"}}},
		{"gat 10\r\n", want{op: OpGat, exptime: 10}},
		{"set k 7 100 3\r\nabc\r\n", want{op: OpSet, keys: []string{"k"}, flags: 7, exptime: 100, value: "abc"}},
		{"set k +7 +1 +3\r\nabc\r\n", want{op: OpSet, keys: []string{"k"}, flags: 7, exptime: 1, value: "abc"}},
		{"add k 0 -1 0 noreply\r\n\r\n", want{op: OpAdd, keys: []string{"k"}, exptime: -1, noreply: true}},
		{"cas k 1 2 1 18446744073709551615\r\nx\r\n", want{op: OpCas, keys: []string{"k"}, flags: 1, exptime: 2, cas: 1<<64 - 1, value: "x"}},
		{"append k 0 0 1\r\nx\r\n", want{op: OpAppend, keys: []string{"k"}, value: "x"}},
		{"prepend k 0 0 1\r\nx\r\n", want{op: OpPrepend, keys: []string{"k"}, value: "x"}},
		{"replace k 0 0 1\r\nx\r\n", want{op: OpReplace, keys: []string{"k"}, value: "x"}},
		{"delete k\r\n", want{op: OpDelete, keys: []string{"k"}}},
		{"delete k 0 noreply\r\n", want{op: OpDelete, keys: []string{"k"}, noreply: true}},
		{"touch k 9 noreply\r\n", want{op: OpTouch, keys: []string{"k"}, exptime: 9, noreply: true}},
		{"incr k 18446744073709551615\r\n", want{op: OpIncr, keys: []string{"k"}, delta: 1<<64 - 1}},
		{"decr k 3 noreply\r\n", want{op: OpDecr, keys: []string{"k"}, delta: 3, noreply: true}},
		{"flush_all\r\n", want{op: OpFlushAll}},
		{"flush_all 30 noreply\r\n", want{op: OpFlushAll, exptime: 30, noreply: true}},
		{"flush_all noreply\r\n", want{op: OpFlushAll, noreply: true}},
		{"version\r\n", want{op: OpVersion}},
		{"verbosity 1\r\n", want{op: OpVerbosity}},
		{"quit\r\n", want{op: OpQuit}},

		{"\r\n", want{err: ErrUnknownCommand}},
		{"   \r\n", want{err: ErrUnknownCommand}},
		{"GET k\r\n", want{err: ErrUnknownCommand}},
		{"get\r\n", want{err: ErrUnknownCommand}},
		{"set k 0 0\r\n", want{err: ErrUnknownCommand}},
		{"set k 0 0 1 a b\r\n", want{err: ErrUnknownCommand}},
		{"set k x 0 1\r\n", want{err: ErrBadFormat}},
		{"set k 4294967296 0 1\r\n", want{err: ErrBadFormat}},
		{"set k 0 2147483648 1\r\n", want{err: ErrBadFormat}},
		{"set k 0 0 -1\r\n", want{err: ErrBadFormat}},
		{"set k 0 0 1x\r\n", want{err: ErrBadFormat}},
		{"set k 0 0 +-1\r\n", want{err: ErrBadFormat}},
		{"set k 0 0 1 noreply\r\nxy\r\n", want{err: ErrBadDataChunk, noreply: true}},
		{"set k 0 0 1\r\nx\n\n", want{err: ErrBadDataChunk}},
		{"set " + strings.Repeat("k", 251) + " 0 0 1\r\n", want{err: ErrBadFormat}},
		{"get a " + strings.Repeat("k", 251) + "\r\n", want{err: ErrBadFormat}},
		{"cas k 0 0 1 -1\r\n", want{err: ErrBadFormat}},
		{"touch k x\r\n", want{err: ErrInvalidExptime}},
		{"gat x k\r\n", want{err: ErrInvalidExptime}},
		{"incr k -1\r\n", want{err: ErrInvalidDelta}},
		{"incr k 18446744073709551616\r\n", want{err: ErrInvalidDelta}},
		{"delete k 1\r\n", want{err: ErrDeleteUsage}},
		{"flush_all x\r\n", want{err: ErrInvalidExptime}},
		{"verbosity x\r\n", want{err: ErrBadFormat}},
		{"set k 0 0 2000000\r\n", want{err: io.ErrUnexpectedEOF}},
		{"set k 0 0 5\r\nab", want{err: io.ErrUnexpectedEOF}},
		{"get k", want{err: io.ErrUnexpectedEOF}},
		{"", want{err: io.EOF}},
	}
	for _, tc := range tests {
		// One byte at a time too, to cover lines and blocks split across reads.
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			p := NewParser(bufio.NewReaderSize(r, 16), Limits{})
			var cmd Command
			err := p.Parse(&cmd)
			if !errors.Is(err, tc.want.err) {
				t.Errorf("%q: err %v, want %v", tc.in, err, tc.want.err)
				continue
			}
			if cmd.NoReply != tc.want.noreply {
				t.Errorf("%q: noreply %v, want %v", tc.in, cmd.NoReply, tc.want.noreply)
			}
			if err != nil {
				continue
			}
			var keys []string
			for _, k := range cmd.Keys {
				keys = append(keys, string(k))
			}
			got := want{op: cmd.Op, keys: keys, flags: cmd.Flags, exptime: cmd.Exptime,
				cas: cmd.CAS, delta: cmd.Delta, value: string(cmd.Value), noreply: cmd.NoReply}
			if got.op != tc.want.op || strings.Join(got.keys, " ") != strings.Join(tc.want.keys, " ") ||
				got.flags != tc.want.flags || got.exptime != tc.want.exptime || got.cas != tc.want.cas ||
				got.delta != tc.want.delta || got.value != tc.want.value {
				t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		}
	}
}

func TestParseLimits(t *testing.T) {
	lim := Limits{MaxLineLen: 16, MaxValueLen: 4}
	in := "get 0123456789ab\r\n" + // 16 bytes: fits
		"set k 0 0 5\r\nhello\r\n" + // too large: swallowed
		"set k 0 0 4\r\nfour\r\n" +
		"get 0123456789abc\r\n" // 17 bytes: too long
	p := NewParser(bufio.NewReaderSize(strings.NewReader(in), 16), lim)
	var cmd Command
	wantErrs := []error{nil, ErrTooLarge, nil, ErrLineTooLong}
	for i, want := range wantErrs {
		if err := p.Parse(&cmd); err != want {
			t.Fatalf("command %d: err %v, want %v", i, err, want)
		}
	}
	if !ErrLineTooLong.Close || ErrTooLarge.Close {
		t.Error("only ErrLineTooLong should close the connection")
	}
}

// TestParseTooLargeKeepsKey: a server needs the key of a set that was too
// large, to drop the old item as memcached does.
func TestParseTooLargeKeepsKey(t *testing.T) {
	p := NewParser(bufio.NewReader(strings.NewReader("set key 0 0 9\r\n123456789\r\n")), Limits{MaxValueLen: 8})
	var cmd Command
	if err := p.Parse(&cmd); err != ErrTooLarge || cmd.Op != OpSet || string(cmd.Key()) != "key" {
		t.Fatalf("err %v op %v key %q", err, cmd.Op, cmd.Key())
	}
}

// TestParseAllocs checks that a warmed-up Command parses pipelined commands
// without allocating.
func TestParseAllocs(t *testing.T) {
	one := "get a b c d\r\nset key 1 2 10\r\n0123456789\r\ndelete key\r\nincr n 5\r\ngets x\r\n"
	in := strings.Repeat(one, 200)
	src := strings.NewReader(in)
	br := bufio.NewReaderSize(src, 4096)
	p := NewParser(br, Limits{})
	var cmd Command
	parseAll := func() {
		src.Reset(in)
		br.Reset(src)
		for {
			if err := p.Parse(&cmd); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return
			}
		}
	}
	parseAll() // grow the buffers
	if n := testing.AllocsPerRun(20, parseAll); n != 0 {
		t.Errorf("%.1f allocations per 1000 commands, want 0", n)
	}
}

func TestReplyAllocs(t *testing.T) {
	out := make([]byte, 0, 4096)
	key, val := []byte("some-key"), bytes.Repeat([]byte("v"), 100)
	n := testing.AllocsPerRun(100, func() {
		out = AppendValue(out[:0], key, 3, val, 99, true)
		out = AppendUint(out, 12345)
		out = AppendStatus(out, StatusEnd)
		out = AppendError(out, ErrBadDataChunk)
	})
	if n != 0 {
		t.Errorf("%.1f allocations per reply, want 0", n)
	}
}

func BenchmarkParse(b *testing.B) {
	one := "get a b c d\r\nset key 1 2 10\r\n0123456789\r\n"
	in := strings.Repeat(one, 100)
	src := strings.NewReader(in)
	br := bufio.NewReaderSize(src, 16<<10)
	p := NewParser(br, Limits{})
	var cmd Command
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(in)
		br.Reset(src)
		for p.Parse(&cmd) == nil {
		}
	}
}

// FuzzParse feeds arbitrary bytes to the parser: it must never panic, never
// hand out a key over 250 bytes or a value over the limit, always make
// progress, and answer only with the documented errors.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"get a b\r\n", "gets a\n", "gat 1 a\r\n", "set k 0 0 3\r\nabc\r\n",
		"cas k 0 0 1 5 noreply\r\nx\r\n", "set k 0 0 3\r\nabcd\r\n", "set k 0 0 -1\r\n",
		"delete k 0 noreply\r\n", "incr k 1\r\ndecr k 2\r\n", "touch k 1\r\n",
		"flush_all 10 noreply\r\n", "verbosity 1\r\n", "version\r\nquit\r\n",
		"set k 0 0 99\r\n", "\r\n\r\n", "set k 0 0 5\r\nab", strings.Repeat("a", 100),
		"set k 0 0 20\r\n0123456789\r\n01234567\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	lim := Limits{MaxLineLen: 64, MaxValueLen: 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		src := bytes.NewReader(data)
		p := NewParser(bufio.NewReaderSize(src, 16), lim)
		var cmd Command
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("no progress after %d commands on %d bytes", i, len(data))
			}
			err := p.Parse(&cmd)
			var pe *ProtocolError
			switch {
			case err == nil:
				for _, k := range cmd.Keys {
					if len(k) > MaxKeyLen || len(k) == 0 {
						t.Fatalf("key of %d bytes", len(k))
					}
				}
				if len(cmd.Value) > lim.MaxValueLen {
					t.Fatalf("value of %d bytes", len(cmd.Value))
				}
				if cmd.Op == OpNone {
					t.Fatal("nil error without a command")
				}
				NewStore(1<<20, true).Exec(nil, &cmd, 1e18)
			case errors.As(err, &pe):
				if pe.Close {
					return
				}
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				return
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
	})
}
