package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/internal/benchproc"
)

// benchTarget starts target's server, runs every tool against it, and
// stops it. A tool that fails is a Result with Err, and the next one runs;
// the error returned is one that ended the target early (a server that did
// not start or exited).
func benchTarget(ctx context.Context, target string, o options, dir string, progress io.Writer) ([]Result, error) {
	var (
		bin   string
		args  []string
		port  int
		ports []int
	)
	mem := strconv.Itoa(o.memoryMB)
	switch target {
	case targetReplicated:
		port = o.base
		ports = []int{port, port + 1, port + 2}
		bin, args = o.server, []string{"--local", "3", "-p", strconv.Itoa(port), "-m", mem}
	case targetStandalone:
		port = o.base + 10
		ports = []int{port}
		bin, args = o.server, []string{"--standalone", "-p", strconv.Itoa(port), "-m", mem}
	case targetMemcached:
		port = o.base + 20
		ports = []int{port}
		bin, args = o.memcached, []string{"-p", strconv.Itoa(port), "-U", "0", "-l", "127.0.0.1", "-m", mem}
		if os.Geteuid() == 0 {
			// memcached refuses to run as root without a user to become.
			args = append(args, "-u", "nobody")
		}
	}
	if err := benchproc.PortsFree(ports...); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench-memcached: starting %s: %s\n", target, benchproc.Quote(bin, args...))
	srv, err := benchproc.Start(target, bin, args...)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	t0 := time.Now()
	// Before every run, find the replica that serves writes: under load a
	// cluster may elect another leader, and memcslap and memcaslap talk to
	// the one server they are given. A leader change during a run fails
	// that run.
	leader := port
	serving := func() (int, error) {
		found := 0
		err := srv.WaitReady(ctx, portList(ports), o.startupTimeout, func(_ string, deadline time.Time) error {
			var last error
			for _, p := range ports {
				if last = probe(fmt.Sprintf("127.0.0.1:%d", p), deadline); last == nil {
					found = p
					return nil
				}
			}
			return last
		})
		if err == nil && found != leader {
			fmt.Fprintf(progress, "bench-memcached: %s: now served on port %d (was %d)\n", target, found, leader)
			leader = found
		}
		return found, err
	}
	first, err := serving()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "bench-memcached: %s serves on port %d after %v\n", target, first, time.Since(t0).Round(time.Millisecond))

	type step struct {
		tool, test string
		run        func(port int) Result
	}
	var (
		steps     []step
		binaryErr error // why the server does not serve the binary protocol
		probed    bool
	)
	for _, t := range o.tests {
		steps = append(steps, step{toolMemcslap, t, func(port int) Result {
			if strings.HasPrefix(t, "bin-") {
				// A server that drops binary requests makes memcslap wait
				// out a timeout per request: find out first.
				if !probed {
					binaryErr, probed = probeBinary(fmt.Sprintf("127.0.0.1:%d", port)), true
				}
				if binaryErr != nil {
					return Result{Err: fmt.Errorf("binary protocol: %w", binaryErr)}
				}
			}
			return runMemcslap(ctx, o, port, t)
		}})
	}
	if o.memcaslap != "" {
		steps = append(steps, step{toolMemcaslap, memcaslapTest, func(port int) Result { return runMemcaslap(ctx, o, port, dir) }})
	}
	steps = append(steps,
		step{toolPuts, "set", func(port int) Result {
			return runLatency(ctx, o, port, filepath.Join(dir, target+"-puts.txt"), "memcached-puts-only", o.putsOnly)
		}},
		step{toolGets, "get", func(port int) Result {
			return runLatency(ctx, o, port, filepath.Join(dir, target+"-gets.txt"), "memcached-gets-only", o.getsOnly)
		}})
	var out []Result
	for _, s := range steps {
		port, err := serving()
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			return out, fmt.Errorf("before %s %s: %w", s.tool, s.test, err)
		}
		fmt.Fprintf(progress, "bench-memcached: %s: %s %s\n", target, s.tool, s.test)
		r := s.run(port)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		r.Target, r.Tool, r.Test = target, s.tool, s.test
		// A server that crashed under load must not pass for a fast one,
		// and leaves nothing to measure.
		if err := srv.Exited(); err != nil {
			r.Err = err
			return append(out, r), fmt.Errorf("stopped after %s %s", s.tool, s.test)
		}
		if r.Err != nil {
			fmt.Fprintf(progress, "bench-memcached: %s: %s %s failed: %v\n", target, s.tool, s.test, r.Err)
		} else {
			fmt.Fprintf(progress, "bench-memcached: %s: %s %s: %.0f ops/s\n", target, s.tool, s.test, r.Ops)
		}
		out = append(out, r)
	}
	return out, nil
}

