// Package cluster is the launcher behind the tools' --local mode: it starts
// an embedded registry (internal/memcache) and every replica of a cluster as
// a separate OS process of the running executable, forwards the leader's
// standard output, and cleans up after the run, whether it ends normally,
// fails or is interrupted.
//
// Clean-up covers the child processes, the shm fabric directory the replicas
// shared (<Options.Dir>/gomu-<fabric>, see verbs/shm) and a temporary
// directory for their pause fifos. Children run in their own process group,
// so a Ctrl-C in a terminal reaches the launcher alone, which then stops
// them; and they are started with a parent-death signal (SIGKILL), so they
// die with the launcher even when it is killed outright.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache"
)

// Node is what a replica process is started with.
type Node struct {
	ID       int
	Registry string // the embedded registry's host:port
	Fabric   string // the shm fabric name (the device name on shm)
	Fifo     string // a fresh path for the replica's pause fifo
}

// Spec describes one local run.
type Spec struct {
	// Name prefixes the fabric and temporary directory names and the
	// launcher's messages (the tool's name).
	Name string
	// IDs are the replicas to start.
	IDs []int
	// Leader is the replica whose standard output becomes the launcher's,
	// and whose exit ends the run.
	Leader int
	// Args returns the command-line arguments (without the program name)
	// of the replica process for node n.
	Args func(n Node) []string
	// Dir is the working directory of the replica processes ("" for the
	// launcher's).
	Dir string
	// Stdout receives the leader's standard output; Stderr every replica's
	// standard error, each line prefixed with "[<id>] ".
	Stdout, Stderr io.Writer
	// OthersStdout, if set, receives the other replicas' standard output,
	// each line prefixed with "[<id>] " (default: discarded).
	OthersStdout io.Writer
	// Grace is how long the other replicas may take to exit once the leader
	// has (default 10 s); then they are killed.
	Grace time.Duration
	// Exe is the replica program (default: this executable).
	Exe string
	// Started, if set, is called by Run once every replica process is
	// started: a launcher prints there what clients need (the registry's
	// address, the fabric).
	Started func(c *Cluster)
	// Serve says the replicas are servers that run until stopped: a
	// SIGINT or SIGTERM to the launcher then ends the run normally (Run
	// returns nil once it has stopped them) instead of as an interruption.
	// And a replica process killed by a signal (kill -9, a crash) while
	// the run goes on is started again, as a supervisor would restart it:
	// the new incarnation rejoins the running cluster. A replica that
	// exits with an error status still ends the run.
	Serve bool
}

