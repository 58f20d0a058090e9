package memcache

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	gomemcache "github.com/bradfitz/gomemcache/memcache"
	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
)

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := ListenAndServe("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestServerGomemcache drives the server with the client the registry uses.
func TestServerGomemcache(t *testing.T) {
	s := startServer(t, Config{})
	c := gomemcache.New(s.Addr())
	c.Timeout = 5 * time.Second
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(&gomemcache.Item{Key: "a", Value: []byte("1"), Flags: 3}); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(&gomemcache.Item{Key: "a", Value: []byte("2")}); err != gomemcache.ErrNotStored {
		t.Fatalf("add existing: %v", err)
	}
	it, err := c.Get("a")
	if err != nil || string(it.Value) != "1" || it.Flags != 3 {
		t.Fatalf("get: %+v %v", it, err)
	}
	it.Value = []byte("3")
	if err := c.CompareAndSwap(it); err != nil {
		t.Fatalf("cas: %v", err)
	}
	if err := c.CompareAndSwap(it); err != gomemcache.ErrCASConflict {
		t.Fatalf("stale cas: %v", err)
	}
	if err := c.Touch("a", 100); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Increment("a", 4); err != nil || n != 7 {
		t.Fatalf("incr: %d %v", n, err)
	}
	m, err := c.GetMulti([]string{"a", "missing"})
	if err != nil || len(m) != 1 || string(m["a"].Value) != "7" {
		t.Fatalf("getmulti: %v %v", m, err)
	}
	if err := c.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get("a"); err != gomemcache.ErrCacheMiss {
		t.Fatalf("after delete: %v", err)
	}
	if err := c.DeleteAll(); err != nil {
		t.Fatal(err)
	}
}

func TestServerConcurrentClients(t *testing.T) {
	s := startServer(t, Config{})
	c := gomemcache.New(s.Addr())
	c.Timeout = 5 * time.Second
	c.MaxIdleConns = 8
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				key := fmt.Sprintf("g%d-%d", g, i%10)
				val := fmt.Appendf(nil, "%d", i)
				if err := c.Set(&gomemcache.Item{Key: key, Value: val}); err != nil {
					errs <- err
					return
				}
				it, err := c.Get(key)
				if err != nil || string(it.Value) != string(val) {
					errs <- fmt.Errorf("get %s: %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestServerIdleTimeout: a connection that sends nothing is closed.
func TestServerIdleTimeout(t *testing.T) {
	s := startServer(t, Config{IdleTimeout: 50 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on idle connection: %v, want EOF", err)
	}
}

// TestServerSlowClient: a client that starts a command and stalls is cut
// off after CommandTimeout, even though it keeps trickling bytes.
func TestServerSlowClient(t *testing.T) {
	s := startServer(t, Config{CommandTimeout: 100 * time.Millisecond})
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "set k 0 0 1000000\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		if _, err := c.Write([]byte("x")); err != nil {
			if time.Since(start) < 100*time.Millisecond {
				t.Fatalf("cut off after %v, before CommandTimeout", time.Since(start))
			}
			return // the server hung up
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server kept a trickling client for 5s")
}

func TestServerMaxConns(t *testing.T) {
	s := startServer(t, Config{MaxConns: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Make sure the server has registered it.
		io.WriteString(c, "version\r\n")
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(c)
	if string(got) != "ERROR Too many open connections\r\n" {
		t.Fatalf("third connection got %q", got)
	}
	// Closing one makes room again.
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "version\r\n")
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(line, "VERSION ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room after closing a connection: %q", line)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServerCloseWithClients: Close returns with clients still connected,
// and the port stops accepting.
func TestServerCloseWithClients(t *testing.T) {
	s, err := ListenAndServe("127.0.0.1:0", Config{})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "set k 0 0 10\r\nabc") // stuck mid-command
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Fatal("still accepting after Close")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != ErrServerClosed {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestServerFakeClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := startServer(t, Config{Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	c := gomemcache.New(s.Addr())
	c.Timeout = 5 * time.Second
	if err := c.Set(&gomemcache.Item{Key: "k", Value: []byte("v"), Expiration: 60}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := c.Get("k"); err != gomemcache.ErrCacheMiss {
		t.Fatalf("after exptime: %v", err)
	}
}

// BenchmarkServerGet measures get round trips over loopback, one
// connection per parallel client, on the embedded server and, side by side
// for a ratio, on a real memcached.
func BenchmarkServerGet(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		s, err := ListenAndServe("127.0.0.1:0", Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		benchGet(b, s.Addr())
	})
	b.Run("memcached", func(b *testing.B) { benchGet(b, memcachedtest.Addr(b)) })
}

func benchGet(b *testing.B, addr string) {
	val := strings.Repeat("v", 64)
	key := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		fmt.Fprintf(c, "set %s 0 0 %d\r\n%s\r\n", key, len(val), val)
		r.ReadString('\n')
		req := []byte("get " + key + "\r\n")
		want := len(fmt.Sprintf("VALUE %s 0 %d\r\n", key, len(val))) + len(val) + 2 + len("END\r\n")
		buf := make([]byte, want)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			if _, err := io.ReadFull(r, buf); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
