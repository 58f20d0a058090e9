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
	// Grace is how long the other replicas may take to exit once the leader
	// has (default 10 s); then they are killed.
	Grace time.Duration
}

// Run starts the registry and the replicas and waits until the leader's
// process exits, then for the others within Grace. It fails if any replica
// exits with an error, and when ctx ends or the launcher receives SIGINT or
// SIGTERM, in which case it stops every replica first.
func Run(ctx context.Context, s Spec) (err error) {
	if !slices.Contains(s.IDs, s.Leader) {
		return fmt.Errorf("cluster: leader %d is not one of %v", s.Leader, s.IDs)
	}
	if s.Grace <= 0 {
		s.Grace = 10 * time.Second
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cluster: find own executable: %w", err)
	}
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	srv, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		return fmt.Errorf("cluster: embedded registry: %w", err)
	}
	defer srv.Close()
	tmp, err := os.MkdirTemp("", "gomu-"+s.Name+"-")
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer os.RemoveAll(tmp)
	fabric := fmt.Sprintf("%s-%d", s.Name, os.Getpid())
	defer os.RemoveAll(filepath.Join("/dev/shm", "gomu-"+fabric))

	type exit struct {
		id  int
		err error
	}
	exits := make(chan exit, len(s.IDs))
	procs := map[int]*exec.Cmd{}
	defer func() {
		// Whatever happened, no replica outlives Run.
		for _, cmd := range procs {
			cmd.Process.Kill()
		}
		for range procs {
			<-exits
		}
	}()
	for _, id := range s.IDs {
		n := Node{ID: id, Registry: srv.Addr(), Fabric: fabric, Fifo: filepath.Join(tmp, "fifo-"+strconv.Itoa(id))}
		cmd := exec.Command(exe, s.Args(n)...)
		cmd.Dir = s.Dir
		cmd.Stdout = io.Discard
		if id == s.Leader && s.Stdout != nil {
			cmd.Stdout = s.Stdout
		}
		cmd.Stderr = io.Discard
		if s.Stderr != nil {
			cmd.Stderr = &prefixWriter{w: s.Stderr, prefix: fmt.Sprintf("[%d] ", id)}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("cluster: start replica %d: %w", id, err)
		}
		procs[id] = cmd
		go func() {
			err := cmd.Wait()
			if w, ok := cmd.Stderr.(*prefixWriter); ok {
				w.flush()
			}
			exits <- exit{id, err}
		}()
	}

	leaderDone := false
	var grace <-chan time.Time
	var failed []string
	for len(procs) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: interrupted (%w); stopped every replica", context.Cause(ctx))
		case <-grace:
			var left []int
			for id := range procs {
				left = append(left, id)
			}
			slices.Sort(left)
			return fmt.Errorf("cluster: replicas %v did not exit within %v of the leader; killed them", left, s.Grace)
		case e := <-exits:
			delete(procs, e.id)
			if e.err != nil {
				failed = append(failed, fmt.Sprintf("replica %d: %v", e.id, e.err))
				if !leaderDone || e.id == s.Leader {
					// A replica that fails before the run is over leaves the
					// others waiting: stop them now.
					return fmt.Errorf("cluster: %s", strings.Join(failed, "; "))
				}
			}
			if e.id == s.Leader {
				leaderDone = true
				grace = time.After(s.Grace)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("cluster: %s", strings.Join(failed, "; "))
	}
	return nil
}

// prefixWriter writes complete lines to w, each prefixed. It is used as a
// child's Stderr, so the exec package serialises its writes.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
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

// flush writes a last unterminated line, if any.
func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		p.Write([]byte{'\n'})
	}
}