// Run starts the registry and the replicas and waits until the leader's
// process exits, then for the others within Grace. It fails if any replica
// exits with an error, and when ctx ends or the launcher receives SIGINT or
// SIGTERM, in which case it stops every replica first.
func Run(ctx context.Context, s Spec) (err error) {
	if !slices.Contains(s.IDs, s.Leader) {
		return fmt.Errorf("cluster: leader %d is not one of %v", s.Leader, s.IDs)
	}
	c, err := Start(ctx, s)
	if err != nil {
		return err
	}
	defer c.Close()
	if s.Started != nil {
		s.Started(c)
	}

	procs := map[int]bool{}
	for _, id := range s.IDs {
		procs[id] = true
	}
	leaderDone := false
	var grace <-chan time.Time
	var failed []string
	for len(procs) > 0 {
		select {
		case <-c.ctx.Done():
			if s.Serve && ctx.Err() == nil {
				// SIGINT or SIGTERM: how a served cluster is meant to end.
				if s.Stderr != nil {
					fmt.Fprintf(s.Stderr, "%s: %v; stopping every replica\n", s.Name, context.Cause(c.ctx))
				}
				return nil
			}
			return fmt.Errorf("cluster: interrupted (%w); stopped every replica", context.Cause(c.ctx))
		case <-grace:
			var left []int
			for id := range procs {
				left = append(left, id)
			}
			slices.Sort(left)
			return fmt.Errorf("cluster: replicas %v did not exit within %v of the leader; killed them", left, c.spec.Grace)
		case e := <-c.exits:
			if s.Serve && killed(e.Err) && c.ctx.Err() == nil {
				if s.Stderr != nil {
					fmt.Fprintf(s.Stderr, "%s: replica %d: %v; restarting it\n", s.Name, e.ID, e.Err)
				}
				if _, err := c.Restart(e.ID); err != nil {
					return err
				}
				continue
			}
			delete(procs, e.ID)
			if e.Err != nil {
				failed = append(failed, fmt.Sprintf("replica %d: %v", e.ID, e.Err))
				if !leaderDone || e.ID == s.Leader {
					// A replica that fails before the run is over leaves the
					// others waiting: stop them now.
					return fmt.Errorf("cluster: %s", strings.Join(failed, "; "))
				}
			}
			if e.ID == s.Leader {
				leaderDone = true
				grace = time.After(c.spec.Grace)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("cluster: %s", strings.Join(failed, "; "))
	}
	return nil
}

// killed reports whether a process's end was a signal's doing.
func killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// Exit is a replica process's end.
type Exit struct {
	ID int
	// Run says which process of replica ID exited: 0 for the one Start
	// started, n for the one the nth Restart started.
	Run int
	Err error // nil when it exited with status 0
}

// Cluster is a running local cluster, for launchers that drive their
// replicas themselves (cmd/failover pauses, stops, kills and restarts them);
// Run is the simple case built on it.
type Cluster struct {
	spec        Spec
	ctx         context.Context
	stopSignals context.CancelFunc
	srv         *memcache.Server
	tmp, fabric string
	exe         string
	nodes       map[int]Node
	mu          sync.Mutex // guards procs, done and runs (Restart replaces them)
	procs       map[int]*exec.Cmd
	done        map[int]chan struct{}
	runs        map[int]int
	exits       chan Exit
	closeOnce   sync.Once
}

// Start starts the registry and the replicas of s and returns at once.
// s.Leader may be 0 when no replica's standard output is wanted. Close
// stops everything Start started, whatever happened.
func Start(ctx context.Context, s Spec) (_ *Cluster, err error) {
	if s.Grace <= 0 {
		s.Grace = 10 * time.Second
	}
	exe := s.Exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("cluster: find own executable: %w", err)
		}
	}
	c := &Cluster{
		spec:  s,
		exe:   exe,
		nodes: map[int]Node{},
		procs: map[int]*exec.Cmd{},
		done:  map[int]chan struct{}{},
		runs:  map[int]int{},
		exits: make(chan Exit, len(s.IDs)),
	}
	c.ctx, c.stopSignals = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	c.srv, err = memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		return c, fmt.Errorf("cluster: embedded registry: %w", err)
	}
	c.tmp, err = os.MkdirTemp("", "gomu-"+s.Name+"-")
	if err != nil {
		return c, fmt.Errorf("cluster: %w", err)
	}
	c.fabric = fmt.Sprintf("%s-%d", s.Name, os.Getpid())
	for _, id := range s.IDs {
		c.nodes[id] = Node{ID: id, Registry: c.srv.Addr(), Fabric: c.fabric, Fifo: filepath.Join(c.tmp, "fifo-"+strconv.Itoa(id))}
		if err := c.spawn(id, 0); err != nil {
			return c, err
		}
	}
	return c, nil
}

// spawn starts run number run of replica id's process (c.mu held or not
// yet shared).
func (c *Cluster) spawn(id, run int) error {
	s := c.spec
	cmd := exec.Command(c.exe, s.Args(c.nodes[id])...)
	cmd.Dir = s.Dir
	cmd.Stdout = io.Discard
	var outPrefix *PrefixWriter
	if id == s.Leader && s.Stdout != nil {
		cmd.Stdout = s.Stdout
	} else if id != s.Leader && s.OthersStdout != nil {
		outPrefix = NewPrefixWriter(s.OthersStdout, fmt.Sprintf("[%d] ", id))
		cmd.Stdout = outPrefix
	}
	cmd.Stderr = io.Discard
	if s.Stderr != nil {
		cmd.Stderr = NewPrefixWriter(s.Stderr, fmt.Sprintf("[%d] ", id))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: start replica %d: %w", id, err)
	}
	c.procs[id] = cmd
	c.runs[id] = run
	done := make(chan struct{})
	c.done[id] = done
	go func() {
		err := cmd.Wait()
		if w, ok := cmd.Stderr.(*PrefixWriter); ok {
			w.Flush()
		}
		if outPrefix != nil {
			outPrefix.Flush()
		}
		close(done)
		c.exits <- Exit{id, run, err}
	}()
	return nil
}