// portList names ports for messages: 127.0.0.1:P or 127.0.0.1:{P,Q,R}.
func portList(ports []int) string {
	if len(ports) == 1 {
		return fmt.Sprintf("127.0.0.1:%d", ports[0])
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return "127.0.0.1:{" + strings.Join(s, ",") + "}"
}

// probeKey is the key the readiness probe stores.
const probeKey = "bench-memcached:probe"

// probe checks once that addr answers version with VERSION and stores a
// key: for a cluster, that it is the leader and replicates (a follower
// answers a set with SERVER_ERROR gomu: not the leader).
func probe(addr string, deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", addr, benchproc.DialTimeout(deadline))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(conn)
	do := func(req string) (string, error) {
		if _, err := io.WriteString(conn, req); err != nil {
			return "", err
		}
		line, err := br.ReadString('\n')
		return strings.TrimRight(line, "\r\n"), err
	}
	r, err := do("version\r\n")
	if err != nil {
		return fmt.Errorf("version: %w", err)
	}
	if !strings.HasPrefix(r, "VERSION ") {
		return fmt.Errorf("version answered %q", truncate(r, 200))
	}
	r, err = do("set " + probeKey + " 0 0 2\r\nok\r\n")
	if err != nil {
		return fmt.Errorf("set: %w", err)
	}
	if r != "STORED" {
		return fmt.Errorf("not serving writes yet: set answered %q", truncate(r, 200))
	}
	return nil
}

// probeBinary checks that addr answers a binary version and a binary set.
func probeBinary(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	do := func(name string, opcode byte, extras, key, value []byte) error {
		req := make([]byte, 24, 24+len(extras)+len(key)+len(value))
		req[0], req[1] = 0x80, opcode
		binary.BigEndian.PutUint16(req[2:], uint16(len(key)))
		req[4] = byte(len(extras))
		binary.BigEndian.PutUint32(req[8:], uint32(len(extras)+len(key)+len(value)))
		req = append(append(append(req, extras...), key...), value...)
		if _, err := conn.Write(req); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		var h [24]byte
		if _, err := io.ReadFull(conn, h[:]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		body := make([]byte, min(binary.BigEndian.Uint32(h[8:]), 1<<16))
		if _, err := io.ReadFull(conn, body); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if h[0] != 0x81 || h[1] != opcode {
			return fmt.Errorf("%s answered magic %#x opcode %#x", name, h[0], h[1])
		}
		if st := binary.BigEndian.Uint16(h[6:]); st != 0 {
			return fmt.Errorf("%s answered status %#x %q", name, st, truncate(string(body), 200))
		}
		return nil
	}
	if err := do("version", 0x0b, nil, nil, nil); err != nil {
		return err
	}
	return do("set", 0x01, make([]byte, 8), []byte(probeKey), []byte("ok"))
}

// runMemcslap runs memcslap's test (set, get, bin-set, bin-get) at its
// default concurrency. memcslap exits 0 whatever happened; "Fatal error"
// lines on its standard error and short counts fail the run.
func runMemcslap(ctx context.Context, o options, port int, test string) Result {
	args := []string{fmt.Sprintf("--servers=127.0.0.1:%d", port), fmt.Sprintf("--execute-number=%d", o.requests)}
	name, binary := strings.CutPrefix(test, "bin-")
	if binary {
		args = append(args, "--binary")
	}
	args = append(args, "--test="+name)
	out, errOut, err := benchproc.Run(ctx, o.benchTimeout, "", o.memcslap, args...)
	if err != nil {
		return Result{Err: err}
	}
	fail := func(err error) Result {
		return Result{Err: fmt.Errorf("%s: %w\n%s", benchproc.Quote(o.memcslap, args...), err, truncate(errOut, 2000))}
	}
	if first, n := errorLines(errOut); n > 0 {
		return fail(fmt.Errorf("%d errors, the first: %s", n, first))
	}
	run, err := ParseMemcslap(string(out))
	if err != nil {
		return fail(err)
	}
	ops, misses, err := run.Rate(o.requests)
	if err != nil {
		return fail(err)
	}
	if misses > 0 {
		fmt.Fprintf(os.Stderr, "bench-memcached: memcslap %s: %d of %d gets missed\n", test, misses, o.requests*run.Threads)
	}
	return Result{Ops: ops}
}

// errorLines counts the lines of s that report an error or failure, and
// returns the first.
func errorLines(s string) (first string, n int) {
	for _, l := range strings.Split(s, "\n") {
		low := strings.ToLower(l)
		if strings.Contains(low, "error") || strings.Contains(low, "fail") {
			if n == 0 {
				first = strings.TrimSpace(l)
			}
			n++
		}
	}
	return first, n
}

// memcaslapConfig makes memcaslap's keys and values the latency clients'
// sizes, and keeps its default mix of 9 gets to 1 set.
const memcaslapConfig = `key
16 16 1
value
32 32 1
cmd
0 0.1
1 0.9
`

// runMemcaslap runs memcaslap for --memcaslap-time with its default
// threads and concurrency.
func runMemcaslap(ctx context.Context, o options, port int, dir string) Result {
	cfg := filepath.Join(dir, "memcaslap.cnf")
	if err := os.WriteFile(cfg, []byte(memcaslapConfig), 0o644); err != nil {
		return Result{Err: err}
	}
	secs := int(o.memcaslapTime.Round(time.Second) / time.Second)
	args := []string{"-s", fmt.Sprintf("127.0.0.1:%d", port), "-t", fmt.Sprintf("%ds", secs), "-F", cfg}
	out, errOut, err := benchproc.Run(ctx, o.benchTimeout, dir, o.memcaslap, args...)
	if err != nil {
		return Result{Err: err}
	}
	run, err := ParseMemcaslap(string(out) + "\n" + errOut)
	if err == nil && run.Errors > 0 {
		err = fmt.Errorf("%d unexpected replies, the first: %s", run.Errors, run.FirstError)
	}
	if err != nil {
		return Result{Err: fmt.Errorf("%s: %w", benchproc.Quote(o.memcaslap, args...), err)}
	}
	if run.GetMisses > 0 {
		fmt.Fprintf(os.Stderr, "bench-memcached: memcaslap: %d of %d gets missed\n", run.GetMisses, run.Gets)
	}
	return Result{Ops: run.TPS}
}

// runLatency runs a latency client with 16 B keys and 32 B values.
func runLatency(ctx context.Context, o options, port int, outFile, name, bin string) Result {
	args := []string{"--requests", strconv.Itoa(o.latRequests), "--out", outFile, "16", "32", "127.0.0.1", strconv.Itoa(port)}
	out, _, err := benchproc.Run(ctx, o.benchTimeout, "", bin, args...)
	if err != nil {
		return Result{Err: err}
	}
	run, err := ParseLatency(name, string(out))
	if err != nil {
		return Result{Err: fmt.Errorf("%s: %w", benchproc.Quote(bin, args...), err)}
	}
	return Result{Ops: run.Rate, Lat: true, P50us: run.P50 / 1000, P99us: run.P99 / 1000, P999us: run.P999 / 1000}
}
