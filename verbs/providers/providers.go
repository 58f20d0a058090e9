// Package providers links every verbs provider into a binary: import it for
// its side effect, then verbs.Open("shm" | "tcp" | "ibv", ...). The ibv
// provider is real only in binaries built with -tags rdma; otherwise opening
// it returns an error that says how to rebuild.
package providers

import (
	_ "github.com/gomu-rdma/gomu/verbs/ibv" // real NICs (cgo, -tags rdma)
	_ "github.com/gomu-rdma/gomu/verbs/shm" // same host, shared memory
	_ "github.com/gomu-rdma/gomu/verbs/tcp" // any hosts, soft NIC over TCP
)
