package memcache

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
)

// Op is a memcached text-protocol command.
type Op uint8

// The commands the parser understands.
const (
	OpNone Op = iota
	OpGet
	OpGets
	OpGat
	OpGats
	OpSet
	OpAdd
	OpReplace
	OpAppend
	OpPrepend
	OpCas
	OpDelete
	OpTouch
	OpIncr
	OpDecr
	OpFlushAll
	OpVersion
	OpVerbosity
	OpQuit
	OpStats

	// Meta commands (meta.go) sit between opMetaFirst and opMetaLast.
	OpMetaGet        // mg
	OpMetaSet        // ms
	OpMetaDelete     // md
	OpMetaArithmetic // ma
	OpMetaNoop       // mn
	OpMetaDebug      // me
	opMetaFirst      = OpMetaGet
	opMetaLast       = OpMetaDebug
)

var opNames = [...]string{
	OpNone: "none", OpGet: "get", OpGets: "gets", OpGat: "gat", OpGats: "gats",
	OpSet: "set", OpAdd: "add", OpReplace: "replace", OpAppend: "append",
	OpPrepend: "prepend", OpCas: "cas", OpDelete: "delete", OpTouch: "touch",
	OpIncr: "incr", OpDecr: "decr", OpFlushAll: "flush_all", OpVersion: "version",
	OpVerbosity: "verbosity", OpQuit: "quit", OpStats: "stats",
	OpMetaGet: "mg", OpMetaSet: "ms", OpMetaDelete: "md", OpMetaArithmetic: "ma",
	OpMetaNoop: "mn", OpMetaDebug: "me",
}

// String returns the command's protocol name.
func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "unknown"
}

// IsStorage reports whether the command carries a data block
// (set, add, replace, append, prepend, cas, ms).
func (o Op) IsStorage() bool { return o >= OpSet && o <= OpCas || o == OpMetaSet }

// IsMeta reports whether the command is one of the meta protocol's
// (mg, ms, md, ma, mn, me).
func (o Op) IsMeta() bool { return o >= opMetaFirst && o <= opMetaLast }

// IsRetrieval reports whether the command answers with VALUE lines
// (get, gets, gat, gats).
func (o Op) IsRetrieval() bool { return o >= OpGet && o <= OpGats }

// Protocol limits. MaxKeyLen is memcached's; the others are defaults of
// Limits.
const (
	MaxKeyLen          = 250
	DefaultMaxLineLen  = 16 << 10
	DefaultMaxValueLen = 1 << 20
	// RelativeExptimeMax is the largest exptime memcached reads as seconds
	// from now; larger values are absolute Unix times.
	RelativeExptimeMax = 60 * 60 * 24 * 30
)

// Limits bound what one command may make the parser hold. With them, a
// connection never buffers more than MaxLineLen+MaxValueLen+2 bytes of input,
// whatever the client sends. Zero fields take the defaults.
type Limits struct {
	// MaxLineLen is the longest command line, without its "\r\n". A longer
	// line is answered with CLIENT_ERROR line too long and ends the
	// connection (there is no safe place to resume parsing).
	MaxLineLen int
	// MaxValueLen is the largest data block. A larger one is read and
	// discarded, then answered with SERVER_ERROR object too large for cache,
	// as memcached does.
	MaxValueLen int
}

func (l Limits) withDefaults() Limits {
	if l.MaxLineLen <= 0 {
		l.MaxLineLen = DefaultMaxLineLen
	}
	if l.MaxValueLen <= 0 {
		l.MaxValueLen = DefaultMaxValueLen
	}
	return l
}

