package faults

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/internal/benchproc"
)

// Proc is one started program: a replica, a registry, a busy neighbour.
type Proc struct {
	Name string // what it is, for messages ("replica 2 (r2)")
	cmd  *exec.Cmd
	out  *benchproc.TailBuffer // the last 8 KiB of its output
	done chan struct{}
	err  error // set when done closes
}

// StartProc starts cmd in a process group of its own, killed if this process
// dies, the end of its output kept for messages and, with log not empty, all
// of it appended to the file log (see Setup.Logs). Of a SysProcAttr cmd
// carries, only the Credential is kept.
func StartProc(name string, cmd *exec.Cmd, log string) (*Proc, error) {
	p := &Proc{Name: name, cmd: cmd, out: benchproc.NewTailBuffer(8 << 10), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	var file *os.File
	if log != "" {
		if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		fmt.Fprintf(f, "--- %s started %s\n", name, time.Now().Format(time.RFC3339Nano))
		file = f
		w := io.MultiWriter(p.out, f)
		cmd.Stdout, cmd.Stderr = w, w
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cmd.SysProcAttr != nil {
		// The user to run as (Go sets the parent-death signal after it
		// changes user, so the signal survives).
		attr.Credential = cmd.SysProcAttr.Credential
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		if file != nil {
			file.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		if file != nil {
			fmt.Fprintf(file, "--- %s ended %s: %v\n", name, time.Now().Format(time.RFC3339Nano), p.err)
			file.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id (with `ip netns exec`, the program's own: ip
// executes it in place).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(p.Pid(), sig); err != nil {
		return fmt.Errorf("%v to %s: %w", sig, p.Name, err)
	}
	return nil
}

// Kill SIGKILLs the process group and waits up to d for it to end.
func (p *Proc) Kill(d time.Duration) error {
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s still running %v after SIGKILL", p.Name, d)
	}
}

// Tail is the end of the process's output.
func (p *Proc) Tail() string {
	if p.out == nil {
		return ""
	}
	return strings.TrimSpace(p.out.String())
}
