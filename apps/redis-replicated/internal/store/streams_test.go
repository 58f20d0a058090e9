package store

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// streamScripts are hand-written differential scripts: errors, edge IDs,
// options, and every command's reply shapes, with explicit IDs so that
// the two servers' clocks do not matter.
var streamScripts = map[string][]step{
	"xadd": {
		cmd("XADD", "s", "1-1", "a", "1"),
		cmd("XADD", "s", "1-1", "a", "1"),
		cmd("XADD", "s", "1-0", "a", "1"),
		cmd("XADD", "s", "1-*", "b", "2"),
		cmd("XADD", "s", "2", "c", "3", "d", "4"),
		cmd("XADD", "s", "0-0", "a", "1"),
		cmd("XADD", "s2", "0", "a", "1"),
		cmd("XADD", "s2", "0-*", "a", "1"),
		cmd("XADD", "s", "-", "a", "1"),
		cmd("XADD", "s", "+", "a", "1"),
		cmd("XADD", "s", "3-x", "a", "1"),
		cmd("XADD", "s", "x", "a", "1"),
		cmd("XADD", "s", "3", "a"),
		cmd("XADD", "s", "3", "a", "b", "c"),
		cmd("XADD", "s", "03-01", "a", "b"),
		cmd("XADD", "s", "+4", "a", "b"),
		cmd("XADD", "s", " 5", "a", "b"),
		cmd("XADD", "s", "5--1", "a", "b"),
		cmd("XADD", "s", "18446744073709551615-*", "a", "b"),
		cmd("XADD", "s", "18446744073709551615-*", "a", "b"),
		cmd("XADD", "s3", "18446744073709551615-18446744073709551615", "a", "b"),
		cmd("XADD", "s3", "*", "a", "b"),
		cmd("XADD", "s4", "5-18446744073709551615", "a", "b"),
		cmd("XADD", "s4", "5-*", "a", "b"),
		cmd("XADD", "s4", "4-*", "a", "b"),
		cmd("XADD", "s4", "6-*", "a", "b"),
		cmd("XADD", "s", "18446744073709551616-1", "a", "b"),
		cmd("XADD", "none", "NOMKSTREAM", "1-1", "a", "b"),
		cmd("EXISTS", "none"),
		cmd("XADD", "s", "NOMKSTREAM", "MAXLEN", "2", "99-1", "a", "b"),
		cmd("XLEN", "s"),
		cmd("XADD", "s", "MAXLEN", "1", "MINID", "1", "100", "a", "b"),
		cmd("XADD", "s", "MAXLEN", "-1", "100", "a", "b"),
		cmd("XADD", "s", "MAXLEN", "x", "100", "a", "b"),
		cmd("XADD", "s", "LIMIT", "5", "100", "a", "b"),
		cmd("XADD", "s", "MAXLEN", "=", "5", "LIMIT", "5", "100", "a", "b"),
		cmd("XADD", "s", "MAXLEN", "~", "5", "LIMIT", "-1", "100", "a", "b"),
		cmd("XADD", "s", "MINID", "-", "100", "a", "b"),
		cmd("XADD", "s", "MAXLEN", "1"),
		cmd("XADD", "s", "MAXLEN", "1", "NOMKSTREAM"),
		cmd("SET", "str", "x"),
		cmd("XADD", "str", "1-1", "a", "b"),
		cmd("XLEN", "str"),
		cmd("TYPE", "s"),
		cmd("OBJECT", "ENCODING", "s"),
		cmd("XLEN", "s"),
		cmd("XLEN", "nokey"),
		cmd("XRANGE", "s", "-", "+"),
	},
	"xrange": {
		cmd("XADD", "s", "1-1", "a", "1"),
		cmd("XADD", "s", "1-2", "b", "2"),
		cmd("XADD", "s", "2-0", "a", "3"),
		cmd("XADD", "s", "5-5", "a", "4", "b", "5"),
		cmd("XRANGE", "s", "-", "+"),
		cmd("XRANGE", "s", "1", "1"),
		cmd("XRANGE", "s", "(1-1", "+"),
		cmd("XRANGE", "s", "-", "(5-5"),
		cmd("XRANGE", "s", "(-", "+"),
		cmd("XRANGE", "s", "(", "+"),
		cmd("XRANGE", "s", "-", "(0-0"),
		cmd("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"),
		cmd("XRANGE", "s", "5", "1"),
		cmd("XRANGE", "s", "-", "+", "COUNT", "2"),
		cmd("XRANGE", "s", "-", "+", "COUNT", "0"),
		cmd("XRANGE", "s", "-", "+", "COUNT", "-3"),
		cmd("XRANGE", "s", "-", "+", "COUNT"),
		cmd("XRANGE", "s", "-", "+", "LIMIT", "2"),
		cmd("XRANGE", "s", "-", "+", "COUNT", "x"),
		cmd("XRANGE", "nokey", "-", "+", "COUNT", "0"),
		cmd("XREVRANGE", "s", "+", "-"),
		cmd("XREVRANGE", "s", "+", "-", "COUNT", "3"),
		cmd("XREVRANGE", "s", "(5-5", "(1-1"),
		cmd("XREVRANGE", "s", "2", "1-2"),
		cmd("XREVRANGE", "s", "-", "+"),
		cmd("XDEL", "s", "1-2", "9-9"),
		cmd("XDEL", "s", "1-2"),
		cmd("XDEL", "s", "x"),
		cmd("XDEL", "nokey", "x"),
		cmd("XRANGE", "s", "-", "+"),
		cmd("XREVRANGE", "s", "+", "-"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XDEL", "s", "1-1", "2-0", "5-5"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XRANGE", "s", "-", "+"),
		cmd("EXISTS", "s"),
	},
	"xtrim": {
		cmd("XTRIM", "s", "MAXLEN", "1"),
		cmd("XADD", "s", "1-1", "a", "1"),
		cmd("XADD", "s", "2-1", "a", "1"),
		cmd("XADD", "s", "3-1", "a", "1"),
		cmd("XADD", "s", "4-1", "a", "1"),
		cmd("XTRIM", "s"),
		cmd("XTRIM", "s", "MAXLEN"),
		cmd("XTRIM", "s", "FOO", "1"),
		cmd("XTRIM", "s", "LIMIT", "1"),
		cmd("XTRIM", "s", "MAXLEN", "1", "LIMIT", "1"),
		cmd("XTRIM", "s", "MAXLEN", "~", "1"),
		cmd("XTRIM", "s", "MAXLEN", "~", "1", "LIMIT", "0"),
		cmd("XTRIM", "s", "MAXLEN", "3"),
		cmd("XTRIM", "s", "MINID", "3"),
		cmd("XTRIM", "s", "MINID", "~", "9"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XTRIM", "s", "MINID", "=", "9"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XTRIM", "s", "NOMKSTREAM", "MINID", "9"),
		cmd("XTRIM", "str", "MAXLEN", "1"),
	},
	"xread": {
		cmd("XADD", "a", "1-1", "f", "1"),
		cmd("XADD", "a", "2-1", "f", "2"),
		cmd("XADD", "b", "3-1", "f", "3"),
		cmd("SET", "str", "x"),
		cmd("XREAD", "STREAMS", "a", "b", "0", "0"),
		cmd("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"),
		cmd("XREAD", "STREAMS", "a", "b", "$", "$"),
		cmd("XREAD", "BLOCK", "0", "STREAMS", "a", "0"),
		cmd("XREAD", "BLOCK", "10", "STREAMS", "a", "1-1"),
		cmd("XREAD", "BLOCK", "-1", "STREAMS", "a", "1-1"),
		cmd("XREAD", "BLOCK", "x", "STREAMS", "a", "1-1"),
		cmd("XREAD", "STREAMS", "a", "nokey", "1-1", "0"),
		cmd("XREAD", "STREAMS", "a", "str", "1-1", "0"),
		cmd("XREAD", "STREAMS", "a", ">"),
		cmd("XREAD", "STREAMS", "a", "-"),
		cmd("XREAD", "STREAMS", "a", "x"),
		cmd("XREAD", "STREAMS", "a", "b", "0"),
		cmd("XREAD", "COUNT", "x", "STREAMS", "a", "0"),
		cmd("XREAD", "COUNT", "-1", "STREAMS", "a", "0"),
		cmd("XREAD", "NOACK", "STREAMS", "a", "0"),
		cmd("XREAD", "GROUP", "g", "c", "STREAMS", "a", "0"),
		cmd("XREAD", "FOO", "STREAMS", "a", "0"),
		cmd("XREAD", "COUNT", "1", "a", "0"),
		cmd("XREAD", "STREAMS", "a", "18446744073709551615-18446744073709551615"),
	},
	"groups": {
		cmd("XGROUP", "CREATE", "s", "g", "$"),
		cmd("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
		cmd("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XADD", "s", "1-1", "a", "1"),
		cmd("XADD", "s", "2-1", "a", "2"),
		cmd("XADD", "s", "3-1", "b", "3"),
		cmd("XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "0"),
		cmd("XGROUP", "CREATE", "s", "g3", "0", "ENTRIESREAD", "-2"),
		cmd("XGROUP", "CREATE", "s", "g3", "0", "ENTRIESREAD"),
		cmd("XGROUP", "CREATE", "s", "g3", "0", "FOO"),
		cmd("XGROUP", "CREATE", "s", "g3", "x"),
		cmd("XGROUP", "CREATE", "s", "g3", "-"),
		cmd("XGROUP", "CREATE", "s", "g3", "0", "MKSTREAM", "ENTRIESREAD", "1", "MKSTREAM"),
		cmd("XGROUP", "CREATE", "s", "g3", "0", "MKSTREAM", "ENTRIESREAD", "1", "MKSTREAM", "x"),
		cmd("XINFO", "GROUPS", "s"),
		cmd("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
		cmd("XREADGROUP", "GROUP", "g2", "c1", "COUNT", "1", "STREAMS", "s", ">"),
		cmd("XREADGROUP", "GROUP", "g2", "c2", "STREAMS", "s", ">"),
		cmd("XREADGROUP", "GROUP", "g2", "c2", "STREAMS", "s", ">"),
		cmd("XREADGROUP", "GROUP", "g2", "c1", "STREAMS", "s", "0"),
		cmd("XREADGROUP", "GROUP", "g2", "c3", "STREAMS", "s", "0"),
		cmd("XREADGROUP", "GROUP", "g2", "c1", "STREAMS", "s", "$"),
		cmd("XREADGROUP", "GROUP", "g2", "c1", "STREAMS", "s", "18446744073709551615-18446744073709551615"),
		cmd("XREADGROUP", "GROUP", "g2", "c1", "STREAMS", "s", "s", ">", "0"),
		cmd("XREADGROUP", "GROUP", "g2", "c1", "BLOCK", "10", "STREAMS", "s", "0"),
		cmd("XREADGROUP", "GROUP", "nog", "c1", "STREAMS", "s", ">"),
		cmd("XREADGROUP", "GROUP", "g2", "c1", "STREAMS", "nokey", ">"),
		cmd("XREADGROUP", "STREAMS", "s", ">"),
		cmd("XREADGROUP", "GROUP", "g", "c1", "NOACK", "STREAMS", "s", ">"),
		cmd("XINFO", "GROUPS", "s"),
		cmd("XPENDING", "s", "g2"),
		cmd("XPENDING", "s", "g"),
		cmd("XPENDING", "s", "nog"),
		cmd("XPENDING", "s", "g2", "-", "+"),
		cmd("XPENDING", "s", "g2", "-", "+", "x"),
		cmd("XPENDING", "s", "g2", "IDLE", "x", "-", "+", "10"),
		cmd("XPENDING", "s", "g2", "IDLE", "5", "-", "+"),
		cmd("XACK", "s", "g2", "1-1", "9-9"),
		cmd("XACK", "s", "g2", "x"),
		cmd("XACK", "s", "nog", "x"),
		cmd("XACK", "nokey", "g", "x"),
		cmd("XPENDING", "s", "g2"),
		cmd("XDEL", "s", "2-1"),
		cmd("XREADGROUP", "GROUP", "g2", "c2", "STREAMS", "s", "0"),
		cmd("XREADGROUP", "GROUP", "g2", "c2", "COUNT", "1", "STREAMS", "s", "0"),
		cmd("XINFO", "GROUPS", "s"),
		cmd("XGROUP", "SETID", "s", "g2", "0"),
		cmd("XGROUP", "SETID", "s", "g2", "0", "ENTRIESREAD", "1"),
		cmd("XGROUP", "SETID", "s", "g2", "0", "FOO", "1"),
		cmd("XGROUP", "SETID", "s", "g2", "0", "ENTRIESREAD"),
		cmd("XGROUP", "SETID", "s", "g2", "0", "MKSTREAM"),
		cmd("XGROUP", "SETID", "s", "g2", "0", "ENTRIESREAD", "1", "ENTRIESREAD", "2"),
		cmd("XGROUP", "SETID", "nokey", "g2", "0", "ENTRIESREAD", "1", "ENTRIESREAD", "2"),
		cmd("XGROUP", "SETID", "s", "nog", "0", "ENTRIESREAD", "1", "ENTRIESREAD", "2"),
		cmd("XGROUP", "CREATE", "nokey", "g", "0", "ENTRIESREAD", "1", "ENTRIESREAD", "2", "MKSTREAM"),
		cmd("XGROUP", "CREATE", "s", "g9", "0", "ENTRIESREAD", "1", "ENTRIESREAD", "2"),
		cmd("XGROUP", "CREATE", "s", "g9", "0", "ENTRIESREAD", "x"),
		cmd("XGROUP", "CREATECONSUMER", "s", "g9", "0"),
		cmd("XGROUP", "SETID", "s", "nog", "0"),
		cmd("XGROUP", "SETID", "s", "g2", "-"),
		cmd("XINFO", "GROUPS", "s"),
		cmd("XREADGROUP", "GROUP", "g2", "c1", "STREAMS", "s", ">"),
		cmd("XPENDING", "s", "g2"),
		cmd("XINFO", "GROUPS", "s"),
		cmd("XGROUP", "SETID", "s", "g2", "$"),
		cmd("XGROUP", "CREATECONSUMER", "s", "g2", "c9"),
		cmd("XGROUP", "CREATECONSUMER", "s", "g2", "c9"),
		cmd("XGROUP", "CREATECONSUMER", "s", "nog", "c9"),
		cmd("XGROUP", "DELCONSUMER", "s", "g2", "c1"),
		cmd("XGROUP", "DELCONSUMER", "s", "g2", "zz"),
		cmd("XPENDING", "s", "g2"),
		cmd("XGROUP", "DESTROY", "s", "g2"),
		cmd("XGROUP", "DESTROY", "s", "g2"),
		cmd("XGROUP", "DESTROY", "nokey", "g2"),
		cmd("XGROUP", "CREATECONSUMER", "nokey", "g2", "x"),
		cmd("XGROUP"),
		cmd("XGROUP", "FOO"),
		cmd("XGROUP", "CREATE", "s"),
		cmd("XGROUP", "HELP"),
		cmd("XGROUP", "HELP", "x"),
		cmd("XGROUP", "DESTROY", "s", "g", "x"),
		cmd("XINFO", "HELP"),
		cmd("XINFO", "FOO", "s"),
		cmd("XINFO", "STREAM", "nokey"),
		cmd("XINFO", "STREAM", "s", "FULL", "COUNT"),
		cmd("XINFO", "STREAM", "s", "FOO"),
		cmd("XINFO", "STREAM", "s", "FULL", "FOO", "1"),
		cmd("XINFO", "STREAM", "s", "FULL", "COUNT", "x"),
		cmd("XINFO", "GROUPS", "s", "x"),
		cmd("XINFO", "CONSUMERS", "s", "nog"),
		cmd("SET", "str", "x"),
		cmd("XINFO", "GROUPS", "str"),
		cmd("XGROUP", "CREATE", "str", "g", "$"),
		cmd("XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"),
		cmd("XPENDING", "str", "g"),
		cmd("XACK", "str", "g", "1"),
		cmd("XCLAIM", "str", "g", "c", "0", "1"),
		cmd("XAUTOCLAIM", "str", "g", "c", "0", "0"),
	},
	"claim": {
		cmd("XADD", "s", "1-1", "a", "1"),
		cmd("XADD", "s", "2-1", "a", "2"),
		cmd("XADD", "s", "3-1", "b", "3"),
		cmd("XADD", "s", "4-1", "b", "4"),
		cmd("XGROUP", "CREATE", "s", "g", "0"),
		cmd("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
		cmd("XCLAIM", "s", "g", "c2", "0", "1-1", "2-1", "9-9"),
		cmd("XCLAIM", "s", "g", "c2", "0", "3-1", "JUSTID"),
		cmd("XCLAIM", "s", "g", "c2", "0", "4-1", "RETRYCOUNT", "7"),
		cmd("XCLAIM", "s", "g", "c2", "x", "4-1"),
		cmd("XCLAIM", "s", "g", "c2", "0", "4-1", "FOO"),
		cmd("XCLAIM", "s", "g", "c2", "0", "4-1", "RETRYCOUNT", "x"),
		cmd("XCLAIM", "s", "g", "c2", "0", "4-1", "IDLE", "x"),
		cmd("XCLAIM", "s", "g", "c2", "0", "4-1", "TIME", "x"),
		cmd("XCLAIM", "s", "g", "c2", "0", "4-1", "LASTID", "x"),
		cmd("XCLAIM", "s", "g", "c2", "0", "4-1", "LASTID"),
		cmd("XCLAIM", "s", "nog", "c2", "0", "4-1"),
		cmd("XCLAIM", "s", "g", "c3", "3600000", "1-1", "2-1"),
		cmd("XPENDING", "s", "g"),
		cmd("XDEL", "s", "2-1"),
		cmd("XCLAIM", "s", "g", "c3", "0", "2-1"),
		cmd("XPENDING", "s", "g"),
		cmd("XCLAIM", "s", "g", "c3", "0", "2-1", "FORCE"),
		cmd("XCLAIM", "s", "g", "c3", "0", "3-1", "FORCE", "JUSTID"),
		cmd("XACK", "s", "g", "1-1"),
		cmd("XCLAIM", "s", "g", "c3", "0", "1-1", "FORCE", "RETRYCOUNT", "5", "LASTID", "9-0"),
		cmd("XACK", "s", "g", "1-1", "4-1"),
		cmd("XCLAIM", "s", "g", "c3", "0", "1-1", "4-1", "FORCE"),
		cmd("XPENDING", "s", "g", "-", "+", "10"),
		cmd("XACK", "s", "g", "1-1"),
		cmd("XCLAIM", "s", "g", "c3", "99999", "1-1", "FORCE", "JUSTID"),
		cmd("XPENDING", "s", "g", "-", "+", "10"),
		cmd("XINFO", "GROUPS", "s"),
		cmd("XPENDING", "s", "g", "-", "+", "10"),
		cmd("XPENDING", "s", "g", "-", "+", "10", "c3"),
		cmd("XPENDING", "s", "g", "-", "+", "10", "nobody"),
		cmd("XPENDING", "s", "g", "(1-1", "(4-1", "10"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "0", "0", "COUNT", "1"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "0", "0", "COUNT", "0"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "0", "0", "COUNT", "x"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "0", "0", "COUNT", "576460752303423487"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "0", "0", "COUNT", "576460752303423488"),
		cmd("XAUTOCLAIM", "nokey", "g", "c4", "0", "0", "COUNT", "576460752303423487"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "x", "0"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "0", "x"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "0", "0", "FOO"),
		cmd("XAUTOCLAIM", "s", "nog", "c4", "0", "0"),
		cmd("XAUTOCLAIM", "nokey", "g", "c4", "0", "0"),
		cmd("XADD", "s", "5-1", "b", "5"),
		cmd("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
		cmd("XDEL", "s", "3-1", "5-1"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "0", "(1-1", "JUSTID"),
		cmd("XAUTOCLAIM", "s", "g", "c4", "3600000", "0"),
		cmd("XAUTOCLAIM", "s", "g", "c5", "0", "-", "COUNT", "2"),
		cmd("XPENDING", "s", "g"),
		cmd("XREADGROUP", "GROUP", "g", "c4", "STREAMS", "s", "0"),
	},
	"xsetid": {
		cmd("XSETID", "nokey", "1-1"),
		cmd("XADD", "s", "5-5", "a", "1"),
		cmd("XSETID", "s", "1-1"),
		cmd("XSETID", "s", "5-5"),
		cmd("XSETID", "s", "x"),
		cmd("XSETID", "s", "10-0", "ENTRIESADDED", "0"),
		cmd("XSETID", "s", "10-0", "ENTRIESADDED", "-1"),
		cmd("XSETID", "s", "10-0", "ENTRIESADDED", "x"),
		cmd("XSETID", "s", "10-0", "MAXDELETEDID", "11-0"),
		cmd("XSETID", "s", "10-0", "MAXDELETEDID", "x"),
		cmd("XSETID", "s", "10-0", "FOO", "1"),
		cmd("XSETID", "s", "10-0", "ENTRIESADDED", "7", "MAXDELETEDID", "3-0"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XSETID", "s", "9-0"),
		cmd("XSETID", "s", "2-0"),
		cmd("XADD", "s", "10-0", "a", "1"),
		cmd("XADD", "s", "10-*", "a", "1"),
		cmd("XDEL", "s", "5-5", "10-1"),
		cmd("XSETID", "s", "1-0"),
		cmd("XINFO", "STREAM", "s", "FULL"),
	},
}

func TestStreamsScriptsDiff(t *testing.T) {
	for name, script := range streamScripts {
		t.Run(name, func(t *testing.T) {
			args := make([][]string, len(script))
			for i, st := range script {
				args[i] = st.args
			}
			runStreamDiff(t, args)
		})
	}
}

// TestStreamsNodeLayoutDiff grows streams past a node's 100 entries and
// its 4096 bytes, with entries that share the master fields and entries
// that do not, then trims approximately and exactly and deletes, checking
// XINFO STREAM (the radix tree's keys and nodes) and the trims' counts.
func TestStreamsNodeLayoutDiff(t *testing.T) {
	var script []step
	long := strings.Repeat("v", 70)
	for i := 1; i <= 450; i++ {
		id := strconv.Itoa(i) + "-" + strconv.Itoa(i%3)
		switch {
		case i%7 == 0:
			script = append(script, cmd("XADD", "s", id, "other", long, "f", "12"))
		case i%5 == 0:
			script = append(script, cmd("XADD", "s", id, "f", strconv.Itoa(i*1000)))
		default:
			script = append(script, cmd("XADD", "s", id, "f", "x"))
		}
		script = append(script, cmd("XADD", "t", strconv.Itoa(i*977)+"-"+strconv.Itoa(i), "a", "1", "b", "2"))
		if i%50 == 0 {
			script = append(script, cmd("XINFO", "STREAM", "s"), cmd("XINFO", "STREAM", "t"))
		}
	}
	script = append(script,
		cmd("XTRIM", "s", "MAXLEN", "~", "400"),
		cmd("XTRIM", "s", "MAXLEN", "~", "300", "LIMIT", "30"),
		cmd("XTRIM", "s", "MINID", "~", "200"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XTRIM", "s", "MAXLEN", "250"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XTRIM", "s", "MINID", "260"),
		cmd("XDEL", "s", "300-0", "301-1", "302-2", "303-0"),
		cmd("XINFO", "STREAM", "s"),
		cmd("XRANGE", "s", "290", "310"),
		cmd("XREVRANGE", "s", "310", "290", "COUNT", "5"),
		cmd("XTRIM", "t", "MINID", "~", "200000"),
		cmd("XINFO", "STREAM", "t"),
		cmd("XINFO", "STREAM", "t", "FULL", "COUNT", "3"),
	)
	for i := 1; i <= 450; i += 3 {
		script = append(script, cmd("XDEL", "t", strconv.Itoa(i*977)+"-"+strconv.Itoa(i)))
		if i%30 == 1 {
			script = append(script, cmd("XINFO", "STREAM", "t"))
		}
	}
	script = append(script, cmd("XADD", "t", "999999999-0", "a", "1", "b", "2"), cmd("XINFO", "STREAM", "t"))
	// Every listpack integer width and string header size, in values and
	// in the IDs' deltas from the master entry.
	values := []string{"0", "127", "128", "-1", "-4096", "4095", "4096", "-32768", "32767", "32768",
		"-8388608", "8388607", "8388608", "-2147483648", "2147483647", "2147483648",
		"-9223372036854775808", "9223372036854775807", "9223372036854775808", "01", "+1", "",
		strings.Repeat("a", 63), strings.Repeat("b", 64), strings.Repeat("c", 4095), strings.Repeat("d", 4096),
		strings.Repeat("e", 200)}
	ms := uint64(1000)
	for i := range 600 {
		ms += uint64(1) << (i % 37)
		v := values[i%len(values)]
		script = append(script, cmd("XADD", "u", strconv.FormatUint(ms, 10)+"-"+strconv.Itoa(i%5), "f", v, values[(i*7)%len(values)], v))
		if i%40 == 0 {
			script = append(script, cmd("XINFO", "STREAM", "u"))
		}
	}
	script = append(script, cmd("XTRIM", "u", "MAXLEN", "~", "300"), cmd("XINFO", "STREAM", "u"),
		cmd("XTRIM", "u", "MAXLEN", "~", "10"), cmd("XINFO", "STREAM", "u"))
	// A MINID trim that leaves a node with nothing live (its last entry a
	// tombstone at or past the ID), then more entries.
	script = append(script,
		cmd("XADD", "w", "1-1", "a", "1"), cmd("XADD", "w", "2-1", "a", "1"), cmd("XADD", "w", "3-1", "a", "1"),
		cmd("XDEL", "w", "3-1"), cmd("XTRIM", "w", "MINID", "3"), cmd("XINFO", "STREAM", "w"),
		cmd("XADD", "w", "4-1", "a", "1"), cmd("XINFO", "STREAM", "w"), cmd("XRANGE", "w", "-", "+"),
		cmd("XADD", "w", "MINID", "9", "5-1", "a", "1"), cmd("XINFO", "STREAM", "w"), cmd("XLEN", "w"))
	runDiff(t, script)
}

// maskTimes rewrites a RESP reply so that clock-dependent integers read
// 0: an "idle" or "seen-time" value, a pending entry's delivery time
// ([id, consumer, time, count] or [id, time, count]). The two servers'
// clocks differ, so those cannot be compared.
func maskTimes(t *testing.T, raw string) string {
	br := bufio.NewReader(strings.NewReader(raw))
	var out strings.Builder
	var walk func() (kind byte, text string)
	walk = func() (byte, string) {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("bad reply %q", raw)
		}
		switch line[0] {
		case '$':
			n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
			if n < 0 {
				return '$', line
			}
			b := make([]byte, n+2)
			if _, err := io.ReadFull(br, b); err != nil {
				t.Fatalf("bad reply %q", raw)
			}
			return '$', line + string(b)
		case '*':
			n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
			kinds := make([]byte, max(n, 0))
			texts := make([]string, max(n, 0))
			for i := 0; i < n; i++ {
				kinds[i], texts[i] = walk()
			}
			for i := 0; i+1 < n; i++ {
				if kinds[i] == '$' && kinds[i+1] == ':' &&
					(strings.HasSuffix(texts[i], "\r\nidle\r\n") || strings.HasSuffix(texts[i], "\r\nseen-time\r\n")) {
					texts[i+1] = ":0\r\n"
				}
			}
			if n == 4 && string(kinds) == "$$::" {
				texts[2] = ":0\r\n"
			}
			if n == 3 && string(kinds) == "$::" {
				texts[1] = ":0\r\n"
			}
			return '*', line + strings.Join(texts, "")
		}
		return line[0], line
	}
	_, text := walk()
	out.WriteString(text)
	return out.String()
}

// TestStreamsRandomDiff runs seeded random streams of stream commands
// (explicit IDs; every reply compared byte for byte with Redis's once
// clock-dependent times are masked).
func TestStreamsRandomDiff(t *testing.T) {
	for _, seed := range []uint64{3, 17, 99, 1234} {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 5))
			runStreamDiff(t, randomStreamScript(r, 3000))
		})
	}
}

// runStreamDiff runs script against a fresh Store and a fresh Redis and
// fails on the first reply that differs once times are masked.
func runStreamDiff(t *testing.T, script [][]string) {
	t.Helper()
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	for i, args := range script {
		want := maskTimes(t, rc.Do(args...))
		env := &Env{NowMs: time.Now().UnixMilli()}
		got := maskTimes(t, string(execArgs(s, env, args)))
		if got != want {
			t.Fatalf("step %d %q:\n got %q\nwant %q", i, args, got, want)
		}
	}
}

// randomStreamScript makes n random stream commands over a few keys (one
// a string), groups and consumers, with explicit, mostly increasing IDs.
func randomStreamScript(r *rand.Rand, n int) [][]string {
	keys := []string{"s1", "s2", "str"}
	groups := []string{"g1", "g2"}
	consumers := []string{"c1", "c2", "c3"}
	fields := []string{"a", "b", "1", "22", "", "-7", "123456789", strings.Repeat("x", 300)}
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }
	ms := uint64(1)
	var added []string // IDs given to XADD, so that most picks hit entries
	id := func() string {
		if len(added) > 0 && r.IntN(3) > 0 {
			return added[len(added)-1-r.IntN(min(len(added), 40))]
		}
		return strconv.FormatUint(uint64(r.IntN(int(ms)+2)), 10) + "-" + strconv.Itoa(r.IntN(3))
	}
	bound := func() string {
		switch r.IntN(5) {
		case 0:
			return "-"
		case 1:
			return "+"
		case 2:
			return "(" + id()
		}
		return id()
	}
	script := [][]string{{"SET", "str", "x"}}
	for range n {
		k := keys[r.IntN(2)]
		if r.IntN(12) == 0 {
			k = pick(keys)
		}
		var c []string
		switch r.IntN(24) {
		case 0, 1, 2, 3, 4:
			c = []string{"XADD", k}
			if r.IntN(6) == 0 {
				c = append(c, "MAXLEN", pick([]string{"~", "=", "~"}), strconv.Itoa(r.IntN(30)))
			}
			if r.IntN(10) == 0 {
				c = append(c, "MINID", pick([]string{"~", "="}), id())
			}
			if r.IntN(30) == 0 {
				ms += 1 << r.IntN(44) // keys that differ in high bytes too
			}
			if r.IntN(8) == 0 {
				ms += uint64(r.IntN(3))
				c = append(c, strconv.FormatUint(ms, 10)+"-*")
			} else {
				ms += uint64(r.IntN(2))
				c = append(c, strconv.FormatUint(ms, 10)+"-"+strconv.Itoa(r.IntN(4)))
				added = append(added, c[len(c)-1])
			}
			for range 1 + r.IntN(3) {
				c = append(c, pick(fields), pick(fields))
			}
		case 5:
			c = []string{"XDEL", k, id(), id()}
		case 6:
			c = []string{"XTRIM", k, pick([]string{"MAXLEN", "MINID"})}
			if r.IntN(2) == 0 {
				c = append(c, "~")
			}
			if c[2] == "MAXLEN" {
				c = append(c, strconv.Itoa(r.IntN(40)))
			} else {
				c = append(c, id())
			}
		case 7:
			c = []string{"XRANGE", k, bound(), bound()}
			if r.IntN(3) == 0 {
				c = append(c, "COUNT", strconv.Itoa(r.IntN(5)))
			}
		case 8:
			c = []string{"XREVRANGE", k, bound(), bound()}
			if r.IntN(3) == 0 {
				c = append(c, "COUNT", strconv.Itoa(r.IntN(5)))
			}
		case 9:
			c = []string{"XLEN", k}
		case 10:
			c = []string{"XGROUP", "CREATE", k, pick(groups), pick([]string{"$", "0", id()})}
			if r.IntN(2) == 0 {
				c = append(c, "MKSTREAM")
			}
		case 11:
			switch r.IntN(4) {
			case 0:
				c = []string{"XGROUP", "SETID", k, pick(groups), pick([]string{"$", "0", id()})}
			case 1:
				c = []string{"XGROUP", "DESTROY", k, pick(groups)}
			case 2:
				c = []string{"XGROUP", "CREATECONSUMER", k, pick(groups), pick(consumers)}
			default:
				c = []string{"XGROUP", "DELCONSUMER", k, pick(groups), pick(consumers)}
			}
		case 12, 13, 14:
			c = []string{"XREADGROUP", "GROUP", pick(groups), pick(consumers)}
			if r.IntN(2) == 0 {
				c = append(c, "COUNT", strconv.Itoa(r.IntN(4)))
			}
			if r.IntN(6) == 0 {
				c = append(c, "NOACK")
			}
			if r.IntN(4) == 0 {
				c = append(c, "STREAMS", "s1", "s2", pick([]string{">", "0"}), pick([]string{">", id()}))
			} else {
				c = append(c, "STREAMS", k, pick([]string{">", ">", "0", id()}))
			}
		case 15:
			c = []string{"XACK", k, pick(groups), id(), id()}
		case 16:
			c = []string{"XPENDING", k, pick(groups)}
			if r.IntN(2) == 0 {
				c = append(c, bound(), bound(), strconv.Itoa(r.IntN(6)))
				if r.IntN(2) == 0 {
					c = append(c, pick(consumers))
				}
			}
		case 17:
			c = []string{"XCLAIM", k, pick(groups), pick(consumers), "0", id(), id()}
			if r.IntN(3) == 0 {
				c = append(c, "JUSTID")
			}
			if r.IntN(4) == 0 {
				c = append(c, "FORCE")
			}
			if r.IntN(4) == 0 {
				c = append(c, "RETRYCOUNT", strconv.Itoa(r.IntN(5)))
			}
			if r.IntN(5) == 0 {
				c = append(c, "LASTID", id())
			}
		case 18:
			c = []string{"XAUTOCLAIM", k, pick(groups), pick(consumers), "0", bound(), "COUNT", strconv.Itoa(1 + r.IntN(4))}
			if r.IntN(3) == 0 {
				c = append(c, "JUSTID")
			}
		case 19:
			c = []string{"XINFO", "STREAM", k}
			if r.IntN(2) == 0 {
				c = append(c, "FULL")
				if r.IntN(2) == 0 {
					c = append(c, "COUNT", strconv.Itoa(r.IntN(4)))
				}
			}
		case 20:
			c = []string{"XINFO", "GROUPS", k}
		case 21:
			c = []string{"XINFO", "CONSUMERS", k, pick(groups)}
		case 22:
			c = []string{"XREAD", "COUNT", strconv.Itoa(r.IntN(4)), "STREAMS", k, pick([]string{"0", "$", id()})}
			if r.IntN(3) == 0 {
				c = []string{"XREAD", "STREAMS", "s1", "s2", pick([]string{"0", "$", id()}), pick([]string{"0", id()})}
			}
		default:
			c = []string{"XSETID", k, strconv.FormatUint(ms+uint64(r.IntN(2)), 10)}
		}
		script = append(script, c)
	}
	return script
}

