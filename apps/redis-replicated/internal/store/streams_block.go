package store

// XREAD … BLOCK and XREADGROUP … BLOCK as Blocking commands (blocking.go).
//
// Without BLOCK their timeout is negative: they never block and run as
// they are, XREAD as a read. With BLOCK, inside gomu.block, a read that
// finds nothing registers a waiter on the STREAMS keys; XREAD's $ is then
// pinned to the stream's last ID (0-0 for a missing key), as Redis
// resolves it when the client blocks. A waiter is served by ServeBlocked
// whenever a key it waits on is signalled: an XADD (a new stream goes
// through put, an existing one calls signalKey), or, for XREADGROUP, the
// stream's deletion, overwriting, FLUSHDB or SWAPDB away (-UNBLOCKED) or
// its group's XGROUP DESTROY (-NOGROUP), as Redis 7.0 signals them.

// streamReadSpec is how XREAD and XREADGROUP block.
var streamReadSpec = &blockSpec{
	validate: validateStreamRead,
	timeout:  streamReadTimeout,
	prepare:  pinLastIDs,
	keys:     streamReadKeys,
	try:      tryStreamRead,
}

// streamReadCmd makes c (XREAD or XREADGROUP) a Blocking command. Outside
// gomu.block it never blocks, so it runs as a plain read once, without
// the framework's second parse.
func streamReadCmd(c *Command) *Command {
	readOnce := c.run
	blockingCmd(c, streamReadSpec)
	c.run = func(s *Store, e *Env, dst []byte, args [][]byte) []byte {
		if s.blk.registering == nil {
			return readOnce(s, e, dst, args)
		}
		return s.runBlocking(e, dst, args, c)
	}
	return c
}

func isGroupRead(args [][]byte) bool { return eqFoldString(args[0], "xreadgroup") }

func validateStreamRead(args [][]byte) string {
	_, _, msg := parseStreamReadOptions(args, isGroupRead(args))
	return msg
}

func streamReadTimeout(args [][]byte) int64 {
	r, _, _ := parseStreamReadOptions(args, isGroupRead(args))
	return r.BlockMs
}

func streamReadKeys(args [][]byte) [][]byte {
	r, _, _ := parseStreamReadOptions(args, isGroupRead(args))
	return r.Keys
}

// pinLastIDs replaces XREAD's $ IDs with the streams' last IDs at the
// time the waiter is registered.
func pinLastIDs(s *Store, e *Env, args [][]byte) [][]byte {
	if isGroupRead(args) {
		return args // ">" is resolved against the group when served
	}
	r, ids, _ := parseStreamReadOptions(args, false)
	idsAt := len(args) - len(ids)
	pinned := append([][]byte(nil), args...)
	for i, id := range ids {
		if string(id) != "$" {
			continue
		}
		var last streamID
		if st, _ := s.readStream(e, r.Keys[i]); st != nil {
			last = st.lastID
		}
		pinned[idsAt+i] = last.appendText(nil)
	}
	return pinned
}

// tryStreamRead reads once at once; when serving, keys is the one key
// signalled and the waiter is served by ServeBlocked.
func tryStreamRead(s *Store, e *Env, dst []byte, args, keys [][]byte, serving bool) ([]byte, bool) {
	if !serving {
		r, out := s.ParseStreamRead(e, dst, args)
		if r == nil {
			return out, true // its error
		}
		out, served := s.ReadOnce(e, dst, r)
		if !served {
			return dst, false
		}
		return out, true
	}
	r := parseWaitingStreamRead(args)
	if r == nil {
		return dst, false
	}
	return s.ServeBlocked(e, dst, r, keys[0])
}

// parseWaitingStreamRead parses a waiter's arguments, validated and with
// $ pinned: its IDs need no store (">" or explicit IDs). Nil if an ID
// does not parse, which a waiter's never does.
func parseWaitingStreamRead(args [][]byte) *StreamRead {
	r, ids, msg := parseStreamReadOptions(args, isGroupRead(args))
	if msg != "" {
		return nil
	}
	r.after = make([]streamID, len(ids))
	for i, a := range ids {
		if string(a) == ">" {
			r.after[i] = newEntriesID
			continue
		}
		id, _, ok := parseStreamID(a, idParse{strict: true})
		if !ok {
			return nil
		}
		r.after[i] = id
	}
	return r
}
