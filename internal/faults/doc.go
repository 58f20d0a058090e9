// Package faults runs a replicated store under the faults machines
// suffer, and judges what its clients saw: the fault runner behind
// cmd/faults (gomu), bench/peers/cmd/faults-etcd (etcd beside it) and
// apps/orderbook/cmd/orderbook-faults (the replicated order book).
//
// # Pieces
//
//   - An Env is where processes run: this machine (every host 127.0.0.1,
//     gomu on shm) or a test bed of one network namespace per host
//     (internal/testbed: replica hosts r1…rn, a registry host, a client
//     host; gomu on tcp with real addresses). The workload's sockets are
//     made in the client host's namespace.
//   - A System is the store under test (GomuRedis: Debian's memcached as
//     the registry and redis-server-replicated per replica host, with
//     the flags a user would give it; GomuMemcached the same with
//     memcached-replicated, asked "stats gomu" and "stats gomu digest",
//     its workload lincheck.Memcache, its leases memcached's add): it
//     starts, names its leader, kills and restarts replicas, pauses them
//     its own way, makes clients, and reports digests. GomuApp, with a
//     GomuProto per app, is the System of any of gomu's replicated apps;
//     an app whose clients live outside this package (the order book,
//     apps/orderbook/internal/faultsys) implements its GomuProto there.
//   - A Fault is injected into the replica holding a role (leader or
//     follower) when the fault window opens and ended when it closes:
//     cpu-quota (cgroup), busy-neighbours (pinned beside busy loops),
//     kill (kill -9 once, restarted when the window ends), crash-loop
//     (kill -9 and restart every second), memory-limit
//     (cgroup), pause-fifo, sigstop, and on the test bed isolate (link
//     down), split (cut from the other replicas only), loss (nftables;
//     the kernel here has no netem) and slow-link (tc tbf).
//   - RunScenario drives internal/lincheck's key-value workload (N
//     clients, writes to the leader, reads on every replica) through a
//     baseline, the fault window and a recovery, then judges: the whole
//     history's linearizability (porcupine; a violation keeps the history
//     and porcupine's visualisation), acknowledged writes lost (APPEND
//     tokens and INCR results the final state lacks), the replicas'
//     digests, throughput before and during the fault, the longest gap
//     between acknowledged writes (inside the window, and from the
//     fault to the end), latency percentiles;
//     and writes a per-second CSV and a PNG with the fault marked.
//   - A System that is a Workloader brings its own workload and verdict
//     instead of the key-value one: the order book's traders, judged
//     exactly-once (acknowledged orders lost, orders doubled, and what
//     the check could not decide, each counted and each failing the
//     scenario). RunScenario runs it through the same baseline, window
//     and recovery, draws the same timeline from the requests it
//     reports (TimedOp), compares the same digests, and skips porcupine
//     and the read-back of writes, which its verdict replaces; the
//     summary line adds lost_<unit> and doubled_<unit>.
//   - RunLease is the lease workload of a lease service: N clients, two
//     per application, asking for their application's lease (SET NX PX)
//     for 3 s with a 1 s timeout; granted and rejected response times,
//     timeouts, and overlaps — two holders whose grants the store must
//     have made less than a TTL apart, which must never happen.
//
// # Decisions
//
// A fault is aimed at a role, not a replica: the victim is chosen when the
// window opens, and crash-loop picks anew at each kill, so "leader" keeps
// meaning the current leader. After every scenario the runner restarts
// whatever is down (a crash-loop's last victim, a replica the kernel's
// OOM killer ended under a memory limit) and waits for a leader every
// replica names, so that each scenario starts on a whole cluster: a
// cluster that does not come back whole ends the run with an error.
// Clients shun a replica that did not answer for a second (lincheck's
// Redis.Shun, the same in etcd's client here), as clients with other
// replicas to ask would. Scratch data lives on /dev/shm, so that etcd is
// measured without a disk, as gomu keeps its log in memory.
package faults
