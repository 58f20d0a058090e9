package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/client"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
	"github.com/gomu-rdma/gomu/internal/clitest"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbsrpc"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--standalone", "--slots", "0"}, "--slots 0"},
		{[]string{"--standalone", "--depth-levels", "0"}, "--depth-levels 0"},
		{[]string{"--standalone", "--rpc-poll", "nap"}, "--rpc-poll"},
		{[]string{"--standalone", "--local", "3"}, "exclude each other"},
		{[]string{"--local", "0"}, "--local 0"},
		{[]string{"--ids", "1,2,3"}, "no replica id"},
		{[]string{"--sid", "4", "--ids", "1,2,3"}, "SID 4 is not one of"},
		{[]string{"--standalone", "--profile", "turbo"}, `unknown --profile "turbo"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, err := clitest.Run(t, clitest.Cmd{Args: tc.args, Env: []string{"SID=", "DORY_REGISTRY_IP="}, Timeout: 20 * time.Second})
			if err == nil {
				t.Fatalf("exit 0\nstdout:\n%s", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

func TestUnreachableRegistry(t *testing.T) {
	clitest.UnreachableRegistry(t, "--sid", "1", "--ids", "1,2,3", "--device", "obsrv-unreachable-"+strconv.Itoa(os.Getpid()), "--fifo", "-")
}

// TestLocalCluster runs `orderbook-server --local 3` as a user would,
// trades through the line it prints for traders, and checks the leader's
// dump on SIGUSR1 and the clean stop on SIGTERM.
func TestLocalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-process cluster")
	}
	dir := t.TempDir()
	p := clitest.Start(t, dir, nil, "--local", "3")
	p.Stdout.WaitFor(t, regexp.MustCompile(`listening on .* as leader`), time.Minute)
	m := regexp.MustCompile(`traders: --registry (\S+) --transport shm --device (\S+) --ids 1,2,3`).FindStringSubmatch(p.Stdout.String())
	if m == nil {
		t.Fatalf("no traders line:\n%s", p.Stdout)
	}
	dev, err := verbs.Open("shm", m[2], verbs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := registry.Dial(ctx, registry.Config{Addr: m[1], Cluster: "orderbook-rpc"})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// Replica 2 first: a follower, which redirects.
	cl, err := client.Dial(ctx, client.Config{RPC: verbsrpc.Config{Device: dev, Registry: reg, Poll: poll.Sleep}, IDs: []int{2, 1, 3}, Attempt: time.Second, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, side := range []book.Side{book.Sell, book.Buy} {
		req := &wire.Request{Op: wire.OpNew, Side: side, Qty: 10, Price: 100}
		req.SetSymbol("IBM")
		res, _, err := cl.Do(req)
		if err != nil || res.Status != wire.StatusOK {
			t.Fatalf("order %d: %+v %v", i, res, err)
		}
		if side == book.Buy && res.Filled != 10 {
			t.Fatalf("the buy did not trade: %+v", res)
		}
	}
	if cl.Leader() != 1 || cl.Stats().Redirects == 0 {
		t.Fatalf("not redirected to the leader: leader %d, %+v", cl.Leader(), cl.Stats())
	}
	pid, err := strconv.Atoi(regexp.MustCompile(`orderbook-server pid (\d+)`).FindStringSubmatch(p.Stdout.String())[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	p.Stderr.WaitFor(t, regexp.MustCompile(`wrote dump-1.txt \(\d+ proposals\)`), 30*time.Second)
	data, err := os.ReadFile(filepath.Join(dir, "dump-1.txt"))
	if err != nil || len(strings.Fields(string(data))) < 2 {
		t.Fatalf("dump-1.txt: %q %v", data, err)
	}
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(t, 30*time.Second); err != nil {
		t.Fatalf("--local after SIGTERM: %v", err)
	}
}
