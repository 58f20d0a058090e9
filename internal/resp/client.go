package resp

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
)

// AppendCommand appends args as a RESP2 multibulk command, the form clients
// send.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = AppendArrayLen(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// maxReplyDepth bounds nested arrays in ReadReply.
const maxReplyDepth = 64

// ReadReply reads one complete reply of any RESP2 or RESP3 type (an
// attribute counts as a reply of its own) from br and appends
// its raw bytes to dst, nested arrays included: what a client needs to
// compare replies byte for byte or to wait for one. Bulk strings longer
// than maxBulk are refused.
func ReadReply(br *bufio.Reader, dst []byte, maxBulk int) ([]byte, error) {
	return readReply(br, dst, maxBulk, 0)
}

func readReply(br *bufio.Reader, dst []byte, maxBulk, depth int) ([]byte, error) {
	if depth > maxReplyDepth {
		return dst, errors.New("resp: reply nested too deep")
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return dst, fmt.Errorf("resp: read reply: %w", err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return dst, fmt.Errorf("resp: malformed reply line %q", line)
	}
	dst = append(dst, line...)
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		// RESP3's null, double, boolean and big number are one line too.
		return dst, nil
	case '$', '=', '!':
		// RESP3's verbatim string and blob error are sized like a bulk.
		n, err := strconv.Atoi(string(body))
		if err != nil || n < -1 || n > maxBulk {
			return dst, fmt.Errorf("resp: bad bulk length %q", body)
		}
		if n == -1 {
			return dst, nil
		}
		start := len(dst)
		dst = append(dst, make([]byte, n+2)...)
		if _, err := ioReadFull(br, dst[start:]); err != nil {
			return dst, fmt.Errorf("resp: read bulk: %w", err)
		}
		if dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
			return dst, errors.New("resp: bulk string not terminated by CRLF")
		}
		return dst, nil
	case '*', '~', '>', '%', '|':
		// RESP3's set and push are arrays; a map or an attribute holds
		// twice its count.
		n, err := strconv.Atoi(string(body))
		if err != nil || n < -1 {
			return dst, fmt.Errorf("resp: bad array length %q", body)
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if dst, err = readReply(br, dst, maxBulk, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	default:
		return dst, fmt.Errorf("resp: unknown reply type %q", line[0])
	}
}

func ioReadFull(br *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := br.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
