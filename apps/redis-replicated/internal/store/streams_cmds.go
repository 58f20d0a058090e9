package store

import (
	"math"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// The stream commands without consumer groups: XADD, XTRIM, XDEL, XLEN,
// XRANGE, XREVRANGE, XSETID (XREAD: streams_read.go).

const (
	errInvalidStreamID = "ERR Invalid stream ID specified as stream command argument"
	errXAddTooSmall    = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
)

func init() {
	register(
		streamCmd("xadd", -5, Write|DenyOOM|Fast, 1, 1, 1, "Appends a new entry to a stream", cmdXAdd),
		streamCmd("xtrim", -4, Write, 1, 1, 1, "Trims the stream to (approximately if '~' is passed) a certain size", cmdXTrim),
		streamCmd("xdel", -3, Write|Fast, 1, 1, 1, "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.", cmdXDel),
		streamCmd("xlen", 2, ReadOnly|Fast, 1, 1, 1, "Return the number of entries in a stream", cmdXLen),
		streamCmd("xrange", -4, ReadOnly, 1, 1, 1, "Return a range of elements in a stream, with IDs matching the specified IDs interval",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.xrange(e, dst, args, false) }),
		streamCmd("xrevrange", -4, ReadOnly, 1, 1, 1, "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE",
			func(s *Store, e *Env, dst []byte, args [][]byte) []byte { return s.xrange(e, dst, args, true) }),
		streamCmd("xsetid", -3, Write|DenyOOM|Fast, 1, 1, 1, "An internal command for replicating stream values", cmdXSetID),
	)
}

func streamCmd(name string, arity int, flags Flags, first, last, step int, summary string,
	run func(s *Store, e *Env, dst []byte, args [][]byte) []byte) *Command {
	return &Command{Name: name, Arity: arity, Flags: flags, FirstKey: first, LastKey: last, Step: step,
		Group: "stream", Summary: summary, run: run}
}

// lookupStream looks key up for a write (expired keys are deleted) or a
// read; wrong reports a non-stream.
func (s *Store) lookupStream(e *Env, key []byte, write bool) (st *streamValue, wrong bool) {
	v, wrong := s.lookupKind(e, key, kindStream, write)
	if v == nil {
		return nil, wrong
	}
	return v.stream, false
}

// readStream looks key up for a read; wrong reports a non-stream.
func (s *Store) readStream(e *Env, key []byte) (st *streamValue, wrong bool) {
	return s.lookupStream(e, key, false)
}

// writeStream looks key up for a write; wrong reports a non-stream.
func (s *Store) writeStream(e *Env, key []byte) (st *streamValue, wrong bool) {
	return s.lookupStream(e, key, true)
}

// strtoull is C's strtoull in base 10 over the whole of b: leading
// spaces, a sign (a minus negates modulo 2^64), at least one digit,
// nothing after, no overflow.
func strtoull(b []byte) (uint64, bool) {
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	if i == len(b) {
		return 0, false
	}
	var u uint64
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (math.MaxUint64-uint64(c-'0'))/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		u = -u
	}
	return u, true
}

// string2ull is Redis's: string2ll when it fits and is not negative,
// else strtoull.
func string2ull(b []byte) (uint64, bool) {
	if v, ok := collInt(b); ok {
		return uint64(v), v >= 0
	}
	if len(b) == 0 {
		return 0, false
	}
	return strtoull(b)
}

// idParse says how an ID argument is read.
type idParse struct {
	missingSeq uint64 // the seq of a bare "ms"
	strict     bool   // "-" and "+" are not IDs
	seqStar    bool   // "ms-*" is allowed (XADD)
}

