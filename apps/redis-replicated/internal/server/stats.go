package server

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
)

// Per-command statistics: INFO commandstats and errorstats, reset by
// CONFIG RESETSTAT. Each replica counts what its own clients sent it, as
// each Redis instance does: a write counts once, on the replica that
// received it, with the reply that replica gave; the replicas that only
// applied it from the log count nothing.
//
// A command's counters live in a slot, numbered once at start-up (store
// commands by store.Command.StatsID, then the server's commands, then
// the subcommands of container commands such as CLIENT LIST), so that the
// hot path reaches them by the command it already looked up, never by
// name. A connection gathers the calls of one batch (a read from its
// socket) in runs of the same command and adds them to the shared
// counters once, when the batch's replies are ready: a pipeline of SETs
// costs two atomic adds per batch, not per command.
//
// usec is time spent per batch, shared evenly among the batch's
// commands: from the read of the batch to its replies being ready (reads
// executed, writes replicated and applied), socket writes excluded. One
// clock read per batch, none per command. For a command sent alone it is
// its latency as this server saw it, replication included; within a
// pipeline it is the pipeline's average.

// callStats are one command's counters, a cache line of their own: the
// counters of commands that different connections run at once do not
// share a line.
type callStats struct {
	calls, nanos, rejected, failed atomic.Uint64
	// latency is its latency histogram once it was first counted with
	// latency-tracking on (INFO latencystats); nil after RESETSTAT.
	latency atomic.Pointer[latencyHist]
	_       [24]byte
}

// statNames[slot] is the name INFO gives the slot (cmdstat_<name>);
// containerSubs[slot] maps a container command's lowercase subcommands to
// their slots (nil for other commands).
var (
	statNames     []string
	containerSubs []map[string]int
)

// containerCommands are Redis 7.0's commands made of subcommands, which
// INFO counts per subcommand (cmdstat_client|list).
var containerCommands = map[string][]string{
	"acl":      {"cat", "deluser", "dryrun", "genpass", "getuser", "help", "list", "load", "log", "save", "setuser", "users", "whoami"},
	"client":   {"caching", "getname", "getredir", "help", "id", "info", "kill", "list", "no-evict", "pause", "reply", "setname", "tracking", "trackinginfo", "unblock", "unpause"},
	"cluster":  {"addslots", "addslotsrange", "bumpepoch", "count-failure-reports", "countkeysinslot", "delslots", "delslotsrange", "failover", "flushslots", "forget", "getkeysinslot", "help", "info", "keyslot", "links", "meet", "myid", "nodes", "replicas", "replicate", "reset", "saveconfig", "set-config-epoch", "setslot", "shards", "slaves", "slots"},
	"command":  {"count", "docs", "getkeys", "getkeysandflags", "help", "info", "list"},
	"config":   {"get", "help", "resetstat", "rewrite", "set"},
	"function": {"delete", "dump", "flush", "help", "kill", "list", "load", "restore", "stats"},
	"latency":  {"doctor", "graph", "help", "histogram", "history", "latest", "reset"},
	"memory":   {"doctor", "help", "malloc-stats", "purge", "stats", "usage"},
	"module":   {"help", "list", "load", "loadex", "unload"},
	"object":   {"encoding", "freq", "help", "idletime", "refcount"},
	"pubsub":   {"channels", "help", "numpat", "numsub", "shardchannels", "shardnumsub"},
	"script":   {"debug", "exists", "flush", "help", "kill", "load"},
	"slowlog":  {"get", "help", "len", "reset"},
	"xgroup":   {"create", "createconsumer", "delconsumer", "destroy", "help", "setid"},
	"xinfo":    {"consumers", "groups", "help", "stream"},
}

var statSlotsOnce sync.Once

