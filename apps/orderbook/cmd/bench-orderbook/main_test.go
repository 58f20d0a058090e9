package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

// buildServer builds orderbook-server into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "../orderbook-server")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build orderbook-server: %v\n%s", err, out)
	}
	return filepath.Join(dir, "orderbook-server")
}

func TestParseRuns(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"kill,standalone", "standalone,kill", ""},
		{" pause , pause ", "pause", ""},
		{"standalone,replicated,pause,kill", "standalone,replicated,pause,kill", ""},
		{"", "", "nothing to run"},
		{"standalone,crash", "", `unknown "crash"`},
	} {
		got, err := parseRuns(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseRuns(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("parseRuns(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "orderbook-server")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"extra"}, "no arguments expected"},
		{[]string{"--runs", "nap"}, `--runs: unknown "nap"`},
		{[]string{"--mix", "limit=x"}, "--mix"},
		{[]string{"--symbols", ","}, "--symbols"},
		{[]string{"--poll", "busy"}, "--poll"},
		{[]string{"--server-poll", "busy"}, "--server-poll"},
		{[]string{"--profile", "turbo"}, `unknown --profile "turbo"`},
		{[]string{"--traders", "0"}, "--traders 0"},
		{[]string{"--orders", "2", "--traders", "3"}, "at least one per trader"},
		{[]string{"--warmup", "-1"}, "--warmup -1"},
		{[]string{"--fault-duration", "1s", "--fault-after", "900ms", "--pause-for", "200ms"}, "must fall inside the run"},
		{[]string{"--pause-for", "0s"}, "must be positive"},
		{[]string{"--suspect-timeout", "-1ms"}, "negative"},
		{[]string{"--png-dir", filepath.Join(dir, "missing")}, "not a directory"},
		{[]string{"--server", filepath.Join(dir, "missing")}, "--server"},
		{[]string{"--server", fake, "--runs", "standalone", "--start-timeout", "3s"}, "standalone:"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errOut, err := clitest.Run(t, clitest.Cmd{Args: tc.args, Timeout: 30 * time.Second})
			if err == nil {
				t.Fatalf("exit 0\nstdout:\n%s", out)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

// TestExperiment runs the whole experiment with small counts: every run
// must finish with nothing lost or doubled, and draw its figure.
func TestExperiment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four exchanges, two of them failed on purpose")
	}
	server := buildServer(t)
	pngs := t.TempDir()
	args := []string{"--server", server, "--orders", "400", "--warmup", "50", "--fault-duration", "2s", "--fault-after", "700ms",
		"--pause-for", "400ms", "--restart-after", "100ms", "--png-dir", pngs}
	out, errOut, err := clitest.Run(t, clitest.Cmd{Args: args, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	var sp50, rp50, d int64
	var pause, kill float64
	var lost, doubled int
	n, err := fmt.Sscanf(last, "bench-orderbook standalone_p50_ns=%d replicated_p50_ns=%d delta_p50_ns=%d pause_stall_ms=%g kill_stall_ms=%g lost=%d doubled=%d",
		&sp50, &rp50, &d, &pause, &kill, &lost, &doubled)
	if n != 7 || err != nil {
		t.Fatalf("last line %q: %v\n%s", last, err, out)
	}
	if lost != 0 || doubled != 0 || sp50 <= 0 || rp50 <= 0 || d != rp50-sp50 || pause <= 0 || kill <= 0 {
		t.Fatalf("last line %q", last)
	}
	for _, want := range []string{"\nstandalone ", "\nreplicated ", "\npause ", "\nkill ", "replicated p50 - standalone p50 = "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"orderbook-pause.png", "orderbook-kill.png", "orderbook-pause.csv", "orderbook-kill.csv"} {
		if st, err := os.Stat(filepath.Join(pngs, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	t.Logf("\n%s", out)
}
