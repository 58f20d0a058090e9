package latclient

import (
	"bufio"
	"fmt"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// Protocol is the wire protocol of a run: what the requests, the discovery
// and the faults look like. The client, the router and the report are the
// same for every protocol.
type Protocol int

const (
	// Redis speaks RESP: SET and GET, INFO replication to discover the
	// cluster, -READONLY and -TRYAGAIN replies as faults. The zero
	// Protocol.
	Redis Protocol = iota
	// Memcached speaks memcached's text protocol: set and get, stats gomu
	// to discover the cluster, SERVER_ERROR gomu: ... replies as faults
	// (see memcached.go).
	Memcached
)

func (p Protocol) String() string {
	switch p {
	case Redis:
		return "Redis"
	case Memcached:
		return "memcached"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// DefaultOut is the default file of the latencies, after Mu's clients.
func (p Protocol) DefaultOut() string {
	if p == Memcached {
		return "memcached-cli.txt"
	}
	return "redis-cli.txt"
}

// codec is the wire format of a Protocol: how a request is written, how a
// reply is read and what it means. Its methods append to and read from
// the client's reused buffers: the hot path, one appendSet or appendGet,
// one readReply and one classify, allocates nothing.
type codec interface {
	// appendSet and appendGet append one request to dst.
	appendSet(dst, key, val []byte) []byte
	appendGet(dst, key []byte) []byte
	// readReply reads one whole reply from br and appends its raw bytes
	// to dst. A reply that cannot be read whole (malformed, or a value over
	// maxBulk) is an error: the stream is out of step.
	readReply(br *bufio.Reader, dst []byte) ([]byte, error)
	// classify says what a reply means: a fault (f.kind != noFault) moves
	// the request on; otherwise it is an answer, an error reply (counted)
	// when errReply is set.
	classify(reply []byte) (f fault, errReply bool)
	// discovery is the command that asks a replica about the cluster, and
	// its name for messages.
	discovery() (cmd []byte, name string)
	// clusterInfo reads the discovery's reply: the zero value when it
	// carries no gomu fields (a standalone server, real Redis or memcached,
	// an error reply).
	clusterInfo(reply []byte) clusterInfo
}

// codec returns the codec of p, nil for an unknown p.
func (p Protocol) codec() codec {
	switch p {
	case Redis:
		return &respCodec{}
	case Memcached:
		return memcacheCodec{}
	}
	return nil
}

// respCodec is Redis's RESP.
type respCodec struct {
	args [3][]byte // AppendCommand's arguments, kept so that they do not escape per request
}

var (
	cmdSET  = []byte("SET")
	cmdGET  = []byte("GET")
	cmdInfo = resp.AppendCommand(nil, []byte("INFO"), []byte("replication"))
)

func (r *respCodec) appendSet(dst, key, val []byte) []byte {
	r.args = [3][]byte{cmdSET, key, val}
	return resp.AppendCommand(dst, r.args[:3]...)
}

func (r *respCodec) appendGet(dst, key []byte) []byte {
	r.args = [3][]byte{cmdGET, key, nil}
	return resp.AppendCommand(dst, r.args[:2]...)
}

func (r *respCodec) readReply(br *bufio.Reader, dst []byte) ([]byte, error) {
	return resp.ReadReply(br, dst, maxBulk)
}

// classify: an error reply moves the request on when it is -READONLY or
// -TRYAGAIN (parseFault), and is counted otherwise. A nil GET ($-1) is an
// answer.
func (r *respCodec) classify(reply []byte) (fault, bool) {
	if len(reply) == 0 || reply[0] != '-' {
		return fault{}, false
	}
	f := parseFault(reply)
	return f, f.kind == noFault
}

func (r *respCodec) discovery() ([]byte, string) { return cmdInfo, "INFO" }

// clusterInfo reads INFO's bulk string; an error reply (INFO refused, or a
// fake) has nothing to learn.
func (r *respCodec) clusterInfo(reply []byte) clusterInfo {
	if len(reply) == 0 || reply[0] != '$' {
		return clusterInfo{}
	}
	return parseInfo(reply)
}
