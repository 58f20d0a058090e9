package consensus

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// TestMain turns the test binary into a replica process when GOMU_REPLICA
// is set (see multiproc_test.go); otherwise it runs the tests.
func TestMain(m *testing.M) {
	if os.Getenv("GOMU_REPLICA") != "" {
		os.Exit(replicaProcess())
	}
	flag.Parse()
	os.Exit(m.Run())
}

// lineSM is a state machine that reports every command it applies on w, one
// "applied <cmd>" line each.
type lineSM struct{ out *syncWriter }

func (s lineSM) Apply(_ uint64, cmd []byte) []byte {
	s.out.printf("applied %s\n", cmd)
	return nil
}
func (lineSM) Snapshot(io.Writer) error { return nil }
func (lineSM) Restore(io.Reader) error  { return nil }

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) printf(format string, args ...any) {
	w.mu.Lock()
	fmt.Fprintf(w.w, format, args...)
	w.mu.Unlock()
}

// replicaProcess runs one replica configured by the environment (GOMU_REPLICA
// id, GOMU_IDS, GOMU_REGISTRY, GOMU_CLUSTER, GOMU_FABRIC, GOMU_SHMDIR). It
// reports on stdout, one line each: "role <role>" on every role change,
// "applied <cmd>", and for proposals "acked <cmd>" or "refused <cmd>". It
// reads commands on stdin: "propose <prefix> <n>" proposes prefix-0 …
// prefix-(n-1) one after the other, then reports "done <prefix>"; at end
// of input it closes the replica and exits.
func replicaProcess() int {
	id, _ := strconv.Atoi(os.Getenv("GOMU_REPLICA"))
	var ids []int
	for _, s := range strings.Split(os.Getenv("GOMU_IDS"), ",") {
		n, _ := strconv.Atoi(s)
		ids = append(ids, n)
	}
	out := &syncWriter{w: os.Stdout}
	cfg := Config{
		ID: id, IDs: ids, Registry: os.Getenv("GOMU_REGISTRY"), Cluster: os.Getenv("GOMU_CLUSTER"),
		Transport: "shm", Device: os.Getenv("GOMU_FABRIC"), Verbs: verbs.Options{Dir: os.Getenv("GOMU_SHMDIR")},
		RingSize: 1 << 20, Fifo: "-", Profile: ProfileRelaxed,
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	r, err := Start(ctx, cfg, lineSM{out})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop := make(chan struct{})
	go func() {
		role := Role(-1)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if now := r.Role(); now != role {
				role = now
				out.printf("role %s\n", role)
			}
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var prefix string
		var n int
		if _, err := fmt.Sscanf(in.Text(), "propose %s %d", &prefix, &n); err != nil {
			fmt.Fprintf(os.Stderr, "bad command %q: %v\n", in.Text(), err)
			continue
		}
		for i := 0; i < n; i++ {
			cmd := fmt.Sprintf("%s-%d", prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			_, err := r.Propose(ctx, []byte(cmd))
			cancel()
			if err == nil {
				out.printf("acked %s\n", cmd)
			} else {
				out.printf("refused %s %v\n", cmd, err)
			}
		}
		out.printf("done %s\n", prefix)
	}
	close(stop)
	r.Close()
	return 0
}
