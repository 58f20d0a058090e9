package store

import (
	"github.com/gomu-rdma/gomu/internal/resp"
)

// XREAD and XREADGROUP. Both parse and resolve their IDs once
// (ParseStreamRead) and then try once (ReadOnce). With BLOCK they are
// Blocking commands (streams_block.go): a waiter keeps its arguments with
// XREAD's $ pinned to the stream's last ID, and is served by
// ServeBlocked, as Redis re-serves a blocked client with the IDs it
// resolved when it blocked.

func init() {
	register(
		streamReadCmd(streamCmd("xread", -4, ReadOnly|MovableKeys, 0, 0, 0, "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.", cmdStreamRead)),
		streamReadCmd(streamCmd("xreadgroup", -7, Write|MovableKeys, 0, 0, 0, "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", cmdStreamRead)),
	)
}

// StreamRead is a parsed XREAD or XREADGROUP with its IDs resolved.
type StreamRead struct {
	// Keys are the streams read, in argument order.
	Keys [][]byte
	// BlockMs is the BLOCK timeout in milliseconds (0: forever), -1
	// without BLOCK.
	BlockMs int64
	// Group and Consumer are XREADGROUP's (nil for XREAD).
	Group, Consumer []byte

	count int64
	noAck bool
	// after holds, per key, the ID past which entries are read;
	// newEntriesID for XREADGROUP's ">".
	after []streamID
}

// newEntriesID stands for XREADGROUP's ">": the entries never delivered
// to the group.
var newEntriesID = streamMaxID

func cmdStreamRead(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	r, dst := s.ParseStreamRead(e, dst, args)
	if r == nil {
		return dst
	}
	dst, _ = s.ReadOnce(e, dst, r)
	return dst
}

// ParseStreamRead parses XREAD or XREADGROUP (by args[0]) as Redis's
// xreadCommand does, resolving "$" to the stream's last ID at e's time.
// On error it returns nil and dst with the error reply appended. For
// XREADGROUP it is part of a write (expired keys are deleted).
func (s *Store) ParseStreamRead(e *Env, dst []byte, args [][]byte) (*StreamRead, []byte) {
	group := eqFoldString(args[0], "xreadgroup")
	r, keyIDs, msg := parseStreamReadOptions(args, group)
	if msg != "" {
		return nil, resp.AppendError(dst, msg)
	}
	r.after = make([]streamID, len(r.Keys))
	for i, key := range r.Keys {
		st, wrong := s.lookupStream(e, key, group)
		if wrong {
			return nil, resp.AppendError(dst, errWrongType)
		}
		if group && (st == nil || st.group(r.Group) == nil) {
			return nil, resp.AppendError(dst, "NOGROUP No such key '"+string(cString(key))+
				"' or consumer group '"+string(cString(r.Group))+"' in XREADGROUP with GROUP option")
		}
		switch a := keyIDs[i]; {
		case string(a) == "$" && group:
			return nil, resp.AppendError(dst, "ERR The $ ID is meaningless in the context of XREADGROUP: "+
				"you want to read the history of this consumer by specifying a proper ID, "+
				"or use the > ID to get new messages. The $ ID would just return an empty result set.")
		case string(a) == "$":
			if st != nil {
				r.after[i] = st.lastID
			}
		case string(a) == ">" && !group:
			return nil, resp.AppendError(dst, "ERR The > ID can be specified only when calling XREADGROUP "+
				"using the GROUP <group> <consumer> option.")
		case string(a) == ">":
			r.after[i] = newEntriesID
		default:
			id, _, ok := parseStreamID(a, idParse{strict: true})
			if !ok {
				return nil, resp.AppendError(dst, errInvalidStreamID)
			}
			r.after[i] = id
		}
	}
	return r, dst
}

// parseStreamReadOptions reads the options up to STREAMS; it returns the
// keys' IDs apart, as they are resolved per key.
func parseStreamReadOptions(args [][]byte, group bool) (r *StreamRead, ids [][]byte, errMsg string) {
	r = &StreamRead{BlockMs: -1}
	streamsAt := 0
	for i := 1; i < len(args) && streamsAt == 0; i++ {
		more := len(args) - i - 1
		o := args[i]
		switch {
		case eqFoldString(o, "block") && more > 0:
			i++
			n, ok := collInt(args[i])
			if !ok {
				return nil, nil, "ERR timeout is not an integer or out of range"
			}
			if n < 0 {
				return nil, nil, "ERR timeout is negative"
			}
			r.BlockMs = n
		case eqFoldString(o, "count") && more > 0:
			i++
			n, ok := collInt(args[i])
			if !ok {
				return nil, nil, errNotInt
			}
			r.count = max(n, 0)
		case eqFoldString(o, "streams") && more > 0:
			streamsAt = i + 1
			if (len(args)-streamsAt)%2 != 0 {
				return nil, nil, "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
			}
		case eqFoldString(o, "group") && more >= 2:
			if !group {
				return nil, nil, "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
			}
			r.Group, r.Consumer = args[i+1], args[i+2]
			i += 2
		case eqFoldString(o, "noack"):
			if !group {
				return nil, nil, "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
			}
			r.noAck = true
		default:
			return nil, nil, errSyntax
		}
	}
	if streamsAt == 0 {
		return nil, nil, errSyntax
	}
	if group && r.Group == nil {
		return nil, nil, "ERR Missing GROUP option for XREADGROUP"
	}
	n := (len(args) - streamsAt) / 2
	r.Keys = args[streamsAt : streamsAt+n]
	return r, args[streamsAt+n:], ""
}

