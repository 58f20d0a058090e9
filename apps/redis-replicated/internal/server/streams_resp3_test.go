package server

import (
	"regexp"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestRESP3Streams compares the stream commands' replies after HELLO 3
// (XREAD's map, XINFO's maps, nested in XINFO STREAM FULL) and in RESP2
// with Redis's, times masked (the servers' clocks differ).
func TestRESP3Streams(t *testing.T) {
	script := [][]string{
		{"HELLO", "3"},
		{"XADD", "s", "1-1", "a", "1"}, {"XADD", "s", "2-1", "b", "2"}, {"XADD", "t", "1-1", "c", "3"},
		{"XGROUP", "CREATE", "s", "g", "0"}, {"XGROUP", "CREATE", "s", "h", "$"},
		{"XREAD", "STREAMS", "s", "t", "0", "0"}, {"XREAD", "STREAMS", "s", "$"},
		{"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "d", "STREAMS", "s", ">"},
		{"XREADGROUP", "GROUP", "g", "d", "STREAMS", "s", ">"},
		{"XDEL", "s", "2-1"}, {"XREADGROUP", "GROUP", "g", "d", "STREAMS", "s", "0"},
		{"XINFO", "STREAM", "s"}, {"XINFO", "STREAM", "s", "FULL"}, {"XINFO", "STREAM", "t", "FULL"},
		{"XINFO", "GROUPS", "s"}, {"XINFO", "CONSUMERS", "s", "g"}, {"XINFO", "STREAM", "nope"},
		{"XPENDING", "s", "g"}, {"XPENDING", "s", "h"}, {"XPENDING", "s", "g", "-", "+", "9"},
		{"XAUTOCLAIM", "s", "g", "e", "0", "0"}, {"XCLAIM", "s", "g", "c", "0", "1-1"},
		{"XRANGE", "s", "-", "+"}, {"XRANGE", "s", "-", "+", "COUNT", "0"},
		{"HELLO", "2"}, {"XREAD", "STREAMS", "s", "0"}, {"XINFO", "STREAM", "s", "FULL"}, {"XINFO", "GROUPS", "s"},
	}
	masks := []*regexp.Regexp{
		regexp.MustCompile(`\$2\r\nid\r\n:\d+\r\n`),
		regexp.MustCompile(`:\d{13}\r\n`),
		regexp.MustCompile(`\$4\r\nidle\r\n:\d+\r\n`),
		regexp.MustCompile(`\$1\r\n[cde]\r\n:\d+\r\n`),
	}
	run := func(addr string) []string {
		cn := redistest.Dial(t, addr)
		var got []string
		for _, args := range script {
			r := cn.Do(args...)
			for _, m := range masks {
				r = m.ReplaceAllString(r, "MASKED\r\n")
			}
			got = append(got, r)
		}
		return got
	}
	want, got := run(redistest.Start(t)), run(startStandalone(t).Addr())
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d %q:\n got %q\nwant %q", i, script[i], got[i], want[i])
		}
	}
}
