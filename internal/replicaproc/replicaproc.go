// Package replicaproc is what the commands of gomu's replicated servers
// (redis-server-replicated, memcached-replicated) do alike around their
// own server: print the PID with signals already caught, start the
// consensus replica behind a server that already listens (so the address
// the replica publishes is the one served), print the role lines Mu's
// scripts wait for ("listening on <addr> as <role>", "Reading pump
// started" whenever the replica follows), and serve until SIGTERM or
// SIGINT, writing the replication-latency dump on SIGUSR1.
package replicaproc

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/consensus"
	"github.com/gomu-rdma/gomu/internal/latency"
)

// Server is an app's network server.
type Server interface {
	// Addr is where it listens.
	Addr() string
	// SetReplica attaches the replica, before Serve.
	SetReplica(r *consensus.Replica)
	// Serve serves until Close; it returns nil after Close.
	Serve() error
	Close() error
	// Dump writes the replication latencies to path and returns their
	// count and percentile summary.
	Dump(path string) (int64, string, error)
}

// Process is a replica process under way: its signals, caught from the
// start, and its CPU profile if one was asked for.
type Process struct {
	name    string
	sigs    chan os.Signal
	profile *os.File
}

// Begin catches SIGINT, SIGTERM and SIGUSR1, then prints
// "<name> pid <pid>": a script that signals the PID it read must reach the
// clean shutdown, never the default action. With cpuprofile set it starts
// a Go CPU profile into that file. End undoes both.
func Begin(name, cpuprofile string) (*Process, error) {
	p := &Process{name: name, sigs: make(chan os.Signal, 4)}
	signal.Notify(p.sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	fmt.Printf("%s pid %d\n", name, os.Getpid())
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			p.End()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			p.End()
			return nil, fmt.Errorf("--cpuprofile: %w", err)
		}
		p.profile = f
	}
	return p, nil
}

// End stops the profile and the signal handling.
func (p *Process) End() {
	if p.profile != nil {
		pprof.StopCPUProfile()
		p.profile.Close()
	}
	signal.Stop(p.sigs)
}

// Serve runs srv until SIGTERM or SIGINT (nil) or until it fails. With
// cfg, it first starts the consensus replica of sm (cfg.Meta, the client
// address other replicas name, defaults to srv.Addr()), bounded by
// cfg.StartTimeout and by a signal; without, srv runs standalone. It closes
// srv, then the replica, so that in-flight proposals finish first.
func (p *Process) Serve(srv Server, cfg *consensus.Config, sm consensus.StateMachine) error {
	defer srv.Close()
	var rep *consensus.Replica
	id := 0
	if cfg != nil {
		id = cfg.ID
		if len(cfg.Meta) == 0 {
			cfg.Meta = []byte(srv.Addr())
		}
		var err error
		if rep, err = p.start(*cfg, sm); err != nil {
			return err
		}
		defer rep.Close()
		// Deferred after rep.Close, so it runs first: the server drops its
		// clients and lets their in-flight proposals finish before the
		// replica closes, rather than answering them "replica closed", an
		// error that claims a write failed when it may have committed.
		// (Close is idempotent.)
		defer srv.Close()
		srv.SetReplica(rep)
		stop := make(chan struct{})
		defer close(stop)
		go announceRoles(rep, stop)
	}
	role := "standalone"
	if rep != nil {
		role = strings.ToLower(rep.Role().String())
	}
	fmt.Printf("listening on %s as %s\n", srv.Addr(), role)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	for {
		select {
		case err := <-served:
			return err
		case s := <-p.sigs:
			if s == syscall.SIGUSR1 {
				p.dump(srv, id)
				continue
			}
			return nil
		}
	}
}

// start starts the replica, giving up at cfg.StartTimeout or on a signal.
func (p *Process) start(cfg consensus.Config, sm consensus.StateMachine) (*consensus.Replica, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
	defer cancel()
	type started struct {
		rep *consensus.Replica
		err error
	}
	done := make(chan started, 1)
	go func() {
		rep, err := consensus.Start(ctx, cfg, sm)
		done <- started{rep, err}
	}()
	var st started
	select {
	case st = <-done:
	case s := <-p.sigs:
		cancel()
		<-done
		return nil, fmt.Errorf("interrupted by %v while starting", s)
	}
	if st.err != nil {
		return nil, fmt.Errorf("start replica %d: %w", cfg.ID, st.err)
	}
	return st.rep, nil
}

// dump writes dump-<id>.txt and the summary on stderr.
func (p *Process) dump(srv Server, id int) {
	path := fmt.Sprintf("dump-%d.txt", id)
	n, summary, err := srv.Dump(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.name, err)
		return
	}
	fmt.Fprintf(os.Stderr, "%s: wrote %s (%d proposals): %s\n", p.name, path, n, summary)
}

// announceRoles prints "Reading pump started" each time this replica
// follows, as Mu's followers do when their replayer starts.
func announceRoles(rep *consensus.Replica, stop <-chan struct{}) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	last := consensus.Role(-1)
	for {
		if r := rep.Role(); r != last {
			if r == consensus.Follower {
				fmt.Println("Reading pump started")
			}
			last = r
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// DumpRecorder is the recorder of replication latencies behind the SIGUSR1
// dump: up to 10 s each, the first 4 Mi values kept raw (8 B each).
func DumpRecorder() *latency.Recorder { return latency.New(10*time.Second, 4<<20) }

// LocalProcs is the GOMAXPROCS of each of the replicas --local starts:
// procs if set, else this machine's cores shared out among them (at least
// one). Replicas that share a machine share its cores: with more Ps than
// its share, a replica's Go scheduler hands each proposal between threads
// (the connection's, the engine loop's), and on a VM every such hand-off
// wakes an idle vCPU: a Redis SET cost ~88 µs p50 with 3 replicas at the
// default GOMAXPROCS on 2 cores, ~35 µs with 1 (standalone 25).
func LocalProcs(procs, replicas int) int {
	if procs > 0 {
		return procs
	}
	return max(1, runtime.NumCPU()/replicas)
}
