package testbed

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The network tests' bed: a name and subnet no other test uses.
const (
	netBed    = "gtb5"
	netSubnet = "10.213.5.0/24"
	// refused bounds an attempt that must fail: a cut-off peer never
	// answers, so the attempt times out.
	refused = 300 * time.Millisecond
)

// netUp brings up the network tests' bed with hosts, taken down when the
// test ends.
func netUp(t *testing.T, hosts ...string) *Bed {
	t.Helper()
	needRoot(t)
	if testing.Short() {
		t.Skip("brings up network namespaces and injects network faults")
	}
	b, err := Up(Spec{Name: netBed, Hosts: hosts, Subnet: netSubnet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Down(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// inNS runs f in host's namespace (Bed.Do) and fails t on an error.
func inNS(t *testing.T, b *Bed, host string, f func() error) {
	t.Helper()
	if err := b.Do(host, f); err != nil {
		t.Fatalf("in %s's namespace: %v", host, err)
	}
}

// listen listens on addr (port 0: any) in host's namespace, accepting
// and passing each connection to serve (nil: close it at once), until the
// test ends.
func listen(t *testing.T, b *Bed, host, addr string, serve func(net.Conn)) net.Listener {
	t.Helper()
	var l net.Listener
	inNS(t, b, host, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if serve == nil {
				c.Close()
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return l
}

// dial makes one connection attempt from host to addr within d.
func dial(b *Bed, host, addr string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	c, err := b.DialContext(ctx, host, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// reaches waits until host connects to addr.
func reaches(t *testing.T, b *Bed, host, addr string) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for {
		err := dial(b, host, addr, time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %s: %v", host, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outside is an address of the root namespace outside the bed's subnet
// (reached from a host only by its default route), "" if there is none.
func outside(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	_, bed, _ := net.ParseCIDR(netSubnet)
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !bed.Contains(ipn.IP) {
			return ipn.IP.String()
		}
	}
	return ""
}

func TestNetworkFaultArgs(t *testing.T) {
	// A bed by hand: every check here fails before the ip tool runs.
	b := &Bed{spec: Spec{Name: "gtbx", Hosts: []string{"a", "b"}}, ns: map[string]string{"a": "gtbx-a", "b": "gtbx-b"}}
	for _, tc := range []struct {
		name string
		do   func() (func() error, error)
		want string
	}{
		{"isolate nobody", func() (func() error, error) { return b.Isolate("z") }, `no host "z"`},
		{"cut from nobody", func() (func() error, error) { return b.Cut("a", "z") }, "not another host"},
		{"cut from itself", func() (func() error, error) { return b.Cut("a", "a") }, "not another host"},
		{"loss of 0%", func() (func() error, error) { return b.Loss("a", 0) }, "want 1 to 100"},
		{"loss of -5%", func() (func() error, error) { return b.Loss("a", -5) }, "want 1 to 100"},
		{"loss of 101%", func() (func() error, error) { return b.Loss("a", 101) }, "want 1 to 100"},
		{"loss on nobody", func() (func() error, error) { return b.Loss("z", 10) }, `no host "z"`},
		{"slow nobody", func() (func() error, error) { return b.Slow("z", "1mbit") }, `no host "z"`},
		{"dial from nobody", func() (func() error, error) {
			_, err := b.DialContext(context.Background(), "z", "tcp", "127.0.0.1:1")
			return nil, err
		}, `no host "z"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			undo, err := tc.do()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if undo != nil {
				t.Fatal("an undo with the error")
			}
		})
	}
}

// TestPartitions injects each fault that stops traffic on host a of a
// bed of three, checks who still reaches whom, undoes it (twice) and
// checks that every host reaches every other again, and the world
// outside the bed by a's default route.
func TestPartitions(t *testing.T) {
	hosts := []string{"a", "b", "c"}
	b := netUp(t, hosts...)
	addr := map[string]string{}
	for _, h := range hosts {
		addr[h] = listen(t, b, h, b.Addr(h)+":0", nil).Addr().String()
	}
	var root string
	if ip := outside(t); ip != "" {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		root = l.Addr().String()
	}
	type path struct {
		from, to string
		ok       bool
	}
	for _, tc := range []struct {
		name   string
		inject func() (func() error, error)
		during []path
	}{
		{"isolate", func() (func() error, error) { return b.Isolate("a") },
			[]path{{"b", "a", false}, {"a", "b", false}, {"c", "a", false}, {"a", "c", false}, {"b", "c", true}, {"c", "b", true}}},
		{"cut", func() (func() error, error) { return b.Cut("a", "b") },
			[]path{{"b", "a", false}, {"a", "b", false}, {"c", "a", true}, {"a", "c", true}, {"b", "c", true}, {"c", "b", true}}},
		{"loss 100%", func() (func() error, error) { return b.Loss("a", 100) },
			[]path{{"b", "a", false}, {"a", "b", false}, {"c", "a", false}, {"a", "c", false}, {"b", "c", true}, {"c", "b", true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			undo, err := tc.inject()
			if err != nil {
				t.Fatal(err)
			}
			defer undo()
			for _, p := range tc.during {
				if p.ok {
					reaches(t, b, p.from, addr[p.to])
				} else if err := dial(b, p.from, addr[p.to], refused); err == nil {
					t.Errorf("%s reached %s through the fault", p.from, p.to)
				}
			}
			if err := undo(); err != nil {
				t.Fatalf("undo: %v", err)
			}
			if err := undo(); err != nil {
				t.Fatalf("undo again: %v", err)
			}
			for _, from := range hosts {
				for _, to := range hosts {
					if from != to {
						reaches(t, b, from, addr[to])
					}
				}
			}
			out, err := exec.Command("ip", "-n", b.Namespace("a"), "route", "show", "default").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "via "+b.gateway()) {
				t.Fatalf("a's default route after undo: %v: %q", err, out)
			}
			if root != "" {
				reaches(t, b, "a", root)
			}
		})
	}
	if root == "" {
		t.Log("no root-namespace address outside the bed: the default route was only listed, not used")
	}
}

// datagrams sends n numbered datagrams from host from to host to's
// address and counts those that arrive.
func datagrams(t *testing.T, b *Bed, from, to string, n int) int {
	t.Helper()
	var pc net.PacketConn
	inNS(t, b, to, func() (err error) {
		pc, err = net.ListenPacket("udp", b.Addr(to)+":0")
		return err
	})
	defer pc.Close()
	got := make(chan int, 1)
	go func() {
		seen := map[string]bool{}
		buf := make([]byte, 64)
		for {
			// Quiet for this long after the last datagram: the rest is lost.
			pc.SetReadDeadline(time.Now().Add(time.Second))
			k, _, err := pc.ReadFrom(buf)
			if err != nil {
				break
			}
			seen[string(buf[:k])] = true
		}
		got <- len(seen)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, err := b.DialContext(ctx, from, "udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		// A datagram dropped on the way is no error of the sender's;
		// pacing keeps the receiver's buffer from dropping any.
		c.Write([]byte(strconv.Itoa(i)))
		time.Sleep(time.Millisecond)
	}
	return <-got
}

// TestLoss drops a share of host a's packets: all of them (no
// connection), some of them (some datagrams arrive), then none after
// undo.
func TestLoss(t *testing.T) {
	b := netUp(t, "a", "b")
	listen(t, b, "a", b.Addr("a")+":7000", nil)
	reaches(t, b, "b", b.Addr("a")+":7000") // and the neighbours know each other
	const n = 200
	if got := datagrams(t, b, "b", "a", n); got < n*95/100 {
		t.Fatalf("%d of %d datagrams arrived with no loss", got, n)
	}
	for _, bad := range []int{0, 101} {
		if _, err := b.Loss("a", bad); err == nil {
			t.Errorf("Loss(a, %d) = nil error", bad)
		}
	}

	undo, err := b.Loss("a", 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(b, "b", b.Addr("a")+":7000", refused); err == nil {
		t.Error("b connected to a through 100% loss")
	}
	if got := datagrams(t, b, "b", "a", 20); got != 0 {
		t.Errorf("%d of 20 datagrams arrived through 100%% loss", got)
	}
	if err := undo(); err != nil {
		t.Fatal(err)
	}

	undo, err = b.Loss("a", 30)
	if err != nil {
		t.Fatal(err)
	}
	got := datagrams(t, b, "b", "a", n)
	t.Logf("30%% loss: %d of %d datagrams arrived", got, n)
	if got < n*5/100 || got > n*95/100 {
		t.Errorf("30%% loss: %d of %d datagrams arrived, want between 5%% and 95%%", got, n)
	}
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", b.Namespace("a"), "nft", "list", "tables").CombinedOutput(); err != nil || strings.Contains(string(out), "gomuloss") {
		t.Fatalf("nft tables after undo: %v: %q", err, out)
	}
	reaches(t, b, "b", b.Addr("a")+":7000")
	if got := datagrams(t, b, "b", "a", n); got < n*95/100 {
		t.Fatalf("%d of %d datagrams arrived after the loss was undone", got, n)
	}
	if err := undo(); err != nil {
		t.Fatalf("undo again: %v", err)
	}
}

// qdiscs lists the queueing disciplines on host's veth ends.
func qdiscs(t *testing.T, b *Bed, host string) (inner, outer string) {
	t.Helper()
	in, out, err := b.link(host)
	if err != nil {
		t.Fatal(err)
	}
	i, err := exec.Command("ip", "netns", "exec", b.Namespace(host), "tc", "qdisc", "show", "dev", in).CombinedOutput()
	if err != nil {
		t.Fatalf("tc in %s: %v: %s", host, err, i)
	}
	o, err := exec.Command("tc", "qdisc", "show", "dev", out).CombinedOutput()
	if err != nil {
		t.Fatalf("tc: %v: %s", err, o)
	}
	return string(i), string(o)
}

// transfer sends n bytes from host from to a listener on host to and
// returns how long until the last one arrived.
func transfer(t *testing.T, b *Bed, from, to string, n int) time.Duration {
	t.Helper()
	got := make(chan int64, 1)
	l := listen(t, b, to, b.Addr(to)+":0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(hang))
		k, _ := io.Copy(io.Discard, c)
		got <- k
	})
	defer l.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, err := b.DialContext(ctx, from, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(hang))
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if k := <-got; k != int64(n) {
		t.Fatalf("%d of %d bytes from %s arrived on %s", k, n, from, to)
	}
	return time.Since(start)
}

// TestSlow holds host a's link to 1 mbit: a token bucket on both ends of
// its veth while on, none after undo, and a transfer each way that takes
// many times longer than without.
func TestSlow(t *testing.T) {
	b := netUp(t, "a", "b")
	if _, err := b.Slow("a", "fast"); err == nil {
		t.Fatal("Slow(a, \"fast\") = nil error")
	}
	if in, out := qdiscs(t, b, "a"); strings.Contains(in+out, "tbf") {
		t.Fatalf("a failed Slow left a token bucket:\n%s%s", in, out)
	}
	const n = 256 << 10
	for _, dir := range []struct{ from, to string }{{"a", "b"}, {"b", "a"}} {
		transfer(t, b, dir.from, dir.to, n) // warm up: neighbours, caches
	}
	fast := map[string]time.Duration{}
	for _, dir := range []struct{ from, to string }{{"a", "b"}, {"b", "a"}} {
		fast[dir.from] = transfer(t, b, dir.from, dir.to, n)
	}
	undo, err := b.Slow("a", "1mbit")
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	if in, out := qdiscs(t, b, "a"); !strings.Contains(in, "tbf") || !strings.Contains(out, "tbf") {
		t.Fatalf("no token bucket on both ends of a's link:\ninner: %s\nouter: %s", in, out)
	}
	slow := map[string]time.Duration{}
	for _, dir := range []struct{ from, to string }{{"a", "b"}, {"b", "a"}} {
		slow[dir.from] = transfer(t, b, dir.from, dir.to, n)
		t.Logf("%d KiB %s to %s: %v unthrottled, %v at 1 mbit", n>>10, dir.from, dir.to, fast[dir.from], slow[dir.from])
		if slow[dir.from] < 3*fast[dir.from] {
			t.Errorf("%s to %s at 1 mbit took %v, under 3× the unthrottled %v", dir.from, dir.to, slow[dir.from], fast[dir.from])
		}
	}
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if err := undo(); err != nil {
		t.Fatalf("undo again: %v", err)
	}
	if in, out := qdiscs(t, b, "a"); strings.Contains(in+out, "tbf") {
		t.Fatalf("a token bucket left after undo:\ninner: %s\nouter: %s", in, out)
	}
	if again := transfer(t, b, "a", "b", n); slow["a"] < 3*again {
		t.Errorf("a to b after undo took %v, not a third of the %v at 1 mbit", again, slow["a"])
	}
}

// netnsID is the network namespace of the calling goroutine's thread.
func netnsID(t *testing.T) string {
	id, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDialContext dials from one host to another: the server sees the
// dialling host's address (a dial from the root namespace comes from the
// bridge), a host's loopback is its own, and no thread of this process is
// left in a host's namespace.
func TestDialContext(t *testing.T) {
	b := netUp(t, "a", "b")
	runtime.LockOSThread()
	rootNS := netnsID(t)
	runtime.UnlockOSThread()

	peers := make(chan string, 4)
	l := listen(t, b, "b", b.Addr("b")+":0", func(c net.Conn) {
		peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
	})
	waitTCP(t, l.Addr().String())
	<-peers
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
		from string
	}{
		{"from a", func() (net.Conn, error) { return b.DialContext(ctx, "a", "tcp", l.Addr().String()) }, b.Addr("a")},
		{"from b itself", func() (net.Conn, error) { return b.DialContext(ctx, "b", "tcp", l.Addr().String()) }, b.Addr("b")},
		{"from the root namespace", func() (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", l.Addr().String())
		}, b.gateway()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.LocalAddr().(*net.TCPAddr).IP.String(); got != tc.from {
				t.Errorf("local address %s, want %s", got, tc.from)
			}
			select {
			case got := <-peers:
				if got != tc.from {
					t.Errorf("b saw a connection from %s, want %s", got, tc.from)
				}
			case <-time.After(hang):
				t.Fatal("b accepted nothing")
			}
		})
	}

	// b's loopback is b's: reached from b, not from a.
	lo := listen(t, b, "b", "127.0.0.1:0", nil).Addr().String()
	if err := dial(b, "b", lo, hang); err != nil {
		t.Errorf("b to its own loopback %s: %v", lo, err)
	}
	if err := dial(b, "a", lo, hang); err == nil {
		t.Errorf("a reached b's loopback listener %s", lo)
	}

	// Every thread that dialled went back to the root namespace (or
	// ended): lock as many goroutines to threads at once as there can
	// be threads about, and look at each one's namespace.
	const k = 64
	var wg, locked sync.WaitGroup
	release := make(chan struct{})
	ids := make(chan string, k)
	locked.Add(k)
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			id, err := os.Readlink("/proc/thread-self/ns/net")
			if err != nil {
				id = err.Error()
			}
			ids <- id
			locked.Done()
			<-release
		}()
	}
	locked.Wait()
	close(release)
	wg.Wait()
	close(ids)
	for id := range ids {
		if id != rootNS {
			t.Fatalf("a thread in namespace %s after the dials, want the root's %s", id, rootNS)
		}
	}
}
