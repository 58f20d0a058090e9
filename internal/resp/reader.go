package resp

import (
	"bytes"
	"io"
	"math"
)

// Default limits, Redis's own: proto-max-bulk-len, the multibulk count
// Redis accepted before 7.0, and PROTO_INLINE_MAX_SIZE.
const (
	DefaultMaxBulk   = 512 << 20
	DefaultMaxArgs   = 1024 * 1024
	DefaultMaxInline = 64 << 10
)

const (
	initialBufSize = 16 << 10
	// minRead is the least free space Fill offers to one Read, so that a
	// nearly full buffer is grown rather than read into a byte at a time.
	minRead = 4 << 10
	// shrinkAbove is the buffer size above which Fill gives memory back once
	// the command that needed it is gone, so an idle connection that once
	// received a large value does not keep it.
	shrinkAbove = 1 << 20
)

// Limits bound what one command may hold. A zero or negative field takes
// its default.
type Limits struct {
	MaxBulk   int // longest bulk argument (default 512 MiB, Redis's proto-max-bulk-len)
	MaxArgs   int // most arguments of one multibulk command (default 1024*1024)
	MaxInline int // longest inline command line (default 64 KiB)
}

func (l Limits) withDefaults() Limits {
	if l.MaxBulk <= 0 {
		l.MaxBulk = DefaultMaxBulk
	}
	if l.MaxArgs <= 0 {
		l.MaxArgs = DefaultMaxArgs
	}
	if l.MaxInline <= 0 {
		l.MaxInline = DefaultMaxInline
	}
	return l
}

// ProtocolError is a malformed or over-limit command. Its message is the
// error reply Redis 7 sends before closing the connection (without the
// leading '-' and the CRLF), so a server can pass it to AppendError as is.
// After one, the stream cannot be resynchronised: the Reader keeps
// returning it.
type ProtocolError struct {
	msg string
}

// Error returns the Redis error reply text, e.g.
// "ERR Protocol error: invalid bulk length".
func (e *ProtocolError) Error() string { return e.msg }

var (
	errMultibulkLen   = &ProtocolError{"ERR Protocol error: invalid multibulk length"}
	errBulkLen        = &ProtocolError{"ERR Protocol error: invalid bulk length"}
	errInlineTooBig   = &ProtocolError{"ERR Protocol error: too big inline request"}
	errMbulkCountBig  = &ProtocolError{"ERR Protocol error: too big mbulk count string"}
	errBulkCountBig   = &ProtocolError{"ERR Protocol error: too big bulk count string"}
	errUnbalanced     = &ProtocolError{"ERR Protocol error: unbalanced quotes in request"}
	errBulkNotCRLF    = &ProtocolError{"ERR Protocol error: bulk argument not followed by CRLF"}
	errDollarExpected [256]*ProtocolError
)

func init() {
	for c := range errDollarExpected {
		b := byte(c)
		// Redis formats the byte with %c and then turns CR and LF into
		// spaces so that the reply stays one line.
		if b == '\r' || b == '\n' {
			b = ' '
		}
		errDollarExpected[c] = &ProtocolError{"ERR Protocol error: expected '$', got '" + string([]byte{b}) + "'"}
	}
}

// span locates one argument of the multibulk command being parsed, relative
// to the command's start, so that it survives Fill moving the buffer.
type span struct{ off, n int }

// Reader parses RESP2 commands, multibulk and inline, from a connection.
// Fill does the I/O and Next parses; every argument Next returns aliases
// the Reader's buffer, so parsing allocates nothing once the buffer and the
// argument arena have grown to the connection's working size.
//
// A multibulk command that arrives in pieces is parsed incrementally: the
// arguments already complete are remembered as offsets, so each byte is
// examined once however the command is split across reads.
type Reader struct {
	rd  io.Reader
	lim Limits

	buf  []byte
	r, w int // buf[r:w] is unparsed; r is the start of the current command

	// State of a multibulk command in progress at buf[r:].
	inMulti bool
	left    int    // arguments still to read
	pos     int    // parse position, relative to r
	bulk    int    // length of the argument whose header was read, or -1
	spans   []span // arguments complete so far

	// arena holds the argument slices returned since the last Fill; Next
	// only appends to it, so the args of earlier calls stay intact.
	arena [][]byte

	err error // sticky protocol error
}

// NewReader returns a Reader of commands from r under the limits lim.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{rd: r, lim: lim.withDefaults(), bulk: -1}
}

// Buffered reports the number of unparsed bytes held, a partly received
// command included.
func (r *Reader) Buffered() int { return r.w - r.r }

