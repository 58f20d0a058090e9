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
// EXECABORT as Redis does. Most server commands (INFO, CLIENT, …) are
// refused inside MULTI; PING, ECHO, SELECT and REPLICAOF are queued. CONFIG
// is queued too and runs on this node once the transaction has run, its
// reply in its place (multilocal.go): its effect follows the
// transaction's writes instead of sitting between them.
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
// gomu.blockat <waiter id> <arrival> <command…>, where the id is this
// server process's random incarnation nonce, the connection id and a
// sequence number (so ids never collide across restarts; clients cannot
// send gomu.blockat), and the arrival is the kernel's receive time of the
// command (arrival.go): waiters queue in the order their commands arrived,
// as Redis queues them, even when two connections' entries reach the log
// in the other order. Applying
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
// scored pairs, verbatim text, pushes). A script's reply is the
// exception: its types are the script's, so the store writes it in the
// caller's protocol (store.Env.RESP3; a RESP3 connection replicates its
// script calls wrapped in store.RESP3Command), and redis.setresp(3) hands
// scripts their commands' replies as this conversion types them (the
// store's lua_resp3.go).
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
// events come from the expiry sweep's proposal, from writes that find a
// key expired and from the deletion the leader proposes after a read met
// one; evicted events from the leader's eviction proposals. Keyspace-miss
// events ('m') come from the reads, on the replica that served them only;
// a read that finds a key expired reports a miss, and its expired event
// comes when the deletion is applied.
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
// EVAL, EVALSHA and FCALL of a script that may write run first
// speculatively, outside MULTI: locally as a read (after the read barrier,
// killable), abandoned silently at the script's first write or PUBLISH. A
// run that never reaches one answers the call, and nothing is proposed; an
// abandoned one changed nothing, and the call is replicated as above (so a
// writing script's reads before its first write run twice). A follower
// serves the scripts that turn out to only read, and answers READONLY to
// the others. EVAL of a body not yet cached, answered by its speculative
// run, has the body cached through the log (as by SCRIPT LOAD), as Redis
// caches every EVAL'd script. See scripting.go.
//
// # ACL
//
// Users are replicated state (store/acl.go): ACL SETUSER and DELUSER go
// through the log as the internal gomu.acl, so every replica has the same
// users, and the snapshot keeps them. A connection's user is its own, on
// its replica: it starts as the default user and changes with AUTH, HELLO
// … AUTH and RESET; CLIENT LIST shows it. The dispatch asks of every
// command one thing, whether the connection's user is on, needs no
// password and may run everything (the default user's "on nopass ~* &*
// +@all"); only otherwise does it check authentication (NOAUTH) and the
// command's permissions (NOPERM), when a command is queued in MULTI too.
// A script call of a restricted user reaches the log as gomu.asuser user
// command ..., so that redis.call and redis.acl_check_cmd check that
// user, as it stands at that point of the log, on every replica. ACL LOG
// is each replica's own, as each Redis node's.
//
// # Large values
//
// A write larger than the proposal limit (Config.MaxProposal, the engine's
// batch less a margin) leaves the batch: the writes before it are flushed,
// it is proposed alone, and the engine carries it as chunk entries that
// every replica reassembles and applies whole (consensus's large
// commands); an EXEC whose transaction is larger goes the same way, as one
// command. So a value may be as large as Redis allows (proto-max-bulk-len,
// 512 MB per argument) while small writes keep their batches.
//
// # MIGRATE
//
// MIGRATE runs on the leader, on the calling connection only (migrate.go):
// after a read barrier it reads the keys under the read lock, their DUMP
// payloads (the store's one encoder), TTLs and WATCH stamps, then sends
// AUTH, SELECT and RESTORE to the target (Redis or gomu) over a
// connection cached per host:port for 10 s, each write and reply within
// the timeout, holding no lock. Without COPY, the keys the target took
// are deleted by one proposal (store.MigratedCommand), so every replica
// agrees; a key written in between keeps its new value (its stamp no
// longer holds), where a single-threaded Redis has no such window. SYNC's
// stream sends the deletion as one DEL, as Redis propagates MIGRATE.
//
// # REPLICAOF
//
// REPLICAOF (SLAVEOF) host port makes the whole server, every replica of
// a cluster, a replica of a real Redis master; REPLICAOF NO ONE makes it
// a master again, keeping the data. The role is replicated state: the
// command goes through the log as gomu.replicaof (a follower refuses it
// with READONLY, as a write), the snapshot carries it (store's section
// 'R'), and each REPLICAOF draws a new epoch. The leader alone (or the
// standalone server) runs the link (replink.go): Redis's replica handshake
// (masterauth and masteruser for AUTH), PSYNC ? -1, the RDB in either
// transfer form, then the command stream, with REPLCONF ACK every second
// and GETACK answered. The RDB is loaded through the log, a FLUSHALL and
// FUNCTION FLUSH, then each key as RESTORE … REPLACE ABSTTL with its
// IDLETIME or FREQ (store.WalkRDB cuts the file with RESTORE's own
// decoder and checks its CRC-64) and each function library as FUNCTION
// LOAD REPLACE, in batches; every command of the stream is then proposed
// in order, a MULTI … EXEC in one proposal. Everything the link proposes
// is wrapped as gomu.replicaof run <epoch> …, which does nothing under
// another epoch, so nothing of an old link lands after REPLICAOF NO ONE
// or a new REPLICAOF. The link's state (up or down) is proposed too, so
// every replica's INFO and MASTERDOWN agree. A link that fails (connect,
// handshake, a silence longer than repl-timeout, a malformed RDB) is
// logged, marked down and retried a second later; a new leader starts over with a full resync.
//
// While a replica, client writes answer READONLY (replica-read-only,
// CONFIG SET per node), and with replica-serve-stale-data no and the link
// down, the commands Redis does not flag stale answer MASTERDOWN; EXEC
// judges what it queued, as Redis does, and aborts with EXECABORT. Both
// checks cost the dispatch one atomic load (Machine.master) while a
// master.
//
// # RDB persistence and SHUTDOWN
//
// SAVE, BGSAVE [SCHEDULE], LASTSAVE and INFO persistence's rdb_* fields
// are Redis's (rdb.go): each node writes its own <dir>/<dbfilename>
// (--dir, --dbfilename or CONFIG SET dbfilename; default dump.rdb), a
// Redis 7.0 RDB file (store.AppendRDB: DUMP's encodings, keys sorted,
// function libraries as FUNCTION2) that redis-check-rdb accepts and a
// real Redis loads. The image is serialized in memory under the read
// lock, a point in time, then written to temp-<pid>.rdb, fsynced and
// renamed over the file; BGSAVE writes it from a goroutine. A standalone
// server with appendonly no loads the file at start (as REPLICAOF loads a
// master's: RESTORE … REPLACE ABSTTL, FUNCTION LOAD, through Apply); a
// cluster replica rejoins by state transfer instead, as with its
// append-only file. SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] saves when SAVE
// asks, fsyncs the append-only file, closes the server and ends the
// process as SIGTERM does, without a reply; SAVE and SHUTDOWN are refused
// inside MULTI, BGSAVE is queued and runs at EXEC.
//
// # Differences from Redis 7
//
// Each is a consequence of replication or of this server's design; the
// store's files say more.
//
//   - Scripts: SCRIPT KILL (and FUNCTION KILL) stops a script until its
//     first write (its speculative run, see Scripting); a replicated run
//     (the call's second run, from the start, after it wrote, or an EVAL
//     inside MULTI) runs to its end or to its instruction budget (a few
//     seconds of work), where it fails at the same instruction on every
//     replica, keeping the writes it made: SCRIPT KILL answers UNKILLABLE
//     once it wrote, a gomu error before. A command sent while a
//     replicated script runs, before lua-time-limit, waits for it. A
//     writing script's keyspace hits and misses before its first write are
//     counted twice. EVAL_RO of a body, or EVAL of a no-writes one, does
//     not cache it; function
//     libraries' local state does not outlive a call; FUNCTION DUMP's
//     payload is this server's own; gopher-lua words some errors
//     differently from Lua 5.1; DEBUG SET-DISABLE-DENY-SCRIPTS lets
//     scripts call DEBUG (PROTOCOL, SLEEP) only, not the server's other
//     noscript commands.
//   - Configuration: CONFIG SET changes the encoding thresholds (through
//     the log, on every replica), lua-time-limit, maxmemory and its
//     policy, samples and LFU parameters, repl-ping-replica-period,
//     min-replicas-to-write (good replicas: the followers the leader
//     hears from), appendonly, appendfsync and aof-use-rdb-preamble (on
//     this replica, as in Redis); any other parameter only to the value
//     it has, else it says it is not supported. dir is set by --dir only.
//   - Eviction: the leader alone picks the keys to evict, by its policy
//     and its own access data, and proposes their deletion; used memory
//     is the Go heap's live objects (less what evictions freed since the
//     last collection), not an allocator's count.
//   - Append-only file (aof.go): one file, a base that is this server's
//     snapshot, then the proposals applied, replayed as they are (each
//     carries the leader's clock and seed), not Redis's appendonlydir of
//     RESP files; BGREWRITEAOF rewrites before it answers; DEBUG LOADAOF
//     with appendonly no is refused; a cluster replica does not load its
//     file at start (it rejoins by state transfer), a standalone server
//     does; a failed write refuses writes with MISCONF until a rewrite
//     succeeds, where Redis with appendfsync always exits.
//   - Introspection: INFO keyspace reports avg_ttl=0; CLIENT LIST and INFO
//     report fd=-1 and no replication clients of Redis's kind; under RESP3
//     COMMAND keeps its RESP2 shapes; DEBUG DIGEST is a SHA-256 (64 hex
//     digits, not 40); OBJECT IDLETIME and FREQ are each replica's own,
//     from its clients' reads and the writes it applied; SYNC streams a
//     gomu snapshot, then the writes.
//   - Randomness: SPOP and the other writes draw from the leader's seeded
//     source (every replica alike); reads (RANDOMKEY, SRANDMEMBER,
//     HRANDFIELD, ZRANDMEMBER) from the replica's own, so picks differ
//     from Redis's, never their kind or count.
//   - Expiry: a read treats an expired key as absent; on the leader its
//     connection then proposes the key's deletion before replying, as
//     Redis deletes on access, and a follower leaves it to the leader
//     (the next write to it or the sweep); the "expired" event is
//     published when the deletion is applied.
//   - Values: a score of -0 is stored as 0; PFCOUNT on a follower does
//     not cache the cardinality in the HLL's header (on the leader it
//     proposes the cache write after the read); DUMP of a set or hash in
//     a hash table lists it in this server's order; WATCH compares
//     contents, so a key rewritten to the same value and TTL does not
//     abort the transaction.
//   - Streams: "*" IDs and delivery times come from the leader's clock;
//     COMMAND reports XGROUP as a write.
//   - Ordering across connections: Redis runs commands in the order they
//     arrive, on its one thread; here each connection's goroutine takes
//     its commands to the log. Blocked clients queue by the kernel's
//     receive time of their commands (arrival.go), and within 10 s of a
//     blocking command or a subscription change a write waits, up to
//     2 ms, for commands that arrived before it on other connections
//     (ordering.go): a push does not overtake an earlier blocking pop,
//     nor a PUBLISH an earlier UNSUBSCRIBE. Otherwise two commands sent
//     back to back on two connections, without waiting for the first
//     reply, may run in either order, and a connection that holds an
//     earlier command longer than 2 ms (a script, WAIT) is overtaken.
//   - Blocking commands: a client blocked on a replica that lost the lead
//     gets an UNBLOCKED error; XREAD … BLOCK is refused on a follower like
//     a write.
//   - Statistics: INFO commandstats, errorstats and latencystats are each
//     replica's own, of what its clients sent it (a write counts on the
//     leader that took it); usec is the batch's time, from reading it to
//     its replies, replication included, shared among its commands; the
//     commands a script calls count (as in Redis 7.0) where the script's
//     caller is answered, a replicated script's on the replica that leads
//     when it is applied, with no time of their own.
//   - ACL: selectors ("(...)" rules) are refused with an error; ACL
//     LIST and GETUSER print the single-command rules that follow the
//     categories in name order (Redis in its hash table's); a command's
//     keys need read permission if it is a read, write permission if it
//     is a write (both for a script), not per key spec; AUTH inside MULTI
//     is queued as before and does not log in; ACL itself is not allowed
//     in MULTI; a deleted user's connections close at once on the
//     replica that ran DELUSER, at their next command on the others, and
//     subscribers of a revoked channel are closed on that replica only;
//     no aclfile (ACL LOAD and SAVE answer Redis's error for that).
//   - MIGRATE is refused inside MULTI and in scripts, and COMMAND INFO
//     gives it no key specs (GETKEYS finds its keys); if the deletion
//     after a move does not commit (the leader lost the lead), it
//     answers that error, the keys being on both servers.
//   - REPLICAOF: always a full resync (PSYNC ? -1), never a partial one,
//     also when the leader changes; the RDB is held in memory while it
//     loads, and clients see it loaded in part (Redis answers LOADING
//     then); no sub-replicas of Redis's kind (SYNC taps excepted), no
//     replica-announce-* or repl-diskless-load settings; replica-*,
//     masterauth, masteruser and repl-timeout are each node's own, as in
//     Redis; a follower answers REPLICAOF with READONLY; INFO's offsets
//     and master_last_io_seconds_ago are the leader's link's (a follower
//     reports -1); a module type or pre-7.0 function opcode in the RDB,
//     or a database above 15, fails the sync; a stream group's
//     entries-read is lost as on a Redis replica, and consumers'
//     seen-times are this server's clock; a replica refuses a script
//     that writes before it runs (READONLY), and queued in MULTI.
//   - GEO: a distance kept to its last bit (GEOSEARCHSTORE and
//     GEORADIUS STORE with STOREDIST) may differ from Redis's in its last
//     bits, rarely: the haversine's sine, cosine and arcsine are correctly
//     rounded here (the same on every replica and architecture), glibc's
//     nearly always but not always; a reply's four-decimal distance, or a
//     point on the radius to the last bit, could differ only as rarely as
//     such a difference falls on the boundary. GEORADIUS and GEORADIUSBYMEMBER
//     are writes (as Redis flags them), so they go through the log even
//     without STORE; their _RO forms and GEOSEARCH are reads.
//   - RDB: rdb-key-save-delay lengthens a BGSAVE's write by its delay
//     per key (Redis's child sleeps as it saves each key); the save
//     parameter has no save points ("" and fixed), so
//     nothing is saved on a timer, SHUTDOWN saves only with SAVE and
//     SIGTERM never; BGSAVE's serialization holds the read lock (writers
//     wait for it, not for the disk), where Redis forks; a BGSAVE queued
//     in MULTI answers "Background saving started" at EXEC (Redis:
//     "scheduled"); rdb_changes_since_last_save counts the commands
//     applied, not the keys changed; no LRU/LFU data is written; SHUTDOWN
//     ABORT always answers that no shutdown is in progress (a shutdown
//     is immediate); the RDB file never seeds an append-only file (the
//     base is a gomu snapshot). The load is logged at info level
//     (--verbose).
//   - Not implemented: shard channels (SSUBSCRIBE, SPUBLISH).
package server
