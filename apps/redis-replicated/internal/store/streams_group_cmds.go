package store

import (
	"math"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// The consumer group commands: XGROUP, XACK, XPENDING, XCLAIM,
// XAUTOCLAIM (XREADGROUP: streams_read.go).

func init() {
	register(
		streamCmd("xgroup", -2, Write, 0, 0, 0, "A container for consumer groups commands", cmdXGroup),
		streamCmd("xack", -4, Write|Fast, 1, 1, 1, "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", cmdXAck),
		streamCmd("xpending", -3, ReadOnly, 1, 1, 1, "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", cmdXPending),
		streamCmd("xclaim", -6, Write|Fast, 1, 1, 1, "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", cmdXClaim),
		streamCmd("xautoclaim", -6, Write|Fast, 1, 1, 1, "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", cmdXAutoClaim),
	)
}

var xgroupHelp = []string{
	"XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"CREATE <key> <groupname> <id|$> [option]",
	"    Create a new consumer group. Options are:",
	"    * MKSTREAM",
	"      Create the empty stream if it does not exist.",
	"    * ENTRIESREAD entries_read",
	"      Set the group's entries_read counter (internal use).",
	"CREATECONSUMER <key> <groupname> <consumer>",
	"    Create a new consumer in the specified group.",
	"DELCONSUMER <key> <groupname> <consumer>",
	"    Remove the specified consumer.",
	"DESTROY <key> <groupname>",
	"    Remove the specified group.",
	"SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
	"    Set the current group ID and entries_read counter.",
	"HELP",
	"    Prints this help.",
}

// subcommand checks a container command's subcommand against Redis 7.0's
// table (name and arity); ok false with the error appended.
func subcommand(dst []byte, container string, args [][]byte, arities map[string]int) ([]byte, string, bool) {
	sub := string(bytesLower(args[1]))
	arity, known := arities[sub]
	if !known {
		name := truncate(cString(args[1]), 128)
		msg := "ERR unknown subcommand '" + string(name) + "'. Try " + strings.ToUpper(container) + " HELP."
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
		return resp.AppendError(dst, msg), "", false
	}
	if (arity > 0 && len(args) != arity) || (arity < 0 && len(args) < -arity) {
		return AppendWrongArity(dst, container+"|"+sub), "", false
	}
	return dst, sub, true
}

// subSyntaxError is Redis's addReplySubcommandSyntaxError.
func subSyntaxError(dst []byte, container string, sub []byte) []byte {
	return resp.AppendError(dst, "ERR unknown subcommand or wrong number of arguments for '"+
		string(truncate(cString(sub), 128))+"'. Try "+strings.ToUpper(container)+" HELP.")
}

// parseEntriesRead reads an ENTRIESREAD value: >= 0 or -1.
func parseEntriesRead(b []byte) (int64, string) {
	n, ok := collInt(b)
	if !ok {
		return 0, errNotInt
	}
	if n < 0 && n != entriesReadInvalid {
		return 0, "ERR value for ENTRIESREAD must be positive or -1"
	}
	return n, ""
}

// xgroupArities are Redis 7.0's XGROUP subcommands and their arities.
var xgroupArities = map[string]int{"create": -5, "setid": -5, "destroy": 4, "createconsumer": 5, "delconsumer": 5, "help": 2}

func cmdXGroup(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	dst, sub, ok := subcommand(dst, "xgroup", args, xgroupArities)
	if !ok {
		return dst
	}
	if sub == "help" {
		return appendHelp(dst, xgroupHelp)
	}
	// Options follow the ID for CREATE (MKSTREAM, ENTRIESREAD) and SETID
	// (ENTRIESREAD); their count is judged only after the key lookups,
	// as Redis does.
	mkstream := false
	entriesRead := int64(entriesReadInvalid)
	for i := 5; i < len(args); {
		switch {
		case sub == "create" && eqFoldString(args[i], "mkstream"):
			mkstream = true
			i++
		case (sub == "create" || sub == "setid") && eqFoldString(args[i], "entriesread") && i+1 < len(args):
			var msg string
			if entriesRead, msg = parseEntriesRead(args[i+1]); msg != "" {
				return resp.AppendError(dst, msg)
			}
			i += 2
		default:
			return subSyntaxError(dst, "xgroup", args[1])
		}
	}
	st, wrong := s.writeStream(e, args[2])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	var g *streamGroup
	if !mkstream {
		if st == nil {
			return resp.AppendError(dst, "ERR The XGROUP subcommand requires the key to exist. "+
				"Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
		}
		g = st.group(args[3])
		if g == nil && (sub == "setid" || sub == "createconsumer" || sub == "delconsumer") {
			return noGroupForKey(dst, args[2], args[3])
		}
	}
	switch sub {
	case "create":
		if len(args) > 8 {
			return subSyntaxError(dst, "xgroup", args[1])
		}
		var id streamID
		if string(cString(args[4])) == "$" {
			if st != nil {
				id = st.lastID
			}
		} else if id, _, ok = parseStreamID(args[4], idParse{strict: true}); !ok {
			return resp.AppendError(dst, errInvalidStreamID)
		}
		if st == nil {
			st = newStream()
			s.put(args[2], &value{kind: kindStream, stream: st})
		}
		if !st.addGroup(args[3], id, entriesRead) {
			return resp.AppendError(dst, "BUSYGROUP Consumer Group name already exists")
		}
		s.notify(e, notifyStream, "xgroup-create", args[2])
		return resp.AppendOK(dst)
	case "setid":
		if len(args) != 5 && len(args) != 7 {
			return subSyntaxError(dst, "xgroup", args[1])
		}
		var id streamID
		if string(cString(args[4])) == "$" {
			id = st.lastID
		} else if id, _, ok = parseStreamID(args[4], idParse{}); !ok {
			return resp.AppendError(dst, errInvalidStreamID)
		}
		g.lastID, g.entriesRead = id, entriesRead
		s.notify(e, notifyStream, "xgroup-setid", args[2])
		return resp.AppendOK(dst)
	case "destroy":
		if g == nil {
			return resp.AppendInt(dst, 0)
		}
		st.deleteGroup(args[3])
		s.signalKey(args[2]) // its XREADGROUP waiters get -NOGROUP
		s.notify(e, notifyStream, "xgroup-destroy", args[2])
		return resp.AppendInt(dst, 1)
	case "createconsumer":
		if g.addConsumer(args[4], e.NowMs) == nil {
			return resp.AppendInt(dst, 0)
		}
		s.notify(e, notifyStream, "xgroup-createconsumer", args[2])
		return resp.AppendInt(dst, 1)
	default: // delconsumer
		if g.consumer(args[4]) == nil {
			return resp.AppendInt(dst, 0)
		}
		n := g.deleteConsumer(args[4])
		s.notify(e, notifyStream, "xgroup-delconsumer", args[2])
		return resp.AppendInt(dst, int64(n))
	}
}

// noGroup is the error of XPENDING, XCLAIM and XAUTOCLAIM for a missing
// key or group.
func noGroup(dst []byte, key, group []byte) []byte {
	return resp.AppendError(dst, "NOGROUP No such key '"+string(cString(key))+"' or consumer group '"+
		string(cString(group))+"'")
}

// noGroupForKey is the error of XGROUP and XINFO CONSUMERS for a missing
// group of an existing key.
func noGroupForKey(dst []byte, key, group []byte) []byte {
	return resp.AppendError(dst, "NOGROUP No such consumer group '"+string(cString(group))+
		"' for key name '"+string(cString(key))+"'")
}

// lookupGroup looks key's stream up (for a write or a read) and in it the
// group; g is nil when either is missing, wrong reports a non-stream.
func (s *Store) lookupGroup(e *Env, key, group []byte, write bool) (st *streamValue, g *streamGroup, wrong bool) {
	st, wrong = s.lookupStream(e, key, write)
	if st != nil {
		g = st.group(group)
	}
	return st, g, wrong
}

// atMost is n capped at count, a COUNT where 0 means no limit.
func atMost(n int, count int64) int {
	if count > 0 && int64(n) > count {
		return int(count)
	}
	return n
}

// appendNew delivers the entries from start on to c (unless noAck, into
// the PELs), a pending entry of another consumer passing to c.
func (st *streamValue) appendNew(dst []byte, g *streamGroup, c *streamConsumer, start streamID, count int64,
	noAck bool, now int64) []byte {
	ents := st.entriesIn(start, streamMaxID, count, false)
	dst = resp.AppendArrayLen(dst, len(ents))
	for _, en := range ents {
		st.deliver(g, en.id)
		dst = appendStreamEntry(dst, en)
		if noAck {
			continue
		}
		if pe := g.pending.find(en.id); pe != nil {
			pe.moveTo(c)
			pe.deliveryTime, pe.deliveryCount = now, 1
			continue
		}
		pe := &pendingEntry{id: en.id, deliveryTime: now, deliveryCount: 1, consumer: c}
		g.pending.insert(pe)
		c.pending.insert(pe)
	}
	return dst
}

// appendHistory replies c's pending entries from start on, counting a
// delivery for each that still exists ([id, nil] for one that does not).
func (st *streamValue) appendHistory(dst []byte, c *streamConsumer, start streamID, count int64, now int64) []byte {
	i := c.pending.search(start)
	n := atMost(len(c.pending)-i, count)
	dst = resp.AppendArrayLen(dst, n)
	for _, pe := range c.pending[i : i+n] {
		en := st.find(pe.id)
		if en == nil {
			dst = resp.AppendArrayLen(dst, 2)
			dst = appendStreamID(dst, pe.id)
			dst = resp.AppendNullArray(dst)
			continue
		}
		dst = appendStreamEntry(dst, en)
		pe.deliveryTime = now
		pe.deliveryCount++
	}
	return dst
}

func cmdXAck(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	_, g, wrong := s.lookupGroup(e, args[1], args[2], true)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if g == nil {
		return resp.AppendInt(dst, 0)
	}
	ids, ok := parseStreamIDs(args[3:])
	if !ok {
		return resp.AppendError(dst, errInvalidStreamID)
	}
	acked := 0
	for _, id := range ids {
		if g.ack(id) {
			acked++
		}
	}
	return resp.AppendInt(dst, int64(acked))
}

func cmdXPending(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	if len(args) != 3 && (len(args) < 6 || len(args) > 9) {
		return resp.AppendError(dst, errSyntax)
	}
	var start, end streamID
	var count, minIdle int64
	var consumer []byte
	if len(args) >= 6 {
		at := 3
		if eqFoldString(args[3], "idle") {
			n, ok := collInt(args[4])
			if !ok {
				return resp.AppendError(dst, errNotInt)
			}
			minIdle = n
			if len(args) < 8 {
				return resp.AppendError(dst, errSyntax)
			}
			at += 2
		}
		n, ok := collInt(args[at+2])
		if !ok {
			return resp.AppendError(dst, errNotInt)
		}
		count = max(n, 0)
		var msg string
		if start, msg = parseRangeStart(args[at]); msg != "" {
			return resp.AppendError(dst, msg)
		}
		if end, msg = parseRangeEnd(args[at+1]); msg != "" {
			return resp.AppendError(dst, msg)
		}
		if at+3 < len(args) {
			consumer = args[at+3]
		}
	}
	_, g, wrong := s.lookupGroup(e, args[1], args[2], false)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if g == nil {
		return noGroup(dst, args[1], args[2])
	}
	if len(args) == 3 {
		return g.appendPendingSummary(dst)
	}
	p := g.pending
	if consumer != nil {
		c := g.consumer(consumer)
		if c == nil {
			return resp.AppendArrayLen(dst, 0)
		}
		p = c.pending
	}
	var out []*pendingEntry
	for _, pe := range p[p.search(start):] {
		if count == 0 || end.less(pe.id) {
			break
		}
		if minIdle != 0 && e.NowMs-pe.deliveryTime < minIdle {
			continue
		}
		out = append(out, pe)
		count--
	}
	dst = resp.AppendArrayLen(dst, len(out))
	for _, pe := range out {
		dst = resp.AppendArrayLen(dst, 4)
		dst = appendStreamID(dst, pe.id)
		dst = resp.AppendBulkString(dst, pe.consumer.name)
		dst = resp.AppendInt(dst, max(e.NowMs-pe.deliveryTime, 0))
		dst = resp.AppendInt(dst, pe.deliveryCount)
	}
	return dst
}

// appendPendingSummary is XPENDING key group: the count, the first and
// last pending IDs, and the consumers with pending entries.
func (g *streamGroup) appendPendingSummary(dst []byte) []byte {
	dst = resp.AppendArrayLen(dst, 4)
	dst = resp.AppendInt(dst, int64(len(g.pending)))
	if len(g.pending) == 0 {
		dst = resp.AppendNull(dst)
		dst = resp.AppendNull(dst)
		return resp.AppendNullArray(dst)
	}
	dst = appendStreamID(dst, g.pending[0].id)
	dst = appendStreamID(dst, g.pending[len(g.pending)-1].id)
	n := 0
	for _, c := range g.consumers {
		if len(c.pending) > 0 {
			n++
		}
	}
	dst = resp.AppendArrayLen(dst, n)
	for _, c := range g.consumers {
		if len(c.pending) > 0 {
			dst = resp.AppendArrayLen(dst, 2)
			dst = resp.AppendBulkString(dst, c.name)
			dst = resp.AppendBulkInt(dst, int64(len(c.pending)))
		}
	}
	return dst
}

// claimOpts is XCLAIM's options.
type claimOpts struct {
	deliveryTime int64 // -1: now
	retryCount   int64 // -1: not given
	force        bool
	justID       bool
	lastID       streamID
}

func cmdXClaim(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, g, wrong := s.lookupGroup(e, args[1], args[2], true)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if g == nil {
		return noGroup(dst, args[1], args[2])
	}
	minIdle, ok := collInt(args[4])
	if !ok {
		return resp.AppendError(dst, "ERR Invalid min-idle-time argument for XCLAIM")
	}
	minIdle = max(minIdle, 0)
	var ids []streamID
	j := 5
	for ; j < len(args); j++ {
		id, _, ok := parseStreamID(args[j], idParse{strict: true})
		if !ok {
			break
		}
		ids = append(ids, id)
	}
	now := e.NowMs
	o := claimOpts{deliveryTime: -1, retryCount: -1}
	for ; j < len(args); j++ {
		more := len(args) - 1 - j
		opt := args[j]
		intArg := func() (int64, bool) {
			j++
			return collInt(args[j])
		}
		switch {
		case eqFoldString(opt, "force"):
			o.force = true
		case eqFoldString(opt, "justid"):
			o.justID = true
		case eqFoldString(opt, "idle") && more > 0:
			n, ok := intArg()
			if !ok {
				return resp.AppendError(dst, "ERR Invalid IDLE option argument for XCLAIM")
			}
			o.deliveryTime = now - n
		case eqFoldString(opt, "time") && more > 0:
			n, ok := intArg()
			if !ok {
				return resp.AppendError(dst, "ERR Invalid TIME option argument for XCLAIM")
			}
			o.deliveryTime = n
		case eqFoldString(opt, "retrycount") && more > 0:
			n, ok := intArg()
			if !ok {
				return resp.AppendError(dst, "ERR Invalid RETRYCOUNT option argument for XCLAIM")
			}
			o.retryCount = n
		case eqFoldString(opt, "lastid") && more > 0:
			j++
			id, _, ok := parseStreamID(args[j], idParse{strict: true})
			if !ok {
				return resp.AppendError(dst, errInvalidStreamID)
			}
			o.lastID = id
		default:
			return resp.AppendError(dst, "ERR Unrecognized XCLAIM option '"+string(cString(opt))+"'")
		}
	}
	if g.lastID.less(o.lastID) {
		g.lastID = o.lastID
	}
	if o.deliveryTime == -1 || o.deliveryTime < 0 || o.deliveryTime > now {
		o.deliveryTime = now
	}
	var c *streamConsumer
	var body []byte
	claimed := 0
	for _, id := range ids {
		pe := g.pending.find(id)
		en := st.find(id)
		if en == nil {
			if pe != nil {
				g.ack(id) // gone from the stream: gone from the PEL
			}
			continue
		}
		if o.force && pe == nil {
			pe = &pendingEntry{id: id, deliveryTime: now, deliveryCount: 1}
			g.pending.insert(pe)
		}
		if pe == nil {
			continue
		}
		if pe.consumer != nil && minIdle != 0 && now-pe.deliveryTime < minIdle {
			continue
		}
		if c == nil {
			c = s.touchConsumer(e, args[1], g, args[3], now)
		}
		pe.claimBy(c, o.deliveryTime, o.retryCount, o.justID)
		body = appendClaimed(body, en, o.justID)
		claimed++
	}
	return append(resp.AppendArrayLen(dst, claimed), body...)
}

// claimBy passes pe to c as XCLAIM and XAUTOCLAIM do, delivered at
// deliveryTime: its delivery count becomes retryCount when that is given
// (>= 0), else one more unless justID (a JUSTID claim delivers nothing).
func (pe *pendingEntry) claimBy(c *streamConsumer, deliveryTime, retryCount int64, justID bool) {
	pe.moveTo(c)
	pe.deliveryTime = deliveryTime
	switch {
	case retryCount >= 0:
		pe.deliveryCount = retryCount
	case !justID:
		pe.deliveryCount++
	}
}

// appendClaimed appends a claimed entry to XCLAIM's or XAUTOCLAIM's reply:
// its ID alone for JUSTID.
func appendClaimed(body []byte, en *streamEntry, justID bool) []byte {
	if justID {
		return appendStreamID(body, en.id)
	}
	return appendStreamEntry(body, en)
}

// xautoclaimMaxCount is the largest COUNT for which Redis's allocation of
// COUNT deleted IDs (16 bytes each) can succeed: one beyond 128 TiB, the
// address space of a user process, cannot. Where exactly between 1 TB
// (which jemalloc reserves lazily) and that it fails depends on the host;
// this bound is the deterministic stand-in.
const xautoclaimMaxCount = 1 << 43

func cmdXAutoClaim(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	minIdle, ok := collInt(args[4])
	if !ok {
		return resp.AppendError(dst, "ERR Invalid min-idle-time argument for XAUTOCLAIM")
	}
	minIdle = max(minIdle, 0)
	start, msg := parseRangeStart(args[5])
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	count := int64(100)
	justID := false
	for j := 6; j < len(args); j++ {
		switch {
		case eqFoldString(args[j], "count") && j+1 < len(args):
			n, ok := collInt(args[j+1])
			if !ok || n < 1 || n > math.MaxInt64/16 {
				return resp.AppendError(dst, "ERR COUNT must be > 0")
			}
			count = n
			j++
		case eqFoldString(args[j], "justid"):
			justID = true
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}
	st, g, wrong := s.lookupGroup(e, args[1], args[2], true)
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if g == nil {
		return noGroup(dst, args[1], args[2])
	}
	if count > xautoclaimMaxCount {
		return resp.AppendError(dst, "ERR Insufficient memory, failed allocating transient memory, COUNT too high.")
	}
	now := e.NowMs
	attempts := count * 10
	var body []byte
	var deleted []streamID
	claimed := 0
	var c *streamConsumer
	i := g.pending.search(start)
	for ; attempts > 0 && count > 0 && i < len(g.pending); attempts-- {
		pe := g.pending[i]
		en := st.find(pe.id)
		if en == nil {
			g.ack(pe.id) // the PEL shifts down: i is now the next one
			deleted = append(deleted, pe.id)
			count--
			continue
		}
		i++
		if minIdle != 0 && now-pe.deliveryTime < minIdle {
			continue
		}
		if c == nil {
			c = s.touchConsumer(e, args[1], g, args[3], now)
		}
		pe.claimBy(c, now, -1, justID)
		body = appendClaimed(body, en, justID)
		claimed++
		count--
	}
	next := streamID{}
	if i < len(g.pending) {
		next = g.pending[i].id
	}
	dst = resp.AppendArrayLen(dst, 3)
	dst = appendStreamID(dst, next)
	dst = append(resp.AppendArrayLen(dst, claimed), body...)
	dst = resp.AppendArrayLen(dst, len(deleted))
	for _, id := range deleted {
		dst = appendStreamID(dst, id)
	}
	return dst
}