// streamGenericScript checks the generic commands on stream keys and the
// other types' commands against one.
var streamGenericScript = []step{
	cmd("XADD", "s", "1-1", "a", "1"),
	cmd("XGROUP", "CREATE", "s", "g", "0"),
	cmd("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"),
	cmd("TYPE", "s"),
	cmd("OBJECT", "ENCODING", "s"),
	cmd("EXISTS", "s"),
	cmd("SCAN", "0", "TYPE", "stream"),
	cmd("COPY", "s", "s2"),
	cmd("XADD", "s", "2-1", "b", "2"),
	cmd("XACK", "s", "g", "1-1"),
	cmd("XRANGE", "s2", "-", "+"),
	cmd("XPENDING", "s2", "g"),
	cmd("XINFO", "STREAM", "s2"),
	cmd("RENAME", "s2", "s3"),
	cmd("XLEN", "s3"),
	cmd("EXISTS", "s2"),
	cmd("PEXPIRE", "s3", "100000"),
	cmd("TTL", "s3"),
	cmd("PERSIST", "s3"),
	cmd("GET", "s"),
	cmd("APPEND", "s", "x"),
	cmd("INCR", "s"),
	cmd("LPUSH", "s", "x"),
	cmd("LLEN", "s"),
	cmd("HSET", "s", "f", "v"),
	cmd("HGET", "s", "f"),
	cmd("SADD", "s", "x"),
	cmd("SCARD", "s"),
	cmd("ZADD", "s", "1", "x"),
	cmd("ZCARD", "s"),
	cmd("SORT", "s"),
	cmd("PFADD", "s", "x"),
	cmd("SET", "s3", "x"),
	cmd("TYPE", "s3"),
	cmd("DEL", "s", "s3"),
	cmd("EXISTS", "s"),
	cmd("XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"),
	cmd("TYPE", "e"),
	cmd("XLEN", "e"),
	cmd("XINFO", "STREAM", "e", "FULL"),
}

