package verbstest

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

// The cross-process cases re-execute the test binary as the remote peer.
// These variables tell the child what to be.
const (
	envPeer   = "GOMU_VERBSTEST_PEER"
	envDevice = "GOMU_VERBSTEST_DEVICE"
)

// peerLifetime bounds how long a peer child lives, so a crashed parent never
// leaves one behind.
const peerLifetime = time.Minute

// Main runs the tests, or, in a child started by a cross-process case, the
// remote peer. Call it from the provider's TestMain.
func Main(m *testing.M, p Provider) {
	if os.Getenv(envPeer) != "" {
		if err := runPeer(p, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "verbstest peer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runPeer is the child: it publishes a QP endpoint and an MR on out as
// "<endpoint hex> <addr> <rkey>", reads the parent's endpoint hex from in,
// connects with every right, says "ready" and waits to be killed.
func runPeer(p Provider, in io.Reader, out io.Writer) error {
	dev, err := verbs.Open(p.Name, os.Getenv(envDevice), p.Options)
	if err != nil {
		return err
	}
	defer dev.Close()
	s := newSideErr(dev)
	if s.err != nil {
		return s.err
	}
	r := s.mr.Remote()
	fmt.Fprintf(out, "%x %d %d\n", s.qp.Endpoint(), r.Addr, r.RKey)
	br := bufio.NewReader(in)
	line, err := br.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read parent endpoint: %w", err)
	}
	ep, err := hex.DecodeString(strings.TrimSpace(line))
	if err != nil {
		return fmt.Errorf("parent endpoint: %w", err)
	}
	if err := s.qp.Connect(ep, verbs.AccessAll); err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	// Live until killed, the parent goes away (stdin closes) or the
	// lifetime bound passes.
	parentGone := make(chan struct{})
	go func() { io.Copy(io.Discard, br); close(parentGone) }()
	select {
	case <-parentGone:
	case <-time.After(peerLifetime):
	}
	return nil
}

type sideOrErr struct {
	side
	err error
}

func newSideErr(dev verbs.Device) (s sideOrErr) {
	s.dev = dev
	if s.pd, s.err = dev.AllocPD(); s.err != nil {
		return s
	}
	if s.cq, s.err = dev.CreateCQ(64); s.err != nil {
		return s
	}
	if s.mr, s.err = s.pd.AllocMR(4096, verbs.AccessAll); s.err != nil {
		return s
	}
	s.qp, s.err = s.pd.CreateQP(verbs.QPConfig{SendCQ: s.cq})
	return s
}

// testPeerDeath connects to a peer in another process, SIGKILLs it, and
// expects requests to complete with retry exceeded within the provider's
// retry timeout (plus scheduling slack), never to hang.
func testPeerDeath(t *testing.T, p Provider) {
	dev := p.open(t, 0)
	a := newSide(t, dev, defaultPair())

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envPeer+"=1", envDevice+"="+p.deviceName(t, 1))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start peer: %v", err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string, 2)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(what string) string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("peer exited before sending %s", what)
			}
			return l
		case <-time.After(waitLimit):
			t.Fatalf("peer did not send %s within %v", what, waitLimit)
		}
		return ""
	}

	var (
		epHex  string
		remote verbs.Remote
	)
	if _, err := fmt.Sscanf(next("its endpoint"), "%s %d %d", &epHex, &remote.Addr, &remote.RKey); err != nil {
		t.Fatalf("peer endpoint line: %v", err)
	}
	ep, err := hex.DecodeString(epHex)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.qp.Connect(ep, verbs.AccessAll); err != nil {
		t.Fatalf("connect to peer: %v", err)
	}
	fmt.Fprintf(stdin, "%x\n", a.qp.Endpoint())
	if l := next("ready"); l != "ready" {
		t.Fatalf("peer said %q, want ready", l)
	}

	// The connection works across processes: write, then read back.
	binary.LittleEndian.PutUint64(a.mr.Bytes(), 0xfeedface)
	mustSucceed(t, one(t, a, verbs.OpWrite, 1, 0, 8, remote, 0), 8)
	mustSucceed(t, one(t, a, verbs.OpRead, 2, 8, 8, remote, 0), 8)
	if got := binary.LittleEndian.Uint64(a.mr.Bytes()[8:]); got != 0xfeedface {
		t.Fatalf("read back %#x from the peer, want 0xfeedface", got)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed = true
	died := time.Now()

	// Requests may still succeed until the death is noticed; after that
	// they must complete with retry exceeded.
	limit := p.Options.WithDefaults().RetryTimeout*2 + 5*time.Second
	for wr := uint64(3); ; wr++ {
		c := one(t, a, verbs.OpWrite, wr, 0, 8, remote, 0)
		if c.Status == verbs.StatusSuccess {
			if time.Since(died) > limit {
				t.Fatalf("writes to a dead peer still succeed %v after its death", time.Since(died))
			}
			time.Sleep(time.Millisecond)
			continue
		}
		if c.Status != verbs.StatusRetryExceeded {
			t.Fatalf("write to a dead peer completed %s, want retry exceeded", describe(c))
		}
		break
	}
	t.Logf("death noticed %v after SIGKILL (retry timeout %v)", time.Since(died), p.Options.WithDefaults().RetryTimeout)
	wantState(t, a.qp, verbs.StateError)
}
