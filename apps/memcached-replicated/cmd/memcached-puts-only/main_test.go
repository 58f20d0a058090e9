package main

import (
	"testing"

	"github.com/gomu-rdma/gomu/internal/clitest"
	"github.com/gomu-rdma/gomu/internal/latclient/latclienttest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

func TestTool(t *testing.T) { latclienttest.RunMemcached(t, "memcached-puts-only") }
