package memcache

import (
	"bufio"
	"errors"
	"strconv"
	"strings"
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

var statusLines = [...][]byte{
	StatusStored:    []byte("STORED\r\n"),
	StatusNotStored: []byte("NOT_STORED\r\n"),
	StatusExists:    []byte("EXISTS\r\n"),
	StatusNotFound:  []byte("NOT_FOUND\r\n"),
	StatusDeleted:   []byte("DELETED\r\n"),
	StatusTouched:   []byte("TOUCHED\r\n"),
	StatusOK:        []byte("OK\r\n"),
	StatusEnd:       []byte("END\r\n"),
}

func (s Status) String() string {
	if int(s) < len(statusLines) {
		l := statusLines[s]
		return string(l[:len(l)-2])
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// WriteStatus writes a status line such as STORED or END.
func WriteStatus(w *bufio.Writer, s Status) error {
	_, err := w.Write(statusLines[s])
	return err
}

// maxValueHeader bounds "VALUE <key> <flags> <bytes> <cas>\r\n".
const maxValueHeader = len("VALUE ") + MaxKeyLen + 3*21 + 2

// scratch returns an empty slice with room for n bytes inside w's buffer, so
// a reply line can be formatted without allocating. It flushes w if needed.
func scratch(w *bufio.Writer, n int) ([]byte, error) {
	if w.Available() < n && w.Buffered() > 0 {
		if err := w.Flush(); err != nil {
			return nil, err
		}
	}
	return w.AvailableBuffer(), nil
}

// WriteValue writes one item of a get/gat reply: the VALUE line, the data
// block and its "\r\n". withCAS adds the cas field, as gets/gats answer.
// A key longer than MaxKeyLen is the caller's bug; it is written as is.
func WriteValue(w *bufio.Writer, key []byte, flags uint32, value []byte, cas uint64, withCAS bool) error {
	b, err := scratch(w, maxValueHeader)
	if err != nil {
		return err
	}
	b = append(b, "VALUE "...)
	b = append(b, key...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(flags), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(value)), 10)
	if withCAS {
		b = append(b, ' ')
		b = strconv.AppendUint(b, cas, 10)
	}
	b = append(b, '\r', '\n')
	if _, err := w.Write(b); err != nil {
		return err
	}
	if _, err := w.Write(value); err != nil {
		return err
	}
	_, err = w.WriteString("\r\n")
	return err
}

// WriteUint writes a number on its own line, the reply to incr and decr.
func WriteUint(w *bufio.Writer, v uint64) error {
	b, err := scratch(w, 22)
	if err != nil {
		return err
	}
	b = strconv.AppendUint(b, v, 10)
	b = append(b, '\r', '\n')
	_, err = w.Write(b)
	return err
}

// WriteVersion writes "VERSION <v>".
func WriteVersion(w *bufio.Writer, v string) error {
	if _, err := w.WriteString("VERSION "); err != nil {
		return err
	}
	if _, err := w.WriteString(v); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

// WriteError writes the reply for err: a *ProtocolError's own line, or for
// any other error SERVER_ERROR followed by its text on one line.
func WriteError(w *bufio.Writer, err error) error {
	if pe, ok := err.(*ProtocolError); ok { // the common case, without allocating
		_, werr := w.Write(pe.reply)
		return werr
	}
	var pe *ProtocolError
	if errors.As(err, &pe) {
		_, werr := w.Write(pe.reply)
		return werr
	}
	msg := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, err.Error())
	if _, werr := w.WriteString("SERVER_ERROR "); werr != nil {
		return werr
	}
	if _, werr := w.WriteString(msg); werr != nil {
		return werr
	}
	_, werr := w.WriteString("\r\n")
	return werr
}
