// Command redis-server-replicated is a Redis-protocol server whose keyspace
// is replicated by gomu: Mu's Redis showcase, as a real Redis 7-compatible
// server (see apps/redis-replicated/internal/server for the roles, the
// commands and the differences from Redis).
//
//	redis-server-replicated [flags]                 one replica (SID, IDS, DORY_REGISTRY_IP)
//	redis-server-replicated --local 3 --port 6379   a 3-replica cluster on this machine
//	redis-server-replicated --standalone            no replication: the baseline
//
// Each replica listens on --port; with --local N, replica i listens on
// port+i-1 (replica 1 starts as leader) around an embedded registry, every
// replica a separate process on the shm provider, all cleaned up on Ctrl-C.
//
// At start a replica prints its PID ("redis-server-replicated pid <pid>")
// and, once serving, its address and role ("listening on <addr> as
// <role>"); a follower prints "Reading pump started" when its replayer
// runs (again whenever it becomes a follower). SIGUSR1 writes dump-<SID>.txt
// in the working directory, one line per proposal this replica replicated as
// leader since start, the ns it took (Propose call to commit), and prints
// their percentile summary on stderr. SIGTERM and SIGINT shut down cleanly.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/server"
	"github.com/gomu-rdma/gomu/internal/cluster"
	"github.com/gomu-rdma/gomu/internal/replicaproc"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

func main() {
	app := &cli.App{
		Name:  "redis-server-replicated",
		Usage: "Redis-protocol server replicated by gomu",
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "port", Value: 6379, Usage: "client port (with --local: the first replica's; replica i uses port+i-1)"},
			&cli.StringFlag{Name: "bind", Value: "127.0.0.1", Usage: "client listen address"},
			&cli.IntFlag{Name: "procs", Usage: "GOMAXPROCS of each replica process (0: Go's default, every core; with --local: the cores divided among the replicas, at least 1)"},
			&cli.BoolFlag{Name: "verbose", Usage: "log the engine's role changes on stderr"},
			&cli.StringFlag{Name: "appendonly", Value: "no", Usage: "yes: keep an append-only file of the writes applied (standalone: loaded at start if it exists)"},
			&cli.StringFlag{Name: "dir", Usage: "directory of the append-only file and the RDB file (default: the working directory)"},
			&cli.StringFlag{Name: "dbfilename", Value: "dump.rdb", Usage: "RDB file name: SAVE, BGSAVE and SHUTDOWN SAVE write it, a standalone server with appendonly no loads it at start (with --local: replica i's gets -i before its extension)"},
			&cli.StringFlag{Name: "appendfilename", Value: "appendonly.aof", Usage: "append-only file name (with --local: replica i's gets -i before its extension)"},
			&cli.StringFlag{Name: "appendfsync", Value: "everysec", Usage: "append-only file fsync policy: always, everysec or no"},
		}, replicaproc.Flags(replicaproc.Defaults{
			Cluster: "redis", Ring: 16 << 20, MaxBatch: 1 << 20,
			RingUsage:     "log ring size in bytes",
			MaxBatchUsage: "largest log entry in bytes: bounds one proposal (a pipelined batch of writes, a transaction)",
		})...),
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "redis-server-replicated:", err)
		os.Exit(1)
	}
}

// options are the checked flags: the replicated servers' common ones and
// this server's.
type options struct {
	replicaproc.Options
	port    int
	bind    string
	procs   int
	verbose bool
	aof     server.AOFOptions
	rdb     server.RDBOptions
}

