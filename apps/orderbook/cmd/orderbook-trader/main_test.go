package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/internal/trader"
	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"extra"}, nil, "unexpected arguments"},
		{[]string{"--device", "f"}, []string{"DORY_REGISTRY_IP="}, "no registry"},
		{[]string{"--registry", "127.0.0.1:1"}, nil, "--transport shm needs --device"},
		{[]string{"--registry", "127.0.0.1:1", "--device", "f", "--transport", "rdma"}, nil, `unknown --transport "rdma"`},
		{[]string{"--registry", "127.0.0.1:1", "--device", "f", "--ids", "1,x"}, nil, "x"},
		{[]string{"--orders", "5", "--duration", "1s"}, nil, "exclude each other"},
		{[]string{"--orders", "0"}, nil, "--orders 0"},
		{[]string{"--duration", "-1s"}, nil, "--duration"},
		{[]string{"--traders", "0"}, nil, "--traders 0"},
		{[]string{"--traders", "4", "--orders", "3"}, nil, "at least one each"},
		{[]string{"--mix", "stop=0"}, nil, "every weight is 0"},
		{[]string{"--mix", "lunch=3"}, nil, `unknown kind "lunch"`},
		{[]string{"--symbols", "A,A"}, nil, "given twice"},
		{[]string{"--poll", "nap"}, nil, "--poll"},
		{[]string{"--attempt", "0s"}, nil, "must be positive"},
		{[]string{"--local", "0"}, nil, "--local 0"},
		{[]string{"--local", "3", "--registry", "127.0.0.1:1"}, nil, "--local starts one"},
		{[]string{"--local", "3", "--transport", "tcp"}, nil, "--local runs on shm"},
		{[]string{"--local", "3", "--standalone"}, nil, "--local 1"},
		{[]string{"--local", "3", "--profile", "turbo"}, nil, `unknown --profile "turbo"`},
		{[]string{"--local", "3", "--server", "/nonexistent/orderbook-server"}, nil, "--server"},
		{[]string{"--standalone", "--registry", "127.0.0.1:1", "--device", "f"}, nil, "--standalone goes with --local"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, err := clitest.Run(t, clitest.Cmd{Args: tc.args, Env: tc.env, Timeout: 20 * time.Second})
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
	clitest.UnreachableRegistry(t, "--device", "nofabric", "--orders", "10")
}

// TestLocalCluster runs traders against a 3-replica exchange the tool
// starts itself, and checks the outputs and the check.
func TestLocalCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-replica exchange")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../orderbook-server")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build orderbook-server: %v\n%s", err, out)
	}
	work := t.TempDir()
	args := []string{"--local", "3", "--server", filepath.Join(dir, "orderbook-server"), "--traders", "3", "--orders", "900",
		"--timeline", "timeline.csv", "--profile", "relaxed", "--server-poll", "yield"}
	out, errOut, err := clitest.Run(t, clitest.Cmd{Args: args, Dir: work, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "traders: --registry 127.0.0.1:") || !strings.Contains(errOut, "--ids 1,2,3") {
		t.Errorf("stderr lacks the traders line:\n%s", errOut)
	}
	if !strings.Contains(out, "check: traders=3 acked=900 applied=900 lost=0 doubled=0") {
		t.Errorf("check line missing:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var orders, p50, p99, p999, mx int64
	var lost, doubled int
	n, err := fmt.Sscanf(lines[len(lines)-1], "orderbook-trader orders=%d p50_ns=%d p99_ns=%d p999_ns=%d max_ns=%d lost=%d doubled=%d",
		&orders, &p50, &p99, &p999, &mx, &lost, &doubled)
	if n != 7 || err != nil || orders != 900 || lost != 0 || doubled != 0 || p50 <= 0 || p50 > p99 || p99 > mx {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	dump, err := os.ReadFile(filepath.Join(work, "orderbook-cli.txt"))
	if err != nil || strings.Count(string(dump), "\n") != 900 {
		t.Errorf("orderbook-cli.txt: %v, %d lines", err, strings.Count(string(dump), "\n"))
	}
	f, err := os.Open(filepath.Join(work, "timeline.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	samples, err := trader.ReadTimeline(f)
	if err != nil || len(samples) != 900 {
		t.Fatalf("timeline: %d samples, %v", len(samples), err)
	}
}