// parseStreamID reads an ID as Redis's streamGenericParseIDOrReply does;
// seqGiven is false for "ms-*".
func parseStreamID(arg []byte, p idParse) (id streamID, seqGiven, ok bool) {
	if len(arg) > 127 {
		return id, false, false
	}
	b := cString(arg)
	if len(b) == 1 && (b[0] == '-' || b[0] == '+') {
		if p.strict {
			return id, false, false
		}
		if b[0] == '-' {
			return streamMinID, true, true
		}
		return streamMaxID, true, true
	}
	msPart, seqPart, dash := b, []byte(nil), false
	for i, c := range b {
		if c == '-' {
			msPart, seqPart, dash = b[:i], b[i+1:], true
			break
		}
	}
	ms, ok := string2ull(msPart)
	if !ok {
		return id, false, false
	}
	seq := p.missingSeq
	seqGiven = true
	if dash {
		if p.seqStar && len(seqPart) == 1 && seqPart[0] == '*' {
			seq, seqGiven = 0, false
		} else if seq, ok = string2ull(seqPart); !ok {
			return id, false, false
		}
	}
	return streamID{ms, seq}, seqGiven, true
}

// appendStreamID appends id as a bulk string.
func appendStreamID(dst []byte, id streamID) []byte {
	var buf [48]byte
	return resp.AppendBulk(dst, id.appendText(buf[:0]))
}

// appendStreamEntry appends [id, [field, value, ...]].
func appendStreamEntry(dst []byte, en *streamEntry) []byte {
	dst = resp.AppendArrayLen(dst, 2)
	dst = appendStreamID(dst, en.id)
	dst = resp.AppendArrayLen(dst, len(en.fields))
	for _, f := range en.fields {
		dst = resp.AppendBulk(dst, f)
	}
	return dst
}

// parseTrimArgs reads XADD's and XTRIM's options from args[2:] as Redis's
// streamParseAddOrTrimArgsOrReply: for XADD it stops at the ID (returning
// its position), for XTRIM every argument is an option. errMsg is set on
// failure.
func parseTrimArgs(args [][]byte, xadd bool) (a trimArgs, idPos int, noMkStream bool, errMsg string) {
	limitGiven := false
	i := 2
	for ; i < len(args); i++ {
		more := len(args) - 1 - i
		opt := args[i]
		switch {
		case xadd && len(opt) >= 1 && opt[0] == '*' && (len(opt) == 1 || opt[1] == 0):
			return finishTrimArgs(a, i, noMkStream, limitGiven)
		case eqFoldString(opt, "maxlen") && more > 0, eqFoldString(opt, "minid") && more > 0:
			if a.strategy != trimNone {
				return a, 0, false, "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
			}
			a.approx = false
			if next := cString(args[i+1]); more >= 2 && len(next) == 1 && (next[0] == '~' || next[0] == '=') {
				a.approx = next[0] == '~'
				i++
			}
			if eqFoldString(opt, "maxlen") {
				n, ok := collInt(args[i+1])
				if !ok {
					return a, 0, false, errNotInt
				}
				if n < 0 {
					return a, 0, false, "ERR The MAXLEN argument must be >= 0."
				}
				a.strategy, a.maxLen = trimMaxLen, n
			} else {
				id, _, ok := parseStreamID(args[i+1], idParse{strict: true})
				if !ok {
					return a, 0, false, errInvalidStreamID
				}
				a.strategy, a.minID = trimMinID, id
			}
			i++
		case eqFoldString(opt, "limit") && more > 0:
			n, ok := collInt(args[i+1])
			if !ok {
				return a, 0, false, errNotInt
			}
			if n < 0 {
				return a, 0, false, "ERR The LIMIT argument must be >= 0."
			}
			a.limit, limitGiven = n, true
			i++
		case xadd && eqFoldString(opt, "nomkstream"):
			noMkStream = true
		case xadd:
			return finishTrimArgs(a, i, noMkStream, limitGiven)
		default:
			return a, 0, false, errSyntax
		}
	}
	return finishTrimArgs(a, i, noMkStream, limitGiven)
}