func parse(c *cli.Context) (options, error) {
	ro, err := replicaproc.Parse(c)
	o := options{Options: ro, port: c.Int("port"), bind: c.String("bind"), procs: c.Int("procs"), verbose: c.Bool("verbose"),
		aof: server.AOFOptions{Dir: c.String("dir"), Filename: c.String("appendfilename"), Fsync: c.String("appendfsync"),
			Enable: c.String("appendonly") == "yes"},
		rdb: server.RDBOptions{Filename: c.String("dbfilename")}}
	if err != nil {
		return o, err
	}
	switch {
	case c.String("appendonly") != "yes" && c.String("appendonly") != "no":
		return o, fmt.Errorf("--appendonly %q: want yes or no", c.String("appendonly"))
	case o.aof.Fsync != "always" && o.aof.Fsync != "everysec" && o.aof.Fsync != "no":
		return o, fmt.Errorf("--appendfsync %q: want always, everysec or no", o.aof.Fsync)
	case o.aof.Filename == "" || strings.ContainsRune(o.aof.Filename, '/'):
		return o, fmt.Errorf("--appendfilename %q: want a file name, without a directory (see --dir)", o.aof.Filename)
	case o.rdb.Filename == "" || strings.ContainsRune(o.rdb.Filename, '/'):
		return o, fmt.Errorf("--dbfilename %q: want a file name, without a directory (see --dir)", o.rdb.Filename)
	case o.port < 0 || o.port+max(o.Local, 1)-1 > 65535:
		return o, fmt.Errorf("--port %d out of range", o.port)
	case o.procs < 0:
		return o, fmt.Errorf("--procs %d: want a count of Ps (0: Go's default)", o.procs)
	}
	return o, o.Check()
}

func run(c *cli.Context) error {
	o, err := parse(c)
	if err != nil {
		return err
	}
	if o.Local > 0 {
		return runLocal(c.Context, o)
	}
	if o.procs > 0 {
		runtime.GOMAXPROCS(o.procs)
	}
	proc, err := replicaproc.Begin("redis-server-replicated", o.CPUProfile)
	if err != nil {
		return err
	}
	defer proc.End()
	logger := replicaproc.Logger(o.verbose)
	m := server.NewMachine()
	// A standalone server loads its file; a replica gets its state from
	// the cluster (state transfer), and its file starts anew.
	o.aof.Load, o.aof.Logger = o.Standalone, logger
	if err := m.StartAOF(o.aof); err != nil {
		return err
	}
	defer m.CloseAOF()
	// The RDB file likewise, unless the append-only file is the state.
	o.rdb.Load, o.rdb.Logger = o.Standalone, logger
	if err := m.StartRDB(o.rdb); err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Addr:               net.JoinHostPort(o.bind, strconv.Itoa(o.port)),
		Machine:            m,
		MaxProposal:        o.MaxBatch - 64,
		Timeout:            o.Timeout,
		Replication:        replicaproc.DumpRecorder(),
		StaleFollowerReads: o.StaleReads,
		Logger:             logger,
	})
	if err != nil {
		return err
	}
	return proc.Serve(srv, o.Consensus(logger), m)
}

// runLocal starts the whole cluster on this machine.
func runLocal(ctx context.Context, o options) error {
	procs := replicaproc.LocalProcs(o.procs, len(o.IDs))
	return cluster.Run(ctx, cluster.Spec{
		Name:   "redis-server-replicated",
		IDs:    o.IDs,
		Leader: o.IDs[0],
		Serve:  true,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Args: func(n cluster.Node) []string {
			return append(o.LocalArgs(n),
				"--port", strconv.Itoa(o.port+n.ID-1), "--bind", o.bind,
				"--procs", strconv.Itoa(procs), "--verbose="+strconv.FormatBool(o.verbose),
				"--appendonly", yesNo(o.aof.Enable), "--dir", o.aof.Dir, "--appendfsync", o.aof.Fsync,
				"--appendfilename", localAOFName(o.aof.Filename, n.ID), "--dbfilename", localAOFName(o.rdb.Filename, n.ID))
		},
	})
}

// localAOFName is replica id's append-only (or RDB) file name in a --local
// cluster, whose replicas share a directory: appendonly.aof becomes
// appendonly-2.aof, dump.rdb dump-2.rdb.
func localAOFName(name string, id int) string {
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "-" + strconv.Itoa(id) + ext
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
