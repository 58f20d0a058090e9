package consensus

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
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

// lineSM is a state machine whose state is the sequence of commands it
// applied. It reports every command it applies on out, one "applied <cmd>"
// line each, and every state it restores (a state transfer) as one
// "restored <n> <cmd> …" line holding the whole restored sequence, so the
// test sees each process's full applied sequence whether it replayed it or
// got it by transfer. Commands hold no spaces or newlines.
type lineSM struct {
	out *syncWriter
	mu  sync.Mutex
	seq []string
}

func (s *lineSM) Apply(_ uint64, cmd []byte) []byte {
	s.mu.Lock()
	s.seq = append(s.seq, string(cmd))
	s.mu.Unlock()
	s.out.printf("applied %s\n", cmd)
	return nil
}

// Snapshot writes the applied sequence, one command a line.
func (s *lineSM) Snapshot(w io.Writer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	bw := bufio.NewWriter(w)
	for _, c := range s.seq {
		bw.WriteString(c)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

func (s *lineSM) Restore(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var seq []string
	if len(b) > 0 {
		if b[len(b)-1] != '\n' {
			return fmt.Errorf("lineSM: snapshot does not end with a newline")
		}
		seq = strings.Split(string(b[:len(b)-1]), "\n")
	}
	s.mu.Lock()
	s.seq = seq
	s.mu.Unlock()
	s.out.printf("restored %d %s\n", len(seq), strings.Join(seq, " "))
	return nil
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) printf(format string, args ...any) {
	w.mu.Lock()
	fmt.Fprintf(w.w, format, args...)
	w.mu.Unlock()
}

// statusLine sums up what Stats says about leadership and catch-up:
// "status role=<role> leader=<id> behind=<bool> active=<ids> lagging=<ids>
// transfers=<n>", active and lagging being the leader's view of its peers
// (comma-separated ids, empty unless it leads).
func statusLine(s Stats) string {
	var active, lagging []string
	if s.Role == Leader {
		for _, p := range s.Peers {
			if p.Active {
				active = append(active, strconv.Itoa(p.ID))
			}
			if p.Lagging {
				lagging = append(lagging, strconv.Itoa(p.ID))
			}
		}
	}
	return fmt.Sprintf("status role=%s leader=%d behind=%t active=%s lagging=%s transfers=%d",
		s.Role, s.Leader, s.Behind, strings.Join(active, ","), strings.Join(lagging, ","), s.Transfers)
}

// replicaProcess runs one replica configured by the environment (GOMU_REPLICA
// id, GOMU_IDS, GOMU_REGISTRY, GOMU_CLUSTER, GOMU_FABRIC, GOMU_SHMDIR; and
// optionally GOMU_TRANSPORT, "tcp" for the tcp provider on loopback, and
// GOMU_RING, the ring size in bytes). It reports on stdout, one line each:
// "role <role>" on every role change, "status …" (see statusLine) on every
// change of it, "applied <cmd>", "restored <n> <cmd> …" (see lineSM), and
// for proposals "acked <cmd>" or "refused <cmd>". It reads commands on
// stdin: "propose <prefix> <n> [<pad>]" proposes prefix-0 … prefix-(n-1)
// (each followed by "-" and pad z's if pad > 0) one after the other, then
// reports "done <prefix>"; at end of input it closes the replica and exits.
// It logs to stderr at info level (debug with GOMU_TEST_LOG set).
func replicaProcess() int {
	id, _ := strconv.Atoi(os.Getenv("GOMU_REPLICA"))
	var ids []int
	for _, s := range strings.Split(os.Getenv("GOMU_IDS"), ",") {
		n, _ := strconv.Atoi(s)
		ids = append(ids, n)
	}
	level := slog.LevelInfo
	if os.Getenv("GOMU_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	out := &syncWriter{w: os.Stdout}
	cfg := Config{
		ID: id, IDs: ids, Registry: os.Getenv("GOMU_REGISTRY"), Cluster: os.Getenv("GOMU_CLUSTER"),
		Transport: "shm", Device: os.Getenv("GOMU_FABRIC"), Verbs: verbs.Options{Dir: os.Getenv("GOMU_SHMDIR")},
		RingSize: 1 << 20, Fifo: "-", Profile: ProfileRelaxed,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	if os.Getenv("GOMU_TRANSPORT") == "tcp" {
		onTCP(&cfg)
	}
	if s := os.Getenv("GOMU_RING"); s != "" {
		cfg.RingSize, _ = strconv.Atoi(s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	r, err := Start(ctx, cfg, &lineSM{out: out})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop := make(chan struct{})
	go func() {
		role, status := Role(-1), ""
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
			if now := statusLine(r.Stats()); now != status {
				status = now
				out.printf("%s\n", status)
			}
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var prefix string
		var n, pad int
		if _, err := fmt.Sscanf(in.Text(), "propose %s %d %d", &prefix, &n, &pad); err != nil {
			if _, err := fmt.Sscanf(in.Text(), "propose %s %d", &prefix, &n); err != nil {
				fmt.Fprintf(os.Stderr, "bad command %q: %v\n", in.Text(), err)
				continue
			}
		}
		suffix := ""
		if pad > 0 {
			suffix = "-" + strings.Repeat("z", pad)
		}
		for i := 0; i < n; i++ {
			cmd := fmt.Sprintf("%s-%d%s", prefix, i, suffix)
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