// Fill reads more bytes from the connection with one Read call, which may
// block. Before reading it drops the parsed bytes, moving what is left to the
// front of the buffer, and grows the buffer when it is nearly full or when a
// bulk argument (at most MaxBulk) needs more room. That invalidates every
// argument slice Next returned since the previous Fill.
//
// The bytes read are buffered even when Read also returns an error (io.EOF
// included), which Fill returns; after a protocol error Fill reads nothing
// and returns that error.
func (r *Reader) Fill() error {
	if r.err != nil {
		return r.err
	}
	clear(r.arena) // do not pin old buffers through stale slice headers
	r.arena = r.arena[:0]

	// want is what this Read needs: the unparsed bytes plus room to read.
	// A bulk argument whose header was read needs room for all of it, but
	// the buffer grows toward that by doubling as its bytes arrive, so a
	// mere header cannot make the Reader allocate MaxBulk.
	want := r.w - r.r + minRead
	limit := 0
	if r.inMulti && r.bulk >= 0 {
		limit = max(r.pos+r.bulk+2, want)
	}
	switch {
	case want > len(r.buf):
		size := max(2*len(r.buf), initialBufSize, want)
		if limit > 0 && size > limit {
			size = limit
		}
		r.realloc(size)
	case len(r.buf) > shrinkAbove && max(2*want, limit, initialBufSize) < len(r.buf)/4:
		r.realloc(max(2*want, limit, initialBufSize))
	case r.r > 0:
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}

	n, err := r.rd.Read(r.buf[r.w:])
	if n > 0 {
		r.w += n
	}
	return err
}

// realloc moves the unparsed bytes to the front of a new buffer of size
// bytes.
func (r *Reader) realloc(size int) {
	nb := make([]byte, size)
	r.w = copy(nb, r.buf[r.r:r.w])
	r.r = 0
	r.buf = nb
}

// Next parses the next complete command already buffered, without I/O.
// ok=false with a nil error means no complete command is buffered: call
// Fill. The returned args alias the Reader's buffer and stay valid until the
// next Fill, so a server can parse every complete command of one read (a
// pipelined batch), keep all their args, act on them, and only then Fill
// again; args of successive calls never overlap. Like Redis, Next skips
// empty inline lines and multibulk commands with a count of zero or less.
// A malformed command gives a *ProtocolError, returned from then on.
func (r *Reader) Next() (args [][]byte, ok bool, err error) {
	if r.err != nil {
		return nil, false, r.err
	}
	for {
		if !r.inMulti {
			if r.r == r.w {
				return nil, false, nil
			}
			var skip bool
			if r.buf[r.r] == '*' {
				skip, ok, err = r.startMulti()
			} else {
				args, skip, ok, err = r.inline()
			}
			if err != nil {
				r.err = err
				return nil, false, err
			}
			if !ok {
				return nil, false, nil
			}
			if skip {
				continue
			}
			if !r.inMulti {
				return args, true, nil
			}
		}
		args, ok, err = r.multi()
		if err != nil {
			r.err = err
		}
		return args, ok, err
	}
}

// line finds the CR that ends the header line starting at buf[start], as
// Redis does: the byte after the CR is skipped unchecked. It returns the
// index of the CR, or ok=false when the line is incomplete. A line longer
// than MaxInline gives tooBig.
func (r *Reader) line(start int, tooBig error) (cr int, ok bool, err error) {
	// Search at most MaxInline+1 bytes so a long incomplete line is not
	// rescanned from its start on every Fill.
	end := min(r.w, start+r.lim.MaxInline+1)
	i := bytes.IndexByte(r.buf[start:end], '\r')
	if i < 0 {
		if r.w-start > r.lim.MaxInline {
			return 0, false, tooBig
		}
		return 0, false, nil
	}
	cr = start + i
	if cr+1 >= r.w {
		return 0, false, nil // the LF (or whatever follows the CR) is not here yet
	}
	return cr, true, nil
}

// startMulti parses the "*<count>" header at buf[r.r:]. skip reports a
// command of no arguments, already consumed.
func (r *Reader) startMulti() (skip, ok bool, err error) {
	cr, ok, err := r.line(r.r, errMbulkCountBig)
	if !ok {
		return false, false, err
	}
	n, valid := parseInt(r.buf[r.r+1 : cr])
	if !valid || n > int64(r.lim.MaxArgs) || n > math.MaxInt32 {
		return false, false, errMultibulkLen
	}
	if n <= 0 {
		r.r = cr + 2
		return true, true, nil
	}
	r.inMulti = true
	r.left = int(n)
	r.pos = cr + 2 - r.r
	r.bulk = -1
	r.spans = r.spans[:0]
	return false, true, nil
}