// Command is one parsed command. A Command is meant to be reused across
// Parse calls: its slices alias buffers it owns, which are overwritten by
// the next Parse, so copy anything that must outlive it.
type Command struct {
	// Proto is the protocol the command came in, and its reply goes out in.
	Proto Proto
	Op    Op
	// Keys holds the key of a single-key command, or every key of a
	// retrieval command, in order.
	Keys [][]byte
	// Flags is the client's opaque 32-bit flags word (storage commands).
	Flags uint32
	// Exptime is the expiration as sent: 0 never, negative already expired,
	// up to RelativeExptimeMax seconds from now, else an absolute Unix time
	// in seconds. For flush_all it is the delay in seconds.
	Exptime int64
	// CAS is the compare-and-swap value of a cas command.
	CAS uint64
	// Delta is the amount of incr or decr.
	Delta uint64
	// Value is the data block of a storage command, without "\r\n".
	Value []byte
	// NoReply is set when the command ended with "noreply": the client
	// expects no answer, not even an error. A quiet binary command sets it
	// too, but gets its errors (see BinaryParser).
	NoReply bool

	// Opcode, Opaque and Initial are the binary protocol's (see
	// BinaryParser): the request's opcode (quiet variants included), the
	// word its response echoes, and the initial value of an incr or decr.
	Opcode  Opcode
	Opaque  uint32
	Initial uint64

	line []byte   // the command line, owned
	toks [][]byte // tokens of line
	val  []byte   // backing store of Value, owned
	meta metaCmd  // a meta command's flags (meta.go)
}

// Proto is a memcached wire protocol.
type Proto uint8

// The protocols. Meta commands are part of the text protocol.
const (
	ProtoText Proto = iota
	ProtoBinary
)

