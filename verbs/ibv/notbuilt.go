//go:build !rdma

package ibv

import "github.com/gomu-rdma/gomu/verbs"

func init() {
	verbs.Register("ibv", func(string, verbs.Options) (verbs.Device, error) {
		return nil, ErrNotBuiltIn
	})
}
