// Command faults runs gomu's replicated Redis (--systems gomu, the
// default) or memcached (--systems gomu-memcached) under faults and judges
// what its clients saw (see internal/faults):
//
//	faults run   [--env local|netns|local,netns] [--faults all] [--roles leader,follower] [--fast] …
//	faults short                  # every fault once, a few seconds each (make faults-short)
//	faults lease [--clients 1,2,4,…,64]
//	faults list                   # the fault catalogue
//
// Each run starts Debian's memcached as the registry and one
// redis-server-replicated (--bin gomu=PATH) or memcached-replicated
// (--bin gomu-memcached=PATH) per replica host (default from PATH),
// drives the key-value workload, injects each fault of the catalogue
// into the leader and into a follower, and prints one line per
// scenario: operations, the linearizability verdict of the whole history
// (porcupine, reads on every replica), acknowledged writes lost, whether
// the replicas' digests are equal, throughput kept during the fault,
// the longest gap between acknowledged writes (in the fault window, and
// from the fault to the end), p50/p99/p99.9. Per
// scenario a CSV timeline and a PNG plot go to --out; a violation keeps
// the history and porcupine's visualisation there. The last line states
// the counts, and the exit status is 1 if any is not zero:
//
//	faults: scenarios=23 ops=… linearizability_violations=0 undecided=0 lost_writes=0 digest_mismatches=0 errors=0
//
// The same runner with etcd beside gomu is bench/peers/cmd/faults-etcd,
// and with the replicated order book apps/orderbook/cmd/orderbook-faults.
package main

import (
	"github.com/gomu-rdma/gomu/internal/faults"
)

func main() { faults.Main("faults", faults.GomuRedis(), faults.GomuMemcached()) }
