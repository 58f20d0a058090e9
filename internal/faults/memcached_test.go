package faults

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache"
)

func TestLeaseSeconds(t *testing.T) {
	for _, tc := range []struct {
		ttl  time.Duration
		want int64
	}{
		{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {time.Second + time.Nanosecond, 2}, {3 * time.Second, 3}, {2500 * time.Millisecond, 3},
	} {
		if got := leaseSeconds(tc.ttl); got != tc.want {
			t.Errorf("leaseSeconds(%v) = %d, want %d", tc.ttl, got, tc.want)
		}
	}
}

// TestMemcachedLeaser takes leases on internal/memcache's server, a
// memcached that does not replicate, after a replica that is not the
// leader and names it.
func TestMemcachedLeaser(t *testing.T) {
	s, err := memcache.ListenAndServe("127.0.0.1:0", memcache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = nc.Write([]byte("SERVER_ERROR gomu: not the leader leader=2 addr=" + s.Addr() + "\r\n"))
			nc.Close()
		}
	}()
	var d net.Dialer
	l := &memcachedLeaser{leaseConn{addrs: []string{ln.Addr().String(), s.Addr()}, dial: d.DialContext}}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		app, holder string
		want        bool
	}{
		{"a", "h1", true}, {"a", "h2", false}, {"a", "h1", false}, {"b", "h2", true},
	} {
		got, err := l.Acquire(ctx, tc.app, tc.holder, 3*time.Second)
		if err != nil || got != tc.want {
			t.Fatalf("Acquire(%s, %s) = %v, %v; want %v", tc.app, tc.holder, got, err, tc.want)
		}
	}
	if l.at != 1 {
		t.Fatalf("requests go to server %d, want the leader named, 1", l.at)
	}
}
