package latclient

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/internal/leaderhint"
)

// faultKind is why an attempt of a request did not end it.
type faultKind uint8

const (
	noFault  faultKind = iota // answered: a reply that ends the request
	timedOut                  // no connection or no reply within Timeout: hung or paused
	broken                    // refused, reset, closed, or a stream out of step
	readOnly                  // -READONLY (SERVER_ERROR gomu: not the leader): not the leader
	tryAgain                  // -TRYAGAIN (other SERVER_ERROR gomu:): cannot serve now, maybe elsewhere
)

func (k faultKind) String() string {
	switch k {
	case noFault:
		return "answered"
	case timedOut:
		return "timed out"
	case broken:
		return "broken"
	case readOnly:
		return "READONLY"
	case tryAgain:
		return "TRYAGAIN"
	}
	return fmt.Sprintf("faultKind(%d)", int(k))
}

// fault is one attempt's failure and what it said about the leader.
type fault struct {
	kind   faultKind
	leader int    // leader=<id> of the reply; 0 when absent or "none"
	addr   string // addr=<host:port> of the reply, if any
	msg    string // the error or the reply line, for the report
}

var (
	errReadOnly = []byte("-READONLY")
	errTryAgain = []byte("-TRYAGAIN")
)

// parseFault classifies an error reply. -READONLY and -TRYAGAIN, with the
// leader=<id> addr=<host:port> that redis-server-replicated appends when it
// knows one, make the client move on; any other reply is an answer
// (kind noFault), an error reply included. Memcached's equivalent is
// parseMemcacheFault.
func parseFault(reply []byte) fault {
	var f fault
	switch {
	case hasWord(reply, errReadOnly):
		f.kind = readOnly
	case hasWord(reply, errTryAgain):
		f.kind = tryAgain
	default:
		return f
	}
	line := bytes.TrimRight(reply, "\r\n")
	f.msg = string(line)
	f.leader, f.addr = leaderhint.Parse(f.msg[1:])
	return f
}

// hasWord reports whether reply starts with the error code w, followed by
// a space or the end of the line.
func hasWord(reply, w []byte) bool {
	if !bytes.HasPrefix(reply, w) {
		return false
	}
	rest := reply[len(w):]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\r' || rest[0] == '\n'
}

// member is one replica named by INFO: its consensus id and client address.
type member struct {
	id   int
	addr string
}

// clusterInfo is what INFO replication (or memcached's stats gomu) says
// about a gomu cluster. A standalone server or real Redis prints none of
// these fields, and the zero value results.
type clusterInfo struct {
	self       int      // gomu_id: the replica that answered
	leader     int      // gomu_leader_id; 0: none
	leaderAddr string   // gomu_leader_addr
	members    []member // gomu_replica_addrs:<id>=<host:port>,...
}

// parseInfo reads the gomu fields of an INFO reply (the raw bulk string, or
// its text): <field>:<value> lines.
func parseInfo(reply []byte) clusterInfo {
	return parseFields(reply, func(line string) (k, v string, ok bool) { return strings.Cut(line, ":") })
}

// parseFields reads the gomu fields of a discovery reply, each line split
// into field and value by cut. Malformed entries are skipped: discovery is
// a hint, and the addresses the client was given still work.
func parseFields(reply []byte, cut func(line string) (k, v string, ok bool)) clusterInfo {
	var ci clusterInfo
	for _, line := range strings.Split(string(reply), "\n") {
		k, v, ok := cut(strings.TrimRight(line, "\r"))
		if !ok {
			continue
		}
		switch k {
		case "gomu_id":
			ci.self, _ = strconv.Atoi(v)
		case "gomu_leader_id":
			ci.leader, _ = strconv.Atoi(v)
		case "gomu_leader_addr":
			ci.leaderAddr = v
		case "gomu_replica_addrs":
			for _, e := range strings.Split(v, ",") {
				ids, addr, ok := strings.Cut(strings.TrimSpace(e), "=")
				id, err := strconv.Atoi(ids)
				if ok && err == nil && id > 0 && addr != "" {
					ci.members = append(ci.members, member{id, addr})
				}
			}
		}
	}
	if ci.leader <= 0 {
		ci.leader, ci.leaderAddr = 0, ""
	}
	return ci
}

// replica is one member of the cluster as the client knows it.
type replica struct {
	addr string // client address to dial
	id   int    // consensus id; 0 until a redirect or INFO names it
	// heldUntil: the replica timed out or refused, so it is not tried
	// again before this time while another one may answer (see router).
	heldUntil time.Time
	last      string // what it last answered the current request, for the give-up error
}

// Back-off between whole rounds of replicas that gave no answer: from
// backoffMin, doubling, up to backoffMax. The first rounds of an election
// cost microseconds; a cluster without a leader for long gets about 20
// rounds a second from each client.
const (
	backoffMin = 100 * time.Microsecond
	backoffMax = 50 * time.Millisecond
)

