package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

func runTool(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return clitest.Run(t, clitest.Cmd{Args: args})
}

var finalLine = regexp.MustCompile(`(?m)^verbs-lat transport=(\w+) size=(\d+) p50_ns=(\d+) p99_ns=(\d+)\n\z`)

func TestLocalRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes per case")
	}
	tests := []struct {
		name      string
		args      []string
		transport string
		size      string
		baseline  string // the side-by-side peer's line, "" for none
	}{
		{"shm", []string{"--transport", "shm", "--size", "64", "--iters", "2000", "--warmup", "100", "--poll", "yield"}, "shm", "64", "bare shared mem"},
		{"shm odd size without baseline", []string{"--transport", "shm", "--size", "5", "--iters", "500", "--poll", "sleep", "--baseline=false"}, "shm", "5", ""},
		{"tcp", []string{"--transport", "tcp", "--size", "64", "--iters", "300", "--warmup", "50", "--poll", "yield"}, "tcp", "64", "plain Go TCP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runTool(t, append([]string{"--local"}, tc.args...)...)
			if err != nil {
				t.Fatalf("verbs-lat failed: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
			}
			m := finalLine.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no final summary line as the last line:\n%s", out)
			}
			if m[1] != tc.transport || m[2] != tc.size {
				t.Fatalf("final line names transport=%s size=%s, want %s %s", m[1], m[2], tc.transport, tc.size)
			}
			printed := strings.Contains(out, "p50 ratio")
			if printed != (tc.baseline != "") || !strings.Contains(out, tc.baseline) {
				t.Fatalf("want baseline %q (ratio printed: %v):\n%s", tc.baseline, printed, out)
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
		{"size zero", []string{"--local", "--size", "0"}, "--size 0 out of range"},
		{"size too big", []string{"--local", "--size", "99999999"}, "out of range"},
		{"no iterations", []string{"--local", "--iters", "0"}, "--iters must be at least 1"},
		{"unknown poll mode", []string{"--local", "--poll", "busy"}, `unknown mode "busy"`},
		{"unknown transport", []string{"--local", "--transport", "carrier-pigeon", "--iters", "1"}, "unknown provider"},
		{"ibv without the rdma tag", []string{"--local", "--transport", "ibv", "--iters", "1"}, "-tags rdma"},
		{"two addresses", []string{"a:1", "b:2"}, "at most one argument"},
		{"local with an address", []string{"--local", "a:1"}, "--local takes no server address"},
		{"unreachable server", []string{"127.0.0.1:1"}, "side channel to server 127.0.0.1:1"},
		{"unknown flag", []string{"--frobnicate"}, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runTool(t, tc.args...)
			if err == nil {
				t.Fatalf("exited 0, want failure\nstdout:\n%s", out)
			}
			if !strings.Contains(errOut+out, tc.want) {
				t.Fatalf("output does not say %q:\nstdout:\n%s\nstderr:\n%s", tc.want, out, errOut)
			}
		})
	}
}
