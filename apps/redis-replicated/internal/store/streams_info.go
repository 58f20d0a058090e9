package store

import (
	"github.com/gomu-rdma/gomu/internal/resp"
)

// XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS.

func init() {
	register(streamCmd("xinfo", -2, ReadOnly, 0, 0, 0, "A container for stream introspection commands", cmdXInfo))
}

var xinfoHelp = []string{
	"XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"CONSUMERS <key> <groupname>",
	"    Show consumers of <groupname>.",
	"GROUPS <key>",
	"    Show the stream consumer groups.",
	"STREAM <key> [FULL [COUNT <count>]",
	"    Show information about the stream.",
	"HELP",
	"    Prints this help.",
}

// xinfoArities are Redis 7.0's XINFO subcommands and their arities.
var xinfoArities = map[string]int{"stream": -3, "groups": 3, "consumers": 4, "help": 2}

func cmdXInfo(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	dst, sub, ok := subcommand(dst, "xinfo", args, xinfoArities)
	if !ok {
		return dst
	}
	if sub == "help" {
		return appendHelp(dst, xinfoHelp)
	}
	st, wrong := s.readStream(e, args[2])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendError(dst, errNoSuchKey)
	}
	switch sub {
	case "consumers":
		g := st.group(args[3])
		if g == nil {
			return noGroupForKey(dst, args[2], args[3])
		}
		dst = resp.AppendArrayLen(dst, len(g.consumers))
		for _, c := range g.consumers {
			dst = resp.AppendArrayLen(dst, 6)
			dst = resp.AppendBulkString(dst, "name")
			dst = resp.AppendBulkString(dst, c.name)
			dst = resp.AppendBulkString(dst, "pending")
			dst = resp.AppendInt(dst, int64(len(c.pending)))
			dst = resp.AppendBulkString(dst, "idle")
			dst = resp.AppendInt(dst, max(e.NowMs-c.seenTime, 0))
		}
		return dst
	case "groups":
		dst = resp.AppendArrayLen(dst, len(st.groups))
		for _, g := range st.groups {
			dst = resp.AppendArrayLen(dst, 12)
			dst = resp.AppendBulkString(dst, "name")
			dst = resp.AppendBulkString(dst, g.name)
			dst = resp.AppendBulkString(dst, "consumers")
			dst = resp.AppendInt(dst, int64(len(g.consumers)))
			dst = resp.AppendBulkString(dst, "pending")
			dst = resp.AppendInt(dst, int64(len(g.pending)))
			dst = resp.AppendBulkString(dst, "last-delivered-id")
			dst = appendStreamID(dst, g.lastID)
			dst = st.appendGroupCounters(dst, g)
		}
		return dst
	}
	return st.appendInfo(dst, args)
}

// appendGroupCounters appends "entries-read" and "lag" with their values
// (null when unknown).
func (st *streamValue) appendGroupCounters(dst []byte, g *streamGroup) []byte {
	dst = resp.AppendBulkString(dst, "entries-read")
	if g.entriesRead != entriesReadInvalid {
		dst = resp.AppendInt(dst, g.entriesRead)
	} else {
		dst = resp.AppendNull(dst)
	}
	dst = resp.AppendBulkString(dst, "lag")
	if lag, ok := st.lag(g); ok {
		return resp.AppendInt(dst, lag)
	}
	return resp.AppendNull(dst)
}