// ReadOnce is one attempt of r. XREAD replies the entries past each ID;
// XREADGROUP replies the consumer's history, or new entries which it
// delivers (so it is a write, to run in log order). served is false when
// no stream had anything to serve: dst then ends with the null array,
// Redis's answer to a read that found nothing (or timed out).
func (s *Store) ReadOnce(e *Env, dst []byte, r *StreamRead) (out []byte, served bool) {
	n := 0
	var body []byte
	for i, key := range r.Keys {
		var ok bool
		if r.Group == nil {
			body, ok = s.readOnceXRead(e, body, key, r.after[i], r.count)
		} else {
			body, ok = s.readOnceGroup(e, body, key, r, r.after[i])
		}
		if ok {
			n++
		}
	}
	if n == 0 {
		return resp.AppendNullArray(dst), false
	}
	return append(resp.AppendArrayLen(dst, n), body...), true
}

// readOnceXRead appends [key, entries] when key has entries past after.
func (s *Store) readOnceXRead(e *Env, dst []byte, key []byte, after streamID, count int64) ([]byte, bool) {
	st, _ := s.readStream(e, key)
	if st == nil || st.length == 0 || !after.less(st.lastLiveID()) {
		return dst, false
	}
	start, _ := after.incr()
	dst = resp.AppendArrayLen(dst, 2)
	dst = resp.AppendBulk(dst, key)
	return st.appendRange(dst, start, streamMaxID, count, false), true
}

// readOnceGroup appends [key, entries] for XREADGROUP: a history read is
// always served (the consumer's pending entries past after), a ">" read
// when the stream has entries past the group's last delivered one.
func (s *Store) readOnceGroup(e *Env, dst []byte, key []byte, r *StreamRead, after streamID) ([]byte, bool) {
	st, g, _ := s.lookupGroup(e, key, r.Group, true)
	if g == nil {
		return dst, false
	}
	// An explicit maximum ID reads as ">", as in Redis (it is how Redis
	// encodes ">").
	history := after != newEntriesID
	if !history {
		if st.length == 0 || !g.lastID.less(st.lastLiveID()) {
			return dst, false
		}
		after = g.lastID
	}
	// after is not the maximum ID here (that reads as ">"): it has a successor.
	start, _ := after.incr()
	dst = resp.AppendArrayLen(dst, 2)
	dst = resp.AppendBulk(dst, key)
	c := s.touchConsumer(e, key, g, r.Consumer, e.NowMs)
	if history {
		return st.appendHistory(dst, c, start, r.count, e.NowMs), true
	}
	return st.appendNew(dst, g, c, start, r.count, r.noAck, e.NowMs), true
}

// ServeBlocked is Redis's serving of a client blocked by r (which
// ReadOnce did not serve) once key, one of r.Keys, was signalled ready
// (serveClientsBlockedOnStreamKey and unblockDeletedStreamReadgroupClients
// in 7.0.15). done says whether the client is unblocked, with dst holding
// its reply: [[key, entries]] when the stream's last ID passed the one the
// client waits after (the group's last delivered ID for XREADGROUP, which
// then delivers: a write, to run in log order); for XREADGROUP, an error
// when the key or the group is gone. Otherwise the client stays blocked
// and dst is returned as it was.
func (s *Store) ServeBlocked(e *Env, dst []byte, r *StreamRead, key []byte) (out []byte, done bool) {
	at := -1
	for i, k := range r.Keys {
		if string(k) == string(key) {
			at = i
			break
		}
	}
	if at < 0 {
		return dst, false
	}
	st, _ := s.lookupStream(e, key, r.Group != nil)
	if st == nil {
		if r.Group != nil {
			return resp.AppendError(dst, "UNBLOCKED the stream key no longer exists"), true
		}
		return dst, false
	}
	after := r.after[at]
	var g *streamGroup
	if r.Group != nil {
		if g = st.group(r.Group); g == nil {
			return resp.AppendError(dst, "NOGROUP the consumer group this client was blocked on no longer exists"), true
		}
		after = g.lastID
	}
	if !after.less(st.lastID) {
		return dst, false
	}
	start, _ := after.incr()
	dst = resp.AppendArrayLen(dst, 1)
	dst = resp.AppendArrayLen(dst, 2)
	dst = resp.AppendBulk(dst, key)
	if g == nil {
		return st.appendRange(dst, start, streamMaxID, r.count, false), true
	}
	c := s.touchConsumer(e, key, g, r.Consumer, e.NowMs)
	return st.appendNew(dst, g, c, start, r.count, r.noAck, e.NowMs), true
}
