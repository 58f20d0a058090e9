// Command orderbook-faults is gomu's fault runner (internal/faults) with
// the replicated order book as its first system (--systems orderbook, the
// default; gomu and gomu-memcached beside it): orderbook-server replicas
// under each fault of the catalogue, on the leader and on a follower,
// driven by orderbook-trader and judged by its check, exactly-once —
// every acknowledged order applied once — with the replicas' digests
// ("stats gomu digest" on each replica's --stats port) equal at the end:
//
//	orderbook-faults short --env local              # every fault once on the leader (make faults-short)
//	orderbook-faults run   --env local,netns --faults kill,sigstop --roles leader,follower
//	orderbook-faults list
//
// orderbook-server comes from --bin orderbook=PATH (default: PATH), and
// orderbook-trader from next to it (then next to this binary, then PATH).
// On the test bed (--env netns, root) the traders run as a process in
// the client host's namespace, over tcp. Per scenario a line (orders,
// lost and doubled orders, digests, throughput kept, the longest gap
// between answered orders, p50/p99/p99.9 of an order from its first send
// to its answer), a CSV timeline and a PNG go to --out; the last line
// states the counts, and the exit status is 1 unless all are 0:
//
//	faults-short: scenarios=8 ops=… linearizability_violations=0 undecided=0 lost_writes=0 digest_mismatches=0 errors=0 lost_orders=0 doubled_orders=0
//
// It lives beside the order book, not in cmd/faults, because the order
// book's System (apps/orderbook/internal/faultsys) uses its internal
// packages, which only the order book's own commands may import.
package main

import (
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/faultsys"
	"github.com/gomu-rdma/gomu/internal/faults"
)

func main() {
	faults.Main("orderbook-faults", faultsys.Factory(), faults.GomuRedis(), faults.GomuMemcached())
}
