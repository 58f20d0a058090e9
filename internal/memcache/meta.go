package memcache

// The meta protocol: mg, ms, md, ma, mn and me, reply for reply as
// memcached 1.6.18 answers them (proto_text.c), errors included. One
// extension: the E flag (explicit new CAS value) of later memcached
// versions, which 1.6.18 rejects as an invalid flag.
//
// # Replication
//
// ms, md and ma are writes, and so is an mg with N (vivify), R (recache)
// or T (touch). Other mg, me and mn are reads, and change nothing but
// atomic counters and the per-replica access record below.
//
// An item's meta state is replicated and in snapshots: stale (md I, or
// ms I with an older CAS), win token sent (the W flag was handed out),
// binary key (stored through a base64 key, so k returns it encoded), and a
// CAS value chosen with E.
//
// What reads record is per replica, in atomics, and not in snapshots:
// whether an item was fetched (mg h, me fetch), its last access time
// (mg l, me la), and a win token handed out by a read. memcached hands W
// to the first mg of a stale item, whatever its flags; here an mg that is
// a read cannot record that in the replicated state, so it records it in
// the replica's own: each replica hands out at most one W per stale item
// through reads (exactly memcached's behaviour with one replica), and a
// write (mg N/R/T) sets the replicated flag. Clients that need exactly
// one winner in a cluster send mg with R or N, which are writes.

import (
	"io"
	"math"
	"strconv"
	"sync/atomic"
)

// Meta command limits, memcached's.
const (
	metaMaxTokens    = 20 // command, key and flags, plus memcached's terminal token
	metaMaxOpaqueLen = 32 // an O token, the O included
)

// Errors of the meta commands, memcached 1.6.18's texts. Errors are always
// answered, quiet mode or not.
var (
	errMetaOptsAreTooLong = newProtocolError(KindClient, "options flags are too long", false) // mg
	errMetaOptsTooLong    = newProtocolError(KindClient, "options flags too long", false)     // ms, md, ma
	errMetaDuplicateFlag  = newProtocolError(KindClient, "duplicate flag", false)
	errMetaInvalidFlag    = newProtocolError(KindClient, "invalid flag", false)
	errMetaBadFlag        = newProtocolError(KindClient, "invalid or duplicate flag", false) // md, ma: any flag error
	errMetaBadToken       = newProtocolError(KindClient, "bad token in command line format", false)
	errMetaDecodeKey      = newProtocolError(KindClient, "error decoding key", false)
	errMetaMLength        = newProtocolError(KindClient, "incorrect length for M token", false)
	errMetaInitial        = newProtocolError(KindClient, "invalid numeric initial value", false)
	errMetaDelta          = newProtocolError(KindClient, "invalid numeric delta value", false)
	errMetaOpaqueTooLong  = newProtocolError(KindClient, "opaque token too long", false)
	errMetaSetMode        = newProtocolError(KindClient, "invalid mode for ms M token", false)
	errMetaArithMode      = newProtocolError(KindClient, "invalid mode for ma M token", false)
	errMetaArithOOM       = newProtocolError(KindServer, "out of memory", false)
	errMetaVivifyOOM      = newProtocolError(KindServer, "Out of memory allocating new item", false)
)

// metaCmd is what the parser keeps of a meta command's flags. The flag
// tokens themselves stay in Command.toks, from index first: replies follow
// their order.
type metaCmd struct {
	seen  [2]uint64 // flags present, a bit per ASCII byte
	first int       // index of the first flag token in Command.toks
	n     int64     // N: vivify TTL
	t     int64     // T: new TTL
	r     int64     // R: recache threshold
	f     uint32    // F: client flags
	c     uint64    // C: CAS value to compare
	e     uint64    // E: CAS value to set
	j     uint64    // J: initial value
	d     uint64    // D: delta
	mode  byte      // M
	key   []byte    // the decoded key of a b command, owned
}

func (m *metaCmd) has(flag byte) bool { return m.seen[flag>>6]&(1<<(flag&63)) != 0 }

func (m *metaCmd) mark(flag byte) { m.seen[flag>>6] |= 1 << (flag & 63) }

// Item meta state bits (item.meta).
const (
	itemStale     uint8 = 1 << iota // marked stale: mg answers X
	itemTokenSent                   // a win token (W) was handed out: mg answers Z
	itemBinaryKey                   // stored through a base64 key: k answers it encoded
)

