// Package verbstest is the conformance suite every verbs provider must pass.
//
// A provider's tests call Run from a test named TestConformance, which makes
// subtests named TestConformance/<provider>/<case>, and call Main from their
// TestMain so that cross-process cases can re-execute the test binary as the
// remote peer:
//
//	func TestMain(m *testing.M) { verbstest.Main(m, provider) }
//	func TestConformance(t *testing.T) { verbstest.Run(t, provider) }
package verbstest

import (
	"testing"

	"github.com/gomu-rdma/gomu/verbs"
)

// Provider describes the provider under test.
type Provider struct {
	// Name is the provider's registered name and the subtest name.
	Name string
	// Options are passed to every verbs.Open the suite makes. Tests keep
	// RetryTimeout short so death cases finish quickly.
	Options verbs.Options
	// Device returns the device name for the i-th device a test opens.
	// Devices opened with the names of one test must be able to connect
	// QPs to each other (they model hosts on one fabric). Nil means "".
	Device func(t testing.TB, i int) string
	// CrossProcess enables the cases that run the peer in a second OS
	// process (peer death). The provider's TestMain must call Main.
	CrossProcess bool
	// ZeroAlloc enables the AllocsPerRun check of PostWrite+Poll.
	ZeroAlloc bool
}