func TestStreamsGenericDiff(t *testing.T) { runDiff(t, streamGenericScript) }

// TestStreamsClock covers what depends on the leader's clock, with fixed
// Env times: "*" IDs (never going backwards), idle and delivery times, the
// IDLE and TIME options and the non-blocking answers of BLOCK.
func TestStreamsClock(t *testing.T) {
	s := New()
	for i, c := range []struct {
		now  int64
		args []string
		want string
	}{
		{1000, []string{"XADD", "s", "*", "a", "1"}, "$6\r\n1000-0\r\n"},
		{1000, []string{"XADD", "s", "*", "a", "1"}, "$6\r\n1000-1\r\n"},
		{999, []string{"XADD", "s", "*", "a", "1"}, "$6\r\n1000-2\r\n"},
		{999, []string{"XADD", "s", "1000-*", "a", "1"}, "$6\r\n1000-3\r\n"},
		{999, []string{"XADD", "s", "999-*", "a", "1"}, "-" + errXAddTooSmall + "\r\n"},
		{2000, []string{"XADD", "s", "*", "a", "1"}, "$6\r\n2000-0\r\n"},
		{2000, []string{"XADD", "m", "5-18446744073709551615", "a", "1"}, "$22\r\n5-18446744073709551615\r\n"},
		{3, []string{"XADD", "m", "*", "a", "1"}, "$3\r\n6-0\r\n"},
		{3, []string{"XADD", "m", "6-*", "a", "1"}, "$3\r\n6-1\r\n"},
		// Blocking reads answer at once when there is nothing.
		{3000, []string{"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}, "*-1\r\n"},
		{3000, []string{"XGROUP", "CREATE", "s", "g", "$"}, "+OK\r\n"},
		{3000, []string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "100", "STREAMS", "s", ">"}, "*-1\r\n"},
		{3000, []string{"XGROUP", "SETID", "s", "g", "0"}, "+OK\r\n"},
		{5000, []string{"XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">"},
			"*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$6\r\n1000-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$6\r\n1000-1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"},
		{7000, []string{"XPENDING", "s", "g", "-", "+", "10"},
			"*2\r\n*4\r\n$6\r\n1000-0\r\n$1\r\nc\r\n:2000\r\n:1\r\n*4\r\n$6\r\n1000-1\r\n$1\r\nc\r\n:2000\r\n:1\r\n"},
		{7000, []string{"XPENDING", "s", "g", "IDLE", "2001", "-", "+", "10"}, "*0\r\n"},
		{7000, []string{"XINFO", "CONSUMERS", "s", "g"}, "*1\r\n*6\r\n$4\r\nname\r\n$1\r\nc\r\n$7\r\npending\r\n:2\r\n$4\r\nidle\r\n:2000\r\n"},
		{7000, []string{"XCLAIM", "s", "g", "d", "2001", "1000-0"}, "*0\r\n"},
		{7000, []string{"XCLAIM", "s", "g", "d", "2000", "1000-0", "IDLE", "100", "JUSTID"}, "*1\r\n$6\r\n1000-0\r\n"},
		{7000, []string{"XCLAIM", "s", "g", "d", "0", "1000-1", "TIME", "6000", "JUSTID"}, "*1\r\n$6\r\n1000-1\r\n"},
		{7000, []string{"XPENDING", "s", "g", "-", "+", "10"},
			"*2\r\n*4\r\n$6\r\n1000-0\r\n$1\r\nd\r\n:100\r\n:1\r\n*4\r\n$6\r\n1000-1\r\n$1\r\nd\r\n:1000\r\n:1\r\n"},
		{7000, []string{"XCLAIM", "s", "g", "d", "0", "1000-1", "TIME", "9000", "JUSTID"}, "*1\r\n$6\r\n1000-1\r\n"},
		{7500, []string{"XPENDING", "s", "g", "IDLE", "550", "-", "+", "10"},
			"*1\r\n*4\r\n$6\r\n1000-0\r\n$1\r\nd\r\n:600\r\n:1\r\n"},
		{8000, []string{"XAUTOCLAIM", "s", "g", "e", "1050", "0", "JUSTID"}, "*3\r\n$3\r\n0-0\r\n*1\r\n$6\r\n1000-0\r\n*0\r\n"},
		{8000, []string{"XINFO", "STREAM", "s", "FULL"}, ""},
	} {
		got := string(execArgs(s, &Env{NowMs: c.now}, c.args))
		if c.want != "" && got != c.want {
			t.Fatalf("%d %q:\n got %q\nwant %q", i, c.args, got, c.want)
		}
		if c.want == "" {
			for _, part := range []string{"$9\r\nseen-time\r\n:8000\r\n", "*4\r\n$6\r\n1000-0\r\n$1\r\ne\r\n:8000\r\n:1\r\n",
				"*3\r\n$6\r\n1000-1\r\n:7000\r\n:1\r\n"} {
				if !strings.Contains(got, part) {
					t.Fatalf("XINFO STREAM FULL lacks %q:\n%q", part, got)
				}
			}
		}
	}
}

// TestStreamsReplayAndSnapshot applies the same random writes (with "*"
// IDs too) with the same Envs to two stores: equal digests throughout;
// then a snapshot restored into a third store gives the same digest and
// the same replies to reads and writes.
func TestStreamsReplayAndSnapshot(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 1))
	script := randomStreamScript(r, 3000)
	for i := range script {
		if script[i][0] == "XADD" && i%3 == 0 {
			for j := range script[i] {
				if strings.Contains(script[i][j], "-") && j >= 2 && (j == 2 || script[i][j-1] != "~" && script[i][j-1] != "=") {
					script[i][j] = "*"
					break
				}
			}
		}
	}
	a, b := New(), New()
	now := int64(1_700_000_000_000)
	for i, args := range script {
		now += int64(i % 3)
		e := &Env{NowMs: now}
		ra, rb := execArgs(a, e, args), execArgs(b, e, args)
		if !bytes.Equal(ra, rb) {
			t.Fatalf("step %d %q: replies differ", i, args)
		}
		if i%100 == 0 && a.Digest() != b.Digest() {
			t.Fatalf("step %d: digests differ", i)
		}
	}
	if a.Digest() != b.Digest() {
		t.Fatal("digests differ")
	}
	var buf bytes.Buffer
	if err := a.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	c := New()
	if err := c.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if c.Digest() != a.Digest() {
		t.Fatal("restored digest differs")
	}
	for i, args := range randomStreamScript(rand.New(rand.NewPCG(43, 1)), 1000) {
		e := &Env{NowMs: now + int64(i)}
		if ra, rc := execArgs(a, e, args), execArgs(c, e, args); !bytes.Equal(ra, rc) {
			t.Fatalf("after restore, step %d %q:\n%q\n%q", i, args, ra, rc)
		}
	}
	if c.Digest() != a.Digest() {
		t.Fatal("digests differ after more writes")
	}
}

