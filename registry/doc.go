// Package registry is how gomu replicas find each other: each publishes the
// opaque endpoint bytes its peers need (queue-pair endpoints, control
// blocks) in a memcached server, looks up theirs, meets them at barriers,
// and watches for a peer that restarts. It is Mu's DORY_REGISTRY_IP
// memcached registry, made safe to reuse across runs: memcached never needs
// a restart between runs.
//
// The memcached server is any memcached (DORY_REGISTRY_IP=host:port, see
// AddrFromEnv), or the embedded one in internal/memcache that the --local
// modes start.
//
// # Participants and incarnations
//
// A Registry is one participant: a replica id (1..MaxID) and an incarnation,
// a random nonzero 64-bit number chosen when the process starts (Config.
// Incarnation = 0). Every key a participant writes carries its cluster name
// and every record its id and incarnation, so nothing written by an earlier
// process, in this run or a previous one, is mistaken for the current one.
// An observer (ID 0) may look up and watch but not publish or join barriers.
//
// # Key schema
//
// All keys start with "gomu/<cluster>/", where the cluster name is 1 to 64
// bytes of [A-Za-z0-9._-]:
//
//	gomu/<cluster>/announce/<id>                   current incarnation of <id>
//	gomu/<cluster>/pub/<id>/<incarnation>/<name>   a published value
//	gomu/<cluster>/barrier/<name>/<id>             <id>'s entry in barrier <name>
//	gomu/<cluster>/inbox/<id>/<incarnation>/<name>/next, .../q/<n>, .../a/<n>
//	                                               an inbox (see Inboxes)
//
// <id> is decimal, <incarnation> 16 hex digits; published and barrier names
// are free-form (slashes allowed: "qp/1->2") but, like every key, the whole
// key must be at most 250 bytes with no space or control character, which is
// checked before anything is sent. Dial writes the announce key; Close marks
// it departed if it still holds this incarnation.
//
// # Barrier rule
//
// An earlier run can leave every key a barrier looks at in place, complete:
// a barrier cannot trust an entry just because it exists, nor an announce key
// because it holds some incarnation. Clocks are no help (hosts disagree, and
// a quick restart is indistinguishable from a slow start). What a stale entry
// can never do is react to something that did not exist when its process
// died. So barriers are mutual acknowledgements:
//
//   - Each participant P writes its entry: (id, incarnation, seen), where
//     seen lists the (id, incarnation) of every other participant's entry P
//     has read under that barrier name. P rereads the entries every
//     PollInterval and rewrites its own when seen changes.
//   - P passes the barrier once every other id has an entry whose seen list
//     holds P's current incarnation. P's own entry then lists each of them.
//
// P's incarnation is new, so an entry listing it was written by a process
// that read P's entry, that is a live participant of this run. An entry left
// by a dead process never acknowledges anyone new, and P waits for that id to
// come back (or reports it missing at the deadline). Everyone finishes:
// entries only grow until all participants list each other, and one who
// passes first leaves an entry that lists everyone who acknowledged it.
//
// A barrier name is single-use per incarnation: reusing it with the same
// participants passes at once. Use names such as "start" and "connected"
// for the start sequence, and a fresh name for later meetings. A replica that
// restarts into a running cluster does not rejoin the start barrier; it and
// each peer meet pairwise at RejoinBarrier (see below).
//
// When a barrier ends without a peer's acknowledgement, its error says why,
// and never calls a leftover a live peer. An entry written during the wait
// is a live peer's: "2@… has not acknowledged us". An entry that did not
// change during the whole wait, of an incarnation that is not the announced
// one, or has departed, or announced before the wait began, is stale (a
// live participant rewrites its entry within a poll interval of reading
// ours): "2: only a stale incarnation 2@… (announced 1h0m0s ago, before
// this wait began) — not started?", listed in WaitError.Stale. Announce
// times are the announcer's clock, so they only colour the message; the
// barrier rule above never depends on them.
//
// # Restarting into a running cluster
//
// A replica killed and restarted with the same id is a new incarnation
// (Dial announces it). Its peers are past "start" and "connected" and never
// come back to acknowledge it, so a Barrier under those names only waits
// out its deadline, its error saying the peers met an earlier incarnation
// there. Every wait has a deadline, so nothing blocks forever, but the
// restarted process must rejoin another way, which the registry supports
// as follows (the consensus engine drives it):
//
//   - The restarted replica dials, publishes its records under its new
//     incarnation, and reads each peer's current incarnation with Announced,
//     which does not wait. An announcement is not proof of life (see above).
//   - Each running peer learns the new incarnation with Watch(id, old
//     incarnation), which also confirms it, so Lookup reads it from then on.
//   - The restarted replica and each peer meet at RejoinBarrier(restarted,
//     peer id), a barrier of just the two of them whose name holds the new
//     incarnation, so no earlier entry can satisfy it. Passing it confirms
//     both sides to each other, as the start barrier does.
//   - Each side then reads the other's records with LookupAt (or Lookup,
//     now that the incarnation is confirmed), records the peer may publish
//     for the new incarnation in particular ("qp/1->2@<incarnation>", say),
//     since its old endpoints were the dead process's.
//
// # Which incarnation Lookup reads
//
// Barrier returns the participants it met and remembers them as confirmed;
// Watch confirms an incarnation it saw replace a confirmed one. Lookup reads
// the confirmed incarnation of a peer when there is one. Otherwise it falls
// back to the announced incarnation, which until that peer has been met may
// still be a dead process's from an earlier run: Record.Confirmed tells which.
// The normal start sequence, Publish → Barrier → Lookup, only ever reads
// confirmed incarnations. LookupAt reads a given incarnation.
//
// # Inboxes
//
// Ask and Inbox let a process that cannot publish (an observer, such as an
// RPC client) hand something to one incarnation of a participant and get
// its reply: a request/answer exchange, used to swap queue-pair endpoints.
// The asker creates the inbox's counter "next" if it is missing (memcached
// add "0"), takes a number n with incr, writes its question under q/<n> and
// polls a/<n>. The inbox owner reads q/1, q/2, ... in order, polling every
// Config.InboxPollInterval, and answers under a/<n>. Every inbox key lives
// Config.InboxTTL (5 minutes by default; the owner renews the counter while
// it runs), so unread questions and answers of dead processes expire. An
// asker that dies between incr and set leaves a gap: once the counter shows
// n taken and q/<n> has stayed missing for Config.InboxGrace, the owner
// skips n. The keys name the owner's incarnation, so a question to a dead
// incarnation is never read by its successor; the asker's wait ends at its
// deadline with a *WaitError that says what the announce key shows instead.
//
// # Value formats
//
// Values are small binary records, little-endian, version 1:
//
//	byte 0      format version (1)
//	byte 1      kind: 'A' announce, 'P' published value, 'B' barrier entry
//	bytes 2-5   replica id (uint32)
//	bytes 6-13  incarnation (uint64)
//
//	announce:  bytes 14-21 announce time (int64 Unix ns), byte 22 state
//	           (1 live, 2 departed); 23 bytes in all
//	published: bytes 14-21 publish time (int64 Unix ns), then the value
//	barrier:   bytes 14-15 count n (uint16), then n × (id uint32,
//	           incarnation uint64); 16+12n bytes in all
//	question:  kind 'Q', header of the inbox owner; bytes 14-21 number n,
//	           22-25 asker id, 26-33 asker incarnation, then the question
//	answer:    kind 'R', header of the inbox owner; bytes 14-21 number n,
//	           then the answer
//
// A record whose version, kind, length, id or incarnation does not match its
// key is an error (*ValueError) naming the key; it is never skipped silently.
//
// # Waiting and errors
//
// Every wait has a deadline: the context's, or Config.WaitTimeout when the
// context has none (Watch alone runs until its context ends). Waits poll
// every Config.PollInterval (2 ms by default) and ride out memcached being
// unreachable or restarting until the deadline, retrying with a backoff of up
// to 100 ms meanwhile; each memcached round trip is
// bounded by Config.OpTimeout and by the context. A wait that ends early
// returns a *WaitError saying what was missing (the ids a barrier still
// lacked and which incarnations of them were stale, the replica or name a
// lookup did not find), the registry address, and the last connection
// error, if any; it wraps the context's error, and ErrUnreachable when
// memcached never answered during the wait ("registry host:port
// unreachable: ...").
//
// Dial is the exception to riding out an unreachable memcached: it gives up
// after Config.DialTimeout (3 s by default), however long the context
// allows. A registry that cannot be reached at all when a process starts is
// almost always a wrong address, and every tool should say so within
// seconds rather than after the start timeout it grants slow peers; once
// Dial has succeeded, the waits for peers have their full deadlines.
//
// With Config.Logger set, a wait other than Watch that lasts longer than
// Config.ProgressInterval (2 s by default) logs, once per interval, what it
// waits for and what it still lacks, for example
//
//	registry: still waiting barrier "start" of cluster "c" for ids [1 2 3] as 1@…: 3 has not arrived (never announced) (4s)
package registry