// multi continues the multibulk command in progress as far as the buffered
// bytes allow.
func (r *Reader) multi() (args [][]byte, ok bool, err error) {
	for r.left > 0 {
		at := r.r + r.pos
		if r.bulk < 0 {
			cr, ok, err := r.line(at, errBulkCountBig)
			if !ok {
				return nil, false, err
			}
			if c := r.buf[at]; c != '$' {
				return nil, false, errDollarExpected[c]
			}
			n, valid := parseInt(r.buf[at+1 : cr])
			if !valid || n < 0 || n > int64(r.lim.MaxBulk) {
				return nil, false, errBulkLen
			}
			r.bulk = int(n)
			r.pos = cr + 2 - r.r
			at = cr + 2
		}
		if r.w-at < r.bulk+2 {
			return nil, false, nil
		}
		// Redis skips these two bytes unchecked; checking them catches a
		// client whose lengths are wrong before it desynchronises the
		// stream.
		if r.buf[at+r.bulk] != '\r' || r.buf[at+r.bulk+1] != '\n' {
			return nil, false, errBulkNotCRLF
		}
		r.spans = append(r.spans, span{r.pos, r.bulk})
		r.pos += r.bulk + 2
		r.bulk = -1
		r.left--
	}
	first := len(r.arena)
	for _, s := range r.spans {
		a := r.r + s.off
		// Full slice expressions, so that appending to one argument
		// cannot overwrite the next.
		r.arena = append(r.arena, r.buf[a:a+s.n:a+s.n])
	}
	r.r += r.pos
	r.inMulti = false
	last := len(r.arena)
	return r.arena[first:last:last], true, nil
}

// inline parses an inline command line at buf[r.r:], ended by LF with an
// optional CR before it. skip reports a line of no arguments.
func (r *Reader) inline() (args [][]byte, skip, ok bool, err error) {
	// A line of MaxInline bytes plus CRLF is allowed; search no further.
	end := min(r.w, r.r+r.lim.MaxInline+2)
	i := bytes.IndexByte(r.buf[r.r:end], '\n')
	if i < 0 {
		if r.w-r.r >= r.lim.MaxInline+2 {
			return nil, false, false, errInlineTooBig
		}
		return nil, false, false, nil
	}
	lf := r.r + i
	line := r.buf[r.r:lf]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if len(line) > r.lim.MaxInline {
		return nil, false, false, errInlineTooBig
	}
	first := len(r.arena)
	var valid bool
	r.arena, valid = splitArgs(r.arena, line)
	if !valid {
		r.arena = r.arena[:first]
		return nil, false, false, errUnbalanced
	}
	r.r = lf + 1
	last := len(r.arena)
	if last == first {
		return nil, true, true, nil
	}
	return r.arena[first:last:last], false, true, nil
}

// isSpace reports whether c is white space as C's isspace sees it.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// splitArgs splits an inline line the way redis-cli and Redis split them:
// white space separates arguments; double quotes allow \n \r \t \b \a \\ \"
// and \xHH escapes, single quotes allow \'; a closing quote must be followed
// by white space or the end of the line. It appends the arguments to dst
// and reports false on unbalanced quotes.
//
// Unescaping is done in place: an argument never takes more bytes than its
// source text, so the write position never passes the read position, and
// the line is consumed anyway. Unlike Redis, which reads the line as a C
// string, a NUL byte is an ordinary byte here.
func splitArgs(dst [][]byte, line []byte) ([][]byte, bool) {
	n := len(line)
	at := func(i int) byte {
		if i < n {
			return line[i]
		}
		return 0
	}
	p := 0
	for {
		for p < n && isSpace(line[p]) {
			p++
		}
		if p == n {
			return dst, true
		}
		start, d := p, p
		inDouble, inSingle := false, false
	token:
		for {
			switch {
			case inDouble:
				if p == n {
					return dst, false
				}
				c := line[p]
				switch {
				case c == '\\' && at(p+1) == 'x':
					hi, ok1 := hexVal(at(p + 2))
					lo, ok2 := hexVal(at(p + 3))
					if ok1 && ok2 {
						line[d] = hi<<4 | lo
						d++
						p += 4
						continue
					}
					line[d] = 'x'
					d++
					p += 2
				case c == '\\' && p+1 < n:
					e := line[p+1]
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					line[d] = e
					d++
					p += 2
				case c == '"':
					if p+1 < n && !isSpace(line[p+1]) {
						return dst, false
					}
					p++
					break token
				default:
					line[d] = c
					d++
					p++
				}
			case inSingle:
				if p == n {
					return dst, false
				}
				c := line[p]
				switch {
				case c == '\\' && at(p+1) == '\'':
					line[d] = '\''
					d++
					p += 2
				case c == '\'':
					if p+1 < n && !isSpace(line[p+1]) {
						return dst, false
					}
					p++
					break token
				default:
					line[d] = c
					d++
					p++
				}
			default:
				if p == n {
					break token
				}
				switch c := line[p]; c {
				case ' ', '\n', '\r', '\t':
					p++
					break token
				case '"':
					inDouble = true
					p++
				case '\'':
					inSingle = true
					p++
				default:
					line[d] = c
					d++
					p++
				}
			}
		}
		dst = append(dst, line[start:d:d])
	}
}

// parseInt parses a decimal integer as strictly as Redis's string2ll: an
// optional minus sign, no plus sign, no spaces, no leading zeros, no "-0",
// and no overflow of int64.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (math.MaxUint64-9)/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}