// appendInfo is XINFO STREAM key [FULL [COUNT n]].
func (st *streamValue) appendInfo(dst []byte, args [][]byte) []byte {
	opts := args[3:]
	full := len(opts) > 0
	count := int64(10)
	switch len(opts) {
	case 0:
	case 1, 3:
		if !eqFoldString(opts[0], "full") {
			return subSyntaxError(dst, "xinfo", args[1])
		}
		if len(opts) == 3 {
			if !eqFoldString(opts[1], "count") {
				return subSyntaxError(dst, "xinfo", args[1])
			}
			n, ok := collInt(opts[2])
			if !ok {
				return resp.AppendError(dst, errNotInt)
			}
			if count = n; count < 0 {
				count = 10
			}
		}
	default:
		return subSyntaxError(dst, "xinfo", args[1])
	}
	if full {
		dst = resp.AppendArrayLen(dst, 18)
	} else {
		dst = resp.AppendArrayLen(dst, 20)
	}
	dst = resp.AppendBulkString(dst, "length")
	dst = resp.AppendInt(dst, int64(st.length))
	dst = resp.AppendBulkString(dst, "radix-tree-keys")
	dst = resp.AppendInt(dst, int64(len(st.nodes)))
	dst = resp.AppendBulkString(dst, "radix-tree-nodes")
	dst = resp.AppendInt(dst, int64(st.raxNodes()))
	dst = resp.AppendBulkString(dst, "last-generated-id")
	dst = appendStreamID(dst, st.lastID)
	dst = resp.AppendBulkString(dst, "max-deleted-entry-id")
	dst = appendStreamID(dst, st.maxDeletedID)
	dst = resp.AppendBulkString(dst, "entries-added")
	dst = resp.AppendInt(dst, int64(st.entriesAdded))
	dst = resp.AppendBulkString(dst, "recorded-first-entry-id")
	dst = appendStreamID(dst, st.firstID())
	if !full {
		dst = resp.AppendBulkString(dst, "groups")
		dst = resp.AppendInt(dst, int64(len(st.groups)))
		dst = resp.AppendBulkString(dst, "first-entry")
		dst = st.appendEdge(dst, false)
		dst = resp.AppendBulkString(dst, "last-entry")
		return st.appendEdge(dst, true)
	}
	dst = resp.AppendBulkString(dst, "entries")
	dst = st.appendRange(dst, streamMinID, streamMaxID, count, false)
	dst = resp.AppendBulkString(dst, "groups")
	dst = resp.AppendArrayLen(dst, len(st.groups))
	for _, g := range st.groups {
		dst = st.appendGroupFull(dst, g, count)
	}
	return dst
}

// appendEdge appends the first (or last) entry, or null.
func (st *streamValue) appendEdge(dst []byte, last bool) []byte {
	var en *streamEntry
	pick := func(x *streamEntry) bool { en = x; return false }
	if last {
		st.backward(streamMinID, streamMaxID, pick)
	} else {
		st.forward(streamMinID, streamMaxID, pick)
	}
	if en == nil {
		return resp.AppendNull(dst)
	}
	return appendStreamEntry(dst, en)
}

// appendGroupFull is one group of XINFO STREAM FULL: its counters, up to
// count pending entries (0: all) and its consumers with theirs.
func (st *streamValue) appendGroupFull(dst []byte, g *streamGroup, count int64) []byte {
	dst = resp.AppendArrayLen(dst, 14)
	dst = resp.AppendBulkString(dst, "name")
	dst = resp.AppendBulkString(dst, g.name)
	dst = resp.AppendBulkString(dst, "last-delivered-id")
	dst = appendStreamID(dst, g.lastID)
	dst = st.appendGroupCounters(dst, g)
	dst = resp.AppendBulkString(dst, "pel-count")
	dst = resp.AppendInt(dst, int64(len(g.pending)))
	dst = resp.AppendBulkString(dst, "pending")
	n := atMost(len(g.pending), count)
	dst = resp.AppendArrayLen(dst, n)
	for _, pe := range g.pending[:n] {
		dst = resp.AppendArrayLen(dst, 4)
		dst = appendStreamID(dst, pe.id)
		dst = resp.AppendBulkString(dst, pe.consumer.name)
		dst = resp.AppendInt(dst, pe.deliveryTime)
		dst = resp.AppendInt(dst, pe.deliveryCount)
	}
	dst = resp.AppendBulkString(dst, "consumers")
	dst = resp.AppendArrayLen(dst, len(g.consumers))
	for _, c := range g.consumers {
		dst = resp.AppendArrayLen(dst, 8)
		dst = resp.AppendBulkString(dst, "name")
		dst = resp.AppendBulkString(dst, c.name)
		dst = resp.AppendBulkString(dst, "seen-time")
		dst = resp.AppendInt(dst, c.seenTime)
		dst = resp.AppendBulkString(dst, "pel-count")
		dst = resp.AppendInt(dst, int64(len(c.pending)))
		dst = resp.AppendBulkString(dst, "pending")
		n := atMost(len(c.pending), count)
		dst = resp.AppendArrayLen(dst, n)
		for _, pe := range c.pending[:n] {
			dst = resp.AppendArrayLen(dst, 3)
			dst = appendStreamID(dst, pe.id)
			dst = resp.AppendInt(dst, pe.deliveryTime)
			dst = resp.AppendInt(dst, pe.deliveryCount)
		}
	}
	return dst
}
