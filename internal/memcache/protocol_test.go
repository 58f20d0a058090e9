package memcache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
)

// protoCase is raw protocol bytes in, reply bytes out. "$" in in and want
// stands for a key prefix unique to the run, so cases can share a real
// memcached with other tests. Every input is followed by "version\r\n" and
// every expected reply by "VERSION\r\n" (the version text is dropped), which
// shows the connection still serves, unless the case closes it.
type protoCase struct {
	name  string
	in    string
	want  string
	close bool // the server closes the connection after want
	real  bool // real memcached 1.6 answers exactly the same
}

var big = strings.Repeat("x", DefaultMaxValueLen+1)

var protoCases = []protoCase{
	{name: "set get", real: true,
		in:   "set $k 5 0 3\r\nabc\r\nget $k\r\n",
		want: "STORED\r\nVALUE $k 5 3\r\nabc\r\nEND\r\n"},
	{name: "empty value", real: true,
		in:   "set $k 0 0 0\r\n\r\nget $k\r\n",
		want: "STORED\r\nVALUE $k 0 0\r\n\r\nEND\r\n"},
	{name: "binary value", real: true,
		in:   "set $k 0 0 4\r\n\r\n\x00 \r\nget $k\r\n",
		want: "STORED\r\nVALUE $k 0 4\r\n\r\n\x00 \r\nEND\r\n"},
	{name: "max flags", real: true,
		in:   "set $k 4294967295 0 1\r\na\r\nget $k\r\n",
		want: "STORED\r\nVALUE $k 4294967295 1\r\na\r\nEND\r\n"},
	{name: "multi get skips misses", real: true,
		in:   "set $a 0 0 1\r\n1\r\nset $c 0 0 1\r\n3\r\nget $a $b $c\r\n",
		want: "STORED\r\nSTORED\r\nVALUE $a 0 1\r\n1\r\nVALUE $c 0 1\r\n3\r\nEND\r\n"},
	{name: "extra spaces", real: true,
		in:   "set $k 0 0 1\r\na\r\nget  $k   $k  \r\n",
		want: "STORED\r\nVALUE $k 0 1\r\na\r\nVALUE $k 0 1\r\na\r\nEND\r\n"},
	{name: "bare newlines", real: true,
		in:   "set $k 0 0 1\na\r\nget $k\n",
		want: "STORED\r\nVALUE $k 0 1\r\na\r\nEND\r\n"},
	{name: "add replace", real: true,
		in:   "replace $k 0 0 1\r\nr\r\nadd $k 0 0 1\r\na\r\nadd $k 0 0 1\r\nb\r\nreplace $k 7 0 1\r\nr\r\nget $k\r\n",
		want: "NOT_STORED\r\nSTORED\r\nNOT_STORED\r\nSTORED\r\nVALUE $k 7 1\r\nr\r\nEND\r\n"},
	{name: "append prepend", real: true,
		in:   "append $k 0 0 1\r\nz\r\nset $k 3 0 1\r\nm\r\nappend $k 9 0 1\r\nz\r\nprepend $k 9 0 1\r\na\r\nget $k\r\n",
		want: "NOT_STORED\r\nSTORED\r\nSTORED\r\nSTORED\r\nVALUE $k 3 3\r\namz\r\nEND\r\n"},
	{name: "cas miss and conflict", real: true,
		in:   "cas $k 0 0 1 1\r\nz\r\nset $k 0 0 1\r\na\r\ncas $k 0 0 1 0\r\nz\r\n",
		want: "NOT_FOUND\r\nSTORED\r\nEXISTS\r\n"},
	{name: "delete", real: true,
		in:   "set $k 0 0 1\r\na\r\ndelete $k\r\ndelete $k\r\ndelete $k 0\r\nget $k\r\n",
		want: "STORED\r\nDELETED\r\nNOT_FOUND\r\nNOT_FOUND\r\nEND\r\n"},
	{name: "delete usage", real: true,
		in:   "delete $k 5\r\ndelete $k noreply junk\r\ndelete\r\ndelete $k 0 noreply x\r\n",
		want: "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nCLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nERROR\r\nERROR\r\n"},
	{name: "touch", real: true,
		in:   "touch $k 10\r\nset $k 0 0 1\r\na\r\ntouch $k 100\r\ntouch $k x\r\ntouch $k\r\n",
		want: "NOT_FOUND\r\nSTORED\r\nTOUCHED\r\nCLIENT_ERROR invalid exptime argument\r\nERROR\r\n"},
	{name: "touch negative expires", real: true,
		in:   "set $k 0 0 1\r\na\r\ntouch $k -1\r\nget $k\r\n",
		want: "STORED\r\nTOUCHED\r\nEND\r\n"},
	{name: "gat", real: true,
		in:   "set $k 1 0 1\r\na\r\ngat 100 $k $m\r\ngat x $k\r\ngat 10\r\ngat\r\n",
		want: "STORED\r\nVALUE $k 1 1\r\na\r\nEND\r\nCLIENT_ERROR invalid exptime argument\r\nEND\r\nERROR\r\n"},
	{name: "set expired", real: true,
		in:   "set $k 0 0 1\r\na\r\nset $k 0 -1 1\r\nb\r\nget $k\r\nadd $k 0 0 1\r\nc\r\nget $k\r\n",
		want: "STORED\r\nSTORED\r\nEND\r\nSTORED\r\nVALUE $k 0 1\r\nc\r\nEND\r\n"},
	{name: "absolute exptime in the past", real: true,
		in:   "set $k 0 2592001 1\r\na\r\nget $k\r\n",
		want: "STORED\r\nEND\r\n"},
	{name: "incr decr", real: true,
		in:   "incr $n 1\r\nset $n 0 0 2\r\n10\r\nincr $n 5\r\ndecr $n 100\r\nincr $n 18446744073709551615\r\nincr $n 1\r\n",
		want: "NOT_FOUND\r\nSTORED\r\n15\r\n0\r\n18446744073709551615\r\n0\r\n"},
	{name: "incr bad", real: true,
		in:   "set $n 0 0 2\r\n1a\r\nincr $n 1\r\nincr $n -1\r\nincr $n x\r\nincr $n 18446744073709551616\r\nincr $n\r\n",
		want: "STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nCLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR invalid numeric delta argument\r\nCLIENT_ERROR invalid numeric delta argument\r\nERROR\r\n"},
	{name: "incr spaces", real: true,
		in:   "set $n 0 0 2\r\n 5\r\nincr $n 1\r\nset $n 0 0 0\r\n\r\nincr $n 1\r\n",
		want: "STORED\r\n6\r\nSTORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
	{name: "noreply", real: true,
		in:   "set $k 0 0 1 noreply\r\na\r\nadd $k 0 0 1 noreply\r\nb\r\nappend $k 0 0 1 noreply\r\nc\r\nincr $k 1 noreply\r\ntouch $k 10 noreply\r\ndelete $x noreply\r\nget $k\r\n",
		want: "VALUE $k 0 2\r\nac\r\nEND\r\n"},
	{name: "noreply silences errors", real: true,
		in:   "set $k abc 0 1 noreply\r\ntouch $k x noreply\r\nincr $k x noreply\r\ndelete $k 5 noreply\r\n",
		want: ""},
	{name: "noreply silences bad chunk", real: true,
		in:   "set $k 0 0 1 noreply\r\nab\r\n",
		want: "ERROR\r\n"}, // the "\n" left after the 3-byte block is an empty line
	{name: "non-noreply token ignored", real: true,
		in:   "set $k 0 0 1 junk\r\na\r\n",
		want: "STORED\r\n"},
	{name: "unknown command", real: true,
		in:   "bogus\r\nGET $k\r\n\r\nstats_bogus x y\r\n",
		want: "ERROR\r\nERROR\r\nERROR\r\nERROR\r\n"},
	{name: "wrong token counts", real: true,
		in:   "get\r\ngets\r\nset $k 0 0\r\nset $k 0 0 1 2 3 4\r\ncas $k 0 0 1\r\nverbosity\r\n",
		want: "ERROR\r\nERROR\r\nERROR\r\nERROR\r\nERROR\r\nERROR\r\n"},
	{name: "bad numbers keep the data line", real: true,
		in:   "set $k abc 0 1\r\na\r\nset $k 0 0 -1\r\nset $k 0 99999999999999999999 1\r\nb\r\ncas $k 0 0 1 x\r\nc\r\n",
		want: "CLIENT_ERROR bad command line format\r\nERROR\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\nERROR\r\nCLIENT_ERROR bad command line format\r\nERROR\r\n"},
	{name: "bad data chunk long", real: true,
		in:   "set $k 0 0 1\r\nq\r\nset $k 0 0 3\r\nabcd\r\nget $k\r\n",
		want: "STORED\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nVALUE $k 0 1\r\nq\r\nEND\r\n"},
	{name: "bad data chunk short", real: true,
		in:   "set $k 0 0 3\r\nab\r\n\r\nget $k\r\n",
		want: "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n"},
	{name: "key of 250 bytes", real: true,
		in:   "get " + strings.Repeat("k", 250) + "\r\n",
		want: "END\r\n"},
	{name: "key of 251 bytes", real: true,
		in:   "get " + strings.Repeat("k", 251) + "\r\nset " + strings.Repeat("k", 251) + " 0 0 1\r\na\r\n",
		want: "CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\nERROR\r\n"},
	{name: "value too large is swallowed", real: true,
		in:   "set $k 0 0 1\r\na\r\nset $k 0 0 " + fmt.Sprint(len(big)) + "\r\n" + big + "\r\nget $k\r\n",
		want: "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n"},
	{name: "value too large noreply", real: true,
		in:   "set $k 0 0 " + fmt.Sprint(len(big)) + " noreply\r\n" + big + "\r\n",
		want: ""},
	{name: "value at the limit",
		in:   "set $k 0 0 " + fmt.Sprint(len(big)-1) + "\r\n" + big[1:] + "\r\n",
		want: "STORED\r\n"},
	{name: "many keys", real: true,
		in:   "get" + strings.Repeat(" $nokey", 500) + "\r\n",
		want: "END\r\n"},
	{name: "verbosity", real: true,
		in:   "verbosity 1\r\nverbosity 1 noreply\r\nverbosity x\r\n",
		want: "OK\r\nCLIENT_ERROR bad command line format\r\n"},
	{name: "flush_all",
		in:   "set $k 0 0 1\r\na\r\nflush_all\r\nget $k\r\nflush_all 0\r\nflush_all noreply\r\nflush_all x\r\n",
		want: "STORED\r\nOK\r\nEND\r\nOK\r\nCLIENT_ERROR invalid exptime argument\r\n"},
	{name: "incr shrinks value", // memcached pads with spaces in place
		in:   "set $n 0 0 3\r\n100\r\ndecr $n 95\r\nget $n\r\n",
		want: "STORED\r\n5\r\nVALUE $n 0 3\r\n5  \r\nEND\r\n"},
	{name: "flags above 32 bits", // memcached truncates them
		in:   "set $k 4294967296 0 1\r\na\r\n",
		want: "CLIENT_ERROR bad command line format\r\nERROR\r\n"},
	{name: "quit", real: true, close: true,
		in:   "set $k 0 0 1\r\na\r\nquit\r\nget $k\r\n",
		want: "STORED\r\n"},
	{name: "line too long closes", close: true,
		in:   "get " + strings.Repeat("k ", DefaultMaxLineLen) + "\r\n",
		want: "CLIENT_ERROR line too long\r\n"},
}

func TestProtocolEmbedded(t *testing.T) {
	t.Parallel()
	for _, tc := range protoCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ListenAndServe("127.0.0.1:0", Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			runProtoCase(t, s.Addr(), tc)
		})
	}
}

