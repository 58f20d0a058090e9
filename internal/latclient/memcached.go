package latclient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/internal/leaderhint"
)

// memcacheCodec is memcached's text protocol.
//
// Requests:
//
//	set <key> 0 0 <bytes>\r\n<value>\r\n   → STORED\r\n
//	get <key>\r\n                          → VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n, or END\r\n
//
// A miss (END alone) is an answer, as Redis's nil reply is. The preload
// pipelines plain sets and reads their STORED replies: a set ... noreply
// would leave nothing to wait for.
//
// Faults: a replica of the replicated memcached that cannot serve a request
// answers a line starting with SERVER_ERROR gomu:, with the leader hint of
// internal/leaderhint when it knows one:
//
//	SERVER_ERROR gomu: not the leader leader=<id> addr=<host:port>          (a write on a follower)
//	SERVER_ERROR gomu: no leader (election in progress)
//	SERVER_ERROR gomu: this replica is catching up. leader=<id> addr=<host:port>
//	SERVER_ERROR gomu: replication timed out
//	SERVER_ERROR gomu: this replica is paused
//	SERVER_ERROR gomu: this replica is shutting down
//
// "not the leader" counts as a redirect (Redis's -READONLY), the others as
// a TRYAGAIN; either way the request goes to the leader the hint names, or
// to the next replica. Any other SERVER_ERROR, CLIENT_ERROR or ERROR is an
// error reply, counted.
//
// Discovery: stats gomu, answered by a replica with
//
//	STAT gomu_id <id>
//	STAT gomu_leader_id <id>
//	STAT gomu_leader_addr <host:port>
//	STAT gomu_replica_addrs <id>=<host:port>,<id>=<host:port>,...
//	END
//
// and by memcached itself (1.6.18) with ERROR: nothing to learn.
type memcacheCodec struct{}

// maxMemcachedKey is memcached's limit on a key's length.
const maxMemcachedKey = 250

var (
	mcSet         = []byte("set ")
	mcSetFlags    = []byte(" 0 0 ")
	mcGet         = []byte("get ")
	mcCRLF        = []byte("\r\n")
	mcValue       = []byte("VALUE ")
	mcStat        = []byte("STAT ")
	mcEnd         = []byte("END\r\n")
	mcServerError = []byte("SERVER_ERROR")
	mcClientError = []byte("CLIENT_ERROR")
	mcError       = []byte("ERROR")
	mcGomu        = []byte("SERVER_ERROR gomu:")
	mcNotLeader   = []byte("SERVER_ERROR gomu: not the leader")
	mcStatsGomu   = []byte("stats gomu\r\n")
)

func (memcacheCodec) appendSet(dst, key, val []byte) []byte {
	dst = append(dst, mcSet...)
	dst = append(dst, key...)
	dst = append(dst, mcSetFlags...)
	dst = strconv.AppendInt(dst, int64(len(val)), 10)
	dst = append(dst, mcCRLF...)
	dst = append(dst, val...)
	return append(dst, mcCRLF...)
}

func (memcacheCodec) appendGet(dst, key []byte) []byte {
	dst = append(dst, mcGet...)
	dst = append(dst, key...)
	return append(dst, mcCRLF...)
}

// readReply reads one reply: a line (STORED, END, an error, ...), or VALUE
// blocks or STAT lines up to END.
func (memcacheCodec) readReply(br *bufio.Reader, dst []byte) ([]byte, error) {
	multi := false // VALUE or STAT seen: END must follow
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return dst, fmt.Errorf("memcached: reply line longer than %d bytes", br.Size())
			}
			return dst, fmt.Errorf("memcached: read reply: %w", err)
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return dst, fmt.Errorf("memcached: reply line %q not ended by CRLF", line)
		}
		dst = append(dst, line...)
		switch {
		case bytes.HasPrefix(line, mcValue):
			n, ok := valueLen(line)
			if !ok {
				return dst, fmt.Errorf("memcached: malformed %q", bytes.TrimRight(line, "\r\n"))
			}
			at := len(dst)
			dst = slices.Grow(dst, n+2)[:at+n+2]
			if _, err := io.ReadFull(br, dst[at:]); err != nil {
				return dst, fmt.Errorf("memcached: read value: %w", err)
			}
			if dst[len(dst)-2] != '\r' || dst[len(dst)-1] != '\n' {
				return dst, errors.New("memcached: value not followed by CRLF")
			}
			multi = true
		case bytes.HasPrefix(line, mcStat):
			multi = true
		case multi && !bytes.Equal(line, mcEnd):
			return dst, fmt.Errorf("memcached: %q where END was due", bytes.TrimRight(line, "\r\n"))
		default:
			return dst, nil
		}
	}
}

// valueLen reads <bytes> of VALUE <key> <flags> <bytes> [<cas>]\r\n, at
// most maxBulk.
func valueLen(line []byte) (int, bool) {
	rest := line[len(mcValue) : len(line)-2]
	var tok []byte
	for range 3 { // key, flags, bytes
		rest = bytes.TrimLeft(rest, " ")
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		tok, rest = rest[:j], rest[j:]
	}
	if len(tok) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > maxBulk {
			return 0, false
		}
	}
	return n, true
}

func (memcacheCodec) classify(reply []byte) (fault, bool) {
	if f := parseMemcacheFault(reply); f.kind != noFault {
		return f, false
	}
	return fault{}, isMemcacheError(reply)
}

// parseMemcacheFault classifies a reply of a gomu replica: a SERVER_ERROR
// gomu: line moves the request on, any other reply is an answer (kind
// noFault).
func parseMemcacheFault(reply []byte) fault {
	if !bytes.HasPrefix(reply, mcGomu) {
		return fault{}
	}
	f := fault{kind: tryAgain}
	if hasWord(reply, mcNotLeader) {
		f.kind = readOnly
	}
	f.msg = string(bytes.TrimRight(reply, "\r\n"))
	f.leader, f.addr = leaderhint.Parse(f.msg[len(mcGomu):])
	return f
}

// isMemcacheError reports whether reply is an error reply: ERROR,
// CLIENT_ERROR <msg> or SERVER_ERROR <msg>.
func isMemcacheError(reply []byte) bool {
	return hasWord(reply, mcServerError) || hasWord(reply, mcClientError) || hasWord(reply, mcError)
}

func (memcacheCodec) discovery() ([]byte, string) { return mcStatsGomu, "stats gomu" }

func (memcacheCodec) clusterInfo(reply []byte) clusterInfo {
	if !bytes.HasPrefix(reply, mcStat) {
		return clusterInfo{}
	}
	return parseStats(reply)
}

// parseStats reads the gomu fields of a stats gomu reply, as parseInfo
// does INFO's. A field without a value (STAT gomu_leader_addr, no leader)
// is empty.
func parseStats(reply []byte) clusterInfo {
	return parseFields(reply, func(line string) (k, v string, ok bool) {
		s, ok := strings.CutPrefix(line, "STAT ")
		if !ok {
			return "", "", false
		}
		k, v, _ = strings.Cut(s, " ")
		return k, strings.TrimSpace(v), true
	})
}
