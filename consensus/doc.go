// Package consensus is gomu's replication engine: the Mu protocol
// (Aguilera et al., OSDI 2020) over the verbs API. The leader replicates a
// command by writing it straight into its followers' memory with one-sided
// WRITEs; followers never touch the network on the fast path; only the
// current leader may write a follower's log.
//
// # Memory
//
// Each replica registers two memory regions, each in its own protection
// domain, so that the background plane can never write the log:
//
//   - Replication plane: the log MR (internal/logring's layout: a header of
//     min proposal, commit index and writer's proposal, then a ring of
//     checksummed, cache-line-padded entries) and one RC QP per peer. A
//     follower's QP to peer p grants remote write only while p is the
//     replica it granted; remote read always, for a candidate's prepare.
//   - Background plane: the control MR (see control.go: heartbeat, leader
//     claim and applied index; permission request and grant slots; QP
//     reconnection slots) and one RC QP per peer, always open.
//
// Logs are byte mirrors: an entry's ring offset is a function of the sizes
// of the entries before it, so index k sits at the same offset in every log
// that holds it, and the leader sends entry k from its own log to the same
// offset of each follower's.
//
// # Protocol
//
// Fast path: Propose calls queue; the leader's main goroutine groups queued
// commands into one entry (group commit), writes it into its ring and posts
// it to every active follower; an entry is committed when a majority
// (leader included) holds it, that is once enough WRITE completions came
// back (RC ordering makes a completion of entry k cover every entry before
// it). The commit index rides on the next entry, and an idle leader writes
// it into the followers' headers. A follower's replayer applies entries in
// order once it knows them committed, validating index and checksum, so torn
// and stale entries are never applied.
//
// Failure detection: every replica bumps its heartbeat and READs its peers'
// status words each HeartbeatPeriod; a peer whose heartbeat stands still for
// SuspectTimeout is suspected. That time is counted in the observer's own
// progress (each tick adds at most a quarter of SuspectTimeout), so a
// replica that was itself descheduled, or a VM that stalled, suspects
// nobody for it; and new entries in a follower's log count as a heartbeat
// of the leader writing them. In the fast profile the background plane is a
// SCHED_FIFO thread that sleeps between heartbeats (Config.DetectorPriority),
// so heartbeats keep time when polling threads outnumber the cores. The leader is the live replica claiming the
// highest proposal. When no live replica leads, the lowest id believed alive
// runs; a live leader is never pre-empted, by candidates or by granters.
//
// Permission switch: the candidate writes a new request number into each
// peer's request slot. A granter that sees no other live leader revokes
// write access from everyone on its replication QPs (SetAccess is a fence:
// once it returns no WRITE of the old leader lands; if it fails, Reset
// fences instead and the QP is reconnected later), grants the candidate and
// writes a grant word (the request number and the granter's grant counter)
// into the candidate's grant slot. Once the others' grants make a majority
// with itself, the candidate fences its own log the same way and proceeds;
// the leader loop takes late grants afterwards by copying its whole log to
// the late follower, and takes back a follower that refused its WRITEs only
// on a newer grant word. A candidate that gives up before fencing its own
// log marks its request withdrawn, and its granters give the live leader
// they fenced out for it its access back. A replica that just resumed runs
// no election before it has read every peer's status afresh.
//
// Prepare: the candidate READs the granted followers' log headers and their
// rings from its own apply point on, in a window that doubles (from 64 KiB)
// until every copy's entry chain ends on bytes it holds, picks a proposal
// above every promise seen (proposal = round·16 + id, so numbers are unique),
// walks every copy from its apply point adopting, index by index, the entry
// with the highest proposal, rewrites the adopted entries with its own
// proposal, clears the slot after the tail and writes its header and the
// ring from the oldest entry it keeps through the tail to the granted
// majority: the adopted tail is committed. The new leader's ring accounting
// keeps the entries it applied from the slowest granted follower's applied
// index on (as far back as its ring still holds them), so followers behind
// it replay from the copy instead of having them overwritten under them; a
// follower behind what the ring holds, at prepare or on a late grant, is
// left out as lagging (Stats), as on the fast path, until it catches up.
//
// Catch-up (catchup.go): a lagging follower is taken back from the ring as
// soon as the ring holds its next entry again; otherwise it pulls a state
// transfer: a snapshot a live peer (a follower by preference, so the
// leader's fast path does not stall for it) takes between two applies and
// exposes in registered memory, which the follower READs in chunks,
// Restores, and replays the ring from. A replica catching up says so in its
// status words and runs in no election until a leader has taken it back. Proposals that arrive
// meanwhile wait and are appended afterwards. Any loss of leadership clears
// the fast path, so a replica that leads again always prepares again.
//
// Large commands (large.go): a command longer than one entry, up to
// Config.MaxCommand, travels as a run of chunk entries, each a special
// payload (logring's chunk.go: a tag no batch can start with, the command's
// length, the chunk's offset, its bytes) in place of a batch. The leader
// appends one large command at a time, a chunk per turn as the pipeline
// (Outstanding) and the ring admit, like batches, and goes on appending
// batches of small commands in entries between its chunks; so a command far
// larger than the ring goes through it, each chunk's space reused once
// applied. While only chunks wait for room the leader waits for slow live
// followers rather than leaving them out (a transfer would carry the partial
// command and, the stream going on, be outrun again); suspected ones, and
// any laggard once small proposals wait, are left out as ever. Every
// replica, the leader included, reassembles in log order: a chunk at offset
// 0 starts a command, the next must continue it exactly, and the last hands
// the whole command to Apply once, at its own index; the state machine sees
// nothing before. The proposer is answered then, in log order with the
// small commands around it; commands queued after a large one may take
// effect before it, as concurrent proposals may. A leader that loses its
// position fails the large command it was appending with ErrNotLeader (its
// last chunk was not appended, so it never takes effect); a new leader that
// is assembling a command, or finds chunks among the entries it adopted,
// first appends a drop entry, and every replica discards the partial
// command there. A chunk that continues nothing discards any partial
// command too, so the verdict depends on the log alone and every replica
// reaches the same one (entry proposals, which prepare rewrites, play no
// part). A snapshot taken in the middle of a command carries the partial
// command ahead of the state machine's snapshot, and the follower that
// restores it goes on with the next chunk from the ring. Small commands pay
// one 4-byte load per entry for all this, and allocate nothing.
//
// Links (link.go): nothing is excluded for good. A peer whose background
// plane fails (a crash, a partition, a stopped process) is relinked: both
// ends build fresh queue pairs and exchange their endpoints through the
// registry, with back-off, until the peer answers again. A replication QP
// that went to ERROR is reset and connected again in place, at either
// end's request; a reset drops the requests in flight without completions,
// so the leader counts the resets of each follower's QP and writes a
// follower nothing more once one happened since it took the follower in:
// it takes it in again, with a fresh copy of its log. Otherwise a WRITE
// posted after the reconnection (a commit index) could land without the
// dropped ones before it (the entries it covers), over stale entries of an
// earlier term at the same indexes. A replica that
// restarts (a new incarnation, empty memory) finds the cluster running at
// Start (the peers' linkers reach out to it instead of meeting it at the
// start barrier), joins it behind, grants the leader like any follower and
// is caught up as above.
//
// Errors: a failed WRITE takes its follower out of the active set; the
// leader goes on while a majority is active and otherwise steps down, and
// Propose fails with ErrNotLeader naming the believed leader.
//
// Every loop waits through internal/poll (spin, spin-then-yield or sleep,
// from Config.Profile or Config.Poll); the fast path allocates nothing. One
// exception keeps the sleeping mode fast: an idle leader (nothing in flight)
// parks until a proposal kicks it, bounded at a millisecond, rather than
// sleeping through a back-off step, so the first proposal after a quiet
// spell is taken at once. Followers cannot be kicked (the leader writes
// their memory and nothing else), so under sleep they apply up to one
// back-off step late; that never delays the leader's commits.
package consensus