// TestProtocolMemcached checks the same table against a real memcached, so
// the expectations above are memcached's behaviour, not ours.
func TestProtocolMemcached(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	addr := memcachedtest.Addr(t)
	for _, tc := range protoCases {
		if !tc.real {
			continue
		}
		t.Run(tc.name, func(t *testing.T) { runProtoCase(t, addr, tc) })
	}
}

var versionLine = regexp.MustCompile(`VERSION [^\r\n]*\r\n$`)

func runProtoCase(t *testing.T, addr string, tc protoCase) {
	t.Helper()
	prefix := fmt.Sprintf("t%x-", rand.Uint64())
	in := strings.ReplaceAll(tc.in, "$", prefix)
	want := strings.ReplaceAll(tc.want, "$", prefix)
	if !tc.close {
		in += "version\r\n"
		want += "VERSION\r\n"
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	// Write and read concurrently: a reply may fill the socket buffers
	// before the input is all sent.
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, in)
		werr <- err
	}()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if !tc.close && versionLine.Match(got) {
			break
		}
		if err != nil {
			if !tc.close || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("after %q: read: %v", got, err)
			}
			break
		}
	}
	if err := <-werr; err != nil && !tc.close {
		t.Fatalf("write: %v", err)
	}
	got = versionLine.ReplaceAll(got, []byte("VERSION\r\n"))
	if !bytes.Equal(got, []byte(want)) {
		t.Errorf("input %.200q\n got %.300q\nwant %.300q", in, got, want)
	}
}
