package lincheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/internal/leaderhint"
)

// Memcache makes Targets for memcached text-protocol servers replicated by
// gomu (see apps/memcached-replicated), as Redis does for Redis-protocol
// ones and with the same design: writes go to the leader, reads to a
// random server not shunned, with the same back-off and shuns.
//
// A write refused with
//
//	SERVER_ERROR gomu: not the leader leader=<id> addr=<host:port>
//	SERVER_ERROR gomu: this replica is catching up. leader=<id> addr=<host:port>
//
// goes next to the address named. With none named (no leader, paused,
// shutting down, replication timed out, or the very server that answered),
// or after a request that got no reply, the client is in doubt: before its
// next write it backs off and asks the servers, in turn, for "stats gomu"
// until one says gomu_role leader (and not gomu_paused 1), following the
// gomu_leader_addr a replica names. A server whose "stats gomu" has no
// gomu_role does not replicate (plain memcached, a --standalone server)
// and takes the writes.
//
// Every SERVER_ERROR to a write command leaves it maybe-applied, as Redis
// does with READONLY: "not the leader" is what a leader deposed while the
// proposal was in flight answers too, and the next leader may have
// committed it; "paused" and "shutting down" likewise come back from a
// proposal already handed to the engine; a replication timeout says so
// itself. Only where no write command had been sent yet (the gets that
// starts an APPEND) is a failure a certain refusal.
//
// The model's operations map to commands so that each operation's effect,
// if any, is that of exactly one command it sent, all of them to one
// server within one Timeout:
//
//   - GET is get; SET is set.
//   - INCR is incr k 1; on NOT_FOUND, add k 0 0 1 with "1" (STORED: the
//     counter is 1; NOT_STORED, someone created it meanwhile: incr again).
//     "CLIENT_ERROR cannot increment or decrement non-numeric value" is
//     Output.NotInt. (memcached's numbers are unsigned 64-bit decimals
//     that wrap around, the model's are Redis's: they agree on counters
//     that only INCR writes, as the Workload's are.)
//   - APPEND is a CAS loop: gets k, then cas k with the value read plus
//     the suffix (STORED: the new length; EXISTS or NOT_FOUND: again), or,
//     when the key is missing, add k with the suffix (STORED: its length;
//     NOT_STORED: again). memcached's own append neither creates a key nor
//     returns the new length.
//
// Commands that certainly changed nothing (NOT_FOUND, NOT_STORED, EXISTS)
// are retried until Timeout; an operation whose Timeout ends between
// commands is Refused (it had no effect).
type Memcache struct {
	// Addrs are the servers' client addresses.
	Addrs []string
	// Names label the servers in the history, in the order of Addrs
	// (default: their addresses).
	Names []string
	// Timeout bounds one operation, every command it sends and dialing
	// included (default 300 ms).
	Timeout time.Duration
	// ReadTimeout bounds one read (default Timeout).
	ReadTimeout time.Duration
	// Shun is how long reads avoid a server that did not answer (see
	// Redis.Shun).
	Shun time.Duration
	// Dial connects to a server (default: a net.Dialer).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Seed seeds the choice of servers (0: random).
	Seed uint64
}

// NewTarget returns client's Target.
func (m Memcache) NewTarget(client int) Target {
	if m.Timeout <= 0 {
		m.Timeout = 300 * time.Millisecond
	}
	if m.ReadTimeout <= 0 {
		m.ReadTimeout = m.Timeout
	}
	return &memcacheTarget{cfg: m, client: newClient(m.Addrs, m.Names, m.Shun, m.Seed, m.Dial, client)}
}

type memcacheTarget struct {
	cfg Memcache
	client
	req []byte
}

func (t *memcacheTarget) Prepare(ctx context.Context, in Input) error {
	return t.prepare(ctx, in.Kind != Get, t.whoLeads)
}

// whoLeads asks server at for "stats gomu": leads reports that it says it
// leads (and is not paused), or does not replicate at all; next is the
// server it names as the leader, -1 for none.
func (t *memcacheTarget) whoLeads(at int) (leads bool, next int) {
	raw, err := t.roundTripMC(t.addrs[at], []byte("stats gomu\r\n"), time.Now().Add(t.cfg.Timeout))
	if err != nil || bytes.HasPrefix(raw, []byte("SERVER_ERROR")) {
		return false, -1
	}
	f := map[string]string{}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if kv, ok := strings.CutPrefix(line, "STAT "); ok {
			k, v, _ := strings.Cut(kv, " ")
			f[k] = v
		}
	}
	role, ok := f["gomu_role"]
	if !ok || role == "leader" && f["gomu_paused"] != "1" {
		return true, -1
	}
	if i := t.index(f["gomu_leader_addr"]); i != at {
		return false, i
	}
	return false, -1
}

