package memcache

import (
	"errors"
	"strconv"
)

// Status is a one-line reply without arguments.
type Status uint8

// The status replies.
const (
	StatusStored Status = iota
	StatusNotStored
	StatusExists
	StatusNotFound
	StatusDeleted
	StatusTouched
	StatusOK
	StatusEnd
)

var statusLines = [...]string{
	StatusStored:    "STORED\r\n",
	StatusNotStored: "NOT_STORED\r\n",
	StatusExists:    "EXISTS\r\n",
	StatusNotFound:  "NOT_FOUND\r\n",
	StatusDeleted:   "DELETED\r\n",
	StatusTouched:   "TOUCHED\r\n",
	StatusOK:        "OK\r\n",
	StatusEnd:       "END\r\n",
}

func (s Status) String() string {
	if int(s) < len(statusLines) {
		l := statusLines[s]
		return l[:len(l)-2]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// Reply writers append one reply to a buffer and return it, so a server
// gathers a pipeline's replies in one reusable slice and writes them at
// once; none of them allocates once the buffer has grown.

// AppendStatus appends a status line such as STORED or END.
func AppendStatus(out []byte, s Status) []byte { return append(out, statusLines[s]...) }

// AppendValue appends one item of a get/gat reply: the VALUE line, the data
// block and its "\r\n". withCAS adds the cas field, as gets/gats answer.
func AppendValue(out, key []byte, flags uint32, value []byte, cas uint64, withCAS bool) []byte {
	out = append(out, "VALUE "...)
	out = append(out, key...)
	out = append(out, ' ')
	out = strconv.AppendUint(out, uint64(flags), 10)
	out = append(out, ' ')
	out = strconv.AppendInt(out, int64(len(value)), 10)
	if withCAS {
		out = append(out, ' ')
		out = strconv.AppendUint(out, cas, 10)
	}
	out = append(out, '\r', '\n')
	out = append(out, value...)
	return append(out, '\r', '\n')
}

// AppendUint appends a number on its own line, the reply to incr and decr.
func AppendUint(out []byte, v uint64) []byte {
	out = strconv.AppendUint(out, v, 10)
	return append(out, '\r', '\n')
}

// AppendVersion appends "VERSION <v>".
func AppendVersion(out []byte, v string) []byte {
	out = append(out, "VERSION "...)
	out = append(out, v...)
	return append(out, '\r', '\n')
}

// AppendStat appends one "STAT <name> <value>" line of a stats reply.
func AppendStat(out []byte, name, value string) []byte {
	out = append(out, "STAT "...)
	out = append(out, name...)
	out = append(out, ' ')
	out = append(out, value...)
	return append(out, '\r', '\n')
}

// AppendError appends the reply for err: a *ProtocolError's own line, or for
// any other error SERVER_ERROR followed by its text on one line (control
// characters replaced by spaces).
func AppendError(out []byte, err error) []byte {
	if pe, ok := err.(*ProtocolError); ok { // the common case, without allocating
		return append(out, pe.reply...)
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return append(out, pe.reply...)
	}
	return AppendServerError(out, err.Error())
}

// AppendServerError appends "SERVER_ERROR <msg>", control characters of msg
// replaced by spaces so that the reply stays one line.
func AppendServerError(out []byte, msg string) []byte {
	out = append(out, "SERVER_ERROR "...)
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < ' ' || c == 0x7f {
			c = ' '
		}
		out = append(out, c)
	}
	return append(out, '\r', '\n')
}