// itemAccess is what reads record of an item, as memcached's LRU does:
// whether it was fetched, whether it is active (fetched twice; its access
// time then moves), the time of its last access, and a win token handed
// out by a read. All per replica.
type itemAccess struct {
	bits  atomic.Uint32
	atime atomic.Int64 // Unix ns
}

const (
	accFetched uint32 = 1 << iota
	accActive
	accWon
)

// reset is a new write's record: not fetched, accessed now.
func (a *itemAccess) reset(now int64) {
	a.bits.Store(0)
	a.atime.Store(now)
}

// bump records a fetch, as memcached's segmented LRU does: the first marks
// the item fetched, the second active, with a new access time.
func (a *itemAccess) bump(now int64) {
	for {
		b := a.bits.Load()
		switch {
		case b&accActive != 0:
			return
		case b&accFetched == 0:
			if a.bits.CompareAndSwap(b, b|accFetched) {
				return
			}
		default:
			if a.bits.CompareAndSwap(b, b|accActive) {
				a.atime.Store(now)
				return
			}
		}
	}
}

func (a *itemAccess) has(bit uint32) bool { return a.bits.Load()&bit != 0 }

// claimWin takes the replica's win token of a stale item, reporting
// whether this caller got it.
func (a *itemAccess) claimWin() bool {
	for {
		b := a.bits.Load()
		if b&accWon != 0 {
			return false
		}
		if a.bits.CompareAndSwap(b, b|accWon) {
			return true
		}
	}
}

// tokenSent reports whether a win token was handed out: through the
// replicated state, or by a read of this replica.
func (it *item) tokenSent() bool {
	return it.meta&itemTokenSent != 0 || it.acc.has(accWon)
}

// Parsing.

