// Package server is memcached-replicated's network side: it speaks
// memcached's text, meta and binary protocols (internal/memcache parses and
// executes them), sends writes through the consensus engine and serves
// reads from the local replica of the items.
//
// # Roles
//
// On the leader, the writes of one read from a connection (a pipelined
// batch) become one proposal; the engine commits concurrent proposals of
// many connections together. A proposal carries each request as the client
// sent it and the leader's clock; every replica parses it again and
// executes it at that time, so expiry (relative exptimes up to 30 days,
// absolute beyond), delayed flush_all, CAS values (a counter only writes
// advance) and eviction under -m (the items written longest ago go first;
// see memcache.Store) come out the same on every replica. A command that
// may change an item is a write, gat/gats/touch and meta commands with a
// touching or vivifying flag included; everything else is a read.
//
// Reads are never replicated and are linearizable on every replica: before
// the first read of a batch the connection passes the engine's ReadBarrier
// (on the leader, a majority confirms it still leads; on a follower, the
// leader hands out a read index which the follower applies first). With
// StaleFollowerReads (--follower-reads stale) a follower serves its state
// as the leader last told it instead: cheaper, and possibly stale after a
// pause or a partition.
//
// A write on a follower is refused (memcached has no redirect) with
//
//	SERVER_ERROR gomu: not the leader leader=<id> addr=<host:port>
//
// naming the live leader's client address (published through the
// registry as the replica's consensus Meta), never this replica. Every
// error of gomu's own starts "SERVER_ERROR gomu: " (in the binary protocol:
// status 0x86 Temporary failure with that text as the body) and means the
// command was not carried out, or, after a replication timeout, may have
// been; it can be sent again, to the leader named if one is:
//
//	gomu: no leader (election in progress)
//	gomu: this replica is catching up. leader=<id> addr=<host:port>
//	gomu: this replica is paused | shutting down
//	gomu: replication timed out
//	gomu: leadership changed during the read
//
// A noreply text command gets no reply even then, as memcached never
// answers one; binary quiet commands get their errors, as memcached sends
// them. "stats gomu" tells a client who leads and every replica's
// address (gomu_leader_id, gomu_leader_addr, gomu_replica_addrs); the
// bare "stats" adds these lines to memcached's own. "stats gomu digest"
// adds gomu_digest: the hex SHA-256 of the replica's items as applied so
// far (Machine.Digest, taken between two proposals), equal on replicas
// that applied the same writes, for fault tests to compare once the
// cluster is quiet. It passes no read barrier, and it hashes the whole
// store, holding off writes meanwhile, so it is only there on request and
// never in the "stats gomu" that clients poll. A paused replica (the
// fifo's p) holds its connections like a hung process and answers nothing
// until it resumes.
//
// # Replies without allocation
//
// The engine's Apply could return each proposal's replies in a fresh slice;
// instead, the replica that proposed writes them into the proposing
// connection's reply slot (see Machine), so a request, write or read,
// allocates nothing once its connection's buffers have grown.
//
// # Differences from memcached 1.6.18
//
// Eviction is by write order, not LRU (reads are not replicated); there is
// no UDP (-U 0 only) and no SASL; "stats slabs" and "stats items" describe
// one pseudo slab class; "stats reset" answers RESET and keeps the
// counters; the VERSION is 1.6.18-gomu; a value must also fit in one
// proposal (--max-batch grows with -I).
package server
