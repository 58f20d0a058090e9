//go:build rdma && ibvfake

package ibv

import (
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

// provider runs the conformance suite against the ibvfake double, which
// stands in for libibverbs in-process: every device opened is a context on
// the same fake fabric, and peers cannot live in another process.
var provider = verbstest.Provider{
	Name:    "ibv",
	Options: verbs.Options{RetryTimeout: 200 * time.Millisecond},
	Device:  func(testing.TB, int) string { return "fakeib0" },
	// Post and Poll go through cgo with plain values only; measured at
	// 0 allocations per op.
	ZeroAlloc: true,
}

func TestMain(m *testing.M) { verbstest.Main(m, provider) }

func TestConformance(t *testing.T) { verbstest.Run(t, provider) }
