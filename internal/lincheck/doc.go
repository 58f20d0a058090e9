// Package lincheck checks that a store's clients saw a linearizable history,
// with porcupine (github.com/anishathalye/porcupine) as the search: a test
// runs concurrent clients against a replicated store while it injects
// faults, records every operation, and asks Check whether some order of the
// operations, each taking effect at one instant between its invocation and
// its reply, explains every reply. A replica that answers a read from a
// state older than a write already acknowledged, a write that is lost or
// applied twice, counters that go backwards: each makes the history
// non-linearizable, whichever replica served it and however briefly.
//
// # Operations and the model
//
// The model is a key-value store of strings with four operations: GET (the
// value, or nil), SET, INCR (the new integer; on a value that is not an
// integer an error reply that changes nothing) and APPEND (the new length).
// Histories are checked per key, since keys do not interact.
//
// # Uncertain outcomes
//
// A Recorder stamps each operation's invocation and return on one monotonic
// clock. An attempt ends in one of three ways (Outcome):
//
//   - Done: the reply is the operation's output.
//   - Unknown: a timeout, a lost connection, an error reply that does not
//     prove the write was refused. A write is then maybe-applied: it may have
//     taken effect at any point after its invocation, or never. It goes to
//     porcupine with an infinite return time and an output the model accepts
//     whatever happened. A read with no reply says nothing and is dropped.
//   - Refused: certainly no effect (never sent). Dropped.
//
// Treating an ambiguous reply as maybe-applied is always sound; treating it
// as refused when the write might have committed would report violations
// that are not there. Each retry is an operation of its own.
//
// # Verdicts
//
// Check returns Ok, Violation or Inconclusive (the search ran out of its time
// budget: porcupine's search is exponential in the worst case, chiefly in
// the number of maybe-applied writes pending on one key). On a violation it
// writes porcupine's HTML visualisation of the offending keys' histories
// (the longest partial linearisations and where they got stuck); on a
// violation or an inconclusive search, the whole history as JSON
// (ReadHistory reads it back), and it names the keys at fault.
//
// Maybe-applied INCRs of one key differ only in when they were invoked, so
// the model lets them take effect in the order of their invocations only:
// the same verdict, with k+1 choices to explore instead of 2^k subsets.
//
// # Workload
//
// Workload drives N clients over a few keys of three kinds: registers (SET
// and GET of unique values), counters (INCR and GET) and logs (APPEND of
// unique tokens and GET, so that the order of appends is visible), moving to
// fresh keys every KeyOps operations so that each key's history stays short
// enough to search. A client often reads a key right after its write was
// acknowledged, the read most likely to catch a stale replica. A Target is
// one client's connection to the store under test, making one attempt per
// operation; Redis makes Targets for Redis-protocol servers that send
// writes to the leader (following gomu's READONLY and TRYAGAIN redirects,
// asking INFO replication when in doubt) and reads to a random replica;
// Memcache does the same for memcached's text protocol (apps/memcached-
// replicated: SERVER_ERROR gomu: redirects, "stats gomu"), with INCR and
// APPEND made of incr/add and gets/cas/add loops whose effect is that of
// exactly one command.
// RunFaults calls a fault injector at points spread over the run by
// progress, not by the clock.
package lincheck
