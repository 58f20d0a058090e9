//go:build linux

package shm

import (
	"os"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

// provider runs the conformance suite on fabrics named after the test, so
// that the devices of one test (and its peer process, which is told the
// name) share a fabric and tests never see each other's nodes.
var provider = verbstest.Provider{
	Name:         providerName,
	Options:      verbs.Options{RetryTimeout: 200 * time.Millisecond},
	Device:       func(t testing.TB, i int) string { return fabricName(t) },
	CrossProcess: true,
	ZeroAlloc:    true,
}

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		runChild()
		return
	}
	verbstest.Main(m, provider)
}

func TestConformance(t *testing.T) { verbstest.Run(t, provider) }
