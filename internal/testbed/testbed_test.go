package testbed

import (
	"bytes"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hang bounds every wait: a hang detector, not a performance threshold.
const hang = 30 * time.Second

func needRoot(t *testing.T) {
	t.Helper()
	if !Root() {
		t.Skip("network namespaces need root (CI runs as root)")
	}
}

// leftovers lists what a bed called name left behind.
func leftovers(t *testing.T, name string) string {
	t.Helper()
	var found []string
	for _, args := range [][]string{{"netns", "list"}, {"-o", "link", "show"}} {
		out, err := exec.Command("ip", args...).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, name+"-") || strings.Contains(line, name+"br") {
				found = append(found, strings.TrimSpace(line))
			}
		}
	}
	return strings.Join(found, "\n")
}

// start runs name on host until the test ends.
func start(t *testing.T, b *Bed, host, name string, args ...string) *bytes.Buffer {
	t.Helper()
	cmd := b.Command(host, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s on %s:\n%s", name, host, out.String())
		}
	})
	return &out
}

// waitTCP waits until addr accepts connections from the root namespace.
func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never accepted: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Name: "Bad", Hosts: []string{"a"}}, "want 1 to 6"},
		{Spec{Name: "toolong", Hosts: []string{"a"}}, "want 1 to 6"},
		{Spec{Name: "tb", Hosts: nil}, "0 hosts"},
		{Spec{Name: "tb", Hosts: []string{"a", "a"}}, "given twice"},
		{Spec{Name: "tb", Hosts: []string{"a b"}}, "host name"},
		{Spec{Name: "tb", Hosts: []string{"a"}, Subnet: "10.0.0.0/16"}, "IPv4 /24"},
	} {
		if _, err := Up(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Up(%+v) = %v, want an error saying %q", tc.spec, err, tc.want)
		}
	}
}

// TestHostsReachEachOther runs Debian's memcached on one host and
// memcslap against it from another, then checks Down leaves nothing.
func TestHostsReachEachOther(t *testing.T) {
	needRoot(t)
	b, err := Up(Spec{Name: "gtb1", Hosts: []string{"reg", "client"}, Subnet: "10.213.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Down()
	reg := b.Addr("reg")
	start(t, b, "reg", "memcached", "-u", "nobody", "-l", reg, "-p", "11211", "-U", "0")
	waitTCP(t, reg+":11211")
	memcslap := func(server string) string {
		out, _ := b.Command("client", "memcslap", "--servers="+server, "--test=set", "--concurrency=1", "--execute-number=100").CombinedOutput()
		return string(out)
	}
	if out := memcslap(reg + ":11211"); !strings.Contains(out, "set             100 keys") || strings.Contains(out, "FAILURE") {
		t.Fatalf("memcslap from another host did not set its 100 keys:\n%s", out)
	}
	// The hosts are apart: the client's own loopback has no memcached.
	if out := memcslap("127.0.0.1:11211"); !strings.Contains(out, "CONNECTION FAILURE") {
		t.Fatalf("memcslap reached a memcached on the client host's loopback:\n%s", out)
	}
	if err := b.Down(); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, "gtb1"); left != "" {
		t.Fatalf("Down left:\n%s", left)
	}
}

// TestReplicatedRedisAcrossHosts runs a 3-replica redis-server-replicated
// on three hosts over the tcp transport, its registry (Debian's memcached)
// on a fourth, and redis-cli on a fifth: a write through the leader is
// read back on a follower, by the addresses a user would use.
func TestReplicatedRedisAcrossHosts(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("builds a server and starts a cluster across namespaces")
	}
	bin := filepath.Join(t.TempDir(), "redis-server-replicated")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/gomu-rdma/gomu/apps/redis-replicated/cmd/redis-server-replicated").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	b, err := Up(Spec{Name: "gtb2", Hosts: []string{"reg", "r1", "r2", "r3", "client"}, Subnet: "10.213.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Down(); err != nil {
			t.Error(err)
		}
	})
	reg := b.Addr("reg") + ":11211"
	start(t, b, "reg", "memcached", "-u", "nobody", "-l", b.Addr("reg"), "-p", "11211", "-U", "0")
	waitTCP(t, reg)
	for i, h := range []string{"r1", "r2", "r3"} {
		a := b.Addr(h)
		start(t, b, h, "env", "SID="+string(rune('1'+i)), "IDS=1,2,3", "DORY_REGISTRY_IP="+reg,
			bin, "--transport", "tcp", "--device", a+":7000", "--bind", a, "--port", "6379",
			"--advertise", a+":6379", "--fifo", "-", "--cluster", "tb")
	}
	for _, h := range []string{"r1", "r2", "r3"} {
		waitTCP(t, b.Addr(h)+":6379")
	}
	cli := func(host string, args ...string) string {
		out, _ := b.Command("client", "redis-cli", append([]string{"-h", b.Addr(host), "-p", "6379"}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	// Replica 1 starts as leader; writes wait for the cluster to form.
	deadline := time.Now().Add(hang)
	for cli("r1", "SET", "greeting", "hello") != "OK" {
		if time.Now().After(deadline) {
			t.Fatalf("no write accepted by r1: %s", cli("r1", "SET", "greeting", "hello"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := cli("r3", "GET", "greeting"); got != "hello" {
		t.Fatalf("GET on the follower r3: %q", got)
	}
	if got := cli("r2", "SET", "x", "1"); !strings.Contains(got, "MOVED") && !strings.Contains(got, b.Addr("r1")) {
		t.Fatalf("a write on a follower does not name the leader's address %s: %q", b.Addr("r1"), got)
	}
}
