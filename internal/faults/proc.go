package faults

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one started program: a replica, a registry, a busy neighbour.
type Proc struct {
	Name string // what it is, for messages ("replica 2 (r2)")
	cmd  *exec.Cmd
	out  tailBuffer
	done chan struct{}
	err  error // set when done closes
}

// StartProc starts cmd in a process group of its own, killed if this process
// dies, its output kept for messages. Of a SysProcAttr cmd carries, only
// the Credential is kept.
func StartProc(name string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cmd.SysProcAttr != nil {
		// The user to run as (Go sets the parent-death signal after it
		// changes user, so the signal survives).
		attr.Credential = cmd.SysProcAttr.Credential
	}
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
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
func (p *Proc) Tail() string { return p.out.String() }

// tailBuffer keeps the last 8 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 8 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*tailMax {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(b.buf[max(0, len(b.buf)-tailMax):])
	return strings.TrimSpace(s)
}
