// Package testbed makes several "hosts" out of one Linux machine: one
// network namespace per host, each joined to a bridge in the root
// namespace by a veth pair and given its own address, so that gomu's
// replicas, its registry and its clients run with the same binaries and
// flags as across real hosts (tcp transport, real addresses, --advertise),
// and faults can later be put between them. It needs root (CAP_NET_ADMIN)
// and the ip tool.
//
// Every name it creates carries the bed's name, so Sweep can remove what a
// crashed run left behind; Down removes everything Up made, and Up removes
// a previous bed of the same name first. Only the subnet the Spec names is
// ever used.
package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// Spec describes a bed.
type Spec struct {
	// Name prefixes every namespace and link: 1 to 6 of [a-z0-9], so that
	// "<name>br" and "<name>-<i>h" fit Linux's 15-byte interface names.
	Name string
	// Hosts are the hosts' names ([a-z0-9-], unique); host i gets
	// Subnet's address i+2 (the bridge has i+1 = .1).
	Hosts []string
	// Subnet is the bed's IPv4 /24 (default 10.213.0.0/24).
	Subnet string
}

// Bed is a running test bed.
type Bed struct {
	spec  Spec
	addrs map[string]netip.Addr
	ns    map[string]string
	up    bool
}

var (
	validName = regexp.MustCompile(`^[a-z0-9]{1,6}$`)
	validHost = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
)

// Up creates the bed: a bridge, and per host a namespace with loopback up
// and a veth to the bridge carrying the host's address. On failure it
// removes what it made.
func Up(spec Spec) (_ *Bed, err error) {
	if !validName.MatchString(spec.Name) {
		return nil, fmt.Errorf("testbed: name %q: want 1 to 6 of [a-z0-9]", spec.Name)
	}
	if spec.Subnet == "" {
		spec.Subnet = "10.213.0.0/24"
	}
	prefix, err := netip.ParsePrefix(spec.Subnet)
	if err != nil || !prefix.Addr().Is4() || prefix.Bits() != 24 {
		return nil, fmt.Errorf("testbed: subnet %q: want an IPv4 /24", spec.Subnet)
	}
	if len(spec.Hosts) == 0 || len(spec.Hosts) > 200 {
		return nil, fmt.Errorf("testbed: %d hosts: want 1 to 200", len(spec.Hosts))
	}
	b := &Bed{spec: spec, addrs: map[string]netip.Addr{}, ns: map[string]string{}}
	base := prefix.Masked().Addr().As4()
	for i, h := range spec.Hosts {
		if !validHost.MatchString(h) {
			return nil, fmt.Errorf("testbed: host name %q: want [a-z0-9-]", h)
		}
		if _, dup := b.addrs[h]; dup {
			return nil, fmt.Errorf("testbed: host %q given twice", h)
		}
		a := base
		a[3] = byte(i + 2)
		b.addrs[h] = netip.AddrFrom4(a)
		b.ns[h] = fmt.Sprintf("%s-%s", spec.Name, h)
	}
	if err := Sweep(spec.Name); err != nil {
		return nil, err
	}
	b.up = true
	defer func() {
		if err != nil {
			b.Down()
		}
	}()
	gw := base
	gw[3] = 1
	br := b.bridge()
	if err := ip("link", "add", br, "type", "bridge"); err != nil {
		return nil, err
	}
	if err := ip("addr", "add", netip.PrefixFrom(netip.AddrFrom4(gw), 24).String(), "dev", br); err != nil {
		return nil, err
	}
	if err := ip("link", "set", br, "up"); err != nil {
		return nil, err
	}
	for i, h := range spec.Hosts {
		ns, outer, inner := b.ns[h], fmt.Sprintf("%s-%dh", spec.Name, i), fmt.Sprintf("%s-%dn", spec.Name, i)
		steps := [][]string{
			{"netns", "add", ns},
			{"link", "add", outer, "type", "veth", "peer", "name", inner},
			{"link", "set", inner, "netns", ns},
			{"link", "set", outer, "master", br},
			{"link", "set", outer, "up"},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", ns, "addr", "add", netip.PrefixFrom(b.addrs[h], 24).String(), "dev", inner},
			{"-n", ns, "link", "set", inner, "up"},
			{"-n", ns, "route", "add", "default", "via", netip.AddrFrom4(gw).String()},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				return nil, fmt.Errorf("testbed: host %s: %w", h, err)
			}
		}
	}
	return b, nil
}

func (b *Bed) bridge() string { return b.spec.Name + "br" }

// Hosts are the bed's hosts, in the Spec's order.
func (b *Bed) Hosts() []string { return append([]string(nil), b.spec.Hosts...) }

// Addr is host's IPv4 address.
func (b *Bed) Addr(host string) string { return b.addrs[host].String() }

// Namespace is host's network namespace.
func (b *Bed) Namespace(host string) string { return b.ns[host] }

// Command is name with args run on host (in its namespace).
func (b *Bed) Command(host, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", b.ns[host], name}, args...)...)
}

// Down removes the bed: it kills whatever still runs in its namespaces
// (a daemon that dropped root, such as memcached run as nobody, outlives
// a parent killed with SIGKILL), then removes the namespaces and links.
// It is idempotent.
func (b *Bed) Down() error {
	if !b.up {
		return nil
	}
	b.up = false
	return Sweep(b.spec.Name)
}

// killIn SIGKILLs every process in namespace ns.
func killIn(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Sweep removes every namespace and link whose name a bed called name
// would use, whoever made them, and kills the processes in those
// namespaces.
func Sweep(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("testbed: name %q: want 1 to 6 of [a-z0-9]", name)
	}
	var errs []error
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("testbed: ip netns list: %w (is iproute2 installed, are we root?)", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], name+"-") {
			killIn(f[0])
			if err := ip("netns", "del", f[0]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	out, err = exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return fmt.Errorf("testbed: ip link show: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		link, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if link == name+"br" || strings.HasPrefix(link, name+"-") {
			if err := ip("link", "del", link); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// ip runs the ip tool and returns its complaint as the error.
func ip(args ...string) error {
	cmd := exec.Command("ip", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Root reports whether the process can make a bed (it runs as root).
func Root() bool { return os.Geteuid() == 0 }

// link returns host's veth ends: inner in its namespace, outer on the
// bridge.
func (b *Bed) link(host string) (inner, outer string, err error) {
	for i, h := range b.spec.Hosts {
		if h == host {
			return fmt.Sprintf("%s-%dn", b.spec.Name, i), fmt.Sprintf("%s-%dh", b.spec.Name, i), nil
		}
	}
	return "", "", fmt.Errorf("testbed: no host %q", host)
}
