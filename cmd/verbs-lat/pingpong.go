package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

const (
	maxSize = 1 << 20
	// silence is how long either side waits for the other's message before
	// declaring the peer gone.
	silence = 5 * time.Second
	// signalEvery is how often a WRITE is signaled to free send-queue slots.
	signalEvery = 64
	helloMagic  = "gomu-verbs-lat/1"
)

// endpointEnd is one process's side of the ping-pong.
type endpointEnd struct {
	dev  verbs.Device
	mr   verbs.MR
	cq   verbs.CQ
	qp   verbs.QP
	cfg  config
	slot int // bytes per region: the size rounded up to 8
	off  int // payload offset inside a region, so the payload ends 8-aligned
	cqs  []verbs.Completion
}

// The MR holds a send region then a receive region. The payload sits at the
// end of each, so the word holding its last byte is 8-aligned and can be
// polled atomically; the last byte carries the round's sequence number.
func newEnd(cfg config, device string) (*endpointEnd, error) {
	opts := verbs.Options{RetryTimeout: time.Duration(cfg.opts.retryTimeoutNS)}
	dev, err := verbs.Open(cfg.transport, device, opts)
	if err != nil {
		return nil, err
	}
	e := &endpointEnd{dev: dev, cfg: cfg, cqs: make([]verbs.Completion, 16)}
	e.slot = (cfg.size + 7) &^ 7
	e.off = e.slot - cfg.size
	pd, err := dev.AllocPD()
	if err == nil {
		e.mr, err = pd.AllocMR(2*e.slot, verbs.AccessAll)
	}
	if err == nil {
		e.cq, err = dev.CreateCQ(verbs.DefaultMaxSendWR)
	}
	if err == nil {
		e.qp, err = pd.CreateQP(verbs.QPConfig{SendCQ: e.cq})
	}
	if err != nil {
		dev.Close()
		return nil, err
	}
	return e, nil
}

func (e *endpointEnd) close() { e.dev.Close() }

// hello is what each side tells the other on the side channel.
func (e *endpointEnd) hello() string {
	r := e.mr.Remote().Add(uint64(e.slot + e.off)) // the receive region's payload
	return fmt.Sprintf("%x %d %d", e.qp.Endpoint(), r.Addr, r.RKey)
}

func parseHello(fields []string) (ep []byte, r verbs.Remote, err error) {
	if len(fields) != 3 {
		return nil, r, fmt.Errorf("malformed peer hello: %q", strings.Join(fields, " "))
	}
	if ep, err = hex.DecodeString(fields[0]); err != nil {
		return nil, r, fmt.Errorf("peer endpoint: %w", err)
	}
	if r.Addr, err = strconv.ParseUint(fields[1], 10, 64); err != nil {
		return nil, r, fmt.Errorf("peer address: %w", err)
	}
	rk, err := strconv.ParseUint(fields[2], 10, 32)
	if err != nil {
		return nil, r, fmt.Errorf("peer rkey: %w", err)
	}
	r.RKey = uint32(rk)
	return ep, r, nil
}

// recvWord is the word holding the last byte of the received payload.
func (e *endpointEnd) recvWord() *uint64 {
	return (*uint64)(unsafe.Pointer(&e.mr.Bytes()[2*e.slot-8]))
}

// send writes the payload, tagged with seq in its last byte, to the peer.
func (e *endpointEnd) send(i int, seq byte, remote verbs.Remote) error {
	e.mr.Bytes()[e.slot-1] = seq
	flags := verbs.SendFlags(0)
	if i%signalEvery == signalEvery-1 {
		flags = verbs.Signaled
	}
	if e.cfg.size <= verbs.DefaultMaxInline {
		flags |= verbs.Inline
	}
	if err := e.qp.PostWrite(uint64(i), e.mr, e.off, e.cfg.size, remote, flags); err != nil {
		return fmt.Errorf("post write %d: %w", i, err)
	}
	return e.reap()
}

// reap takes completions without waiting and fails on any error.
func (e *endpointEnd) reap() error {
	n, err := e.cq.Poll(e.cqs)
	if err != nil {
		return err
	}
	for _, c := range e.cqs[:n] {
		if err := c.Err(); err != nil {
			return err
		}
	}
	return nil
}

// await polls local memory until the peer's message seq arrives.
func (e *endpointEnd) await(seq byte) error {
	return awaitSeq(e.recvWord(), seq, e.cfg.mode, e)
}

// reaper is what a waiting loop checks now and then: failed completions
// mean the message it waits for will never come.
type reaper interface{ reap() error }

