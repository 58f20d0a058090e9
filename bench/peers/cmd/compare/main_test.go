package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

// fakeTool writes a script that prints what the real tool would and
// records its arguments.
func fakeTool(t *testing.T, dir, name, rate, summary string) {
	t.Helper()
	script := "#!/bin/sh\n" +
		"echo \"$@\" >> " + filepath.Join(dir, name+".args") + "\n" +
		"echo 'progress: 1/2' >&2\n" +
		"echo '" + name + ": 20 commands of 64 B in 0.1 s: " + rate + " commands/s (x)'\n" +
		"echo '" + name + " transport=tcp payload=64 outstanding=1 n=20 " + summary + "'\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestTableAndFinalLine(t *testing.T) {
	bin := t.TempDir()
	fakeTool(t, bin, "main-st-lat", "1000", "p50=900ns p90=950ns p99=2000ns p99.9=3000ns max=4000ns")
	fakeTool(t, bin, "etcd-raft-lat", "300", "p50=150000ns p90=160000ns p99=900000ns p99.9=1000000ns max=2000000ns")
	out, errOut, err := clitest.Run(t, clitest.Cmd{
		Args:    []string{"--bin", bin, "--count", "20", "--etcd-flag=--tick=1ms", "64", "1"},
		Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("compare failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got, want := lines[len(lines)-1], "compare gomu_shm_p50_ns=900 gomu_tcp_p50_ns=900 etcd_raft_p50_ns=150000"; got != want {
		t.Fatalf("last line %q, want %q\n%s", got, want, out)
	}
	for _, want := range []string{"p50_ns", "etcd-raft", "150000", "900000", "1000", "166.67x"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
	args, _ := os.ReadFile(filepath.Join(bin, "main-st-lat.args"))
	if got, want := string(args), "--local --count 20 --transport shm 64 1\n--local --count 20 --transport tcp 64 1\n"; got != want {
		t.Fatalf("main-st-lat ran with %q, want %q", got, want)
	}
	args, _ = os.ReadFile(filepath.Join(bin, "etcd-raft-lat.args"))
	if got, want := string(args), "--local --count 20 --tick=1ms 64 1\n"; got != want {
		t.Fatalf("etcd-raft-lat ran with %q, want %q", got, want)
	}
}

func TestFailedRun(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"main-st-lat", "etcd-raft-lat"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\necho boom >&2\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, err := clitest.Run(t, clitest.Cmd{Args: []string{"--bin", bin, "64", "1"}, Timeout: 30 * time.Second})
	// Every system is tried three times (two retries), all rows are shown.
	if err == nil || !strings.Contains(errOut, "no comparison: gomu on shm: exit status 3") || strings.Count(errOut, "boom") != 9 {
		t.Fatalf("err %v, stderr:\n%s", err, errOut)
	}
	if strings.Count(out, "failed") != 3 || strings.Contains(out, "compare gomu_shm") {
		t.Fatalf("stdout:\n%s", out)
	}
}

func TestBadArguments(t *testing.T) {
	for _, args := range [][]string{{}, {"64"}, {"x", "1"}, {"--count", "0", "64", "1"}} {
		if _, _, err := clitest.Run(t, clitest.Cmd{Args: args, Timeout: 30 * time.Second}); err == nil {
			t.Fatalf("%v succeeded", args)
		}
	}
}
