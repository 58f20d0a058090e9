package verbsrpc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache"
	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
	"github.com/gomu-rdma/gomu/verbs/faulty"
	_ "github.com/gomu-rdma/gomu/verbs/shm"
	_ "github.com/gomu-rdma/gomu/verbs/tcp"
	"github.com/gomu-rdma/gomu/verbs/verbstest"
)

// Environment of the server process TestServerProcessDies re-executes.
const (
	envChild    = "GOMU_VERBSRPC_TEST_SERVER" // provider
	envFabric   = "GOMU_VERBSRPC_TEST_FABRIC"
	envRegistry = "GOMU_VERBSRPC_TEST_REGISTRY"
	envCluster  = "GOMU_VERBSRPC_TEST_CLUSTER"
	envMode     = "GOMU_VERBSRPC_TEST_POLL"
	envRetry    = "GOMU_VERBSRPC_TEST_RETRY"
)

// waitLimit bounds every wait in the tests: a hang detector, never a
// performance threshold.
const waitLimit = 20 * time.Second

var faultyShm = faulty.Register("shm")

func TestMain(m *testing.M) {
	if p := os.Getenv(envChild); p != "" {
		os.Exit(childServer(p))
	}
	os.Exit(m.Run())
}

// childServer is a server process that echoes until it is killed.
func childServer(provider string) int {
	fail := func(err error) int { fmt.Println("ERR", err); return 1 }
	name := os.Getenv(envFabric)
	if provider == "tcp" {
		name = ""
	}
	mode, err := poll.ParseMode(os.Getenv(envMode))
	if err != nil {
		return fail(err)
	}
	retry, err := time.ParseDuration(os.Getenv(envRetry))
	if err != nil {
		return fail(err)
	}
	dev, err := verbs.Open(provider, name, verbs.Options{RetryTimeout: retry})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	reg, err := registry.Dial(ctx, registry.Config{Addr: os.Getenv(envRegistry), Cluster: os.Getenv(envCluster), ID: 1,
		PollInterval: time.Millisecond, InboxPollInterval: 2 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	// Requests saying "hold" are never answered: the parent kills us
	// while one waits.
	_, err = Listen(ctx, Config{Device: dev, Registry: reg, Name: "echo", Poll: mode}, func(batch []*Request) {
		for _, r := range batch {
			if string(r.Payload()) != "hold" {
				r.Reply(r.Payload())
			}
		}
	})
	if err != nil {
		return fail(err)
	}
	fmt.Println("READY")
	select {}
}

func echo(batch []*Request) {
	for _, r := range batch {
		if err := r.Reply(r.Payload()); err != nil {
			panic(err)
		}
	}
}

// world is one test's registry server, cluster and fabric.
type world struct {
	t        testing.TB
	mode     poll.Mode // of every server and client
	retry    time.Duration
	addr     string
	cluster  string
	fabric   string
	provider string
}

// deviceNames are the device names of the providers that do not take the
// test's shm fabric name.
var deviceNames = map[string]string{"tcp": ""}

func newWorld(t testing.TB, provider string) *world {
	t.Helper()
	s, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &world{t: t, addr: s.Addr(), cluster: fmt.Sprintf("rpc%d", time.Now().UnixNano()), fabric: verbstest.FabricName(t, "rpc"), provider: provider, mode: poll.Sleep, retry: 200 * time.Millisecond}
}

func (w *world) registry(id int) *registry.Registry {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	r, err := registry.Dial(ctx, registry.Config{Addr: w.addr, Cluster: w.cluster, ID: id,
		PollInterval: time.Millisecond, InboxPollInterval: 5 * time.Millisecond})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { r.Close() })
	return r
}

func (w *world) device() verbs.Device {
	w.t.Helper()
	name := w.fabric
	if n, ok := deviceNames[w.provider]; ok {
		name = n
	}
	d, err := verbs.Open(w.provider, name, verbs.Options{RetryTimeout: w.retry})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { d.Close() })
	return d
}

// listen starts a server (replica 1) with cfg's settings filled in.
func (w *world) listen(cfg Config, h Handler) *Server {
	w.t.Helper()
	cfg.Device, cfg.Registry, cfg.Name = w.device(), w.registry(1), "echo"
	cfg.Poll = w.mode
	s, err := Listen(ctxFor(w.t), cfg, h)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Close() })
	return s
}

// dial connects an observer client on its own device.
func (w *world) dial(cfg Config) *Conn {
	w.t.Helper()
	c, err := w.tryDial(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	return c
}

func (w *world) tryDial(cfg Config) (*Conn, error) {
	if cfg.Device == nil {
		cfg.Device = w.device()
	}
	cfg.Registry, cfg.Name = w.registry(0), "echo"
	cfg.Poll = w.mode
	return DialID(ctxFor(w.t), cfg, 1)
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func within(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// eventually polls cond until it holds or waitLimit passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not after %v", what, waitLimit)
		}
		time.Sleep(time.Millisecond)
	}
}

// holder is a handler that keeps every request until told to reply.
type holder struct {
	mu   sync.Mutex
	reqs []*Request
	seen chan string
}

func newHolder() *holder { return &holder{seen: make(chan string, 1024)} }

func (h *holder) handle(batch []*Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range batch {
		h.reqs = append(h.reqs, r)
		h.seen <- string(r.Payload())
	}
}

// release replies to every held request with its payload prefixed by p.
func (h *holder) release(t *testing.T, p string) {
	h.mu.Lock()
	reqs := h.reqs
	h.reqs = nil
	h.mu.Unlock()
	for _, r := range reqs {
		if err := r.Reply([]byte(p + string(r.Payload()))); err != nil {
			t.Errorf("reply: %v", err)
		}
	}
}

// startChild runs a server process on provider and returns it once ready.
func (w *world) startChild(t testing.TB) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+w.provider, envFabric+"="+w.fabric, envRegistry+"="+w.addr, envCluster+"="+w.cluster,
		envMode+"="+w.mode.String(), envRetry+"="+w.retry.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "READY" {
		t.Fatalf("server process: %q %v", line, err)
	}
	return cmd
}