func (t *memcacheTarget) Do(in Input) Reply {
	if in.Kind == Get {
		return t.get(in)
	}
	at := t.leader
	rep, leader, err := t.write(at, in, time.Now().Add(t.cfg.Timeout))
	rep.Where = t.where(at)
	switch {
	case err != nil:
		t.shun(at)
		t.failed(at, "")
	case rep.Outcome == Done && rep.Err == nil:
		t.answered(at)
		t.succeeded()
	default:
		t.answered(at)
		t.failed(at, leader)
	}
	return rep
}

// get reads in.Key on a random server.
func (t *memcacheTarget) get(in Input) Reply {
	at := t.readFrom()
	where := t.where(at)
	t.req = append(append(append(t.req[:0], "get "...), in.Key...), "\r\n"...)
	start := time.Now()
	raw, err := t.roundTripMC(t.addrs[at], t.req, start.Add(t.cfg.ReadTimeout))
	if err != nil {
		t.shun(at)
		t.failed(-1, "")
		if errors.Is(err, errNotSent) {
			return Reply{Outcome: Refused, Where: where}
		}
		return Reply{Outcome: Unknown, Where: where}
	}
	t.readAnswered(at, time.Since(start))
	found, v, _, ok := parseValue(raw)
	switch {
	case ok && !found:
		t.succeeded()
		return Reply{Outcome: Done, Output: Output{Nil: true}, Where: where}
	case ok:
		t.succeeded()
		return Reply{Outcome: Done, Output: Output{Value: v}, Where: where}
	}
	// A SERVER_ERROR (paused, catching up, leadership changed during the
	// read): shun the replica as a silent one and try elsewhere, after a
	// back-off.
	t.shun(at)
	t.failed(-1, "")
	rep, _ := errorReply(raw)
	rep.Where = where
	return rep
}

// write makes one attempt at the write in on server at, by deadline. err
// is a failure to get a reply, with rep's outcome already set: Unknown, or
// Refused when the command without reply could not have changed anything.
// leader is the address an error reply names as the leader's.
func (t *memcacheTarget) write(at int, in Input, deadline time.Time) (rep Reply, leader string, err error) {
	addr := t.addrs[at]
	// send sends one command; a failure ends the operation, with no
	// effect if the command was not a write or was not sent.
	send := func(req []byte, write bool) ([]byte, error) {
		raw, err := t.roundTripMC(addr, req, deadline)
		if err != nil {
			rep = Reply{Outcome: Unknown}
			if !write || errors.Is(err, errNotSent) {
				rep.Outcome = Refused
			}
		}
		return raw, err
	}
	done := func(out Output) (Reply, string, error) { return Reply{Outcome: Done, Output: out}, "", nil }
	for time.Now().Before(deadline) {
		switch in.Kind {
		case Set:
			raw, err := send(appendStorage(t.req[:0], "set", in.Key, in.Arg, 0), true)
			if err != nil {
				return rep, "", err
			}
			if string(raw) == "STORED\r\n" {
				return done(Output{})
			}
			rep, leader := errorReply(raw)
			return rep, leader, nil
		case Incr:
			t.req = append(append(append(t.req[:0], "incr "...), in.Key...), " 1\r\n"...)
			raw, err := send(t.req, true)
			if err != nil {
				return rep, "", err
			}
			switch s := string(raw); {
			case s == "NOT_FOUND\r\n":
			case strings.HasPrefix(s, "CLIENT_ERROR cannot increment or decrement non-numeric value"):
				// Decided by the state machine: nothing changed.
				return done(Output{NotInt: true})
			default:
				if n, perr := strconv.ParseUint(strings.TrimSuffix(s, "\r\n"), 10, 64); perr == nil {
					return done(Output{N: int64(n)})
				}
				rep, leader := errorReply(raw)
				return rep, leader, nil
			}
			if raw, err = send(appendStorage(t.req[:0], "add", in.Key, "1", 0), true); err != nil {
				return rep, "", err
			}
			switch string(raw) {
			case "STORED\r\n":
				return done(Output{N: 1})
			case "NOT_STORED\r\n": // created meanwhile: incr it
			default:
				rep, leader := errorReply(raw)
				return rep, leader, nil
			}
		case Append:
			t.req = append(append(append(t.req[:0], "gets "...), in.Key...), "\r\n"...)
			raw, err := send(t.req, false)
			if err != nil {
				return rep, "", err
			}
			found, v, cas, ok := parseValue(raw)
			if !ok {
				// Nothing sent so far changed anything.
				rep, leader := errorReply(raw)
				if rep.Err == nil {
					rep.Outcome = Refused
				}
				return rep, leader, nil
			}
			next, verb := v+in.Arg, "cas"
			if !found {
				next, verb = in.Arg, "add"
			}
			if raw, err = send(appendStorage(t.req[:0], verb, in.Key, next, cas), true); err != nil {
				return rep, "", err
			}
			switch string(raw) {
			case "STORED\r\n":
				return done(Output{N: int64(len(next))})
			case "EXISTS\r\n", "NOT_FOUND\r\n", "NOT_STORED\r\n": // changed meanwhile: again
			default:
				rep, leader := errorReply(raw)
				return rep, leader, nil
			}
		default:
			return Reply{Outcome: Refused, Err: fmt.Errorf("memcache: no command for %v", in.Kind)}, "", nil
		}
	}
	// Out of time between commands, each of which changed nothing.
	return Reply{Outcome: Refused}, "", nil
}

