package server

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// arrivalPair is a client connection and the server side of it, accepted
// from a listener with timestamps on, read through an arrivalReader.
func arrivalPair(t *testing.T, ln net.Listener) (client net.Conn, server *arrivalReader, sc net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	sc, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	ar, ok := newArrivalReader(sc)
	if !ok {
		t.Fatal("a TCP connection read without timestamps")
	}
	return client, ar, sc
}

// TestArrivalReader: bytes come with the kernel's receive time, within
// the send and the read; bytes sent on one connection after another's
// arrived later; reading allocates nothing; a closed peer is io.EOF and
// a read deadline a timeout, as the connection's own Read.
func TestArrivalReader(t *testing.T) {
	ln, err := arrivalListen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, ra, _ := arrivalPair(t, ln)
	b, rb, sb := arrivalPair(t, ln)

	// The kernel turns its receive stamps on a moment after the first
	// socket asks (a deferred static key): until then reads carry none.
	buf := make([]byte, 64)
	for deadline := time.Now().Add(10 * time.Second); ra.at == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no receive timestamp 10 s after the listener asked for them")
		}
		if _, err := a.Write([]byte("w")); err != nil {
			t.Fatal(err)
		}
		if _, err := ra.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().UnixNano()
	if _, err := a.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("second")); err != nil {
		t.Fatal(err)
	}
	n, err := rb.Read(buf) // the later one read first, as the scheduler may
	if err != nil || string(buf[:n]) != "second" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	atB := rb.at
	n, err = ra.Read(buf)
	if err != nil || string(buf[:n]) != "first" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	atA := ra.at
	after := time.Now().UnixNano()
	for _, tc := range []struct {
		name string
		at   int64
	}{{"first", atA}, {"second", atB}} {
		if tc.at < before || tc.at > after {
			t.Errorf("%s: arrival %d outside the send and the read [%d, %d]", tc.name, tc.at, before, after)
		}
	}
	if atA > atB {
		t.Errorf("the first bytes sent arrived at %d, after the second's %d", atA, atB)
	}

	x := []byte("x")
	if allocs := testing.AllocsPerRun(100, func() {
		a.Write(x)
		ra.Read(buf)
	}); allocs != 0 {
		t.Errorf("a read allocates %.1f times", allocs)
	}

	sb.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := rb.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline: %v, want a timeout", err)
	}
	a.Close()
	if _, err := ra.Read(buf); err != io.EOF {
		t.Errorf("read after the peer closed: %v, want EOF", err)
	}
}

// BenchmarkRead: one command's bytes written and read back over loopback,
// read by the connection's own Read and by an arrivalReader (recvmsg and
// its timestamp), side by side.
func BenchmarkRead(b *testing.B) {
	ln, err := arrivalListen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	sc, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Close()
	ar, _ := newArrivalReader(sc)
	msg := []byte("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
	buf := make([]byte, 4096)
	for _, bc := range []struct {
		name string
		r    io.Reader
	}{{"conn", sc}, {"arrival", ar}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Write(msg); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < len(msg); {
					n, err := bc.r.Read(buf)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}