// numberStatSlots gives every command its slot; it runs once the store's
// and the server's commands are all registered.
func numberStatSlots() {
	cmds := store.Commands()
	statNames = make([]string, len(cmds))
	for _, cmd := range cmds {
		statNames[cmd.StatsID] = cmd.Name
	}
	names := make([]string, 0, len(serverCommands))
	for name := range serverCommands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		serverCommands[name].statsID = len(statNames)
		statNames = append(statNames, name)
	}
	containerSubs = make([]map[string]int, len(statNames))
	for slot, name := range slices.Clone(statNames) {
		subs, ok := containerCommands[name]
		if !ok {
			continue
		}
		containerSubs[slot] = map[string]int{}
		for _, sub := range subs {
			containerSubs[slot][sub] = len(statNames)
			statNames = append(statNames, name+"|"+sub)
		}
	}
	containerSubs = append(containerSubs, make([]map[string]int, len(statNames)-len(containerSubs))...)
}

// statSlot is the slot counting args, run as the command whose slot is
// slot: its subcommand's for a container, -1 for a subcommand Redis does
// not know (counted in errorstats only, as Redis does).
func statSlot(slot int, args [][]byte) int {
	subs := containerSubs[slot]
	if subs == nil || len(args) < 2 {
		return slot
	}
	var buf [32]byte
	if len(args[1]) > len(buf) {
		return -1
	}
	if sub, ok := subs[string(lowerInto(buf[:0], args[1]))]; ok {
		return sub
	}
	return -1
}

// errorStats counts error replies by their code (errorstat_<CODE>).
type errorStats struct {
	mu     sync.Mutex
	counts map[string]uint64
	total  uint64
}

// count notes the error reply at the start of reply ("-CODE message\r\n").
func (e *errorStats) count(reply []byte) {
	code := errorCode(reply)
	e.mu.Lock()
	if e.counts == nil {
		e.counts = map[string]uint64{}
	}
	e.counts[string(code)]++ // no allocation once the code is known
	e.total++
	e.mu.Unlock()
}

// errorCode is the code Redis files an error reply under: the word after
// the dash, if a space ends it within the first 32 bytes, else ERR.
func errorCode(reply []byte) []byte {
	line := reply
	if eol := bytes.IndexByte(line, '\r'); eol >= 0 {
		line = line[:eol]
	}
	line = line[:min(len(line), 32)]
	sp := bytes.IndexByte(line, ' ')
	if len(line) == 0 || line[0] != '-' || sp < 0 {
		return []byte("ERR")
	}
	return line[1:sp]
}

func (e *errorStats) reset() {
	e.mu.Lock()
	e.counts, e.total = nil, 0
	e.mu.Unlock()
}

func (e *errorStats) totalReplies() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

// callRun is count calls in a row of the command in slot, in a batch.
type callRun struct {
	slot  int32
	count uint32
}

// addCall notes one call of slot in the batch (counted by settleCalls).
func (c *conn) addCall(slot int) {
	if slot < 0 {
		return
	}
	if n := len(c.calls); n > 0 && c.calls[n-1].slot == int32(slot) {
		c.calls[n-1].count++
		return
	}
	c.calls = append(c.calls, callRun{slot: int32(slot), count: 1})
}

// settleCalls adds the calls noted since the last settling to the
// server's counters, sharing the time from then to now among them. Its
// callers pass a clock reading they take anyway (write's, for its
// deadline): a clock read costs more than the counting here.
func (c *conn) settleCalls(now time.Time) {
	if len(c.calls) == 0 {
		return
	}
	elapsed := now.Sub(c.settled)
	var n uint64
	for _, r := range c.calls {
		n += uint64(r.count)
	}
	per := uint64(elapsed) / n
	tracking := c.s.latencyTracking.Load()
	for _, r := range c.calls {
		st := &c.s.stats[r.slot]
		st.calls.Add(uint64(r.count))
		st.nanos.Add(per * uint64(r.count))
		if tracking {
			st.histogram().record(per, uint64(r.count))
		}
	}
	c.calls = c.calls[:0]
	c.settled = now
}

