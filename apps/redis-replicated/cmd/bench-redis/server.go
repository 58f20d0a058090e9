package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/internal/benchproc"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// probe checks PING and the replication role once.
func probe(addr string, deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", addr, benchproc.DialTimeout(deadline))
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	br := bufio.NewReader(conn)
	do := func(args ...string) (string, error) {
		b := make([][]byte, len(args))
		for i, a := range args {
			b[i] = []byte(a)
		}
		if _, err := conn.Write(resp.AppendCommand(nil, b...)); err != nil {
			return "", err
		}
		r, err := resp.ReadReply(br, nil, 1<<20)
		return string(r), err
	}
	r, err := do("PING")
	if err != nil {
		return fmt.Errorf("PING: %w", err)
	}
	if r != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", r)
	}
	r, err = do("INFO", "replication")
	if err != nil {
		return fmt.Errorf("INFO replication: %w", err)
	}
	if !strings.Contains(r, "role:master") {
		return fmt.Errorf("not the leader yet: INFO replication answered %q", truncate(r, 200))
	}
	return nil
}

// runBenchmark runs redis-benchmark --csv against addr in one setting and
// returns its rows. The run has its own process group and is killed with
// ctx (SIGINT, SIGTERM, --bench-timeout).
func runBenchmark(ctx context.Context, bin string, port int, s Setting, o options) ([]Row, error) {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "set,get",
		"-n", strconv.Itoa(o.requests), "-r", strconv.Itoa(o.keyspace), "-d", strconv.Itoa(o.dataSize),
		"-c", strconv.Itoa(s.Clients), "-P", strconv.Itoa(s.Pipeline), "--csv"}
	out, errOut, err := benchproc.Run(ctx, o.benchTimeout, "", bin, args...)
	if err != nil {
		return nil, err
	}
	rows, err := ParseCSV(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, errOut)
	}
	return rows, nil
}
