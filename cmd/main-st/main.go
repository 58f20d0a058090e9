// Command main-st is gomu's standalone throughput benchmark, after Mu's
// main-st: every replica of a cluster runs it, the leader proposes --count
// commands of <payload_size> random bytes from <nr_outstanding> concurrent
// proposers, and reports how long they took to commit.
//
//	main-st [flags] <process_id> <payload_size> <nr_outstanding>
//	main-st --local [flags] <payload_size> <nr_outstanding>
//
// Replicas find each other through the registry (DORY_REGISTRY_IP or
// --registry) and know the cluster from IDS or --ids (default 1,2,3). The
// lowest id leads. On the leader, the output is Mu's line and a human one:
//
//	Received <commands> in <nanoseconds> ns
//	main-st: 1000000 commands of 64 B in 1.52 s: 657894 commands/s, 42.1 MB/s (shm, 3 replicas, 1 outstanding)
//
// where a command counts once it is committed by a majority and applied on
// the leader, and MB/s counts payload bytes (10^6). Followers print how many
// commands they applied and exit on their own once the leader finishes: the
// leader ends the run with a done command that every replica's state machine
// sees (see internal/stbench).
//
// --local starts an embedded registry and every replica as a process of its
// own on this machine, prints the leader's output, shows progress on stderr
// every second, and cleans up processes, shm files and fifos on exit,
// Ctrl-C included.
package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/internal/stbench"
	_ "github.com/gomu-rdma/gomu/verbs/providers"
)

func main() {
	app := &cli.App{
		Name:      "main-st",
		Usage:     "standalone replication throughput benchmark",
		ArgsUsage: "<process_id> <payload_size> <nr_outstanding>",
		Flags:     stbench.Flags(),
		Action:    run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "main-st:", err)
		os.Exit(1)
	}
}

func run(c *cli.Context) error {
	o, err := stbench.Parse(c)
	if err != nil {
		return err
	}
	if o.Local {
		return stbench.Local(c.Context, "main-st", o, nil, os.Stdout, os.Stderr)
	}
	res, err := stbench.Run(c.Context, o, false, os.Stderr)
	if err != nil {
		return err
	}
	if !res.Leader {
		fmt.Printf("replica %d: follower, applied %d commands\n", o.ID, res.Commands)
		return nil
	}
	if n := res.Retries.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "note: %d proposals repeated after the leader stepped down and back\n", n)
	}
	ns := res.Elapsed.Nanoseconds()
	secs := res.Elapsed.Seconds()
	fmt.Printf("Received %d in %d ns\n", res.Commands, ns)
	fmt.Printf("main-st: %d commands of %d B in %.3g s: %.0f commands/s, %.1f MB/s (%s, %d replicas, %d outstanding)\n",
		res.Commands, o.Payload, secs, float64(res.Commands)/secs,
		float64(res.Commands)*float64(o.Payload)/secs/1e6, o.Transport, len(o.IDs), o.Outstanding)
	return nil
}