// settlePending settles the pending calls, if any, reading the clock
// only then.
func (c *conn) settlePending() {
	if len(c.calls) > 0 {
		c.settleCalls(time.Now())
	}
}

// lastReplyError is the reply the command being dispatched gave, if it
// is an error (replyStart marks where it starts).
func (c *conn) lastReplyError() []byte {
	if c.replyStart < len(c.out) && c.out[c.replyStart] == '-' {
		return c.out[c.replyStart:]
	}
	return nil
}

// rejected counts a command refused before it ran (wrong arity, out of
// memory, a write on a follower …) and its error reply.
func (c *conn) rejected(slot int) {
	if slot >= 0 {
		c.s.stats[slot].rejected.Add(1)
	}
	if e := c.lastReplyError(); e != nil {
		c.s.errs.count(e)
	}
}

// ran counts a call of slot that ran and gave the reply at replyStart.
func (c *conn) ran(slot int) {
	c.addCall(slot)
	if e := c.lastReplyError(); e != nil {
		c.failed(slot, e)
	}
}

// failed counts a call of slot that answered the error reply e.
func (c *conn) failed(slot int, e []byte) {
	if slot >= 0 {
		c.s.stats[slot].failed.Add(1)
	}
	c.s.errs.count(e)
}

// countReplies counts the failures among replies, the RESP2 replies of
// the commands in slots, in order; each was counted as a call already.
func (c *conn) countReplies(slots []int32, replies []byte) {
	for _, slot := range slots {
		if len(replies) == 0 {
			return
		}
		n := replyLen(replies)
		if replies[0] == '-' {
			c.failed(int(slot), replies[:n])
		}
		replies = replies[n:]
	}
}

// countTx counts the calls of a transaction's commands from EXEC's reply
// (RESP2; a null array when WATCH aborted it and nothing ran).
func (c *conn) countTx(reply []byte) {
	if len(reply) == 0 || reply[0] != '*' || bytes.HasPrefix(reply, []byte("*-1\r\n")) {
		return
	}
	for _, slot := range c.queuedSlots {
		c.addCall(int(slot))
	}
	if eol := bytes.IndexByte(reply, '\n'); eol >= 0 {
		c.countReplies(c.queuedSlots, reply[eol+1:])
	}
}

// resetStats is CONFIG RESETSTAT: every counter back to zero, this
// connection's pending calls dropped.
func (c *conn) resetStats() {
	c.calls = c.calls[:0]
	c.settled = time.Now()
	for i := range c.s.stats {
		st := &c.s.stats[i]
		st.calls.Store(0)
		st.nanos.Store(0)
		st.rejected.Store(0)
		st.failed.Store(0)
		st.latency.Store(nil)
	}
	c.s.errs.reset()
}

// writeCommandStats is INFO commandstats: the commands called, failed or
// rejected since the start or the last RESETSTAT, by name.
func (s *Server) writeCommandStats(b *strings.Builder) {
	for _, slot := range sortedSlots() {
		st := &s.stats[slot]
		calls, rejected, failed := st.calls.Load(), st.rejected.Load(), st.failed.Load()
		if calls == 0 && rejected == 0 && failed == 0 {
			continue
		}
		usec := st.nanos.Load() / 1000
		perCall := 0.0
		if calls > 0 {
			perCall = float64(usec) / float64(calls)
		}
		fmt.Fprintf(b, "cmdstat_%s:calls=%d,usec=%d,usec_per_call=%.2f,rejected_calls=%d,failed_calls=%d\r\n",
			statNames[slot], calls, usec, perCall, rejected, failed)
	}
}

