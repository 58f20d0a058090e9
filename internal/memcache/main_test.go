package memcache

import (
	"os"
	"testing"

	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	memcachedtest.Stop()
	os.Exit(code)
}
