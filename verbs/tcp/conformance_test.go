package tcp_test

import (
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
	_ "github.com/gomu-rdma/gomu/verbs/tcp"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

var provider = verbstest.Provider{
	Name: "tcp",
	// Generous: on a loaded 2-core CI machine a live peer can go unscheduled
	// for tens of milliseconds; dead peers are noticed by the connection
	// breaking, not by this timer.
	Options:      verbs.Options{RetryTimeout: 2 * time.Second},
	Device:       func(testing.TB, int) string { return "127.0.0.1:0" },
	CrossProcess: true,
	ZeroAlloc:    false,
}

func TestMain(m *testing.M) { verbstest.Main(m, provider) }

func TestConformance(t *testing.T) { verbstest.Run(t, provider) }
