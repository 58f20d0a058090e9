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
// On a follower, reads are linearizable too, by default: before the first
// read of a batch the connection passes the engine's ReadBarrier, which
// asks the leader for a read index (the leader confirms its position with
// a majority, batched with every other reader's, and answers with its
// commit index) and waits until the follower has applied it. A value a
// client was told is set, by any leader, is visible in every read that
// starts after that reply, on every replica. With StaleFollowerReads
// (--follower-reads stale) a follower serves its state as the leader last
// told it instead, without asking: cheaper, as Redis's replicas are, and
// as stale as they can be after a pause or a partition. INFO says which
// mode is on (gomu_follower_reads).
//
// A replica that cannot serve a read now says so with TRYAGAIN: while it
// catches up (TRYAGAIN … catching up. leader=<id> addr=<host:port>), while
// no live leader is known (TRYAGAIN gomu: no leader (election in
// progress)), or when its barrier does not complete within Timeout. A
// paused replica (the fifo's p) holds its connections like a hung process
// and answers nothing until it resumes.
//
// Writes on a follower are refused with
//
//	-READONLY You can't write against a read only replica. leader=<id> addr=<host:port>
//
// naming the leader's client address (published through the registry as
// the replica's consensus Meta), never this replica and never one the
// engine does not see alive; while no leader is known, writes get the
// TRYAGAIN above. INFO lists every replica's client address
// (gomu_replica_addrs), so a client given one address finds the others. A
// write answered READONLY or TRYAGAIN because leadership changed while it
// was in flight may have been applied by the next leader, as a write can
// be lost or kept across a Redis fail-over.
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
// EXECABORT as Redis does. Server commands (INFO, CONFIG, CLIENT, …) are
// refused inside MULTI; PING, ECHO and SELECT are queued.
//
// WATCH notes a stamp of each key (a SHA-256 of its value and TTL, or
// none: store.WatchStamp), read after a read barrier; EXEC puts the stamps
// in front of the transaction, and the transaction runs only if they still
// hold where it is applied, on every replica alike, else EXEC answers a
// null array. So the decision rides the log, with no per-key counters to
// replicate. Unlike Redis, a key rewritten to the same value and TTL in
// between does not abort the transaction.
//
// # Databases
//
// There are Redis's 16. SELECT is the connection's state: its reads run on
// that database of the local store (store.View), and its writes carry it
// in their proposal, as a gomu.select inserted only where the database
// changes (every proposal starts in database 0, so database 0 costs
// nothing). A SELECT queued in MULTI switches the transaction's later
// commands when it is applied, and the connection's database once EXEC
// ran. WATCH stamps are per database and key; Pub/Sub is not per database,
// as in Redis. MOVE, SWAPDB, FLUSHDB, FLUSHALL and COPY … DB are writes
// like any other; the expiry sweep covers every database.
//
// # Blocking commands
//
// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX and BZMPOP
// block on the leader (a follower refuses them with READONLY, as every
// write). Their waiters are replicated state (the store's blocking.go): the
// connection flushes its pending writes and proposes the command alone, as
// gomu.block <waiter id> <command…>, where the id is this server process's
// random incarnation nonce, the connection id and a sequence number (so ids
// never collide across restarts; clients cannot send gomu.block). Applying
// it serves the command at once if it can (the reply goes back as any
// write's); otherwise it registers the waiter and replies nothing, and the
// connection waits on a channel it registered with the Machine before
// proposing. After each write command (and after a whole transaction, as
// Redis after EXEC) every replica serves the waiters of the keys that
// became ready, longest-waiting first, by re-running their commands, so an
// element is popped once in the log; the reply reaches the channel only on
// the replica that owns the id (Env.Unblock). Inside MULTI a blocking
// command never blocks: it answers a null array (a null bulk for BLMOVE and
// BRPOPLPUSH) at once, as Redis does.
//
// XREAD … BLOCK and XREADGROUP … BLOCK block the same way (XREAD's $ is
// pinned to the stream's last ID when its waiter registers; XADD, and for
// XREADGROUP the stream's deletion or its group's XGROUP DESTROY, serve
// them as Redis 7.0 does). Without BLOCK they never block: XREAD stays a
// local read on any replica, XREADGROUP a batched write; XREAD with BLOCK
// goes through the log, so a follower refuses it with READONLY.
//
// A wait ends through the log too. At its timeout (on the leader's clock)
// the connection proposes gomu.unblock <id> timeout, which removes the
// waiter if it was not served first and delivers the null array; CLIENT
// UNBLOCK does the same (ERROR delivers "-UNBLOCKED client unblocked via
// CLIENT UNBLOCK"), and so does a client that closes while blocked. A
// replica that leads checks every ExpirePeriod for waiters nobody waits
// for: its own whose connection gave up or left without ending them (each
// gets a gomu.unblock), and those of another server process, an earlier
// leader's, which it ends with gomu.unblockall <its nonce>: they are
// removed and their owners, if they still apply the log, answer
// "-UNBLOCKED gomu: leadership changed, retry the command", unless a serve
// came first in the log, so a client of the old leader gets exactly one of
// the two. A connection whose replica has not led for longer than Timeout
// gives up with that same error without waiting for the log: a serve
// committed in that window (before the new leader ended the waiter) pops
// an element this client never gets, as an element served to a client
// that has just disconnected is lost in Redis. INFO's blocked_clients and
// CLIENT LIST's flag b count this replica's blocked connections.
//
// # Protocols
//
// RESP2, and RESP3 after HELLO 3 (resp3.go): the replicated replies are
// RESP2 bytes, the same on every replica, and each RESP3 connection
// rewrites its own as Redis 7.0 types them (nulls, doubles, maps, sets,
// scored pairs, verbatim text, pushes).
//
// # Pub/Sub
//
// PUBLISH is replicated like a write (a follower refuses it with READONLY):
// every replica, applying it, delivers the message to its own subscribers,
// so SUBSCRIBE and PSUBSCRIBE on any replica hear every message in the
// order the log gives. Its reply counts the subscribers of the replica that
// answers it, the leader, as Redis counts its own node's. PUBSUB reports
// this replica's subscriptions. A connection in subscribed mode may run
// only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING and QUIT, as in Redis with RESP2;
// its replies and messages leave through a queue of its own, and one that
// lets 32 MiB pile up is disconnected (Redis's pubsub output limit).
//
// Keyspace notifications (notify-keyspace-events, Redis 7.0's event names
// and classes) work the same way: the setting is replicated configuration
// (CONFIG SET proposes it, as the encoding thresholds), and the write
// commands produce their events as they are applied, in log order, on
// every replica, each delivering them to its own subscribers; so a
// subscriber on any replica hears every event in the same order. Expired
// events come from the expiry sweep's proposal and from writes that find
// a key expired; evicted events never happen (noeviction). Keyspace-miss
// events ('m') come from the reads, on the replica that served them only;
// a read that finds a key expired reports a miss but no expired event (it
// deletes nothing: the sweep or the next write does, and reports it then).
//
// # Scripting
//
// EVAL, EVALSHA, FCALL and the SCRIPT and FUNCTION commands that change
// the script cache or the libraries (LOAD, FLUSH, DELETE, RESTORE) are
// replicated verbatim like writes: every replica runs the script with the
// leader's clock (TIME inside a script) and seed (math.random), so it
// writes the same everywhere. EVAL_RO, EVALSHA_RO, FCALL_RO, scripts
// declared "#!lua flags=no-writes" and no-writes functions run locally as
// reads (on a follower too) and refuse write commands (see the store's
// scripting.go; store.Store.ScriptWrites decides). While a script has run
// past lua-time-limit (5000 ms; CONFIG SET changes this replica's) other
// clients get BUSY, except SCRIPT KILL and FUNCTION KILL.
//
// # Differences from Redis 7
//
// Scripts: a replicated script cannot be stopped on one replica, so SCRIPT
// KILL (and FUNCTION KILL) stops only read-only scripts running locally; a
// replicated one is answered UNKILLABLE once it wrote, and an error saying
// it cannot be killed before that (Redis kills any script that has not
// written yet). Instead every script has an instruction
// budget (a few seconds of work): a script that exceeds it fails with
// an error, at the same instruction on every replica, keeping the writes
// it made. A command sent while a replicated script runs but before the
// threshold waits for it (Redis would answer BUSY once the threshold
// passes). EVAL of a read-only script does not add it to the script cache;
// math.random is seeded per run from the leader's seed; function
// libraries' local state does not outlive a call; replies reach scripts as
// RESP2's whatever redis.setresp says; cmsgpack and struct are absent;
// FUNCTION DUMP's payload is this server's own format; FUNCTION LIST
// orders libraries and functions by name; commands only the server knows
// (INFO, CLIENT, …) are unknown to scripts; gopher-lua words compile
// errors and some runtime errors differently from Lua 5.1.
//
// INFO keyspace reports avg_ttl=0 (Redis estimates it in an expiry cycle
// of its own); under RESP3 (HELLO 3) the replies of COMMAND keep
// their RESP2 shapes (valid RESP3, not Redis's maps); CONFIG GET answers the parameters clients
// and redis-benchmark ask for. CONFIG SET changes the encoding thresholds
// (hash-, set-, zset-, list-max-*, list-compress-depth,
// hll-sparse-max-bytes, stream-node-max-*) through the log, as replicated
// state (store.ConfigCommand), and maxmemory (noeviction: DenyOOM commands
// refused over it) and repl-ping-replica-period on this node; the rest of
// the configuration is fixed: CONFIG SET succeeds only where it sets a
// parameter to the value it has, and says it is not supported otherwise.
// CLIENT LIST and INFO report fd=-1 and no memory figures, and no
// replication clients of Redis's kind; SYNC streams the writes this replica
// applies after a gomu snapshot, as clients sent them (sync.go). DEBUG
// DIGEST returns this store's SHA-256 digest (64 hex digits, not Redis's
// 40); DEBUG RELOAD round-trips the store through a snapshot on every
// replica (store.ReloadCommand); SET-ACTIVE-EXPIRE, SLEEP, PROTOCOL,
// DIGEST-VALUE, QUICKLIST-PACKED-THRESHOLD, CHANGE-REPL-ID and JMAP are
// answered as Redis answers them (debug.go), DEBUG OBJECT in Redis's layout; a write larger than the
// proposal limit (up to proto-max-bulk-len per argument) is proposed
// alone, through the engine's large-command path, but inside MULTI it gets
// an error instead of being queued; no keyspace notifications and no shard
// channels (SSUBSCRIBE, SPUBLISH). Sorted sets: ZRANDMEMBER's picks are
// this server's own (uniform, by rank), not Redis's, though a count of at
// least the set's size replies the whole set, highest score first, as
// Redis does; a score of -0 is stored as 0 (Redis keeps -0 in a set of over
// 128 members or with a member over 64 bytes); a BYLEX range over members
// of different scores, which Redis leaves undefined, is searched by rank.
// Keys: RANDOMKEY draws from the replica's own random source, so its picks
// differ from Redis's (any live key; null when there is none). OBJECT
// ENCODING reports the encoding Redis 7.0's conversions give a value under
// the configured thresholds, history included (a hash or sorted set that
// shrank keeps its hashtable or skiplist, an APPENDed string is raw);
// SSCAN, HSCAN and ZSCAN return a small encoding whole, as Redis does, and
// walk a large one on SCAN's hash line; OBJECT REFCOUNT is 2147483647 for
// a string reading as an integer in 0..9999 (Redis's shared integers) and
// 1 otherwise; OBJECT IDLETIME is always 0, as no access times are kept;
// OBJECT FREQ fails as under Redis's default maxmemory-policy. SORT …
// ALPHA compares bytes (as Redis in the C locale), never by the server's
// locale, and keeps the input order of elements whose ALPHA BY values tie;
// a set left unsorted (BY without '*') comes out in its own order.
// Sets and hashes: SPOP draws from the leader's seeded random source (every
// replica pops the same), SRANDMEMBER and HRANDFIELD, reads, from the
// replica's own, so the members they pick (and the order of several)
// differ from Redis's picks.
// HyperLogLogs: PFCOUNT is a read and does not store the cardinality it
// computes in the HLL's header as Redis's PFCOUNT does, so a GET of an HLL
// after PFCOUNT may differ from Redis's in those 8 bytes (its replies are
// the same); PFSELFTEST answers OK without a self test of its own.
// Streams: IDs from "*" and delivery and seen times come from the leader's
// clock (idle times in XPENDING and XINFO from the answering replica's);
// the nodes follow stream-node-max-entries and -bytes (replicated by
// CONFIG SET); COMMAND reports XGROUP as a write (its subcommands
// decide in Redis); XAUTOCLAIM's "Insufficient memory" for a huge COUNT
// is judged by a fixed bound, not by an allocation.
// Blocking commands: a waiter on several keys that become ready in one
// command is served from the first of them given a new value; a blocked
// client of a replica that lost the lead gets an UNBLOCKED error, not its
// element (see Blocking commands). Two clients' commands race into the log:
// a blocking command sent just before another client's write may be
// ordered after it (Redis's test suite assumes the first sent runs first
// in a few tests that do not wait for the client to block).
package server
