package main

import (
	"testing"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/latclient/latclienttest"
	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

func TestTool(t *testing.T) { latclienttest.Run(t, "redis-gets-only") }
