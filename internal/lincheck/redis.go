package lincheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/internal/leaderhint"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// Redis makes Targets for Redis-protocol servers replicated by gomu (see
// apps/redis-replicated): writes go to the leader, reads to a random
// server, or to the leader with LeaderReads.
//
// A write refused with
//
//	-READONLY … leader=<id> addr=<host:port>
//	-TRYAGAIN … [leader=<id> addr=<host:port>]
//
// goes next to the address named. With none named (leader=none, a TRYAGAIN
// without a leader, or the very server that answered), or after a request
// that got no reply, the client is in doubt: before its next write it backs
// off and asks the servers, in turn, for INFO replication until one says
// role:master (and not gomu_paused:1), following what a replica names as
// its master (master_host, master_port). A refused write is maybe-applied
// (a leader deposed while the write was in flight answers READONLY too, and
// the next leader may have committed it), so asking first keeps writes
// away from servers known not to lead, and the history free of needless
// maybe-applied writes, each of which the checker must place anywhere. A
// request unanswered after Timeout (a stopped process answers nothing) is
// maybe-applied as well, and its connection is dropped so that a late reply
// is never taken for the next request's.
type Redis struct {
	// Addrs are the servers' client addresses.
	Addrs []string
	// Timeout bounds one request, dialing included (default 300 ms).
	Timeout time.Duration
	// LeaderReads sends reads where writes go, to check a history in
	// which only the leader serves reads.
	LeaderReads bool
	// Names label the servers in the history, in the order of Addrs
	// (default: their addresses).
	Names []string
	// Seed seeds the choice of servers (0: random).
	Seed uint64
	// ReadTimeout bounds one read (default Timeout): a read with no reply
	// changes nothing, so a client may give up on it sooner.
	ReadTimeout time.Duration
	// Shun is how long reads first avoid a server that failed a read or
	// answered one far slower than reads lately (default 1 s; negative:
	// never); see ReadRouter.
	Shun time.Duration
	// Dial connects to a server (default: a net.Dialer), so that a
	// client can dial from another network namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewTarget returns client's Target.
func (r Redis) NewTarget(client int) Target {
	if r.Timeout <= 0 {
		r.Timeout = 300 * time.Millisecond
	}
	if r.ReadTimeout <= 0 {
		r.ReadTimeout = r.Timeout
	}
	return &redisTarget{cfg: r, client: newClient(r.Addrs, r.Names, r.Shun, r.Seed, r.Dial, client)}
}

type redisTarget struct {
	cfg Redis
	client
	req []byte
}

func (t *redisTarget) Prepare(ctx context.Context, in Input) error {
	return t.prepare(ctx, in.Kind != Get || t.cfg.LeaderReads, t.whoLeads)
}

// whoLeads asks server at for INFO replication: master reports that it
// says it leads (and is not paused); next is the server it names as its
// master, -1 for none.
func (t *redisTarget) whoLeads(at int) (master bool, next int) {
	raw, err := t.roundTripRESP(t.addrs[at], resp.AppendCommand(t.req[:0], []byte("INFO"), []byte("replication")), t.cfg.Timeout)
	if err != nil || len(raw) == 0 || raw[0] != '$' {
		return false, -1
	}
	f := map[string]string{}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			f[k] = v
		}
	}
	if f["role"] == "master" && f["gomu_paused"] != "1" {
		return true, -1
	}
	if i := t.index(net.JoinHostPort(f["master_host"], f["master_port"])); i != at {
		return false, i
	}
	return false, -1
}

func (t *redisTarget) Do(in Input) Reply {
	at := t.leader
	if in.Kind == Get && !t.cfg.LeaderReads {
		at = t.readFrom()
	}
	addr, where := t.addrs[at], t.where(at)
	t.req = appendRequest(t.req[:0], in)
	timeout := t.cfg.Timeout
	if in.Kind == Get {
		timeout = t.cfg.ReadTimeout
	}
	start := time.Now()
	raw, err := t.roundTripRESP(addr, t.req, timeout)
	if err != nil {
		t.shun(at)
		if in.Kind == Get && !t.cfg.LeaderReads {
			at = -1
		}
		t.failed(at, "")
		oc := Unknown
		if errors.Is(err, errNotSent) {
			oc = Refused
		}
		return Reply{Outcome: oc, Where: where}
	}
	if in.Kind == Get {
		t.readAnswered(at, time.Since(start))
	} else {
		t.answered(at)
	}
	rep, leader := parseReply(in, raw)
	rep.Where = where
	switch {
	case rep.Outcome == Done && rep.Err == nil:
		t.succeeded()
	case in.Kind == Get && !t.cfg.LeaderReads:
		// A replica that refuses reads (catching up, cut off from the
		// leader it asks for a read index) is shunned like a silent one;
		// the next read goes to a random server anyway.
		t.shun(at)
		t.failed(-1, "")
	default:
		t.failed(at, leader)
	}
	return rep
}

// roundTripRESP sends req to addr and reads one RESP reply within timeout.
func (t *redisTarget) roundTripRESP(addr string, req []byte, timeout time.Duration) ([]byte, error) {
	return t.roundTrip(addr, req, time.Now().Add(timeout), func(br *bufio.Reader) ([]byte, error) {
		return resp.ReadReply(br, nil, 64<<20)
	})
}

func appendRequest(dst []byte, in Input) []byte {
	switch in.Kind {
	case Get:
		return resp.AppendCommand(dst, []byte("GET"), []byte(in.Key))
	case Set:
		return resp.AppendCommand(dst, []byte("SET"), []byte(in.Key), []byte(in.Arg))
	case Incr:
		return resp.AppendCommand(dst, []byte("INCR"), []byte(in.Key))
	default:
		return resp.AppendCommand(dst, []byte("APPEND"), []byte(in.Key), []byte(in.Arg))
	}
}

// parseReply interprets the raw reply to in. leader is the address an
// error reply names as the leader's ("" when it names none).
func parseReply(in Input, raw []byte) (rep Reply, leader string) {
	s := string(raw)
	if strings.HasPrefix(s, "-") {
		msg := strings.TrimSuffix(s[1:], "\r\n")
		if in.Kind == Incr && (strings.HasPrefix(msg, "ERR value is not an integer") || strings.HasPrefix(msg, "ERR increment or decrement would overflow")) {
			// Decided by the state machine: nothing changed.
			return Reply{Outcome: Done, Output: Output{NotInt: true}}, ""
		}
		if id, addr := leaderhint.Parse(msg); id != 0 {
			leader = addr
		}
		// Whatever it says, it does not prove a write was not applied.
		return Reply{Outcome: Unknown}, leader
	}
	bad := func() (Reply, string) {
		return Reply{Outcome: Unknown, Err: fmt.Errorf("unexpected reply %q", s)}, ""
	}
	switch in.Kind {
	case Get:
		if s == "$-1\r\n" {
			return Reply{Outcome: Done, Output: Output{Nil: true}}, ""
		}
		if !strings.HasPrefix(s, "$") {
			return bad()
		}
		_, v, ok := strings.Cut(s, "\r\n")
		if !ok {
			return bad()
		}
		return Reply{Outcome: Done, Output: Output{Value: strings.TrimSuffix(v, "\r\n")}}, ""
	case Set:
		if s != "+OK\r\n" {
			return bad()
		}
		return Reply{Outcome: Done}, ""
	default:
		if !strings.HasPrefix(s, ":") {
			return bad()
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(s[1:], "\r\n"), 10, 64)
		if err != nil {
			return bad()
		}
		return Reply{Outcome: Done, Output: Output{N: n}}, ""
	}
}