// meta parses a meta command; toks[0] is mg, ms, md, ma, mn or me.
func (p *Parser) meta(cmd *Command, toks [][]byte) error {
	m := &cmd.meta
	*m = metaCmd{key: m.key[:0]}
	var op Op
	switch string(toks[0]) {
	case "mn":
		// memcached ignores anything after mn.
		cmd.Op = OpMetaNoop
		return nil
	case "me":
		return parseMetaDebug(cmd, toks)
	case "ms":
		return p.parseMetaSet(cmd, toks)
	case "mg":
		op = OpMetaGet
	case "md":
		op = OpMetaDelete
	default:
		op = OpMetaArithmetic
	}
	if len(toks) < 2 {
		return ErrUnknownCommand
	}
	if len(toks[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	if len(toks)+1 > metaMaxTokens {
		if op == OpMetaGet {
			return errMetaOptsAreTooLong
		}
		return errMetaOptsTooLong
	}
	m.first = 2
	key, err := m.parseFlags(toks[1], toks[2:])
	if err != nil {
		if op == OpMetaGet {
			return err
		}
		return errMetaBadFlag // md and ma do not say which
	}
	switch op {
	case OpMetaDelete:
		// md checks its opaque before it looks the item up; mg and ma
		// after they may have changed it (see Store.execMeta).
		for _, tok := range toks[2:] {
			if tok[0] == 'O' && len(tok) > metaMaxOpaqueLen {
				return errMetaOpaqueTooLong
			}
		}
	case OpMetaArithmetic:
		switch m.mode {
		case 0, 'I', '+', 'D', '-':
		default:
			return errMetaArithMode
		}
	}
	cmd.Op = op
	cmd.Keys = append(cmd.Keys, key)
	return nil
}

// parseMetaSet parses ms <key> <datalen> <flags>* and reads the data
// block. Errors found once the data length is known skip the block, as
// memcached does; earlier ones leave it to be read as a command line.
func (p *Parser) parseMetaSet(cmd *Command, toks [][]byte) error {
	m := &cmd.meta
	if len(toks) < 2 {
		return ErrUnknownCommand
	}
	if len(toks[1]) > MaxKeyLen || len(toks) == 2 {
		return ErrBadFormat
	}
	if len(toks)+1 > metaMaxTokens {
		return errMetaOptsTooLong
	}
	n, ok := cStrtoll(toks[2])
	size := int64(int32(n)) // memcached's safe_strtol truncates to 32 bits
	if !ok || size < 0 || size > math.MaxInt32-2 {
		return ErrBadFormat
	}
	m.first = 3
	key, err := m.parseFlags(toks[1], toks[3:])
	if err == nil {
		for _, tok := range toks[3:] {
			if tok[0] == 'O' && len(tok) > metaMaxOpaqueLen {
				err = errMetaOpaqueTooLong
			}
		}
		switch m.mode {
		case 0, 'E', 'A', 'P', 'R', 'S':
		default:
			err = errMetaSetMode
		}
	}
	if err != nil {
		if _, derr := p.r.Discard(int(size) + 2); derr != nil {
			return unexpected(derr)
		}
		return err
	}
	cmd.Op = OpMetaSet
	cmd.Keys = append(cmd.Keys, key)
	if size > int64(p.lim.MaxValueLen) {
		if _, err := p.r.Discard(int(size) + 2); err != nil {
			return unexpected(err)
		}
		return ErrTooLarge
	}
	return p.readBlock(cmd, int(size))
}

// readBlock reads a data block of size bytes and its "\r\n" into
// cmd.Value.
func (p *Parser) readBlock(cmd *Command, size int) error {
	need := size + 2
	if cap(cmd.val) < need {
		cmd.val = make([]byte, need, max(need, min(2*cap(cmd.val), p.lim.MaxValueLen+2)))
	}
	buf := cmd.val[:need]
	if _, err := io.ReadFull(p.r, buf); err != nil {
		return unexpected(err)
	}
	if buf[need-2] != '\r' || buf[need-1] != '\n' {
		return ErrBadDataChunk
	}
	cmd.Value = buf[:size]
	return nil
}

// parseMetaDebug parses me <key> [b]: other tokens are ignored, and b only
// counts right after the key, as in memcached.
func parseMetaDebug(cmd *Command, toks [][]byte) error {
	if len(toks) < 2 || len(toks[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	key := toks[1]
	if len(toks) >= 3 && len(toks[2]) == 1 && toks[2][0] == 'b' {
		m := &cmd.meta
		dec, ok := base64DecodeLenient(m.key[:0], key)
		m.key = dec
		if !ok {
			return ErrBadFormat
		}
		m.mark('b')
		key = dec
	}
	cmd.Op = OpMetaDebug
	cmd.Keys = append(cmd.Keys, key)
	return nil
}

// parseFlags reads the flag tokens as memcached's _meta_flag_preparse
// does, and returns the key, decoded if b is among them. A repeated or
// unknown flag stops it at once; a bad value is reported after the rest
// was read, with the text of the last bad value.
func (m *metaCmd) parseFlags(key []byte, flags [][]byte) ([]byte, *ProtocolError) {
	var bad *ProtocolError
	for _, tok := range flags {
		o := tok[0]
		if o >= 127 || m.has(o) {
			return nil, errMetaDuplicateFlag
		}
		m.mark(o)
		arg := tok[1:]
		var ok bool
		switch o {
		case 'b':
			m.key, ok = base64DecodeLenient(m.key[:0], key)
			if !ok {
				bad = errMetaDecodeKey
			}
		case 'N', 'T', 'R':
			var v int64
			if v, ok = cStrtoll(arg); !ok {
				bad = errMetaBadToken
				break
			}
			v = int64(int32(v)) // safe_strtol truncates to 32 bits
			switch o {
			case 'N':
				m.n = v
			case 'T':
				m.t = v
			default:
				m.r = v
			}
		case 'l', 'O', 'P', 'L', 'k', 's', 't', 'c', 'f', 'v', 'h', 'u', 'q', 'I':
		case 'F':
			var v uint64
			if v, ok = cStrtoull(arg); !ok {
				if bad == nil {
					bad = ErrBadFormat // memcached keeps its default text here
				}
				break
			}
			m.f = uint32(v) // safe_strtoul truncates too
		case 'C':
			if m.c, ok = cStrtoull(arg); !ok {
				bad = errMetaBadToken
			}
		case 'E':
			if m.e, ok = cStrtoull(arg); !ok {
				bad = errMetaBadToken
			}
		case 'M':
			if len(tok) != 2 {
				bad = errMetaMLength
			} else {
				m.mode = tok[1]
			}
		case 'J':
			if m.j, ok = cStrtoull(arg); !ok {
				bad = errMetaInitial
			}
		case 'D':
			if m.d, ok = cStrtoull(arg); !ok {
				bad = errMetaDelta
			}
		default:
			return nil, errMetaInvalidFlag
		}
	}
	if bad != nil {
		return nil, bad
	}
	if m.has('b') {
		return m.key, nil
	}
	return key, nil
}

// metaIsWrite: ms, md and ma change the store, and so does mg with N, R or
// T. Other mg (stale items' win tokens aside, see the top of this file),
// me and mn do not.
func (c *Command) metaIsWrite() bool {
	switch c.Op {
	case OpMetaGet:
		m := &c.meta
		return m.has('N') || m.has('R') || m.has('T')
	case OpMetaSet, OpMetaDelete, OpMetaArithmetic:
		return true
	}
	return false
}

// C number parsing, as memcached's safe_strto* functions (util.c) parse:
// C's strtoll or strtoull in base 10 (leading white space, a sign), then
// the number must end the token or be followed by white space.

func isCSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// cNumber parses the magnitude and sign; overflow reports whether it
// passed 2^64-1. ok is false without digits or with junk after them.
func cNumber(b []byte) (mag uint64, neg, overflow, ok bool) {
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			overflow = true
		}
		mag = mag*10 + d
	}
	if i == start {
		return 0, false, false, false
	}
	if i < len(b) && !isCSpace(b[i]) && b[i] != 0 {
		return 0, false, false, false
	}
	return mag, neg, overflow, true
}

// cStrtoll is strtoll with safe_strtoll's checks: out of int64 range fails.
func cStrtoll(b []byte) (int64, bool) {
	mag, neg, overflow, ok := cNumber(b)
	switch {
	case !ok || overflow:
		return 0, false
	case neg && mag <= 1<<63:
		return int64(-mag), true
	case !neg && mag <= math.MaxInt64:
		return int64(mag), true
	}
	return 0, false
}

// cStrtoull is strtoull with safe_strtoull's checks: a minus sign is
// accepted (and wraps) unless the result looks negative as a signed number.
func cStrtoull(b []byte) (uint64, bool) {
	mag, neg, overflow, ok := cNumber(b)
	if !ok || overflow {
		return 0, false
	}
	if neg {
		mag = -mag
		if int64(mag) < 0 {
			return 0, false
		}
	}
	return mag, true
}

var b64dec = func() (t [256]byte) {
	for i := range t {
		t[i] = 0x80
	}
	for i := 0; i < len(b64alphabet); i++ {
		t[b64alphabet[i]] = byte(i)
	}
	t['='] = 0
	return t
}()

// base64DecodeLenient appends src decoded to dst as memcached's
// base64_decode does: bytes outside the alphabet are skipped, decoding
// stops after the first block with padding, and it fails (ok false) when
// nothing is left or the count of alphabet bytes is not a multiple of 4.
func base64DecodeLenient(dst, src []byte) ([]byte, bool) {
	count := 0
	for _, c := range src {
		if b64dec[c] != 0x80 {
			count++
		}
	}
	if count == 0 || count%4 != 0 {
		return dst, false
	}
	start := len(dst)
	var block [4]byte
	n, pad := 0, 0
	for _, c := range src {
		v := b64dec[c]
		if v == 0x80 {
			continue
		}
		if c == '=' {
			pad++
		}
		block[n] = v
		n++
		if n < 4 {
			continue
		}
		dst = append(dst, block[0]<<2|block[1]>>4, block[1]<<4|block[2]>>2, block[2]<<6|block[3])
		n = 0
		if pad > 0 {
			if pad > 2 {
				return dst[:start], false
			}
			dst = dst[:len(dst)-pad]
			break
		}
	}
	return dst, len(dst) > start
}

// Execution.

func (s *Store) execMeta(out []byte, cmd *Command, now int64) []byte {
	switch cmd.Op {
	case OpMetaGet:
		return s.metaGet(out, cmd, now)
	case OpMetaSet:
		return s.metaSet(out, cmd, now)
	case OpMetaDelete:
		return s.metaDelete(out, cmd, now)
	case OpMetaArithmetic:
		return s.metaArith(out, cmd, now)
	case OpMetaNoop:
		return append(out, "MN\r\n"...)
	case OpMetaDebug:
		return s.metaDebug(out, cmd, now)
	}
	return out
}

// unixSec is the Unix second of a time in ns, rounded down: memcached
// counts time in whole seconds.
func unixSec(ns int64) int64 {
	s := ns / 1e9
	if ns%1e9 < 0 {
		s--
	}
	return s
}

// appendTTL appends an item's remaining TTL as memcached does: -1 for
// none, else whole seconds as an unsigned 32-bit number.
func appendTTL(out []byte, exp, now int64) []byte {
	if exp == 0 {
		return append(out, "-1"...)
	}
	return strconv.AppendUint(out, uint64(uint32(unixSec(exp)-unixSec(now))), 10)
}

// appendMetaKey appends a k flag: the key, or with bin its base64 and a b.
func appendMetaKey[K string | []byte](out []byte, key K, bin bool) []byte {
	out = append(out, " k"...)
	if !bin {
		return append(out, key...)
	}
	out = appendBase64(out, key)
	return append(out, " b"...)
}

const b64alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// appendBase64 appends src in standard base64 with padding, as memcached's
// base64_encode writes it.
func appendBase64[K string | []byte](out []byte, src K) []byte {
	i := 0
	for ; i+3 <= len(src); i += 3 {
		v := uint(src[i])<<16 | uint(src[i+1])<<8 | uint(src[i+2])
		out = append(out, b64alphabet[v>>18], b64alphabet[v>>12&63], b64alphabet[v>>6&63], b64alphabet[v&63])
	}
	switch len(src) - i {
	case 1:
		v := uint(src[i]) << 16
		out = append(out, b64alphabet[v>>18], b64alphabet[v>>12&63], '=', '=')
	case 2:
		v := uint(src[i])<<16 | uint(src[i+1])<<8
		out = append(out, b64alphabet[v>>18], b64alphabet[v>>12&63], b64alphabet[v>>6&63], '=')
	}
	return out
}

// appendOpaque appends an O flag token, or reports it too long.
func appendOpaque(out, tok []byte) ([]byte, bool) {
	if len(tok) > metaMaxOpaqueLen {
		return out, false
	}
	out = append(out, ' ')
	return append(out, tok...), true
}

// metaGet runs mg. As a write (N, R or T) it may create the item, change
// its TTL and record a win token; as a read it changes nothing but the
// access record.
func (s *Store) metaGet(out []byte, cmd *Command, now int64) []byte {
	m := &cmd.meta
	flags := cmd.toks[m.first:]
	write := cmd.metaIsWrite()
	key := cmd.Key()
	var it *item
	if write {
		it = s.lookup(key, now)
	} else {
		it = s.peek(key, now)
	}
	created := false
	if it == nil && m.has('N') {
		if nit, err := s.put(key, nil, nil, 0, 0, now); err == nil {
			it, created = nit, true
			if m.has('E') {
				it.cas = m.e
			}
		}
	}
	start := len(out)
	if it == nil {
		s.stats.cmdGet.Add(1)
		s.stats.getMisses.Add(1)
		out = append(out, "EN"...)
		for _, tok := range flags {
			switch tok[0] {
			case 'O':
				var ok bool
				if out, ok = appendOpaque(out, tok); !ok {
					return AppendError(out[:start], errMetaOpaqueTooLong)
				}
			case 'k':
				out = appendMetaKey(out, key, m.has('b'))
			}
		}
		if m.has('q') {
			return out[:start]
		}
		return append(out, '\r', '\n')
	}
	// memcached bumps an item when it fetches it, unless it has to read the
	// fetched bit or the access time first (h, l) or change the item: then
	// after the reply, if there was no error.
	locked := write || m.has('h') || m.has('l')
	bump := !m.has('u')
	if bump && !locked {
		it.acc.bump(now)
	}
	if m.has('v') {
		out = append(out, "VA "...)
		out = strconv.AppendInt(out, int64(len(it.value)), 10)
	} else {
		out = append(out, "HD"...)
	}
	won, touched := false, false
	for _, tok := range flags {
		switch tok[0] {
		case 'T':
			touched = true
			it.exp = ExpiryTime(m.t, now) // as touchItem, on the item in hand
		case 'N':
			if created {
				it.exp = ExpiryTime(m.n, now)
				won = true
			}
		case 'R':
			// A TTL below R's wins; R 0 or negative never does.
			rt := ExpiryTime(m.r, now)
			if !it.tokenSent() && !created && it.exp != 0 && rt != 0 && rt != math.MinInt64 &&
				unixSec(it.exp) < unixSec(rt) {
				won = true
			}
		case 's':
			out = append(out, " s"...)
			out = strconv.AppendInt(out, int64(len(it.value)), 10)
		case 't':
			out = append(out, " t"...)
			out = appendTTL(out, it.exp, now)
		case 'c':
			out = append(out, " c"...)
			out = strconv.AppendUint(out, it.cas, 10)
		case 'f':
			out = append(out, " f"...)
			out = strconv.AppendUint(out, uint64(it.flags), 10)
		case 'l':
			out = append(out, " l"...)
			out = strconv.AppendUint(out, uint64(uint32(unixSec(now)-unixSec(it.acc.atime.Load()))), 10)
		case 'h':
			if it.acc.has(accFetched) {
				out = append(out, " h1"...)
			} else {
				out = append(out, " h0"...)
			}
		case 'O':
			var ok bool
			if out, ok = appendOpaque(out, tok); !ok {
				return AppendError(out[:start], errMetaOpaqueTooLong)
			}
		case 'k':
			out = appendMetaKey(out, it.key, it.meta&itemBinaryKey != 0)
		}
	}
	sent, stale := it.tokenSent(), it.meta&itemStale != 0
	if stale && !sent {
		// The first fetch of a stale item wins it.
		if write || it.acc.claimWin() {
			won = true
		} else {
			sent = true // another read of this replica won it meanwhile
		}
	}
	if sent {
		out = append(out, " Z"...)
	}
	if stale {
		out = append(out, " X"...)
	}
	if won {
		out = append(out, " W"...)
	}
	if write && (won || stale) {
		// Deterministic on every replica: a stale item's token is sent
		// after any write fetch, whoever won it.
		it.meta |= itemTokenSent
	}
	out = append(out, '\r', '\n')
	if m.has('v') {
		out = append(out, it.value...)
		out = append(out, '\r', '\n')
	}
	if bump && locked {
		it.acc.bump(now)
	}
	if touched {
		s.stats.cmdTouch.Add(1)
		s.stats.touchHits.Add(1)
	} else {
		s.stats.cmdGet.Add(1)
		s.stats.getHits.Add(1)
	}
	return out
}

// metaSet runs ms in its modes: set (S, the default), add (E), replace
// (R), append (A), prepend (P). With C, set and replace compare the CAS
// value, and with I a CAS value older than the item's stores the value as
// stale; append and prepend compare it if it is not 0; add ignores it.
func (s *Store) metaSet(out []byte, cmd *Command, now int64) []byte {
	m := &cmd.meta
	s.stats.cmdSet.Add(1)
	key := cmd.Key()
	old := s.lookup(key, now)
	mode := m.mode
	if mode == 0 {
		mode = 'S'
	}
	casMode := m.has('C') && (mode == 'S' || mode == 'R')
	var reqCAS uint64
	if m.has('C') {
		reqCAS = m.c
	}
	code := "NS"
	store, stale := false, false
	value, flags, exp := cmd.Value, m.f, ExpiryTime(m.t, now)
	switch {
	case old == nil && casMode:
		code = "NF"
		s.stats.casMisses.Add(1)
	case old == nil:
		store = mode == 'S' || mode == 'E'
	case casMode:
		switch {
		case reqCAS != 0 && reqCAS == old.cas:
			store = true
			s.stats.casHits.Add(1)
		case reqCAS != 0 && m.has('I') && reqCAS < old.cas:
			// Stored, but stale, keeping the item's TTL and win token.
			store, stale, exp = true, true, old.exp
			s.stats.casHits.Add(1)
		default:
			code = "EX"
			s.stats.casBadval.Add(1)
		}
	case mode == 'E':
		old.acc.atime.Store(now) // memcached's add bumps the item it found
	case mode == 'A' || mode == 'P':
		if reqCAS != 0 && reqCAS != old.cas {
			code = "EX"
			break
		}
		store, flags, exp = true, old.flags, old.exp
		joined := make([]byte, 0, len(old.value)+len(value))
		if mode == 'A' {
			joined = append(append(joined, old.value...), value...)
		} else {
			joined = append(append(joined, value...), old.value...)
		}
		value = joined
	default: // set, replace
		store = true
	}
	var cas uint64
	if store {
		var oldMeta uint8
		var oldAcc uint32
		if old != nil {
			oldMeta, oldAcc = old.meta, old.acc.bits.Load()
		}
		it, err := s.put(key, old, value, flags, exp, now)
		if err != nil {
			return AppendError(out, err)
		}
		switch {
		case stale:
			it.meta = itemStale | oldMeta&itemTokenSent
			it.acc.bits.Store(oldAcc & accWon)
		case mode != 'A' && mode != 'P' && m.has('b'):
			// An appended item is a new one in memcached, without the
			// binary key mark.
			it.meta = itemBinaryKey
		}
		if stale && m.has('b') {
			it.meta |= itemBinaryKey
		}
		if m.has('E') {
			it.cas = m.e
		}
		cas, code = it.cas, "HD"
		if m.has('q') {
			return out
		}
	}
	out = append(out, code...)
	for _, tok := range cmd.toks[m.first:] {
		switch tok[0] {
		case 'O':
			out = append(out, ' ')
			out = append(out, tok...)
		case 'k':
			out = appendMetaKey(out, key, m.has('b'))
		case 'c':
			out = append(out, " c"...)
			out = strconv.AppendUint(out, cas, 10)
		}
	}
	return append(out, '\r', '\n')
}

// recas gives an item a new CAS value (E's, or the next one) in place, a
// write that moves it to the back of the write order.
func (s *Store) recas(it *item, m *metaCmd) {
	s.cas++
	it.seq, it.cas = s.cas, s.cas
	if m.has('E') {
		it.cas = m.e
	}
	s.pushOrder(it)
}

// metaDelete runs md: delete, or with I mark stale (a new CAS value, the
// win token free again, a new TTL with T).
func (s *Store) metaDelete(out []byte, cmd *Command, now int64) []byte {
	m := &cmd.meta
	key := cmd.Key()
	code := "NF"
	if it := s.lookup(key, now); it == nil {
		s.stats.deleteMisses.Add(1)
	} else if m.has('C') && it.cas != m.c {
		code = "EX"
		s.stats.deleteMisses.Add(1)
	} else {
		code = "HD"
		if m.has('I') {
			if m.has('T') {
				it.exp = ExpiryTime(m.t, now)
			}
			it.meta = it.meta&^itemTokenSent | itemStale
			it.acc.bits.And(^accWon)
			s.recas(it, m)
		} else {
			s.remove(it)
			s.stats.deleteHits.Add(1)
		}
		if m.has('q') {
			return out
		}
	}
	out = append(out, code...)
	for _, tok := range cmd.toks[m.first:] {
		switch tok[0] {
		case 'O':
			out = append(out, ' ')
			out = append(out, tok...)
		case 'k':
			out = appendMetaKey(out, key, m.has('b'))
		}
	}
	return append(out, '\r', '\n')
}

// metaArith runs ma: incr (I, +, the default) or decr (D, -) by D (1 by
// default), with N creating a missing item with the value J.
func (s *Store) metaArith(out []byte, cmd *Command, now int64) []byte {
	m := &cmd.meta
	key := cmd.Key()
	incr := m.mode != 'D' && m.mode != '-'
	delta := uint64(1)
	if m.has('D') {
		delta = m.d
	}
	var numBuf [64]byte
	var num []byte
	code := ""
	// inPlace: memcached changed the item itself, which T then changes
	// too; else it made a new item and T changes the old one, to no effect
	// but on the t after it.
	created, inPlace, quiet := false, false, false
	it := s.lookup(key, now)
	switch {
	case it == nil && m.has('N'):
		num = strconv.AppendUint(numBuf[:0], m.j, 10)
		nit, err := s.put(key, nil, num, 0, 0, now)
		if err != nil {
			return AppendError(out, errMetaVivifyOOM)
		}
		it, created = nit, true
		if m.has('E') {
			it.cas = m.e
		}
	case it == nil:
		code = "NF"
		if incr {
			s.stats.incrMisses.Add(1)
		} else {
			s.stats.decrMisses.Add(1)
		}
	case len(it.value) == 0:
		return AppendError(out, ErrNonNumeric)
	case m.has('C') && m.c != 0 && m.c != it.cas:
		code = "EX"
		it = nil
	default:
		// The number rules of incr and decr (Store.arith).
		v, ok := parseCounter(it.value)
		if !ok {
			return AppendError(out, ErrNonNumeric)
		}
		switch {
		case incr:
			v += delta
			s.stats.incrHits.Add(1)
		case delta > v:
			v = 0
			s.stats.decrHits.Add(1)
		default:
			v -= delta
			s.stats.decrHits.Add(1)
		}
		num = strconv.AppendUint(numBuf[:0], v, 10)
		// memcached rewrites a number in place when it fits, padded with
		// spaces; a longer one makes a new item.
		value := num
		for len(value) < len(it.value) {
			value = append(value, ' ')
		}
		inPlace = len(value) <= len(it.value)
		nit, err := s.putCounter(key, it, value, now)
		if err != nil {
			return AppendError(out, errMetaArithOOM)
		}
		it = nit
		if m.has('E') {
			it.cas = m.e
		}
		quiet = m.has('q')
	}
	start := len(out)
	var exp int64 // the TTL the reply reports
	if it == nil {
		out = append(out, code...)
	} else if exp = it.exp; m.has('v') {
		out = append(out, "VA "...)
		out = strconv.AppendInt(out, int64(len(num)), 10)
	} else {
		out = append(out, "HD"...)
	}
	for _, tok := range cmd.toks[m.first:] {
		switch tok[0] {
		case 'O':
			var ok bool
			if out, ok = appendOpaque(out, tok); !ok {
				return AppendError(out[:start], errMetaOpaqueTooLong)
			}
		case 'k':
			out = appendMetaKey(out, key, m.has('b'))
		}
		if it == nil {
			continue
		}
		switch tok[0] {
		case 'c':
			out = append(out, " c"...)
			out = strconv.AppendUint(out, it.cas, 10)
		case 't':
			out = append(out, " t"...)
			out = appendTTL(out, exp, now)
		case 'T':
			exp = ExpiryTime(m.t, now)
			if created || inPlace {
				it.exp = exp
			}
		case 'N':
			if created {
				exp = ExpiryTime(m.n, now)
				it.exp = exp
			}
		}
	}
	if quiet {
		return out[:start]
	}
	if it != nil && m.has('v') {
		out = append(out, '\r', '\n')
		out = append(out, num...)
	}
	return append(out, '\r', '\n')
}

// putCounter stores the new value of incr, decr or ma. memcached rewrites
// the number in place when it is no longer than the old value (Store.arith
// pads it), and the item keeps its meta state and access record; a longer
// number makes a new item.
func (s *Store) putCounter(key []byte, old *item, value []byte, now int64) (*item, error) {
	inPlace := len(value) <= len(old.value)
	meta, acc := old.meta, old.acc.bits.Load()
	it, err := s.put(key, old, value, old.flags, old.exp, now)
	if err == nil && inPlace {
		it.meta = meta
		it.acc.bits.Store(acc) // accessed now, as put recorded
	}
	return it, err
}

// memcached's default slab classes (-n 48 -f 1.25, 1 MB pages): the chunk
// sizes of classes 1 to 39, for me's cls.
var slabClassSizes = [...]int{96, 120, 152, 192, 240, 304, 384, 480, 600, 752,
	944, 1184, 1480, 1856, 2320, 2904, 3632, 4544, 5680, 7104, 8880, 11104,
	13880, 17352, 21696, 27120, 33904, 42384, 52984, 66232, 82792, 103496,
	129376, 161720, 202152, 252696, 315872, 394840, 524288}

// memcachedItemSize is the size memcached gives an item: a 48-byte header,
// the key and a NUL, the value and its "\r\n", the flags unless 0, the CAS.
func memcachedItemSize(it *item) int {
	n := 48 + len(it.key) + 1 + len(it.value) + 2 + 8
	if it.flags != 0 {
		n += 4
	}
	return n
}

// metaDebug runs me: memcached's exp (the negated TTL, -1 for none), la,
// cas, fetch, and cls and size as memcached would store the item.
func (s *Store) metaDebug(out []byte, cmd *Command, now int64) []byte {
	it := s.peek(cmd.Key(), now)
	if it == nil {
		return append(out, "EN\r\n"...)
	}
	out = append(out, "ME "...)
	if it.meta&itemBinaryKey != 0 {
		out = appendBase64(out, it.key)
	} else {
		out = append(out, it.key...)
	}
	out = append(out, " exp="...)
	if it.exp == 0 {
		out = append(out, "-1"...)
	} else {
		out = strconv.AppendInt(out, int64(int32(unixSec(now)-unixSec(it.exp))), 10)
	}
	out = append(out, " la="...)
	out = strconv.AppendUint(out, uint64(uint32(unixSec(now)-unixSec(it.acc.atime.Load()))), 10)
	out = append(out, " cas="...)
	out = strconv.AppendUint(out, it.cas, 10)
	if it.acc.has(accFetched) {
		out = append(out, " fetch=yes"...)
	} else {
		out = append(out, " fetch=no"...)
	}
	size := memcachedItemSize(it)
	cls := len(slabClassSizes)
	for i, sz := range slabClassSizes {
		if size <= sz {
			cls = i + 1
			break
		}
	}
	out = append(out, " cls="...)
	out = strconv.AppendInt(out, int64(cls), 10)
	out = append(out, " size="...)
	out = strconv.AppendInt(out, int64(size), 10)
	return append(out, '\r', '\n')
}
