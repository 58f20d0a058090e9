// Command faults-etcd is gomu's fault runner (internal/faults) with etcd
// beside gomu: the same workloads, faults and verdicts against a
// Debian etcd-server cluster through etcd's Go client, so that the two
// can be put side by side (--systems gomu,etcd):
//
//	faults-etcd run   --systems gomu,etcd --env netns --faults crash-loop,sigstop
//	faults-etcd lease --systems gomu,etcd --clients 1,2,4,8,16,32,64
//
// It lives in bench/peers so that etcd's dependencies stay out of gomu's
// module. etcd has no pause of its own: the pause-fifo fault is skipped
// for it (sigstop is the same stop from outside).
package main

import (
	"github.com/gomu-rdma/gomu/bench/peers/internal/etcdsys"
	"github.com/gomu-rdma/gomu/internal/faults"
)

func main() {
	faults.Main("faults-etcd", faults.GomuRedis(), faults.GomuMemcached(), etcdsys.Factory())
}
