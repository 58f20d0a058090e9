package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

// deadline bounds every run of the tool: none may hang.
const deadline = 60 * time.Second

// runTool runs the tool in dir.
func runTool(t *testing.T, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return clitest.Run(t, clitest.Cmd{Args: args, Dir: dir, Timeout: deadline})
}

var summaryLine = regexp.MustCompile(`(?m)^main-st-lat transport=(\w+) payload=(\d+) outstanding=(\d+) n=(\d+) p50=(\d+)ns p90=(\d+)ns p99=(\d+)ns p99\.9=(\d+)ns max=(\d+)ns\n\z`)

func TestLocalRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	tests := []struct {
		name                 string
		payload, outstanding string
		hgrm                 bool
	}{
		{"one outstanding with hgrm", "64", "1", true},
		{"concurrent proposers", "100", "4", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--local", "--count", "2000"}
			if tc.hgrm {
				args = append(args, "--hgrm", "lat.hgrm")
			}
			out, errOut, err := runTool(t, dir, append(args, tc.payload, tc.outstanding)...)
			if err != nil {
				t.Fatalf("main-st-lat failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
			}
			m := summaryLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no summary as the last line:\n%s", out)
			}
			if m[1] != "shm" || m[2] != tc.payload || m[3] != tc.outstanding || m[4] != "2000" {
				t.Fatalf("summary %q, want shm, payload %s, outstanding %s, n=2000", m[0], tc.payload, tc.outstanding)
			}
			var pct []int
			for _, s := range m[5:] {
				v, _ := strconv.Atoi(s)
				pct = append(pct, v)
			}
			for i := 1; i < len(pct); i++ {
				if pct[i] < pct[i-1] || pct[0] <= 0 {
					t.Fatalf("percentiles not positive and non-decreasing: %v", pct)
				}
			}
			dump, err := os.ReadFile(filepath.Join(dir, "dump-st-"+tc.payload+"-"+tc.outstanding+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(dump), "\n"), "\n")
			if len(lines) != 2000 {
				t.Fatalf("dump has %d lines, want 2000", len(lines))
			}
			for i, l := range lines {
				if v, err := strconv.ParseInt(l, 10, 64); err != nil || v <= 0 {
					t.Fatalf("dump line %d is %q, want a positive number of ns", i+1, l)
				}
			}
			if tc.hgrm {
				h, err := os.ReadFile(filepath.Join(dir, "lat.hgrm"))
				if err != nil || !strings.Contains(string(h), "Percentile") {
					t.Fatalf("hgrm file missing or not HdrHistogram's format (err %v):\n%s", err, h)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "want 3 arguments"},
		{"local with three", []string{"--local", "1", "64", "1"}, "want 2 arguments"},
		{"id not in ids", []string{"--registry", "x:1", "--ids", "1,2", "3", "64", "1"}, "process_id 3 is not one of the ids [1 2]"},
		{"payload zero", []string{"--local", "0", "1"}, "payload_size 0 out of range"},
		{"payload too large", []string{"--local", "1000000", "1"}, "payload_size 1000000 out of range"},
		{"unreachable registry", []string{"--registry", "127.0.0.1:1", "1", "64", "1"}, "registry 127.0.0.1:1 unreachable"},
		{"hgrm in a missing directory", []string{"--local", "--count", "10", "--hgrm", "/nonexistent/x.hgrm", "64", "1"}, "/nonexistent/x.hgrm"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if testing.Short() && slices.Contains(tc.args, "--count") {
				t.Skip("starts a cluster of processes")
			}
			out, errOut, err := runTool(t, t.TempDir(), tc.args...)
			if err == nil {
				t.Fatalf("exited 0, want failure\nstdout:\n%s", out)
			}
			if !strings.Contains(errOut+out, tc.want) {
				t.Fatalf("output does not say %q:\nstdout:\n%s\nstderr:\n%s", tc.want, out, errOut)
			}
		})
	}
}

// TestUnreachableRegistry: with DORY_REGISTRY_IP naming a port nobody
// listens on, a replica fails within seconds (the registry's DialTimeout,
// not the 30 s start timeout), saying which address is unreachable. The
// 15 s bound is a hang detector generous enough for a loaded machine.
func TestUnreachableRegistry(t *testing.T) {
	clitest.UnreachableRegistry(t, "--fifo", "-", "1", "64", "1")
}
