//go:build rdma && ibvfake

package verbsrpc

import _ "github.com/gomu-rdma/gomu/verbs/ibv"

// Under the ibvfake double of libibverbs the provider-parametrised tests
// run on the real cgo ibv provider too, except those with a peer in
// another process, which the double cannot reach.
func init() {
	providers = append(providers, "ibv")
	deviceNames["ibv"] = "fakeib0"
	inProcessOnly["ibv"] = true
}