// awaitSeq polls word until its last byte is seq, the peer's next message.
// It gives up after silence, and calls idle.reap (if idle is not nil) every
// few thousand polls so an error completion ends the wait.
func awaitSeq(word *uint64, seq byte, mode poll.Mode, idle reaper) error {
	w := poll.Waiter{Mode: mode}
	var deadline time.Time
	for n := 0; ; n++ {
		if byte(atomic.LoadUint64(word)>>56) == seq {
			return nil
		}
		if n&4095 == 4095 {
			if deadline.IsZero() {
				deadline = time.Now().Add(silence)
			} else if time.Now().After(deadline) {
				return fmt.Errorf("peer sent nothing for %v (dead or stalled?)", silence)
			}
			if idle != nil {
				if err := idle.reap(); err != nil {
					return err
				}
			}
		}
		w.Wait()
	}
}

func seqOf(i int) byte { return byte(i%255) + 1 }

// pin locks the measuring goroutine to its thread when it spins, so the
// spinner keeps its core; a yielding or sleeping loop stays unpinned, since
// a locked goroutine that yields forces a hand-off between OS threads on
// every wait. It returns the matching unpin.
func pin(mode poll.Mode) func() {
	if mode != poll.Spin {
		return func() {}
	}
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

func runServer(cfg config, out io.Writer) error {
	ln, err := net.Listen("tcp", cfg.oob)
	if err != nil {
		return fmt.Errorf("side channel: %w", err)
	}
	defer ln.Close()
	fmt.Fprintf(out, "listening %s\n", ln.Addr())
	conn, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("side channel: %w", err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)

	device := cfg.device
	if cfg.transport == "shm" && device == "" {
		device = fmt.Sprintf("verbs-lat-%d", os.Getpid())
	}
	e, err := newEnd(cfg, device)
	if err != nil {
		return err
	}
	defer e.close()
	fmt.Fprintf(conn, "%s %s %s %d %d %d %t %s\n", helloMagic, cfg.transport, orDash(device), cfg.size, cfg.iters, cfg.warmup, cfg.baseline, e.hello())
	conn.SetReadDeadline(time.Now().Add(silence))
	line, err := rd.ReadString('\n')
	if err != nil {
		return fmt.Errorf("client hello: %w", err)
	}
	ep, remote, err := parseHello(strings.Fields(line))
	if err != nil {
		return err
	}
	if err := e.qp.Connect(ep, verbs.AccessAll); err != nil {
		return err
	}
	fmt.Fprintln(conn, "ready")

	unpin := pin(cfg.mode)
	total := cfg.warmup + cfg.iters
	for i := 0; i < total; i++ {
		seq := seqOf(i)
		if err := e.await(seq); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if err := e.send(i, seq, remote); err != nil {
			return err
		}
	}
	unpin()
	if cfg.baseline {
		if cfg.transport == "shm" {
			return bareServe(conn, rd, cfg, total)
		}
		conn.SetReadDeadline(time.Time{})
		return echoBaseline(conn, rd, cfg.size, total)
	}
	// Wait for the client to finish reading its last reply before the
	// memory goes away.
	conn.SetReadDeadline(time.Now().Add(silence))
	rd.ReadString('\n')
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runClient(cfg config, server string) error {
	conn, err := net.DialTimeout("tcp", server, silence)
	if err != nil {
		return fmt.Errorf("side channel to server %s: %w", server, err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(silence))
	line, err := rd.ReadString('\n')
	if err != nil {
		return fmt.Errorf("server hello from %s: %w", server, err)
	}
	f := strings.Fields(line)
	if len(f) != 10 || f[0] != helloMagic {
		return fmt.Errorf("%s is not a verbs-lat server (said %q)", server, strings.TrimSpace(line))
	}
	// The server's run parameters win, so both ends agree.
	cfg.transport = f[1]
	if cfg.transport == "shm" {
		cfg.device = f[2]
	}
	var perr error
	atoi := func(s string) int {
		v, err := strconv.Atoi(s)
		if err != nil {
			perr = err
		}
		return v
	}
	cfg.size, cfg.iters, cfg.warmup = atoi(f[3]), atoi(f[4]), atoi(f[5])
	cfg.baseline = f[6] == "true"
	if perr != nil {
		return fmt.Errorf("server hello: %w", perr)
	}
	ep, remote, err := parseHello(f[7:])
	if err != nil {
		return err
	}
	e, err := newEnd(cfg, cfg.device)
	if err != nil {
		return err
	}
	defer e.close()
	if err := e.qp.Connect(ep, verbs.AccessAll); err != nil {
		return err
	}
	fmt.Fprintln(conn, e.hello())
	if l, err := rd.ReadString('\n'); err != nil || strings.TrimSpace(l) != "ready" {
		return fmt.Errorf("server did not get ready: %q %v", l, err)
	}
	conn.SetReadDeadline(time.Time{})

	rec := latency.New(time.Minute, 0)
	unpin := pin(cfg.mode)
	total := cfg.warmup + cfg.iters
	for i := 0; i < total; i++ {
		seq := seqOf(i)
		start := time.Now()
		if err := e.send(i, seq, remote); err != nil {
			return err
		}
		if err := e.await(seq); err != nil {
			return fmt.Errorf("round %d: %w", i, err)
		}
		if i >= cfg.warmup {
			rec.Record(time.Since(start) / 2)
		}
	}
	unpin()

	fmt.Printf("verbs-lat: transport=%s size=%d iters=%d poll=%s\n", cfg.transport, cfg.size, cfg.iters, cfg.mode)
	fmt.Printf("  one-sided WRITE, half round trip: %s\n", rec.Summary())
	if cfg.baseline {
		name, short := "plain Go TCP,     ", "plain-tcp"
		var base *latency.Recorder
		if cfg.transport == "shm" {
			name, short = "bare shared mem,  ", "bare-shm"
			base, err = barePing(conn, rd, cfg, total)
		} else {
			base, err = pingBaseline(conn, rd, cfg.size, total, cfg.warmup)
		}
		if err != nil {
			return fmt.Errorf("%s baseline: %w", short, err)
		}
		fmt.Printf("  %shalf round trip: %s\n", name, base.Summary())
		fmt.Printf("  p50 ratio %s/%s = %.2f\n", cfg.transport, short, float64(rec.Percentile(50))/float64(base.Percentile(50)))
	} else {
		fmt.Fprintln(conn, "done")
	}
	if cfg.hgrm != "" {
		if err := rec.WriteHgrm(cfg.hgrm); err != nil {
			return err
		}
	}
	fmt.Printf("verbs-lat transport=%s size=%d p50_ns=%d p99_ns=%d\n", cfg.transport, cfg.size, rec.Percentile(50), rec.Percentile(99))
	return nil
}

// pingBaseline times a plain TCP ping-pong of size-byte messages over the
// side channel, the socket path a soft NIC cannot beat.
func pingBaseline(conn net.Conn, rd *bufio.Reader, size, total, warmup int) (*latency.Recorder, error) {
	rec := latency.New(time.Minute, 0)
	buf := make([]byte, size)
	conn.SetDeadline(time.Now().Add(time.Duration(total) * silence))
	for i := 0; i < total; i++ {
		start := time.Now()
		if _, err := conn.Write(buf); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		if i >= warmup {
			rec.Record(time.Since(start) / 2)
		}
	}
	return rec, nil
}

func echoBaseline(conn net.Conn, rd *bufio.Reader, size, total int) error {
	buf := make([]byte, size)
	for i := 0; i < total; i++ {
		conn.SetDeadline(time.Now().Add(silence))
		if _, err := io.ReadFull(rd, buf); err != nil {
			return fmt.Errorf("tcp baseline round %d: %w", i, err)
		}
		if _, err := conn.Write(buf); err != nil {
			return fmt.Errorf("tcp baseline round %d: %w", i, err)
		}
	}
	return nil
}

// runLocal starts the server as a child process and runs the client here.
func runLocal(cfg config) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{
		"--transport", cfg.transport, "--size", strconv.Itoa(cfg.size),
		"--iters", strconv.Itoa(cfg.iters), "--warmup", strconv.Itoa(cfg.warmup),
		"--poll", cfg.mode.String(), "--oob", "127.0.0.1:0",
		"--baseline=" + strconv.FormatBool(cfg.baseline),
		"--retry-timeout", time.Duration(cfg.opts.retryTimeoutNS).String(),
	}
	if cfg.device != "" {
		args = append(args, "--device", cfg.device)
	}
	child := exec.Command(exe, args...)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("start server process: %w", err)
	}
	// Whatever happens here, the child goes too.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-stop; ok {
			child.Process.Kill()
			os.Exit(130)
		}
	}()
	defer func() {
		signal.Stop(stop)
		close(stop)
		// Let the server release its memory before it is forced to go.
		exited := make(chan struct{})
		go func() { child.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(silence):
			child.Process.Kill()
			<-exited
		}
	}()

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
				continue
			}
			fmt.Println(sc.Text())
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			return errors.New("server process exited before listening")
		}
		return runClient(cfg, a)
	case <-time.After(silence):
		return fmt.Errorf("server process did not listen within %v", silence)
	}
}
