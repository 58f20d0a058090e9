// Package server is redis-server-replicated's network side: it speaks RESP2
// to Redis clients, sends write commands through the consensus engine and
// serves reads from the local replica of the keyspace.
//
// # Roles
//
// On the leader, the write commands of one read from a connection (a
// pipelined batch) become one proposal; the engine commits concurrent
// proposals of many connections together. Reads are linearizable: before
// the first read of a batch the connection passes a consensus ReadBarrier,
// which confirms with a majority that this replica still leads, then reads
// under the machine's read lock. Reads are never replicated.
//
// On a follower, reads serve the follower's committed state after a
// ReadBarrier that waits for every entry its header knows committed; the
// leader runs with EagerCommit, so a value a client was told is set on the
// leader is visible on an active follower right after that reply. Writes
// are refused with
//
//	-READONLY You can't write against a read only replica. leader=<id> addr=<host:port>
//
// naming the leader's client address (published through the registry as
// the replica's consensus Meta). A write answered READONLY because
// leadership changed while it was in flight may have been applied by the
// next leader, as a write can be lost or kept across a Redis fail-over.
//
// # Time and randomness
//
// The leader stamps every proposal with its clock and a random seed; every
// replica applies it with that time and a generator seeded by it (see
// store.Env), so TTLs, SET EX, SPOP and friends decide the same everywhere.
// The leader also proposes a periodic expiry sweep, so expired keys do not
// sit in memory until touched.
//
// # Transactions
//
// MULTI queues commands; EXEC runs them as one proposal (when any writes) or
// locally after one barrier (when all read). Errors at queue time (unknown
// command, wrong arity, a write on a follower) abort the transaction with
// EXECABORT as Redis does. WATCH is not supported. Server commands (INFO,
// CONFIG, CLIENT, …) are refused inside MULTI; PING and ECHO are queued.
//
// # Differences from Redis 7
//
// One database (SELECT 0 only); HELLO speaks RESP2 only (HELLO 3 gets
// NOPROTO, so clients fall back); CONFIG GET answers the parameters clients
// and redis-benchmark ask for, CONFIG SET accepts and ignores them; DEBUG
// supports DIGEST only and returns this store's SHA-256 digest (64 hex
// digits, not Redis's 40); a command larger than the proposal limit gets an
// error instead of being replicated.
package server
