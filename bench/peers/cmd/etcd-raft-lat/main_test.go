package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

// deadline bounds every run of the tool: none may hang.
const deadline = 60 * time.Second

var (
	summaryLine = regexp.MustCompile(`(?m)^etcd-raft-lat transport=tcp payload=(\d+) outstanding=(\d+) n=(\d+) p50=(\d+)ns p90=(\d+)ns p99=(\d+)ns p99\.9=(\d+)ns max=(\d+)ns\n\z`)
	rateLine    = regexp.MustCompile(`(?m)^etcd-raft-lat: (\d+) commands of (\d+) B in \S+ s: (\d+) commands/s \(3 replicas, (\d+) outstanding\)$`)
)

func TestLocalRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	for _, tc := range []struct{ payload, outstanding string }{{"64", "1"}, {"100", "4"}} {
		t.Run(tc.payload+"B-"+tc.outstanding, func(t *testing.T) {
			dir := t.TempDir()
			out, errOut, err := clitest.Run(t, clitest.Cmd{
				Args: []string{"--local", "--count", "300", "--hgrm", "lat.hgrm", tc.payload, tc.outstanding},
				Dir:  dir, Timeout: deadline,
			})
			if err != nil {
				t.Fatalf("etcd-raft-lat failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
			}
			m := summaryLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no summary as the last line:\n%s", out)
			}
			if m[1] != tc.payload || m[2] != tc.outstanding || m[3] != "300" {
				t.Fatalf("summary %q, want payload %s, outstanding %s, n=300", m[0], tc.payload, tc.outstanding)
			}
			var pct []int
			for _, s := range m[4:] {
				v, _ := strconv.Atoi(s)
				pct = append(pct, v)
			}
			for i := 1; i < len(pct); i++ {
				if pct[0] <= 0 || pct[i] < pct[i-1] {
					t.Fatalf("percentiles not positive and non-decreasing: %v", pct)
				}
			}
			r := rateLine.FindStringSubmatch(out)
			if r == nil || r[1] != "300" || r[2] != tc.payload || r[4] != tc.outstanding {
				t.Fatalf("no rate line for 300 commands:\n%s", out)
			}
			if v, _ := strconv.Atoi(r[3]); v <= 0 {
				t.Fatalf("rate %s commands/s", r[3])
			}
			if b, err := os.ReadFile(filepath.Join(dir, "lat.hgrm")); err != nil || !strings.Contains(string(b), "Value") {
				t.Fatalf("no percentile table in lat.hgrm (%v)", err)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", []string{"--local"}, "want 2 arguments"},
		{"too many", []string{"--local", "64", "1", "2"}, "want 2 arguments"},
		{"payload too small", []string{"--local", "8", "1"}, "payload_size 8 out of range"},
		{"payload too large", []string{"--local", "70000", "1"}, "payload_size 70000 out of range"},
		{"no outstanding", []string{"--local", "64", "0"}, "nr_outstanding 0 out of range"},
		{"not a number", []string{"--local", "x", "1"}, `payload_size "x" is not a number`},
		{"no count", []string{"--local", "--count", "0", "64", "1"}, "--count must be at least 1"},
		{"no peers", []string{"1", "64", "1"}, "no --peers"},
		{"id not a peer", []string{"--peers", "127.0.0.1:1,127.0.0.1:2", "3", "64", "1"}, "process_id 3 is not a replica"},
		{"peers with local", []string{"--local", "--peers", "127.0.0.1:1", "64", "1"}, "drop --peers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := clitest.Run(t, clitest.Cmd{Args: tc.args, Timeout: deadline})
			if err == nil {
				t.Fatalf("succeeded; stdout:\n%s", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr %q does not say %q", errOut, tc.want)
			}
		})
	}
}

// TestUnreachableLeader: a follower whose peers never answer gives up
// after --start-timeout instead of waiting forever.
func TestUnreachableLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a timeout")
	}
	out, errOut, err := clitest.Run(t, clitest.Cmd{
		Args:    []string{"--peers", "127.0.0.1:1,127.0.0.1:0,127.0.0.1:2", "--start-timeout", "500ms", "2", "64", "1"},
		Timeout: deadline,
	})
	if err == nil || !strings.Contains(errOut, "no leader for 500ms") {
		t.Fatalf("err %v, stdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
}