// Restart starts replica id again, with the same arguments (Spec.Args of
// the same Node: registry, fabric, fifo), once its current process has
// exited (a launcher kills it first; Restart waits up to Grace for the
// process to go). The new process is a new incarnation of the replica: the
// engine has it rejoin the running cluster. Restart returns the new run's
// number (see Exit.Run) once the process is started.
func (c *Cluster) Restart(id int) (run int, err error) {
	c.mu.Lock()
	done, ok := c.done[id]
	c.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("cluster: no replica %d", id)
	}
	select {
	case <-done:
	case <-time.After(c.spec.Grace):
		return 0, fmt.Errorf("cluster: restart replica %d: its process did not exit within %v", id, c.spec.Grace)
	}
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("cluster: restart replica %d: %w", id, context.Cause(c.ctx))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	run = c.runs[id] + 1
	return run, c.spawn(id, run)
}

// CurrentRun returns the number of replica id's current process (see
// Exit.Run).
func (c *Cluster) CurrentRun(id int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[id]
}

// Context ends when the ctx given to Start does or the launcher receives
// SIGINT or SIGTERM.
func (c *Cluster) Context() context.Context { return c.ctx }

// Exits reports each replica process's end, once (restarted processes
// included). A process whose Exit nobody receives holds only a goroutine.
func (c *Cluster) Exits() <-chan Exit { return c.exits }

// Node returns what replica id was started with.
func (c *Cluster) Node(id int) Node { return c.nodes[id] }

// Signal sends sig to replica id's process.
func (c *Cluster) Signal(id int, sig os.Signal) error {
	c.mu.Lock()
	cmd, ok := c.procs[id]
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("cluster: no replica %d", id)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("cluster: signal replica %d: %w", id, err)
	}
	return nil
}

// Close kills every replica process still running, waits for them and
// removes the registry, fifo directory and shm fabric.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for id, cmd := range c.procs {
			// A stopped process dies of SIGKILL too.
			cmd.Process.Kill()
			<-c.done[id]
		}
		if c.srv != nil {
			c.srv.Close()
		}
		if c.tmp != "" {
			os.RemoveAll(c.tmp)
		}
		if c.fabric != "" {
			os.RemoveAll(filepath.Join("/dev/shm", "gomu-"+c.fabric))
		}
		c.stopSignals()
	})
}

// PrefixWriter writes complete lines to w, each prefixed: how a launcher
// shows many children's stderr on one terminal. It is safe for concurrent
// use.
type PrefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

// NewPrefixWriter returns a PrefixWriter that writes to w.
func NewPrefixWriter(w io.Writer, prefix string) *PrefixWriter {
	return &PrefixWriter{w: w, prefix: prefix}
}

func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := slices.Index(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s%s", p.prefix, p.buf[:i+1]); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}

// Flush writes a last unterminated line, if any.
func (p *PrefixWriter) Flush() {
	if len(p.buf) > 0 {
		p.Write([]byte{'\n'})
	}
}

// ReportProgress prints how far a run of total commands is, every second,
// until the returned stop is called; a nil w prints nothing.
func ReportProgress(w io.Writer, acked *atomic.Int64, total int) (stop func()) {
	return ReportProgressOf(w, acked, total, "commands")
}

// ReportProgressOf is ReportProgress for a run counted in unit ("orders");
// a total of 0 is a run of unknown length (a duration).
func ReportProgressOf(w io.Writer, done *atomic.Int64, total int, unit string) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		last, start := int64(0), time.Now()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				n := done.Load()
				of := ""
				if total > 0 {
					of = fmt.Sprintf("/%d %s (%.0f%%)", total, unit, 100*float64(n)/float64(total))
				} else {
					of = " " + unit
				}
				fmt.Fprintf(w, "progress: %d%s, %.0f %s/s, %v elapsed\n", n, of, float64(n-last), unit, now.Sub(start).Round(time.Second))
				last = n
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}
