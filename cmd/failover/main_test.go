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

// deadline bounds every run of the tool: a hang detector, not a timing
// assertion.
const deadline = 120 * time.Second

// runTool runs the tool in dir.
func runTool(t *testing.T, dir string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return clitest.Run(t, clitest.Cmd{Args: args, Dir: dir, Timeout: deadline})
}

var (
	finalLine = regexp.MustCompile(`(?m)^failover transport=(\w+) trials=(\d+) median_us=(\d+) p99_us=(\d+)( catchup_median_us=(\d+) catchup_p99_us=(\d+))?\n\z`)
	trialLine = regexp.MustCompile(`(?m)^trial (\d+): (pause|sigstop|kill) (\d+), (\d+) took over after (\d+) µs(; restarted (\d+) joined after (\d+) µs, caught up after (\d+) µs)?$`)
)

func TestLocalRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters of processes")
	}
	tests := []struct {
		name      string
		args      []string
		transport string
		fault     string
		trials    int
	}{
		{"fifo pause", nil, "shm", "pause", 2},
		{"sigstop", []string{"--sigstop"}, "shm", "sigstop", 1},
		// Every trial kills the leader and restarts it into the running
		// cluster: the restarted replica must catch up every time, and
		// the cluster survive each incident.
		{"kill", []string{"--kill"}, "shm", "kill", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--local", "--trials", strconv.Itoa(tc.trials)}, tc.args...)
			out, errOut, err := runTool(t, dir, args...)
			if err != nil {
				t.Fatalf("failover failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
			}
			m := finalLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no summary as the last line:\n%s", out)
			}
			if m[1] != tc.transport || m[2] != strconv.Itoa(tc.trials) {
				t.Fatalf("summary %q, want transport=%s trials=%d", m[0], tc.transport, tc.trials)
			}
			median, _ := strconv.Atoi(m[3])
			p99, _ := strconv.Atoi(m[4])
			if median > p99 {
				t.Fatalf("median %d above p99 %d", median, p99)
			}
			trials := trialLine.FindAllStringSubmatch(out, -1)
			if len(trials) != tc.trials {
				t.Fatalf("%d trial lines, want %d:\n%s", len(trials), tc.trials, out)
			}
			kill := tc.fault == "kill"
			for i, tr := range trials {
				if tr[1] != strconv.Itoa(i+1) || tr[2] != tc.fault || tr[3] == tr[4] {
					t.Fatalf("trial line %q: want trial %d, fault %s, a new leader other than the failed one", tr[0], i+1, tc.fault)
				}
				if (tr[6] != "") != kill {
					t.Fatalf("trial line %q: a restart report with fault %s", tr[0], tc.fault)
				}
				if kill {
					joined, _ := strconv.Atoi(tr[8])
					caught, _ := strconv.Atoi(tr[9])
					if tr[7] != tr[3] || joined <= 0 || caught < joined {
						t.Fatalf("trial line %q: want the killed replica %s restarted, joined after a positive time, caught up no earlier", tr[0], tr[3])
					}
				}
			}
			if (m[5] != "") != kill {
				t.Fatalf("summary %q: catch-up percentiles with fault %s", m[0], tc.fault)
			}
			if kill {
				cmed, _ := strconv.Atoi(m[6])
				cp99, _ := strconv.Atoi(m[7])
				if cmed <= 0 || cmed > cp99 {
					t.Fatalf("summary %q: want 0 < catch-up median <= p99", m[0])
				}
				data, err := os.ReadFile(filepath.Join(dir, "failover-"+tc.transport+"-catchup.txt"))
				if err != nil {
					t.Fatal(err)
				}
				lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
				if len(lines) != tc.trials {
					t.Fatalf("catch-up file has %d lines, want %d:\n%s", len(lines), tc.trials, data)
				}
				for i, l := range lines {
					if l != trials[i][9] {
						t.Fatalf("catch-up file line %d is %q, want trial %d's %s", i+1, l, i+1, trials[i][9])
					}
				}
			}
			data, err := os.ReadFile(filepath.Join(dir, "failover-"+tc.transport+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			if len(lines) != tc.trials {
				t.Fatalf("per-trial file has %d lines, want %d:\n%s", len(lines), tc.trials, data)
			}
			for i, l := range lines {
				if v, err := strconv.ParseInt(l, 10, 64); err != nil || v < 0 || l != trials[i][5] {
					t.Fatalf("per-trial file line %d is %q, want trial %d's gap in µs, %s", i+1, l, i+1, trials[i][5])
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
		{"no --local", []string{"--trials", "2"}, "use --local"},
		{"zero trials", []string{"--local", "--trials", "0"}, "--trials must be at least 1, got 0"},
		{"negative trials", []string{"--local", "--trials", "-3"}, "--trials must be at least 1, got -3"},
		{"trials not a number", []string{"--local", "--trials", "many"}, "invalid value \"many\""},
		{"unknown transport", []string{"--local", "--transport", "udp"}, `unknown --transport "udp"`},
		{"ibv is not local", []string{"--local", "--transport", "ibv"}, "use --transport shm or tcp"},
		{"unknown profile", []string{"--local", "--profile", "turbo"}, `unknown --profile "turbo"`},
		{"unknown poll", []string{"--local", "--poll", "busy"}, `unknown mode "busy"`},
		{"kill and sigstop", []string{"--local", "--kill", "--sigstop"}, "--kill and --sigstop are mutually exclusive"},
		{"two replicas", []string{"--local", "--ids", "1,2"}, "at least 3 replicas"},
		{"bad ids", []string{"--local", "--ids", "1,x,3"}, `"x" is not a replica id`},
		{"payload zero", []string{"--local", "--payload", "0"}, "--payload 0 out of range"},
		{"stray argument", []string{"--local", "64"}, "want no arguments, got 1"},
		{"replica mode by hand", []string{"--replica", "1"}, "run failover --local"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			out, errOut, err := runTool(t, dir, tc.args...)
			if err == nil {
				t.Fatalf("exited 0, want failure\nstdout:\n%s", out)
			}
			if !strings.Contains(errOut+out, tc.want) {
				t.Fatalf("output does not say %q:\nstdout:\n%s\nstderr:\n%s", tc.want, out, errOut)
			}
			if _, err := os.Stat(filepath.Join(dir, "failover-shm.txt")); err == nil {
				t.Fatal("bad input wrote a results file")
			}
		})
	}
}

// TestUnreachableRegistry: a replica process (what --local starts) whose
// registry is a port nobody listens on fails within seconds (the registry's
// DialTimeout, not --start-timeout's 30 s), saying which address is
// unreachable. The 15 s bound is a hang detector, not a timing assertion.
func TestUnreachableRegistry(t *testing.T) {
	addr := clitest.ClosedAddr(t)
	dir := t.TempDir()
	board := filepath.Join(dir, "board")
	if err := os.WriteFile(board, make([]byte, boardSize), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, errOut, err := clitest.Run(t, clitest.Cmd{
		Args: []string{"--replica", "1", "--board", board, "--registry", addr, "--ids", "1,2,3", "--fifo", "-"},
		Dir:  dir, Timeout: 15 * time.Second,
	})
	t.Logf("failed after %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(errOut))
	if err == nil {
		t.Fatalf("exited 0, want failure\nstdout:\n%s", out)
	}
	if want := "registry " + addr + " unreachable"; !strings.Contains(errOut, want) {
		t.Fatalf("stderr does not say %q:\n%s", want, errOut)
	}
}
