package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/internal/cluster"
)

// grace is how long the followers may take to exit once the leader has.
const grace = 10 * time.Second

// runLocal runs o.Replicas replicas as processes of this executable. The
// launcher binds every replica's loopback listener itself and hands it down
// as file descriptor 3, so the addresses are known before any replica
// starts and no port can be taken in between. Children run in their own
// process group (a terminal's Ctrl-C reaches the launcher, which stops
// them) with a parent-death signal, so they die with the launcher even
// when it is killed outright.
func runLocal(ctx context.Context, o Options, stdout, stderr io.Writer) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var addrs []string
	for range o.Replicas {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close() // f holds its own descriptor of the socket
		if err != nil {
			return fmt.Errorf("listener file: %w", err)
		}
		files = append(files, f)
		addrs = append(addrs, ln.Addr().String())
	}

	type exit struct {
		id  int
		err error
	}
	exits := make(chan exit, o.Replicas)
	procs := map[int]*exec.Cmd{}
	defer func() {
		// Whatever happened, no replica outlives the launcher's run.
		for _, cmd := range procs {
			cmd.Process.Kill()
		}
		for range procs {
			<-exits
		}
	}()
	const leader = 1
	for i := range o.Replicas {
		id := i + 1
		args := []string{
			"--peers", strings.Join(addrs, ","), "--listen-fd", "3",
			"--count", strconv.Itoa(o.Count), "--tick", o.Tick.String(),
			"--election-ticks", strconv.Itoa(o.ElectionTicks),
			"--start-timeout", o.StartTimeout.String(), "--propose-timeout", o.ProposeTimeout.String(),
			"--verbose=" + strconv.FormatBool(o.Verbose),
		}
		if id == leader && o.Hgrm != "" {
			args = append(args, "--hgrm", o.Hgrm)
		}
		args = append(args, strconv.Itoa(id), strconv.Itoa(o.Payload), strconv.Itoa(o.Outstanding))
		cmd := exec.Command(exe, args...)
		cmd.ExtraFiles = []*os.File{files[i]}
		cmd.Stdout = io.Discard
		if id == leader {
			cmd.Stdout = stdout
		}
		pw := cluster.NewPrefixWriter(stderr, fmt.Sprintf("[%d] ", id))
		cmd.Stderr = pw
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start replica %d: %w", id, err)
		}
		procs[id] = cmd
		go func() {
			err := cmd.Wait()
			pw.Flush()
			exits <- exit{id, err}
		}()
	}

	leaderDone := false
	var graceC <-chan time.Time
	var failed []string
	for len(procs) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted (%w); stopped every replica", context.Cause(ctx))
		case <-graceC:
			var left []int
			for id := range procs {
				left = append(left, id)
			}
			slices.Sort(left)
			return fmt.Errorf("replicas %v did not exit within %v of the leader; killed them", left, grace)
		case e := <-exits:
			delete(procs, e.id)
			if e.err != nil {
				failed = append(failed, fmt.Sprintf("replica %d: %v", e.id, e.err))
				if !leaderDone || e.id == leader {
					// The others would wait for it: stop them now.
					return fmt.Errorf("%s", strings.Join(failed, "; "))
				}
			}
			if e.id == leader {
				leaderDone = true
				graceC = time.After(grace)
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}
