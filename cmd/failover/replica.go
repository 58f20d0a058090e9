package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/internal/stbench"
)

// replicaOptions is what the launcher starts a replica process with.
type replicaOptions struct {
	Options
	ID                     int
	Board                  string
	Registry, Device, Fifo string
}

func parseReplica(c *cli.Context) (replicaOptions, error) {
	o := replicaOptions{
		ID: c.Int("replica"), Board: c.String("board"),
		Registry: c.String("registry"), Device: c.String("device"), Fifo: c.String("fifo"),
		Options: Options{
			Transport: c.String("transport"), Profile: consensus.Profile(c.String("profile")), Poll: c.String("poll"),
			Payload: c.Int("payload"), StartTimeout: c.Duration("start-timeout"), Verbose: c.Bool("verbose"),
		},
	}
	var err error
	if o.IDs, err = stbench.ParseIDs(c.String("ids")); err != nil {
		return o, err
	}
	if o.Board == "" || o.Registry == "" || o.Payload < 1 || o.Payload > stbench.MaxPayload {
		return o, errors.New("--replica is for the processes --local starts; run failover --local")
	}
	return o, nil
}

// counter is the replicated state machine: it counts commands.
type counter struct{ n uint64 }

func (m *counter) Apply(uint64, []byte) []byte { m.n++; return nil }
func (m *counter) Snapshot(w io.Writer) error  { _, err := fmt.Fprintf(w, "%d", m.n); return err }
func (m *counter) Restore(r io.Reader) error   { _, err := fmt.Fscan(r, &m.n); return err }

// runReplica runs one replica until it is killed (the launcher ends a run
// that way) or receives SIGTERM or SIGINT. Its client proposes one command at
// a time while the replica leads, and it publishes its state on the board.
func runReplica(ctx context.Context, o replicaOptions) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := openBoard(o.Board, false)
	if err != nil {
		return err
	}
	defer b.close()
	me := b.slot(o.ID)

	cfg := consensus.Config{
		ID: o.ID, IDs: o.IDs, Registry: o.Registry, Cluster: "failover",
		Transport: o.Transport, Device: o.Device, Profile: o.Profile,
		MaxBatch: stbench.MaxBatch, Fifo: o.Fifo, StartTimeout: o.StartTimeout,
	}
	if o.Poll != "" {
		m, err := poll.ParseMode(o.Poll)
		if err != nil {
			return fmt.Errorf("--poll: %w", err)
		}
		cfg = cfg.WithPoll(m)
	}
	if o.Transport == "tcp" && o.Device == "" {
		cfg.Device = "127.0.0.1:0"
	}
	stbench.TCPProcs(o.Transport)
	if o.Verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	r, err := consensus.Start(ctx, cfg, &counter{})
	if err != nil {
		return fmt.Errorf("start replica %d: %w", o.ID, err)
	}
	defer r.Close()
	// Published before the status loop's first write, which has behind
	// right: the launcher takes started with behind 0 for caught up.
	me.behind.Store(1)
	me.started.Store(monotonic())

	// Status: how the launcher knows who leads and whether the cluster is
	// steady.
	statusDone := make(chan struct{})
	defer func() { <-statusDone }()
	go func() {
		defer close(statusDone)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			st := r.Stats()
			var alive, current uint64
			for _, p := range st.Peers {
				if p.Alive {
					alive |= 1 << p.ID
				}
				if p.Active && !p.Lagging {
					current |= 1 << p.ID
				}
			}
			if st.Behind {
				me.behind.Store(1)
			} else {
				me.behind.Store(0)
			}
			me.current.Store(current)
			me.role.Store(int64(st.Role))
			me.leader.Store(int64(st.Leader))
			me.alive.Store(alive)
			if r.Paused() {
				me.paused.Store(1)
			} else {
				me.paused.Store(0)
			}
			me.beat.Store(monotonic())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	// The client.
	cmd := make([]byte, o.Payload)
	wait := 200 * time.Microsecond
	if o.Profile == consensus.ProfileFast {
		wait = 10 * time.Microsecond
	}
	for ctx.Err() == nil {
		if r.Role() == consensus.Follower || r.Paused() {
			time.Sleep(wait)
			continue
		}
		_, err := r.Propose(ctx, cmd)
		if err == nil {
			now := monotonic()
			me.lastAck.Store(now)
			me.acks.Add(1)
			if me.mark.Load() == 0 {
				me.mark.CompareAndSwap(0, now)
			}
			continue
		}
		if errors.Is(err, consensus.ErrClosed) {
			return err
		}
		// Not the leader any more, paused, or ctx ended.
		time.Sleep(wait)
	}
	return nil
}