// TestStreamsReadsDoNotMutate runs every read command on a populated
// store and checks the digest did not move.
func TestStreamsReadsDoNotMutate(t *testing.T) {
	s := New()
	r := rand.New(rand.NewPCG(9, 9))
	for _, args := range randomStreamScript(r, 1500) {
		execArgs(s, &Env{NowMs: 5000}, args)
	}
	before := s.Digest()
	for _, args := range randomStreamScript(rand.New(rand.NewPCG(10, 9)), 3000) {
		c := Lookup([]byte(args[0]))
		if c.Flags&Write != 0 {
			continue
		}
		execArgs(s, &Env{NowMs: 9000}, args)
	}
	if s.Digest() != before {
		t.Fatal("a read changed the store")
	}
}

// TestStreamsReadOnceAgain is what a blocking framework does: parse once
// ("$" resolved then), try, and try again after a write.
func TestStreamsReadOnceAgain(t *testing.T) {
	e := &Env{NowMs: 100}
	toArgs := func(xs ...string) [][]byte {
		out := make([][]byte, len(xs))
		for i, x := range xs {
			out[i] = []byte(x)
		}
		return out
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"XREAD", "BLOCK", "0", "STREAMS", "s", "$"},
			"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"},
		{[]string{"XREADGROUP", "GROUP", "g", "c", "BLOCK", "50", "STREAMS", "s", ">"},
			"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"},
	} {
		t.Run(c.args[0], func(t *testing.T) {
			s := New()
			execArgs(s, e, []string{"XADD", "s", "1-1", "a", "1"})
			execArgs(s, e, []string{"XGROUP", "CREATE", "s", "g", "$"})
			r, errReply := s.ParseStreamRead(e, nil, toArgs(c.args...))
			if r == nil {
				t.Fatalf("parse: %q", errReply)
			}
			if r.BlockMs < 0 {
				t.Fatal("BLOCK not parsed")
			}
			if out, served := s.ReadOnce(e, nil, r); served || string(out) != "*-1\r\n" {
				t.Fatalf("first try: %v %q", served, out)
			}
			execArgs(s, e, []string{"XADD", "s", "2-1", "b", "2"})
			if out, served := s.ReadOnce(e, nil, r); !served || string(out) != c.want {
				t.Fatalf("second try: %v %q", served, out)
			}
		})
	}
}

