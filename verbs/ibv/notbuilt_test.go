//go:build !rdma

package ibv

import (
	"errors"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/verbs"
)

func TestOpenWithoutRDMATagSaysHowToRebuild(t *testing.T) {
	for _, dev := range []string{"", "mlx5_0", "mlx5_0:1"} {
		d, err := verbs.Open("ibv", dev, verbs.Options{})
		if err == nil {
			d.Close()
			t.Fatalf("Open(ibv, %q) succeeded in a build without -tags rdma", dev)
		}
		if !errors.Is(err, ErrNotBuiltIn) {
			t.Fatalf("Open(ibv, %q) = %v, want ErrNotBuiltIn", dev, err)
		}
		const want = "ibv transport not built in: rebuild with -tags rdma (needs libibverbs-dev)"
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Open(ibv, %q) error %q does not say %q", dev, err, want)
		}
	}
}