// AppendRequest appends the command as its client sent it (a text command:
// its line and data block; a binary one: its packet), for a replica to parse
// again and apply. It must follow a successful Parse.
func (c *Command) AppendRequest(dst []byte) []byte {
	if c.Proto == ProtoBinary {
		return c.appendBinaryRequest(dst)
	}
	dst = append(dst, c.line...)
	dst = append(dst, '\r', '\n')
	if c.Op.IsStorage() {
		dst = append(dst, c.Value...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// Key returns the first key, or nil if the command has none.
func (c *Command) Key() []byte {
	if len(c.Keys) == 0 {
		return nil
	}
	return c.Keys[0]
}

func (c *Command) reset() {
	c.Proto = ProtoText
	c.Op = OpNone
	c.Keys = c.Keys[:0]
	c.Flags = 0
	c.Exptime = 0
	c.CAS = 0
	c.Delta = 0
	c.Value = nil
	c.NoReply = false
	c.Opcode, c.Opaque, c.Initial = 0, 0, 0
}

// Parser reads memcached text-protocol commands from a buffered reader.
// It allocates only while a Command's buffers grow to the largest line and
// value seen, and those are bounded by Limits.
type Parser struct {
	r   *bufio.Reader
	lim Limits
}

// NewParser returns a parser reading from r with the given limits.
func NewParser(r *bufio.Reader, lim Limits) *Parser {
	return &Parser{r: r, lim: lim.withDefaults()}
}

// Limits returns the parser's limits, defaults filled in.
func (p *Parser) Limits() Limits { return p.lim }

// Reset makes the parser read from r, keeping its limits.
func (p *Parser) Reset(r *bufio.Reader) { p.r = r }

// Parse reads the next command into cmd.
//
// A *ProtocolError means the command was malformed; the reader is positioned
// at the next command (exactly as memcached would be), so the caller writes
// the error reply (unless cmd.NoReply) and keeps going, except when
// err.Close is set. Any other error comes from the reader: io.EOF at a
// command boundary, io.ErrUnexpectedEOF inside a command, or a network
// error, and the connection is done.
//
// When the error is ErrTooLarge, cmd.Op and cmd.Keys describe the rejected
// command: memcached drops the existing item of a set that was too large,
// and a server may want to do the same.
func (p *Parser) Parse(cmd *Command) error {
	cmd.reset()
	if err := p.readLine(cmd); err != nil {
		return err
	}
	toks := tokenize(cmd.toks[:0], cmd.line)
	cmd.toks = toks
	if len(toks) == 0 {
		return ErrUnknownCommand
	}
	switch string(toks[0]) {
	case "get":
		return p.retrieval(cmd, OpGet, toks, false)
	case "gets":
		return p.retrieval(cmd, OpGets, toks, false)
	case "gat":
		return p.retrieval(cmd, OpGat, toks, true)
	case "gats":
		return p.retrieval(cmd, OpGats, toks, true)
	case "set":
		return p.storage(cmd, OpSet, toks)
	case "add":
		return p.storage(cmd, OpAdd, toks)
	case "replace":
		return p.storage(cmd, OpReplace, toks)
	case "append":
		return p.storage(cmd, OpAppend, toks)
	case "prepend":
		return p.storage(cmd, OpPrepend, toks)
	case "cas":
		return p.storage(cmd, OpCas, toks)
	case "delete":
		return parseDelete(cmd, toks)
	case "touch":
		return parseTouch(cmd, toks)
	case "incr":
		return parseArith(cmd, OpIncr, toks)
	case "decr":
		return parseArith(cmd, OpDecr, toks)
	case "flush_all":
		return parseFlushAll(cmd, toks)
	case "version":
		cmd.Op = OpVersion
		return nil
	case "verbosity":
		return parseVerbosity(cmd, toks)
	case "quit":
		cmd.Op = OpQuit
		return nil
	case "mg", "ms", "md", "ma", "mn", "me":
		return p.meta(cmd, toks)
	case "stats":
		// The arguments, if any, name a group (settings, items, slabs, ...):
		// the server's to answer.
		cmd.Op = OpStats
		cmd.Keys = append(cmd.Keys, toks[1:]...)
		return nil
	}
	return ErrUnknownCommand
}

// readLine copies the next line, without its terminator, into cmd.line.
// A line ends at "\n"; a "\r" before it is dropped.
func (p *Parser) readLine(cmd *Command) error {
	cmd.line = cmd.line[:0]
	max := p.lim.MaxLineLen + 2 // room for "\r\n"
	for {
		frag, err := p.r.ReadSlice('\n')
		if len(cmd.line)+len(frag) > max {
			return ErrLineTooLong
		}
		cmd.line = append(cmd.line, frag...)
		switch {
		case err == nil:
			n := len(cmd.line) - 1
			if n > 0 && cmd.line[n-1] == '\r' {
				n--
			}
			cmd.line = cmd.line[:n]
			if n > p.lim.MaxLineLen {
				return ErrLineTooLong
			}
			return nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(cmd.line) > 0:
			return io.ErrUnexpectedEOF
		default:
			return err
		}
	}
}

// tokenize splits line at spaces, skipping empty tokens, as memcached does.
// Tabs and other bytes are part of tokens.
func tokenize(dst [][]byte, line []byte) [][]byte {
	for len(line) > 0 {
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			return append(dst, line)
		}
		if i > 0 {
			dst = append(dst, line[:i])
		}
		line = line[i+1:]
	}
	return dst
}

var noreplyTok = []byte("noreply")

func isNoReply(tok []byte) bool { return bytes.Equal(tok, noreplyTok) }

func validKeys(keys [][]byte) bool {
	for _, k := range keys {
		if len(k) > MaxKeyLen {
			return false
		}
	}
	return true
}

// retrieval parses get/gets <key>* and gat/gats <exptime> <key>*.
func (p *Parser) retrieval(cmd *Command, op Op, toks [][]byte, touch bool) error {
	first := 1
	if touch {
		first = 2
	}
	// get needs a key; gat needs its exptime, and without keys answers END,
	// as memcached does.
	if len(toks) < 2 {
		return ErrUnknownCommand
	}
	if touch {
		e, ok := parseInt(toks[1], math.MinInt32, math.MaxInt32)
		if !ok {
			return ErrInvalidExptime
		}
		cmd.Exptime = e
	}
	keys := toks[first:]
	if !validKeys(keys) {
		return ErrBadFormat
	}
	cmd.Op = op
	cmd.Keys = append(cmd.Keys, keys...)
	return nil
}

// storage parses <cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply]
// and reads the data block.
func (p *Parser) storage(cmd *Command, op Op, toks [][]byte) error {
	n := 5 // tokens without noreply
	if op == OpCas {
		n = 6
	}
	if len(toks) != n && len(toks) != n+1 {
		return ErrUnknownCommand
	}
	// memcached decides noreply before validating, so even a malformed
	// command line ending in noreply is answered with silence.
	cmd.NoReply = len(toks) == n+1 && isNoReply(toks[n])
	key := toks[1]
	flags, okF := parseUint(toks[2], math.MaxUint32)
	exp, okE := parseInt(toks[3], math.MinInt32, math.MaxInt32)
	size, okS := parseInt(toks[4], 0, math.MaxInt32)
	var cas uint64
	okC := true
	if op == OpCas {
		cas, okC = parseUint(toks[5], math.MaxUint64)
	}
	if len(key) > MaxKeyLen || !okF || !okE || !okS || !okC {
		// memcached does not skip the data block here: it is read as the
		// next command line, and usually answered with ERROR.
		return ErrBadFormat
	}
	cmd.Op = op
	cmd.Keys = append(cmd.Keys, key)
	cmd.Flags = uint32(flags)
	cmd.Exptime = exp
	cmd.CAS = cas
	if size > int64(p.lim.MaxValueLen) {
		if _, err := p.r.Discard(int(size) + 2); err != nil {
			return unexpected(err)
		}
		return ErrTooLarge
	}
	need := int(size) + 2
	if cap(cmd.val) < need {
		// Grow geometrically, but never past the largest block allowed.
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

// unexpected turns a clean EOF inside a command into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseDelete parses delete <key> [0] [noreply], memcached's rules included:
// the legacy hold time must be 0.
func parseDelete(cmd *Command, toks [][]byte) error {
	if len(toks) < 2 || len(toks) > 4 {
		return ErrUnknownCommand
	}
	if len(toks) > 2 {
		cmd.NoReply = isNoReply(toks[len(toks)-1])
		zero := len(toks[2]) == 1 && toks[2][0] == '0'
		valid := (len(toks) == 3 && (zero || cmd.NoReply)) ||
			(len(toks) == 4 && zero && cmd.NoReply)
		if !valid {
			return ErrDeleteUsage
		}
	}
	if len(toks[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	cmd.Op = OpDelete
	cmd.Keys = append(cmd.Keys, toks[1])
	return nil
}

// parseTouch parses touch <key> <exptime> [noreply].
func parseTouch(cmd *Command, toks [][]byte) error {
	if len(toks) != 3 && len(toks) != 4 {
		return ErrUnknownCommand
	}
	cmd.NoReply = len(toks) == 4 && isNoReply(toks[3])
	if len(toks[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	e, ok := parseInt(toks[2], math.MinInt32, math.MaxInt32)
	if !ok {
		return ErrInvalidExptime
	}
	cmd.Op = OpTouch
	cmd.Keys = append(cmd.Keys, toks[1])
	cmd.Exptime = e
	return nil
}

// parseArith parses incr/decr <key> <delta> [noreply].
func parseArith(cmd *Command, op Op, toks [][]byte) error {
	if len(toks) != 3 && len(toks) != 4 {
		return ErrUnknownCommand
	}
	cmd.NoReply = len(toks) == 4 && isNoReply(toks[3])
	if len(toks[1]) > MaxKeyLen {
		return ErrBadFormat
	}
	d, ok := parseUint(toks[2], math.MaxUint64)
	if !ok {
		return ErrInvalidDelta
	}
	cmd.Op = op
	cmd.Keys = append(cmd.Keys, toks[1])
	cmd.Delta = d
	return nil
}

// parseFlushAll parses flush_all [delay] [noreply].
func parseFlushAll(cmd *Command, toks [][]byte) error {
	if len(toks) > 3 {
		return ErrUnknownCommand
	}
	cmd.NoReply = len(toks) > 1 && isNoReply(toks[len(toks)-1])
	if len(toks) == 3 || (len(toks) == 2 && !cmd.NoReply) {
		d, ok := parseInt(toks[1], math.MinInt32, math.MaxInt32)
		if !ok {
			return ErrInvalidExptime
		}
		cmd.Exptime = d
	}
	cmd.Op = OpFlushAll
	return nil
}

// parseVerbosity parses verbosity <level> [noreply]; the level is ignored.
func parseVerbosity(cmd *Command, toks [][]byte) error {
	if len(toks) != 2 && len(toks) != 3 {
		return ErrUnknownCommand
	}
	cmd.NoReply = isNoReply(toks[len(toks)-1])
	if _, ok := parseUint(toks[1], math.MaxUint32); !ok {
		return ErrBadFormat
	}
	cmd.Op = OpVerbosity
	return nil
}

// parseUint parses an unsigned decimal no larger than max. A leading '+'
// is accepted, as strtoul does.
func parseUint(b []byte, max uint64) (uint64, bool) {
	if len(b) > 0 && b[0] == '+' {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > max/10 {
			return 0, false
		}
		v *= 10
		if d > max-v {
			return 0, false
		}
		v += d
	}
	return v, true
}

// parseInt parses a signed decimal within [min, max].
func parseInt(b []byte, min, max int64) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	limit := uint64(max)
	if neg {
		limit = uint64(-min)
	}
	u, ok := parseUint(b, limit)
	if !ok || len(b) > 0 && b[0] == '+' {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}
