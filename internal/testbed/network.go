package testbed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Network faults. Each returns an undo that puts the link back as it was;
// undo is idempotent, and Down undoes everything regardless, since the
// namespaces go. The kernel has no netem here, so loss is dropped by
// nftables' random numbers and a slow link is a token bucket (tbf):
// neither adds a fixed delay.

// Isolate takes host's link down: nothing reaches it or leaves it, from
// any host, until undo.
func (b *Bed) Isolate(host string) (undo func() error, err error) {
	inner, _, err := b.link(host)
	if err != nil {
		return nil, err
	}
	if err := ip("-n", b.ns[host], "link", "set", inner, "down"); err != nil {
		return nil, fmt.Errorf("testbed: isolate %s: %w", host, err)
	}
	return once(func() error {
		if err := ip("-n", b.ns[host], "link", "set", inner, "up"); err != nil {
			return fmt.Errorf("testbed: reconnect %s: %w", host, err)
		}
		// Bringing the link up again drops the default route with it.
		gw := b.gateway()
		if err := ip("-n", b.ns[host], "route", "replace", "default", "via", gw); err != nil {
			return fmt.Errorf("testbed: reconnect %s: %w", host, err)
		}
		return nil
	}), nil
}

// Cut partitions host from peers, both ways (a blackhole route to each on
// either side), while both still reach every other host: split a leader
// from its followers and leave its clients and the registry with it.
func (b *Bed) Cut(host string, peers ...string) (undo func() error, err error) {
	type route struct{ ns, to string }
	var added []route
	undoAll := func() error {
		var errs []error
		for _, r := range added {
			if err := ip("-n", r.ns, "route", "del", "blackhole", r.to+"/32"); err != nil {
				errs = append(errs, err)
			}
		}
		added = nil
		return errors.Join(errs...)
	}
	for _, p := range peers {
		if _, ok := b.ns[p]; !ok || p == host {
			undoAll()
			return nil, fmt.Errorf("testbed: cut %s from %q: not another host of the bed", host, p)
		}
		for _, r := range []route{{b.ns[host], b.Addr(p)}, {b.ns[p], b.Addr(host)}} {
			if err := ip("-n", r.ns, "route", "add", "blackhole", r.to+"/32"); err != nil {
				undoAll()
				return nil, fmt.Errorf("testbed: cut %s from %s: %w", host, p, err)
			}
			added = append(added, r)
		}
	}
	return once(undoAll), nil
}

// Loss drops percent of the packets host sends and of those it receives
// (nftables in its namespace, at random).
func (b *Bed) Loss(host string, percent int) (undo func() error, err error) {
	if percent <= 0 || percent > 100 {
		return nil, fmt.Errorf("testbed: loss of %d%%: want 1 to 100", percent)
	}
	ns, ok := b.ns[host]
	if !ok {
		return nil, fmt.Errorf("testbed: no host %q", host)
	}
	rules := fmt.Sprintf(`table inet gomuloss {
	chain in { type filter hook input priority 0; policy accept; numgen random mod 100 <= %[1]d drop; }
	chain out { type filter hook output priority 0; policy accept; numgen random mod 100 <= %[1]d drop; }
}
`, percent-1) // numgen's values are 0 to 99: "< 100" is out of its range
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testbed: loss on %s (nft): %v: %s", host, err, strings.TrimSpace(string(out)))
	}
	return once(func() error {
		if out, err := exec.Command("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "gomuloss").CombinedOutput(); err != nil {
			return fmt.Errorf("testbed: end loss on %s: %v: %s", host, err, strings.TrimSpace(string(out)))
		}
		return nil
	}), nil
}

// Slow limits host's link to rate (a tc rate such as "1mbit") in both
// directions, with a token bucket on each end of its veth.
func (b *Bed) Slow(host, rate string) (undo func() error, err error) {
	inner, outer, err := b.link(host)
	if err != nil {
		return nil, err
	}
	// A bucket of 32 kbit and a 100 ms queue: bursts of a few packets
	// pass, a stream is held to rate, and what waits longer is dropped.
	tbf := []string{"root", "tbf", "rate", rate, "burst", "32kbit", "latency", "100ms"}
	if err := tc(append([]string{"-n", b.ns[host], "qdisc", "add", "dev", inner}, tbf...)...); err != nil {
		return nil, fmt.Errorf("testbed: slow %s: %w", host, err)
	}
	if err := tc(append([]string{"qdisc", "add", "dev", outer}, tbf...)...); err != nil {
		tc("-n", b.ns[host], "qdisc", "del", "dev", inner, "root")
		return nil, fmt.Errorf("testbed: slow %s: %w", host, err)
	}
	return once(func() error {
		return errors.Join(
			tc("-n", b.ns[host], "qdisc", "del", "dev", inner, "root"),
			tc("qdisc", "del", "dev", outer, "root"))
	}), nil
}

// DialContext connects to addr from host: the socket is made in host's
// namespace (a socket stays in the namespace it was made in), so a
// program in the root namespace can be a client on any host.
func (b *Bed) DialContext(ctx context.Context, host, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := b.Do(host, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr) // the socket is made before it returns
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: dial %s from %s: %w", addr, host, err)
	}
	return c, nil
}

// Do runs f on a thread switched into host's network namespace: a socket
// f makes (a listener, a connection) stays in that namespace whoever uses
// it later. The namespace is a property of the thread, so f runs on a
// goroutine locked to it, which switches back afterwards; a thread that
// cannot switch back stays locked and ends with the goroutine.
func (b *Bed) Do(host string, f func() error) error {
	ns, ok := b.ns[host]
	if !ok {
		return fmt.Errorf("testbed: no host %q", host)
	}
	target, err := os.Open(filepath.Join("/var/run/netns", ns))
	if err != nil {
		return fmt.Errorf("testbed: host %s: %w", host, err)
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("setns back from %s: %w", ns, err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

func (b *Bed) gateway() string {
	a := b.addrs[b.spec.Hosts[0]].As4()
	a[3] = 1
	return strconv.Itoa(int(a[0])) + "." + strconv.Itoa(int(a[1])) + "." + strconv.Itoa(int(a[2])) + ".1"
}

func tc(args ...string) error {
	if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// once makes undo run at most once; later calls return its first error.
func once(undo func() error) func() error {
	var done bool
	var err error
	return func() error {
		if !done {
			done, err = true, undo()
		}
		return err
	}
}