// BenchmarkStreams measures the operations whose cost must not grow with
// the stream: XADD, a short XRANGE and XDEL on a stream of a million
// entries.
func BenchmarkStreams(b *testing.B) {
	s := New()
	e := &Env{NowMs: 1}
	const n = 1_000_000
	for i := 1; i <= n; i++ {
		execArgs(s, e, []string{"XADD", "s", strconv.Itoa(i), "field", "value"})
	}
	b.Run("XADD", func(b *testing.B) {
		args := [][]byte{[]byte("XADD"), []byte("s"), []byte("*"), []byte("field"), []byte("value")}
		b.ReportAllocs()
		for b.Loop() {
			s.Exec(nil, e, args)
		}
	})
	b.Run("XRANGE10", func(b *testing.B) {
		args := [][]byte{[]byte("XRANGE"), []byte("s"), []byte("500000"), []byte("+"), []byte("COUNT"), []byte("10")}
		b.ReportAllocs()
		for b.Loop() {
			s.Exec(nil, e, args)
		}
	})
	b.Run("XDEL", func(b *testing.B) {
		i := 0
		args := [][]byte{[]byte("XDEL"), []byte("s"), nil}
		for b.Loop() {
			i = i%n + 1
			args[2] = []byte(strconv.Itoa(i*7%n + 1))
			s.Exec(nil, e, args)
		}
	})
}