// writeErrorStats is INFO errorstats, by code.
func (s *Server) writeErrorStats(b *strings.Builder) {
	s.errs.mu.Lock()
	codes := make([]string, 0, len(s.errs.counts))
	for code := range s.errs.counts {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	for _, code := range codes {
		fmt.Fprintf(b, "errorstat_%s:count=%d\r\n", code, s.errs.counts[code])
	}
	s.errs.mu.Unlock()
}

// latencyHist counts latencies in nanoseconds in log-linear buckets:
// exact below 8 ns, then 8 buckets per power of two (within 12.5%).
type latencyHist struct {
	buckets [histBuckets]atomic.Uint64
}

const histBuckets = 62 * 8

// histogram is st's latency histogram, made on first use.
func (st *callStats) histogram() *latencyHist {
	if h := st.latency.Load(); h != nil {
		return h
	}
	st.latency.CompareAndSwap(nil, new(latencyHist))
	return st.latency.Load()
}

// latencyBucket is the bucket of a latency of ns nanoseconds.
func latencyBucket(ns uint64) int {
	if ns < 8 {
		return int(ns)
	}
	e := bits.Len64(ns) // 4 or more
	return (e-3)*8 + int(ns>>(e-4)&7)
}

// bucketTop is the highest latency bucket b counts.
func bucketTop(b int) uint64 {
	if b < 8 {
		return uint64(b)
	}
	shift := b/8 - 1
	return (uint64(8+b%8+1) << shift) - 1
}

func (h *latencyHist) record(ns, count uint64) { h.buckets[latencyBucket(ns)].Add(count) }

// percentile is the latency p percent of the counted calls took at most,
// to the precision of the buckets, in microseconds.
func (h *latencyHist) percentile(p float64, counts []uint64, total uint64) float64 {
	want := uint64(math.Ceil(p / 100 * float64(total)))
	want = max(want, 1)
	var seen uint64
	last := 0
	for b, n := range counts {
		if n == 0 {
			continue
		}
		seen += n
		last = b
		if seen >= want {
			break
		}
	}
	return float64(bucketTop(last)) / 1000
}

// writeLatencyStats is INFO latencystats: each counted command's latency
// percentiles (latency-tracking-info-percentiles).
func (s *Server) writeLatencyStats(b *strings.Builder) {
	percentiles := *s.latencyPercentiles.Load()
	counts := make([]uint64, histBuckets)
	for _, slot := range sortedSlots() {
		h := s.stats[slot].latency.Load()
		if h == nil {
			continue
		}
		var total uint64
		for i := range counts {
			counts[i] = h.buckets[i].Load()
			total += counts[i]
		}
		if total == 0 {
			continue
		}
		fmt.Fprintf(b, "latency_percentiles_usec_%s:", statNames[slot])
		for i, p := range percentiles {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, "p%s=%.3f", formatPercentile(p), h.percentile(p, counts, total))
		}
		b.WriteString("\r\n")
	}
}

// formatPercentile prints a percentile as Redis does: 50, 99.9.
func formatPercentile(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }

// defaultLatencyPercentiles are Redis's latency-tracking-info-percentiles.
var defaultLatencyPercentiles = []float64{50, 99, 99.9}

// parsePercentiles parses latency-tracking-info-percentiles' value:
// numbers from 0 to 100, separated by spaces.
func parsePercentiles(v []byte) ([]float64, bool) {
	var ps []float64
	for _, f := range strings.Fields(string(v)) {
		p, err := strconv.ParseFloat(f, 64)
		if err != nil || p < 0 || p > 100 {
			return nil, false
		}
		ps = append(ps, p)
	}
	return ps, true
}

// percentilesValue is latency-tracking-info-percentiles as CONFIG GET
// prints it.
func (s *Server) percentilesValue() string {
	ps := *s.latencyPercentiles.Load()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = formatPercentile(p)
	}
	return strings.Join(out, " ")
}

// sortedSlots are every slot, by name.
func sortedSlots() []int {
	order := make([]int, len(statNames))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(i, j int) bool { return statNames[order[i]] < statNames[order[j]] })
	return order
}

// yesNo is a boolean parameter as CONFIG GET prints it.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