func finishTrimArgs(a trimArgs, i int, noMkStream, limitGiven bool) (trimArgs, int, bool, string) {
	if a.limit != 0 && a.strategy == trimNone {
		return a, 0, false, "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
	}
	if limitGiven {
		if !a.approx {
			return a, 0, false, "ERR syntax error, LIMIT cannot be used without the special ~ option"
		}
	} else if a.approx {
		a.defaultLimit = true
	} else {
		a.limit = 0
	}
	return a, i, noMkStream, ""
}

// withDefaultLimit sets the limit of a ~ trim without LIMIT as Redis
// does: a hundred nodes' worth of entries, or 10000 when nodes are
// unbounded.
func (s *Store) withDefaultLimit(a trimArgs) trimArgs {
	if a.defaultLimit {
		a.limit = 100 * s.cfg.StreamNodeMaxEntries
		if a.limit <= 0 {
			a.limit = 10000
		}
	}
	return a
}

func cmdXAdd(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	ta, idPos, noMk, msg := parseTrimArgs(args, true)
	ta = s.withDefaultLimit(ta)
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	if idPos >= len(args) {
		// Options ran to the end: what Redis then reads as the ID is
		// past the arguments, which its arity check catches.
		return AppendWrongArity(dst, "xadd")
	}
	var id streamID
	idGiven, seqGiven := false, true
	if a := cString(args[idPos]); !(len(a) == 1 && a[0] == '*') {
		var ok bool
		if id, seqGiven, ok = parseStreamID(args[idPos], idParse{strict: true, seqStar: true}); !ok {
			return resp.AppendError(dst, errInvalidStreamID)
		}
		idGiven = true
	}
	if nf := len(args) - idPos - 1; nf < 2 || nf%2 == 1 {
		return AppendWrongArity(dst, "xadd")
	}
	if idGiven && seqGiven && id.isZero() {
		return resp.AppendError(dst, "ERR The ID specified in XADD must be greater than 0-0")
	}
	st, wrong := s.writeStream(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		if noMk {
			return resp.AppendNull(dst)
		}
		st = newStream()
		s.put(args[1], &value{kind: kindStream, stream: st})
	}
	if st.lastID == streamMaxID {
		return resp.AppendError(dst, "ERR The stream has exhausted the last possible ID, unable to add more items")
	}
	newID, msg := st.nextID(e, id, idGiven, seqGiven)
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	st.appendEntry(newID, copyFields(args[idPos+1:]), s.cfg.StreamNodeMaxBytes, s.cfg.StreamNodeMaxEntries)
	s.signalKey(args[1]) // XREAD and XREADGROUP waiters may be served
	dst = appendStreamID(dst, newID)
	s.notify(e, notifyStream, "xadd", args[1])
	if st.trim(&ta) > 0 {
		s.notify(e, notifyStream, "xtrim", args[1])
	}
	return dst
}

