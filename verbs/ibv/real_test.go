//go:build rdma && !ibvfake

package ibv

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

// On a machine with an RDMA NIC, `go test -tags rdma ./verbs/ibv` runs the
// conformance suite on real hardware, over loopback on one port, with the
// peer-death cases in a second process. GOMU_IBV_DEVICE names the device
// ("mlx5_0", "mlx5_0:2"; default the first) and GOMU_IBV_GID_INDEX the GID
// for RoCE ports.
var provider = verbstest.Provider{
	Name:         "ibv",
	Options:      verbs.Options{RetryTimeout: 200 * time.Millisecond, GIDIndex: envInt("GOMU_IBV_GID_INDEX")},
	Device:       func(testing.TB, int) string { return os.Getenv("GOMU_IBV_DEVICE") },
	CrossProcess: true,
	ZeroAlloc:    true,
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func TestMain(m *testing.M) { verbstest.Main(m, provider) }

// openOrSkip skips when the machine has no usable RDMA device, which must
// be reported as ErrNoDevice, never as a crash or another error.
func openOrSkip(t *testing.T) {
	d, err := verbs.Open("ibv", os.Getenv("GOMU_IBV_DEVICE"), provider.Options)
	if err != nil {
		if !errors.Is(err, verbs.ErrNoDevice) {
			t.Fatalf("open with the real libibverbs: %v, want a device or ErrNoDevice", err)
		}
		t.Skipf("no RDMA device on this machine: %v", err)
	}
	t.Logf("testing on %s", d.Name())
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	openOrSkip(t)
	verbstest.Run(t, provider)
}
