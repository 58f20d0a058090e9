//go:build linux

package faulty_test

import (
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
	_ "github.com/gomu-rdma/gomu/verbs/shm"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

// provider runs the conformance suite through the wrapper, with no rule
// installed, over shm fabrics named after the test (so the devices of one
// test, and the peer process the suite starts, share one). The name is
// registered at package init so the peer process, which re-executes this
// binary, can open it too.
var provider = verbstest.Provider{
	Name:         faulty.Register("shm"),
	Options:      verbs.Options{RetryTimeout: 200 * time.Millisecond},
	Device:       func(t testing.TB, i int) string { return fabricName(t) },
	CrossProcess: true,
	// The suite's AllocsPerRun check is not run at all under the race
	// detector, whose instrumentation allocates.
	ZeroAlloc: !raceEnabled,
}

func TestMain(m *testing.M) { verbstest.Main(m, provider) }

func TestConformance(t *testing.T) { verbstest.Run(t, provider) }
