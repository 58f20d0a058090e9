package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary act as a replica process: it records
// that it ran, then does what its argument says.
const childEnv = "GOMU_CLUSTER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "" {
		os.Exit(m.Run())
	}
	// Args: <dir> <id> <behaviour>
	dir, id, how := os.Args[1], os.Args[2], os.Args[3]
	runs := filepath.Join(dir, "runs-"+id)
	b, _ := os.ReadFile(runs)
	n := len(b)
	os.WriteFile(runs, append(b, 'x'), 0o644)
	switch {
	case how == "die-once" && n == 0:
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case how == "fail":
		os.Exit(3)
	}
	time.Sleep(time.Hour) // a server: runs until stopped
}

func runsOf(t *testing.T, dir string, id int) int {
	b, _ := os.ReadFile(filepath.Join(dir, "runs-"+strconv.Itoa(id)))
	return len(b)
}

// TestServeRestartsKilledReplica: in a served cluster a replica killed by
// a signal is started again and the run goes on; one that fails with an
// error status ends the run, naming it.
func TestServeRestartsKilledReplica(t *testing.T) {
	for _, tc := range []struct {
		name     string
		how      string // replica 2's behaviour
		wantRuns int
		wantErr  string
	}{
		{"killed once", "die-once", 2, "interrupted"},
		{"error exit", "fail", 1, "replica 2: exit status 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(childEnv, "1")
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stderr := &syncWriter{w: &strings.Builder{}}
			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, Spec{
					Name: "ct", IDs: []int{1, 2}, Leader: 1, Serve: true, Grace: time.Second,
					Stderr: stderr,
					Args: func(n Node) []string {
						how := "serve"
						if n.ID == 2 {
							how = tc.how
						}
						return []string{dir, strconv.Itoa(n.ID), how}
					},
				})
			}()
			deadline := time.Now().Add(20 * time.Second)
			for runsOf(t, dir, 2) < tc.wantRuns && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if tc.wantErr == "interrupted" {
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return")
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Run: %v, want an error containing %q", err, tc.wantErr)
			}
			if got := runsOf(t, dir, 2); got != tc.wantRuns {
				t.Fatalf("replica 2 ran %d times, want %d (stderr: %s)", got, tc.wantRuns, stderr.String())
			}
		})
	}
}

// syncWriter serializes writes from the replicas' stderr copiers and the
// launcher.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