// copyFields copies byte strings, an entry's fields and values for one,
// into one allocation: the arguments' buffers are not the store's.
func copyFields(args [][]byte) [][]byte {
	total := 0
	for _, a := range args {
		total += len(a)
	}
	buf := make([]byte, 0, total)
	fields := make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		fields[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	return fields
}

// nextID is the ID XADD gives a new entry: the leader's clock for "*"
// (never going backwards: the last ID's successor when the clock has not
// passed it), the given one, or for "ms-*" the next sequence in ms. On
// failure it returns Redis's error: the ID would not exceed the last one,
// or "ms-*" found ms's sequence exhausted, where Redis fails without
// setting errno and so reports whatever errno held; between commands that
// is a failed socket read's, which it words as too large elements.
func (st *streamValue) nextID(e *Env, id streamID, idGiven, seqGiven bool) (streamID, string) {
	switch {
	case !idGiven:
		if now := uint64(max(e.NowMs, 0)); now > st.lastID.ms {
			id = streamID{now, 0}
		} else {
			id, _ = st.lastID.incr()
		}
	case !seqGiven:
		if st.lastID.ms == id.ms {
			if st.lastID.seq == math.MaxUint64 {
				return id, "ERR Elements are too large to be stored"
			}
			id = streamID{id.ms, st.lastID.seq + 1}
		}
	}
	if !st.lastID.less(id) {
		return id, errXAddTooSmall
	}
	return id, ""
}

func cmdXTrim(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	ta, _, _, msg := parseTrimArgs(args, false)
	ta = s.withDefaultLimit(ta)
	if msg == "" && ta.strategy == trimNone {
		msg = "ERR syntax error, XTRIM must be called with a trimming strategy"
	}
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	st, wrong := s.writeStream(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendInt(dst, 0)
	}
	n := st.trim(&ta)
	if n > 0 {
		s.notify(e, notifyStream, "xtrim", args[1])
	}
	return resp.AppendInt(dst, n)
}

func cmdXDel(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, wrong := s.writeStream(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendInt(dst, 0)
	}
	ids, ok := parseStreamIDs(args[2:])
	if !ok {
		return resp.AppendError(dst, errInvalidStreamID)
	}
	deleted := 0
	for _, id := range ids {
		if st.remove(id) {
			if st.maxDeletedID.less(id) {
				st.maxDeletedID = id
			}
			deleted++
		}
	}
	if deleted > 0 {
		s.notify(e, notifyStream, "xdel", args[1])
	}
	return resp.AppendInt(dst, int64(deleted))
}

func cmdXLen(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	st, wrong := s.readStream(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendInt(dst, 0)
	}
	return resp.AppendInt(dst, int64(st.length))
}

// parseStreamIDs reads the IDs XDEL and XACK take (no "-" or "+"); ok is
// false when one is not an ID.
func parseStreamIDs(args [][]byte) (ids []streamID, ok bool) {
	ids = make([]streamID, 0, len(args))
	for _, a := range args {
		id, _, ok := parseStreamID(a, idParse{strict: true})
		if !ok {
			return nil, false
		}
		ids = append(ids, id)
	}
	return ids, true
}

// parseRangeID reads an XRANGE bound: an ID, "-"/"+", or "(id" for an
// exclusive one.
func parseRangeID(arg []byte, missingSeq uint64) (id streamID, exclusive, ok bool) {
	if len(arg) > 1 && arg[0] == '(' {
		id, _, ok = parseStreamID(arg[1:], idParse{missingSeq: missingSeq, strict: true})
		return id, true, ok
	}
	id, _, ok = parseStreamID(arg, idParse{missingSeq: missingSeq})
	return id, false, ok
}

// parseRangeStart reads the start of an interval (XRANGE, XPENDING,
// XAUTOCLAIM): a bare "ms" is ms-0, an exclusive "(id" its successor;
// errMsg is Redis's error when it is not an ID or has no successor.
func parseRangeStart(arg []byte) (id streamID, errMsg string) {
	id, ex, ok := parseRangeID(arg, 0)
	if !ok {
		return id, errInvalidStreamID
	}
	if ex {
		if id, ok = id.incr(); !ok {
			return id, "ERR invalid start ID for the interval"
		}
	}
	return id, ""
}

// parseRangeEnd reads the end of an interval (XRANGE, XPENDING): a bare
// "ms" is ms with the largest sequence, an exclusive "(id" its
// predecessor; errMsg is Redis's error when it is not an ID or has no
// predecessor.
func parseRangeEnd(arg []byte) (id streamID, errMsg string) {
	id, ex, ok := parseRangeID(arg, math.MaxUint64)
	if !ok {
		return id, errInvalidStreamID
	}
	if ex {
		if id, ok = id.decr(); !ok {
			return id, "ERR invalid end ID for the interval"
		}
	}
	return id, ""
}

// xrange is XRANGE key start end [COUNT n] and XREVRANGE key end start.
func (s *Store) xrange(e *Env, dst []byte, args [][]byte, rev bool) []byte {
	startArg, endArg := args[2], args[3]
	if rev {
		startArg, endArg = endArg, startArg
	}
	start, msg := parseRangeStart(startArg)
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	end, msg := parseRangeEnd(endArg)
	if msg != "" {
		return resp.AppendError(dst, msg)
	}
	count := int64(-1)
	for j := 4; j < len(args); j++ {
		if !eqFoldString(args[j], "count") || j+1 >= len(args) {
			return resp.AppendError(dst, errSyntax)
		}
		n, ok := collInt(args[j+1])
		if !ok {
			return resp.AppendError(dst, errNotInt)
		}
		count = max(n, 0)
		j++
	}
	st, wrong := s.readStream(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendArrayLen(dst, 0)
	}
	if count == 0 {
		return resp.AppendNullArray(dst)
	}
	return st.appendRange(dst, start, end, max(count, 0), rev)
}

// appendRange appends the live entries in [start, end] (at most count
// unless count is 0), reversed if rev.
func (st *streamValue) appendRange(dst []byte, start, end streamID, count int64, rev bool) []byte {
	ents := st.entriesIn(start, end, count, rev)
	dst = resp.AppendArrayLen(dst, len(ents))
	for _, en := range ents {
		dst = appendStreamEntry(dst, en)
	}
	return dst
}

// entriesIn returns the live entries in [start, end] (at most count unless
// count is 0), reversed if rev.
func (st *streamValue) entriesIn(start, end streamID, count int64, rev bool) []*streamEntry {
	var ents []*streamEntry
	collect := func(en *streamEntry) bool {
		ents = append(ents, en)
		return count == 0 || int64(len(ents)) < count
	}
	if start.cmp(end) <= 0 {
		if rev {
			st.backward(start, end, collect)
		} else {
			st.forward(start, end, collect)
		}
	}
	return ents
}

func cmdXSetID(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	id, _, ok := parseStreamID(args[2], idParse{strict: true})
	if !ok {
		return resp.AppendError(dst, errInvalidStreamID)
	}
	entriesAdded := int64(-1)
	var maxDel streamID
	for i := 3; i < len(args); i += 2 {
		more := len(args) - 1 - i
		switch {
		case eqFoldString(args[i], "entriesadded") && more > 0:
			n, ok := collInt(args[i+1])
			if !ok {
				return resp.AppendError(dst, errNotInt)
			}
			if n < 0 {
				return resp.AppendError(dst, "ERR entries_added must be positive")
			}
			entriesAdded = n
		case eqFoldString(args[i], "maxdeletedid") && more > 0:
			if maxDel, _, ok = parseStreamID(args[i+1], idParse{strict: true}); !ok {
				return resp.AppendError(dst, errInvalidStreamID)
			}
			if id.less(maxDel) {
				return resp.AppendError(dst, "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
			}
		default:
			return resp.AppendError(dst, errSyntax)
		}
	}
	st, wrong := s.writeStream(e, args[1])
	if wrong {
		return resp.AppendError(dst, errWrongType)
	}
	if st == nil {
		return resp.AppendError(dst, errNoSuchKey)
	}
	if st.length > 0 {
		if id.less(st.lastLiveID()) {
			return resp.AppendError(dst, "ERR The ID specified in XSETID is smaller than the target stream top item")
		}
		if entriesAdded != -1 && int64(st.length) > entriesAdded {
			return resp.AppendError(dst, "ERR The entries_added specified in XSETID is smaller than the target stream length")
		}
	}
	st.lastID = id
	if entriesAdded != -1 {
		st.entriesAdded = uint64(entriesAdded)
	}
	if !maxDel.isZero() {
		st.maxDeletedID = maxDel
	}
	s.notify(e, notifyStream, "xsetid", args[1])
	return resp.AppendOK(dst)
}
