package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"

	"github.com/gomu-rdma/gomu/internal/testbed"
)

// ErrNeedsBed marks a network fault asked of the local environment: its
// hosts share one loopback, so there is no link to cut, drop or slow.
var ErrNeedsBed = errors.New("needs the netns test bed (--env netns)")

// Env is where a run's processes live: replica hosts, a registry host and
// a client host, each with an address, a way to start a program there and
// to dial from the client host, and on the test bed the network between
// them.
type Env struct {
	// Kind is "local" (every host is this machine, 127.0.0.1) or "netns"
	// (one network namespace per host, see internal/testbed).
	Kind string
	// Replicas are the replica hosts' names, Registry and Client the
	// registry's and the clients' host.
	Replicas         []string
	Registry, Client string

	bed *testbed.Bed
}

// LocalEnv is n replica hosts that are all this machine.
func LocalEnv(n int) *Env {
	e := &Env{Kind: "local", Registry: "reg", Client: "client"}
	for i := range n {
		e.Replicas = append(e.Replicas, fmt.Sprintf("r%d", i+1))
	}
	return e
}

// BedEnv brings up a test bed named name (1 to 6 of [a-z0-9]) on subnet
// (an IPv4 /24) with n replica hosts r1…rn, a registry host and a client
// host. Close takes it down.
func BedEnv(name, subnet string, n int) (*Env, error) {
	e := LocalEnv(n)
	e.Kind = "netns"
	hosts := append([]string{e.Registry}, e.Replicas...)
	b, err := testbed.Up(testbed.Spec{Name: name, Hosts: append(hosts, e.Client), Subnet: subnet})
	if err != nil {
		return nil, err
	}
	e.bed = b
	return e, nil
}

// Networked reports whether the hosts have links of their own (network
// faults apply).
func (e *Env) Networked() bool { return e.bed != nil }

// Addr is host's IP address.
func (e *Env) Addr(host string) string {
	if e.bed == nil {
		return "127.0.0.1"
	}
	return e.bed.Addr(host)
}

// Command is name with args, to be run on host.
func (e *Env) Command(host, name string, args ...string) *exec.Cmd {
	if e.bed == nil {
		return exec.Command(name, args...)
	}
	return e.bed.Command(host, name, args...)
}

// Dial connects from the client host.
func (e *Env) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if e.bed == nil {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	return e.bed.DialContext(ctx, e.Client, network, addr)
}

// Isolate cuts host off from every other host.
func (e *Env) Isolate(host string) (func() error, error) {
	if e.bed == nil {
		return nil, ErrNeedsBed
	}
	return e.bed.Isolate(host)
}

// Cut partitions host from peers (both still reach the others).
func (e *Env) Cut(host string, peers []string) (func() error, error) {
	if e.bed == nil {
		return nil, ErrNeedsBed
	}
	return e.bed.Cut(host, peers...)
}

// Loss drops percent of host's packets each way.
func (e *Env) Loss(host string, percent int) (func() error, error) {
	if e.bed == nil {
		return nil, ErrNeedsBed
	}
	return e.bed.Loss(host, percent)
}

// Slow limits host's link to rate each way.
func (e *Env) Slow(host, rate string) (func() error, error) {
	if e.bed == nil {
		return nil, ErrNeedsBed
	}
	return e.bed.Slow(host, rate)
}

// Close takes a test bed down.
func (e *Env) Close() error {
	if e.bed == nil {
		return nil
	}
	return e.bed.Down()
}

// String names the environment and its hosts.
func (e *Env) String() string {
	if e.bed == nil {
		return fmt.Sprintf("local (%d replicas on 127.0.0.1)", len(e.Replicas))
	}
	var hs []string
	for _, h := range append(append([]string{e.Registry}, e.Replicas...), e.Client) {
		hs = append(hs, h+"="+e.Addr(h))
	}
	return "netns (" + strings.Join(hs, " ") + ")"
}
