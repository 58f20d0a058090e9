package main

import (
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

func runTool(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return clitest.Run(t, clitest.Cmd{Args: args, Env: env, Timeout: deadline})
}

var (
	followerLine = regexp.MustCompile(`(?m)^\[(\d+)\] replica (\d+): follower, applied (\d+) commands$`)
	retriedLine  = regexp.MustCompile(`note: (\d+) proposals repeated`)
	receivedLine = regexp.MustCompile(`\AReceived (\d+) in [1-9]\d* ns\n`)
	humanLine    = regexp.MustCompile(`(?m)^main-st: (\d+) commands of (\d+) B in \S+ s: \d+ commands/s, [\d.]+ MB/s \((\w+), 3 replicas, (\d+) outstanding\)\n\z`)
)

func TestLocalRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of processes")
	}
	tests := []struct {
		name                 string
		args                 []string
		payload, outstanding string
	}{
		{"one outstanding", []string{"--count", "2000", "64", "1"}, "64", "1"},
		{"concurrent proposers, odd size", []string{"--count", "2000", "5", "8"}, "5", "8"},
		// Big commands lap a small ring fast: followers fall behind and are
		// caught up (from the ring or by state transfer), and the run
		// still ends with every follower having applied every command.
		{"4 KiB commands, 1 MiB ring", []string{"--count", "2000", "--ring", "1048576", "4096", "1"}, "4096", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runTool(t, nil, append([]string{"--local"}, tc.args...)...)
			if err != nil {
				t.Fatalf("main-st failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
			}
			if m := receivedLine.FindStringSubmatch(out); m == nil || m[1] != "2000" {
				t.Fatalf("stdout does not start with Received 2000 in <ns> ns:\n%s", out)
			}
			m := humanLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no human summary as the last line:\n%s", out)
			}
			if m[1] != "2000" || m[2] != tc.payload || m[3] != "shm" || m[4] != tc.outstanding {
				t.Fatalf("summary says %q, want 2000 commands of %s B on shm, %s outstanding", m[0], tc.payload, tc.outstanding)
			}
			// Every follower exited 0 and says it applied every command
			// (a proposal repeated after a step-down may count twice).
			retried := 0
			if r := retriedLine.FindStringSubmatch(errOut); r != nil {
				retried, _ = strconv.Atoi(r[1])
			}
			followers := followerLine.FindAllStringSubmatch(errOut, -1)
			if len(followers) != 2 {
				t.Fatalf("%d follower reports on stderr, want 2:\n%s", len(followers), errOut)
			}
			for _, f := range followers {
				n, _ := strconv.Atoi(f[3])
				if f[1] != f[2] || n < 2000 || n > 2000+retried {
					t.Fatalf("follower report %q: want replica %s applying 2000 commands (+%d repeated at most)", f[0], f[1], retried)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"no arguments", nil, nil, "want 3 arguments"},
		{"two arguments", nil, []string{"1", "64"}, "want 3 arguments"},
		{"local with three", nil, []string{"--local", "1", "64", "1"}, "want 2 arguments"},
		{"id not a number", nil, []string{"--registry", "x:1", "one", "64", "1"}, `process_id "one" is not a number`},
		{"id not in ids", nil, []string{"--registry", "x:1", "4", "64", "1"}, "process_id 4 is not one of the ids [1 2 3]"},
		{"id not in IDS", []string{"IDS=2,3,5"}, []string{"--registry", "x:1", "1", "64", "1"}, "process_id 1 is not one of the ids [2 3 5]"},
		{"bad ids", nil, []string{"--ids", "1,x", "--local", "64", "1"}, `"x" is not a replica id`},
		{"leader not lowest", nil, []string{"--leader", "2", "--local", "64", "1"}, "the engine starts the lowest id"},
		{"payload zero", nil, []string{"--local", "0", "1"}, "payload_size 0 out of range 1..65532"},
		{"payload too large", nil, []string{"--local", "65533", "1"}, "payload_size 65533 out of range"},
		{"no outstanding", nil, []string{"--local", "64", "0"}, "nr_outstanding 0 out of range"},
		{"no commands", nil, []string{"--local", "--count", "0", "64", "1"}, "--count must be at least 1"},
		{"ring not a multiple of 64", nil, []string{"--local", "--ring", "1048577", "64", "1"}, "--ring 1048577 must be a multiple of 64"},
		{"ring too small", nil, []string{"--local", "--ring", "4096", "64", "1"}, "from 1 MiB to 1 GiB"},
		{"unknown profile", nil, []string{"--local", "--profile", "turbo", "64", "1"}, `unknown --profile "turbo"`},
		{"unknown poll mode", nil, []string{"--local", "--follower-poll", "busy", "64", "1"}, `--follower-poll: `},
		{"unknown transport", nil, []string{"--local", "--transport", "pigeon", "64", "1"}, `unknown --transport "pigeon"`},
		{"no registry", []string{"DORY_REGISTRY_IP="}, []string{"1", "64", "1"}, "no registry: set DORY_REGISTRY_IP"},
		{"unreachable registry", nil, []string{"--registry", "127.0.0.1:1", "1", "64", "1"}, "registry 127.0.0.1:1 unreachable"},
		{"unknown flag", nil, []string{"--frobnicate"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, err := runTool(t, tc.env, tc.args...)
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
