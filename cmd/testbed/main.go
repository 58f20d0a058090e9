// Command testbed turns this Linux machine into several hosts for gomu:
// one network namespace per host, all on one bridge, each with its own
// address, so that replicas, the registry and clients run with the flags
// they would use across real hosts (see internal/testbed). It needs root.
//
//	testbed up [--name gomu] [--hosts reg,r1,r2,r3,client] [--subnet 10.213.0.0/24]
//	testbed down [--name gomu]
//	testbed run [--name …] [--hosts …] -- COMMAND [ARGS…]
//
// up prints each host's address and how to run a program on it
// (ip netns exec <name>-<host> …); down removes the bed, and whatever a
// crashed run of the same name left. run brings a bed up, runs COMMAND in
// the root namespace with TESTBED_<HOST>=<address> and TESTBED_NS_<HOST>=
// <namespace> in its environment, and takes the bed down when COMMAND
// exits, fails, or the run is interrupted (SIGINT, SIGTERM).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/gomu-rdma/gomu/internal/testbed"
)

func main() {
	name := &cli.StringFlag{Name: "name", Value: "gomu", Usage: "the bed's name, prefix of its namespaces and links (1 to 6 of [a-z0-9])"}
	hosts := &cli.StringFlag{Name: "hosts", Value: "reg,r1,r2,r3,client", Usage: "comma-separated host names"}
	subnet := &cli.StringFlag{Name: "subnet", Value: "10.213.0.0/24", Usage: "the bed's IPv4 /24"}
	app := &cli.App{
		Name:            "testbed",
		Usage:           "several hosts on one machine, as network namespaces on a bridge",
		HideHelpCommand: true,
		Commands: []*cli.Command{
			{Name: "up", Usage: "create the bed and print its hosts", Flags: []cli.Flag{name, hosts, subnet}, Action: func(c *cli.Context) error {
				b, err := up(c)
				if err != nil {
					return err
				}
				for _, h := range b.Hosts() {
					fmt.Printf("%-8s %-15s ip netns exec %s …\n", h, b.Addr(h), b.Namespace(h))
				}
				return nil
			}},
			{Name: "down", Usage: "remove the bed (and what a crashed run of that name left); --hosts and --subnet are accepted and unused", Flags: []cli.Flag{name, hosts, subnet}, Action: func(c *cli.Context) error {
				if err := root(); err != nil {
					return err
				}
				return testbed.Sweep(c.String("name"))
			}},
			{Name: "run", Usage: "bring a bed up, run a command beside it, take it down", ArgsUsage: "-- COMMAND [ARGS…]", Flags: []cli.Flag{name, hosts, subnet}, Action: run},
		},
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "testbed:", err)
		os.Exit(1)
	}
}

func root() error {
	if !testbed.Root() {
		return errors.New("network namespaces need root: run it with sudo")
	}
	return nil
}

func up(c *cli.Context) (*testbed.Bed, error) {
	if err := root(); err != nil {
		return nil, err
	}
	return testbed.Up(testbed.Spec{Name: c.String("name"), Hosts: strings.Split(c.String("hosts"), ","), Subnet: c.String("subnet")})
}

func run(c *cli.Context) error {
	if c.NArg() == 0 {
		return errors.New("run: no command (testbed run -- COMMAND [ARGS…])")
	}
	// Signals are caught before the bed exists, so that no interruption
	// can leave it behind.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	b, err := up(c)
	if err != nil {
		return err
	}
	defer b.Down()
	cmd := exec.Command(c.Args().First(), c.Args().Tail()...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	for _, h := range b.Hosts() {
		v := strings.ToUpper(strings.ReplaceAll(h, "-", "_"))
		cmd.Env = append(cmd.Env, "TESTBED_"+v+"="+b.Addr(h), "TESTBED_NS_"+v+"="+b.Namespace(h))
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("run: %s: %w", c.Args().First(), err)
		}
		return nil
	case s := <-sigs:
		cmd.Process.Signal(s)
		<-done
		return fmt.Errorf("run: interrupted by %v; the bed is down", s)
	}
}
