package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/exchange"
	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbsrpc"
)

// standalone starts an exchange without replication and returns its
// registry address and fabric.
func standalone(t *testing.T) (string, string) {
	reg, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	fabric := fmt.Sprintf("obcli-%d", os.Getpid())
	dev, err := verbs.Open("shm", fabric, verbs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := registry.Dial(ctx, registry.Config{Addr: reg.Addr(), Cluster: "orderbook-rpc", ID: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := exchange.New(exchange.Config{Machine: exchange.NewMachine(book.Config{}),
		RPC: verbsrpc.Config{Device: dev, Registry: r, Poll: poll.Sleep}, Owned: []io.Closer{r, dev}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return reg.Addr(), fabric
}

// TestConsole runs a session in which the console's trader takes both
// sides, so its filled total counts each trade twice.
func TestConsole(t *testing.T) {
	regAddr, fabric := standalone(t)
	cl, closeAll, err := connect(context.Background(), regAddr, "orderbook", "shm", fabric, []int{1}, 0, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	in := `# a session
BUY 100 IBM 1250
BUY 50 IBM 1249
SELL 120 IBM MKT
SELL 10 IBM 1260 AON
MODIFY 4 QTY +5 PRICE 1258
CANCEL 4
CANCEL 4
BUY 1 IBM
MARKET IBM 1250
DISPLAY IBM
TRADER
QUIT
BUY 1 IBM 1
`
	var out strings.Builder
	if err := console(strings.NewReader(in), &out, cl, false); err != nil {
		t.Fatal(err)
	}
	want := `order #1 accepted: resting 100
order #2 accepted: resting 50
order #3 accepted: filled 120 (2 fills, avg 1249.83, last 1249), done
order #4 accepted: resting 10
replace #4 accepted: resting 15
cancel #4 accepted: done
cancel #4 rejected: unknown order
error: line ends where a price or MKT was expected
error: MARKET is not an exchange request: the market price moves with trades
IBM market 1249
  ---
  bid     1249 x 30     1 orders
trader ` + fmt.Sprint(cl.Trader()) + `: 7 requests applied, 1 orders open, 240 filled
`
	if got := out.String(); got != want {
		t.Fatalf("console transcript:\n%s\nwant:\n%s", got, want)
	}
}

func TestConnectErrors(t *testing.T) {
	_, _, err := connect(context.Background(), "127.0.0.1:1", "orderbook", "shm", "obcli-none", []int{1}, 0, time.Second)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable registry: %v", err)
	}
}