// router decides where each attempt of a request goes. It does no I/O and
// reads no clock (the time comes in with each fault), so the policy is a
// function of explicit state, tested by tables; the client does what it
// answers.
//
// The policy:
//   - A replica that timed out or refused is held for hold (the per-request
//     timeout): while held it is tried only when no other replica is left,
//     so a hung leader costs one timeout, not one per redirect to it from
//     followers that have not noticed yet.
//   - A reply naming a leader that is not the replica that answered and is
//     not held sends the client there.
//   - Anything else (a timeout, a broken connection, leader=none, a
//     TRYAGAIN without a leader, a redirect to the replica itself or to a
//     held one) sends it to the next replica in turn that is not held,
//     other than the current one when there is such.
//   - Every len(reps) faults of one request make a whole round without an
//     answer: the client backs off, longer each round, and moves in turn
//     even if the reply named a leader, so that replicas naming each other
//     from stale views cannot keep it away from the others.
type router struct {
	reps   []replica
	hold   time.Duration
	cur    int // the replica the connection is (or was last) to
	rr     int // round-robin cursor: the replica last chosen in turn
	tries  int // faults of the current request
	rounds int // whole rounds of them
	down   int // consecutive connection faults (timeouts, broken)
	// rediscover asks for INFO on the next connection: a whole round of
	// replicas was unreachable, so the cluster may have moved.
	rediscover bool
}

// newRouter knows the given addresses, the first one current.
func newRouter(addrs []string, hold time.Duration) *router {
	r := &router{hold: hold}
	for _, a := range addrs {
		r.learn(0, a)
	}
	return r
}

// begin starts the faults of a new request.
func (r *router) begin() {
	r.tries, r.rounds, r.down, r.rr = 0, 0, 0, r.cur
	for i := range r.reps {
		r.reps[i].last = ""
	}
}

// next records fault f of the current replica, met at now, and returns
// the replica to try next and how long to wait before.
func (r *router) next(f fault, now time.Time) (to int, wait time.Duration) {
	r.tries++
	from := &r.reps[r.cur]
	from.last = f.msg
	if f.kind == timedOut || f.kind == broken {
		from.heldUntil = now.Add(r.hold)
		r.down++
		if r.down >= len(r.reps) {
			r.rediscover = true
		}
	} else {
		r.down = 0
	}
	to = -1
	if f.leader > 0 || f.addr != "" {
		to = r.learn(f.leader, f.addr)
	}
	if r.tries%len(r.reps) == 0 {
		wait = min(backoffMin<<min(r.rounds, 20), backoffMax)
		r.rounds++
		to = -1
	}
	if to < 0 || to == r.cur || r.held(to, now) {
		to = r.turn(now)
	}
	r.cur = to
	return to, wait
}

func (r *router) held(i int, now time.Time) bool { return now.Before(r.reps[i].heldUntil) }

// turn moves the round-robin cursor to the next replica that is neither
// current nor held; failing that to the current one if it is not held;
// failing that to the next one.
func (r *router) turn(now time.Time) int {
	n := len(r.reps)
	for k := 1; k <= n; k++ {
		if i := (r.rr + k) % n; i != r.cur && !r.held(i, now) {
			r.rr = i
			return i
		}
	}
	if !r.held(r.cur, now) {
		return r.cur
	}
	r.rr = (r.rr + 1) % n
	if r.rr == r.cur && n > 1 {
		r.rr = (r.rr + 1) % n
	}
	return r.rr
}

// learn records that replica id (0: unknown) has client address addr
// ("": unknown) and returns its index, -1 when neither is known. A known
// address wins over another spelling of the same id, so the client keeps
// dialing what worked.
func (r *router) learn(id int, addr string) int {
	if addr != "" {
		for i := range r.reps {
			if r.reps[i].addr == addr {
				if id > 0 {
					r.reps[i].id = id
				}
				return i
			}
		}
	}
	if id > 0 {
		for i := range r.reps {
			if r.reps[i].id == id {
				return i
			}
		}
	}
	if addr == "" {
		return -1
	}
	r.reps = append(r.reps, replica{addr: addr, id: id})
	return len(r.reps) - 1
}

// learnInfo records what INFO said, asked of the current replica.
func (r *router) learnInfo(ci clusterInfo) {
	if ci.self > 0 {
		r.learn(ci.self, r.reps[r.cur].addr)
	}
	for _, m := range ci.members {
		r.learn(m.id, m.addr)
	}
	if ci.leader > 0 {
		r.learn(ci.leader, ci.leaderAddr)
	}
}

// addrs lists the known replicas' addresses.
func (r *router) addrs() []string {
	a := make([]string, len(r.reps))
	for i, rep := range r.reps {
		a[i] = rep.addr
	}
	return a
}

// lastFaults words what every replica last answered, for the error of a
// request that gave up.
func (r *router) lastFaults() string {
	var b strings.Builder
	for i, rep := range r.reps {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(rep.addr)
		if rep.id > 0 {
			fmt.Fprintf(&b, " (id %d)", rep.id)
		}
		b.WriteString(": ")
		if rep.last == "" {
			b.WriteString("not tried")
		} else {
			b.WriteString(rep.last)
		}
	}
	return b.String()
}
