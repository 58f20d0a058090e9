package faults

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/gomu-rdma/gomu/internal/lincheck"
)

// GomuMemcached is gomu's replicated memcached as a System, run as
// GomuRedis runs the Redis (Debian's memcached as the registry, one
// memcached-replicated per replica host, -l and -p for its client
// address): the runner asks "stats gomu" who leads and "stats gomu
// digest" for digests, the key-value workload is lincheck.Memcache, and a
// lease is an add (see memcachedLeaser).
func GomuMemcached() Factory {
	return GomuFactory(gomuMemcached{})
}

// gomuMemcached is memcached-replicated's side of GomuApp.
type gomuMemcached struct{}

func (gomuMemcached) Name() string       { return "gomu-memcached" }
func (gomuMemcached) DefaultBin() string { return "memcached-replicated" }

// clientPort is memcached's port: on the test bed the registry has a host
// of its own.
func (gomuMemcached) ClientPort() int { return 11211 }

func (gomuMemcached) ListenFlags(host, port string) []string {
	return []string{"-l", host, "-p", port}
}

// Stats asks replica i for "stats <group>" in memcached's text form on
// its client address and returns its STAT lines, nil if it does not
// answer: memcached-replicated's "stats gomu", and the same of a server
// that answers it on a port of its own (orderbook-server --stats).
func (g *GomuApp) Stats(ctx context.Context, i int, group string) map[string]string {
	raw, err := g.ask(ctx, i, []byte("stats "+group+"\r\n"), readStats)
	if err != nil {
		return nil
	}
	f := map[string]string{}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if kv, ok := strings.CutPrefix(line, "STAT "); ok {
			k, v, _ := strings.Cut(kv, " ")
			f[k] = v
		}
	}
	return f
}

// readStats reads a stats reply: STAT lines up to the END, or a single
// error line.
func readStats(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	for len(raw) < 1<<20 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		raw = append(raw, line...)
		if !bytes.HasPrefix(line, []byte("STAT ")) {
			return raw, nil
		}
	}
	return nil, fmt.Errorf("stats reply longer than 1 MiB")
}

// status is replica i's "stats gomu", whose gomu_role, gomu_leader_id and
// gomu_paused are INFO replication's.
func (gomuMemcached) Status(ctx context.Context, g *GomuApp, i int) map[string]string {
	f := g.Stats(ctx, i, "gomu")
	if f["gomu_role"] == "" {
		return nil
	}
	return f
}

// digest is replica i's gomu_digest ("stats gomu digest").
func (gomuMemcached) Digest(ctx context.Context, g *GomuApp, i int) string {
	return g.Stats(ctx, i, "gomu digest")["gomu_digest"]
}

func (gomuMemcached) KV(g *GomuApp, c int) lincheck.Target {
	m := lincheck.Memcache{Addrs: g.addrs, Names: g.names(), Timeout: g.setup.Timeout, ReadTimeout: g.setup.ReadTimeout, Dial: g.env.Dial}
	return m.NewTarget(c)
}

func (gomuMemcached) Lease(g *GomuApp, c int) Leaser {
	return &memcachedLeaser{leaseConn{addrs: g.addrs, dial: g.env.Dial, at: c % len(g.addrs)}}
}

// memcachedLeaser takes leases with add lease:<app> 0 <ttl> on the leader:
// STORED grants, NOT_STORED refuses (another holds it), and a "not the
// leader" refusal sends the request on to the leader it names within one
// Acquire, as redisLeaser follows READONLY. memcached's exptime is whole
// seconds: the TTL is rounded up (at least 1 s), so that a lease never
// ends before the TTL asked for and the overlap check stays sound (a TTL
// that is not whole seconds lasts up to a second longer). A request that
// got no reply ends the Acquire with an error.
type memcachedLeaser struct{ leaseConn }

// leaseSeconds is ttl in memcached's whole seconds, rounded up.
func leaseSeconds(ttl time.Duration) int64 {
	return max(1, int64((ttl+time.Second-1)/time.Second))
}

func (l *memcachedLeaser) Acquire(ctx context.Context, app, holder string, ttl time.Duration) (bool, error) {
	for {
		l.req = fmt.Appendf(l.req[:0], "add lease:%s 0 %d %d\r\n%s\r\n", app, leaseSeconds(ttl), len(holder), holder)
		line, err := l.roundTrip(ctx)
		if err != nil {
			return false, err
		}
		switch {
		case line == "STORED":
			return true, nil
		case line == "NOT_STORED":
			return false, nil
		case strings.HasPrefix(line, "SERVER_ERROR "):
			// A replica names the leader; no leader yet, catching up,
			// paused: wait a little.
			if err := l.redirect(ctx, line, strings.HasPrefix(line, "SERVER_ERROR gomu: not the leader")); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("lease: unexpected reply %q", line)
		}
	}
}

// roundTrip sends l.req and returns the reply line without its "\r\n".
func (l *memcachedLeaser) roundTrip(ctx context.Context) (string, error) {
	raw, err := l.exchange(ctx, func(br *bufio.Reader) ([]byte, error) { return br.ReadSlice('\n') })
	return strings.TrimSuffix(string(raw), "\r\n"), err
}
