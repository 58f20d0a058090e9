//go:build rdma && !cgo

package ibv

import (
	"fmt"

	"github.com/gomu-rdma/gomu/verbs"
)

func init() {
	verbs.Register("ibv", func(string, verbs.Options) (verbs.Device, error) {
		return nil, fmt.Errorf("%w, and with CGO_ENABLED=1", ErrNotBuiltIn)
	})
}
