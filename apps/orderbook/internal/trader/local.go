package trader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/internal/cluster"
)

// LocalSpec describes an exchange the traders' process starts on this
// machine: what `orderbook-server --local N` (or --standalone) runs, but
// driven from here, so that a benchmark can pause, kill and restart its
// replicas.
type LocalSpec struct {
	// Server is the orderbook-server binary.
	Server string
	// Replicas is the cluster's size (ids 1..Replicas); ignored when
	// Standalone (one exchange, id 1, no replication).
	Replicas   int
	Standalone bool
	// Profile and Poll are the engine's (--profile, --poll); "" leaves
	// the server's defaults.
	Profile, Poll string
	// RPCPoll is the RPC poller's (--rpc-poll); "" leaves the server's
	// default.
	RPCPoll string
	// Extra are more orderbook-server flags for every replica.
	Extra []string
	// Name prefixes the fabric and temporary directory (default
	// "orderbook-local").
	Name string
	// Stderr gets every replica's standard error, each line prefixed with
	// its id (default: discarded).
	Stderr io.Writer
}

// Local is a running local exchange.
type Local struct {
	c   *cluster.Cluster
	ep  Endpoint
	ids []int

	mu       sync.Mutex
	expected map[int]int // replica id → runs we killed and may exit
	failed   []string
	closed   bool
}

// StartLocal starts the exchange's processes and returns at once; Probe
// (through a Conn to Endpoint) says when it takes orders. Close stops it.
func StartLocal(ctx context.Context, s LocalSpec) (*Local, error) {
	if s.Server == "" {
		return nil, errors.New("local exchange: no orderbook-server binary")
	}
	n := s.Replicas
	if s.Standalone {
		n = 1
	}
	if n < 1 {
		return nil, fmt.Errorf("local exchange: %d replicas", n)
	}
	if s.Name == "" {
		s.Name = "orderbook-local"
	}
	ids := make([]int, n)
	names := make([]string, n)
	for i := range ids {
		ids[i] = i + 1
		names[i] = strconv.Itoa(i + 1)
	}
	l := &Local{ids: ids, expected: map[int]int{}}
	c, err := cluster.Start(ctx, cluster.Spec{
		Name:   s.Name,
		IDs:    ids,
		Stderr: s.Stderr,
		Exe:    s.Server,
		Grace:  5 * time.Second,
		Args: func(node cluster.Node) []string {
			args := []string{"--registry", node.Registry, "--transport", "shm", "--device", node.Fabric}
			if s.Standalone {
				args = append(args, "--standalone", "--fifo", "-")
			} else {
				args = append(args, "--sid", strconv.Itoa(node.ID), "--ids", strings.Join(names, ","), "--fifo", node.Fifo)
			}
			if s.Profile != "" {
				args = append(args, "--profile", s.Profile)
			}
			if s.Poll != "" {
				args = append(args, "--poll", s.Poll)
			}
			if s.RPCPoll != "" {
				args = append(args, "--rpc-poll", s.RPCPoll)
			}
			return append(args, s.Extra...)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("local exchange: %w", err)
	}
	l.c = c
	node := c.Node(ids[0])
	l.ep = Endpoint{Registry: node.Registry, Transport: "shm", Device: node.Fabric, Cluster: DefaultCluster, IDs: ids}
	go l.watch()
	return l, nil
}

// watch notes every replica process that ends without our having killed
// it: Failed reports them.
func (l *Local) watch() {
	for e := range l.c.Exits() {
		l.mu.Lock()
		if l.expected[e.ID] > 0 {
			l.expected[e.ID]--
		} else if !l.closed && l.c.Context().Err() == nil {
			l.failed = append(l.failed, fmt.Sprintf("replica %d exited: %v", e.ID, e.Err))
		}
		l.mu.Unlock()
	}
}

// Failed returns an error naming the replicas that exited on their own,
// or nil.
func (l *Local) Failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) == 0 {
		return nil
	}
	return fmt.Errorf("local exchange: %s", strings.Join(l.failed, "; "))
}

// Endpoint is how traders reach the exchange (shm).
func (l *Local) Endpoint() Endpoint { return l.ep }

// IDs are the replicas' ids.
func (l *Local) IDs() []int { return l.ids }

// TradersLine is what orderbook-server --local prints for traders.
func (l *Local) TradersLine() string {
	names := make([]string, len(l.ids))
	for i, id := range l.ids {
		names[i] = strconv.Itoa(id)
	}
	return fmt.Sprintf("traders: --registry %s --transport shm --device %s --ids %s", l.ep.Registry, l.ep.Device, strings.Join(names, ","))
}

// Pause pauses replica id through its fifo ('p'): it stops its heartbeat
// and answers nothing, as a hung process would.
func (l *Local) Pause(id int) error { return l.fifo(id, "p") }

// Continue resumes a paused replica ('c'); a former leader rejoins as a
// follower.
func (l *Local) Continue(id int) error { return l.fifo(id, "c") }

func (l *Local) fifo(id int, s string) error {
	path := l.c.Node(id).Fifo
	// Non-blocking: a fifo nobody reads fails at once (ENXIO) instead of
	// waiting for a reader.
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("replica %d's fifo: %w", id, err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		return fmt.Errorf("replica %d's fifo: %w", id, err)
	}
	return nil
}

// Kill kills replica id's process with SIGKILL.
func (l *Local) Kill(id int) error {
	l.mu.Lock()
	l.expected[id]++
	l.mu.Unlock()
	return l.c.Signal(id, syscall.SIGKILL)
}

// Restart starts a killed replica again (a new incarnation, which
// rejoins the running cluster), once its old process is gone.
func (l *Local) Restart(id int) error {
	_, err := l.c.Restart(id)
	return err
}

// Close stops every process and removes the registry, fifos and fabric.
func (l *Local) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.c.Close()
}
