package memcache

// ErrorKind is the family of a protocol error reply.
type ErrorKind uint8

const (
	// KindError is answered with "ERROR": an unknown command or one with the
	// wrong number of tokens.
	KindError ErrorKind = iota + 1
	// KindClient is answered with "CLIENT_ERROR <msg>": the command was
	// recognised but malformed.
	KindClient
	// KindServer is answered with "SERVER_ERROR <msg>": the command was valid
	// but the server cannot carry it out.
	KindServer
)

// ProtocolError is an error that has a protocol reply. The parser and the
// Store return the package's sentinel values, so callers may compare with ==
// or errors.Is; WriteError writes the reply.
type ProtocolError struct {
	Kind ErrorKind
	// Msg is the text after CLIENT_ERROR or SERVER_ERROR.
	Msg string
	// Close means the connection cannot go on after the reply, because the
	// parser no longer knows where the next command starts.
	Close bool

	reply []byte // the full reply line, precomputed
}

func newProtocolError(kind ErrorKind, msg string, closeConn bool) *ProtocolError {
	e := &ProtocolError{Kind: kind, Msg: msg, Close: closeConn}
	switch kind {
	case KindError:
		e.reply = []byte("ERROR\r\n")
	case KindClient:
		e.reply = []byte("CLIENT_ERROR " + msg + "\r\n")
	default:
		e.reply = []byte("SERVER_ERROR " + msg + "\r\n")
	}
	return e
}

// Error returns the reply line, without its terminator, prefixed with the
// package name.
func (e *ProtocolError) Error() string {
	return "memcache: " + string(e.reply[:len(e.reply)-2])
}

// Reply returns the bytes to send to the client, "\r\n" included. The slice
// is shared: do not modify it.
func (e *ProtocolError) Reply() []byte { return e.reply }

// The protocol errors. Their texts are memcached's, except ErrLineTooLong
// and ErrOutOfMemory, where memcached closes the connection or evicts.
var (
	ErrUnknownCommand = newProtocolError(KindError, "", false)
	ErrBadFormat      = newProtocolError(KindClient, "bad command line format", false)
	ErrDeleteUsage    = newProtocolError(KindClient, "bad command line format.  Usage: delete <key> [noreply]", false)
	ErrBadDataChunk   = newProtocolError(KindClient, "bad data chunk", false)
	ErrInvalidExptime = newProtocolError(KindClient, "invalid exptime argument", false)
	ErrInvalidDelta   = newProtocolError(KindClient, "invalid numeric delta argument", false)
	ErrNonNumeric     = newProtocolError(KindClient, "cannot increment or decrement non-numeric value", false)
	ErrLineTooLong    = newProtocolError(KindClient, "line too long", true)
	ErrTooLarge       = newProtocolError(KindServer, "object too large for cache", false)
	ErrOutOfMemory    = newProtocolError(KindServer, "out of memory storing object", false)
)

// AppendCommandError appends the reply a command gets for err (a parser or
// store error) in the command's protocol: nothing for a text command that
// asked for no reply; binary commands, quiet ones included, always get
// their errors, as memcached sends them.
func AppendCommandError(out []byte, cmd *Command, err error) []byte {
	switch {
	case cmd.Proto == ProtoBinary:
		return appendBinaryError(out, cmd, err)
	case cmd.NoReply:
		return out
	}
	return AppendError(out, err)
}

// AppendFailure appends a server's own error for cmd, one that is not the
// store's: for a text command "SERVER_ERROR <msg>", or nothing after
// noreply (the client reads no reply to it, and one would be taken for the
// next command's); for a binary one, quiet or not, a response with status
// Temporary failure and msg as its body.
func AppendFailure(out []byte, cmd *Command, msg string) []byte {
	switch {
	case cmd.Proto == ProtoBinary:
		return appendBinaryFailure(out, cmd, msg)
	case cmd.NoReply:
		return out
	}
	return AppendServerError(out, msg)
}