// errorReply interprets a reply that is not the command's success:
// SERVER_ERROR (gomu's refusals among them) leaves a write maybe-applied
// and may name the leader; anything else is not a reply the command
// allows.
func errorReply(raw []byte) (rep Reply, leader string) {
	s := string(raw)
	if msg, ok := strings.CutPrefix(s, "SERVER_ERROR "); ok {
		if id, addr := leaderhint.Parse(msg); id != 0 {
			leader = addr
		}
		return Reply{Outcome: Unknown}, leader
	}
	return Reply{Outcome: Unknown, Err: fmt.Errorf("unexpected reply %q", s)}, ""
}

// appendStorage appends a storage command: verb key 0 0 <len> [cas], then
// value.
func appendStorage(dst []byte, verb, key, value string, cas uint64) []byte {
	dst = append(dst, verb...)
	dst = append(dst, ' ')
	dst = append(dst, key...)
	dst = append(dst, " 0 0 "...)
	dst = strconv.AppendInt(dst, int64(len(value)), 10)
	if verb == "cas" {
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, cas, 10)
	}
	dst = append(dst, "\r\n"...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// parseValue reads the reply to a get or gets of one key: found with the
// value (and cas, for gets) or not found; ok is false for any other reply.
func parseValue(raw []byte) (found bool, value string, cas uint64, ok bool) {
	s := string(raw)
	if s == "END\r\n" {
		return false, "", 0, true
	}
	head, rest, ok := strings.Cut(s, "\r\n")
	f := strings.Fields(head)
	if !ok || len(f) < 4 || len(f) > 5 || f[0] != "VALUE" {
		return false, "", 0, false
	}
	n, err := strconv.Atoi(f[3])
	if err != nil || n < 0 || len(rest) != n+len("\r\nEND\r\n") || rest[n:] != "\r\nEND\r\n" {
		return false, "", 0, false
	}
	if len(f) == 5 {
		if cas, err = strconv.ParseUint(f[4], 10, 64); err != nil {
			return false, "", 0, false
		}
	}
	return true, rest[:n], cas, true
}

// roundTripMC sends req to addr and reads one text-protocol reply by
// deadline.
func (t *memcacheTarget) roundTripMC(addr string, req []byte, deadline time.Time) ([]byte, error) {
	return t.roundTrip(addr, req, deadline, readMemcacheReply)
}

// maxMemcacheReply bounds one reply.
const maxMemcacheReply = 64 << 20

// readMemcacheReply reads one whole text-protocol reply: lines up to the
// first that is neither a VALUE (whose data block it reads too) nor a
// STAT, so END, STORED, a number, an error line.
func readMemcacheReply(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			err = fmt.Errorf("memcache: reply line longer than %d bytes", br.Size())
		}
		if err != nil {
			return nil, err
		}
		raw = append(raw, line...)
		switch {
		case bytes.HasPrefix(line, []byte("VALUE ")):
			f := bytes.Fields(line)
			if len(f) < 4 {
				return nil, fmt.Errorf("memcache: malformed %q", line)
			}
			n, err := strconv.Atoi(string(f[3]))
			if err != nil || n < 0 || len(raw)+n > maxMemcacheReply {
				return nil, fmt.Errorf("memcache: malformed %q", line)
			}
			at := len(raw)
			raw = append(raw, make([]byte, n+2)...)
			if _, err := io.ReadFull(br, raw[at:]); err != nil {
				return nil, err
			}
		case bytes.HasPrefix(line, []byte("STAT ")):
			if len(raw) > maxMemcacheReply {
				return nil, fmt.Errorf("memcache: stats reply longer than %d bytes", maxMemcacheReply)
			}
		default:
			return raw, nil
		}
	}
}