// TestStreamsRestoreCorrupt truncates and flips bytes of a snapshot
// holding streams: Restore must fail cleanly, never panic or succeed.
func TestStreamsRestoreCorrupt(t *testing.T) {
	s := New()
	for _, args := range randomStreamScript(rand.New(rand.NewPCG(5, 5)), 300) {
		execArgs(s, &Env{NowMs: 1000}, args)
	}
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 2000; i++ {
		bad := append([]byte(nil), good...)
		if i%2 == 0 {
			bad = bad[:r.IntN(len(bad))]
		} else {
			bad[8+r.IntN(len(bad)-8)] ^= byte(1 + r.IntN(255))
		}
		if err := New().Restore(bytes.NewReader(bad)); err == nil {
			t.Fatalf("corrupt snapshot %d restored", i)
		}
	}
}

// TestStreamsServeBlocked covers what a blocking framework calls when a
// key a blocked reader waits on changes: served with that key alone,
// still blocked, or unblocked with an error for XREADGROUP.
func TestStreamsServeBlocked(t *testing.T) {
	e := &Env{NowMs: 100}
	toArgs := func(xs ...string) [][]byte {
		out := make([][]byte, len(xs))
		for i, x := range xs {
			out[i] = []byte(x)
		}
		return out
	}
	s := New()
	for _, c := range [][]string{{"XADD", "a", "1-1", "f", "1"}, {"XADD", "b", "1-1", "f", "1"},
		{"XGROUP", "CREATE", "a", "g", "$"}} {
		execArgs(s, e, c)
	}
	xread, _ := s.ParseStreamRead(e, nil, toArgs("XREAD", "BLOCK", "0", "STREAMS", "a", "b", "$", "$"))
	group, _ := s.ParseStreamRead(e, nil, toArgs("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "a", ">"))
	if out, done := s.ServeBlocked(e, nil, xread, []byte("a")); done || out != nil {
		t.Fatalf("served with nothing new: %q", out)
	}
	execArgs(s, e, []string{"XADD", "b", "2-1", "f", "2"})
	execArgs(s, e, []string{"XADD", "a", "2-1", "f", "2"})
	want := "*1\r\n*2\r\n$1\r\nb\r\n*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nf\r\n$1\r\n2\r\n"
	if out, done := s.ServeBlocked(e, nil, xread, []byte("b")); !done || string(out) != want {
		t.Fatalf("XREAD on b: %v %q", done, out)
	}
	want = "*1\r\n*2\r\n$1\r\na\r\n*1\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nf\r\n$1\r\n2\r\n"
	if out, done := s.ServeBlocked(e, nil, group, []byte("a")); !done || string(out) != want {
		t.Fatalf("XREADGROUP on a: %v %q", done, out)
	}
	if out := execArgs(s, e, []string{"XPENDING", "a", "g"}); !strings.HasPrefix(string(out), "*4\r\n:1\r\n") {
		t.Fatalf("not delivered: %q", out)
	}
	if out, done := s.ServeBlocked(e, nil, group, []byte("a")); done {
		t.Fatalf("served again: %q", out)
	}
	execArgs(s, e, []string{"XGROUP", "DESTROY", "a", "g"})
	if out, done := s.ServeBlocked(e, nil, group, []byte("a")); !done || !strings.HasPrefix(string(out), "-NOGROUP the consumer group") {
		t.Fatalf("destroyed group: %v %q", done, out)
	}
	execArgs(s, e, []string{"DEL", "a"})
	if out, done := s.ServeBlocked(e, nil, group, []byte("a")); !done || string(out) != "-UNBLOCKED the stream key no longer exists\r\n" {
		t.Fatalf("deleted key: %v %q", done, out)
	}
	if _, done := s.ServeBlocked(e, nil, xread, []byte("a")); done {
		t.Fatal("XREAD unblocked by a deleted key")
	}
}

// TestStreamsCommandTable checks arity, flags and key positions against
// Redis 7.0's COMMAND INFO; XGROUP is a write here (Redis leaves its
// container's flags empty) because the store's flag decides replication.
func TestStreamsCommandTable(t *testing.T) {
	for _, w := range []struct {
		name              string
		arity             int
		flags             Flags
		first, last, step int
	}{
		{"xadd", -5, Write | DenyOOM | Fast, 1, 1, 1},
		{"xtrim", -4, Write, 1, 1, 1},
		{"xdel", -3, Write | Fast, 1, 1, 1},
		{"xlen", 2, ReadOnly | Fast, 1, 1, 1},
		{"xrange", -4, ReadOnly, 1, 1, 1},
		{"xrevrange", -4, ReadOnly, 1, 1, 1},
		{"xread", -4, ReadOnly | Blocking | MovableKeys, 0, 0, 0},
		{"xreadgroup", -7, Write | Blocking | MovableKeys, 0, 0, 0},
		{"xsetid", -3, Write | DenyOOM | Fast, 1, 1, 1},
		{"xgroup", -2, Write, 0, 0, 0},
		{"xinfo", -2, ReadOnly, 0, 0, 0},
		{"xack", -4, Write | Fast, 1, 1, 1},
		{"xpending", -3, ReadOnly, 1, 1, 1},
		{"xclaim", -6, Write | Fast, 1, 1, 1},
		{"xautoclaim", -6, Write | Fast, 1, 1, 1},
	} {
		c := Lookup([]byte(w.name))
		if c == nil {
			t.Errorf("%s not registered", w.name)
			continue
		}
		if c.Arity != w.arity || c.Flags != w.flags || c.FirstKey != w.first || c.LastKey != w.last || c.Step != w.step {
			t.Errorf("%s: got %d %b %d %d %d", w.name, c.Arity, c.Flags, c.FirstKey, c.LastKey, c.Step)
		}
		if c.Summary == "" || c.Group != "stream" || c.run == nil {
			t.Errorf("%s: incomplete", w.name)
		}
	}
}
