package tcp

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/verbs"
)

func TestEndpointRoundTrip(t *testing.T) {
	for _, e := range []endpoint{
		{addr: "127.0.0.1:1", qpn: 1, gen: 0, nonce: 1},
		{addr: "[::1]:65535", qpn: 1 << 31, gen: 7, nonce: 1<<64 - 1},
		{addr: "host.example:7000", qpn: 42, gen: 1 << 30, nonce: 0xdeadbeef},
	} {
		got, err := parseEndpoint(e.marshal())
		if err != nil {
			t.Fatalf("parse(marshal(%+v)): %v", e, err)
		}
		if got != e {
			t.Fatalf("round trip: got %+v, want %+v", got, e)
		}
	}
}

func TestParseEndpointRejects(t *testing.T) {
	good := endpoint{addr: "127.0.0.1:9", qpn: 3, gen: 1, nonce: 5}.marshal()
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"nil", nil, "want at least"},
		{"short", good[:10], "want at least"},
		{"magic", mut(func(b []byte) []byte { b[0] = 'x'; return b }), "magic"},
		{"shm magic", mut(func(b []byte) []byte { copy(b, "gmsh"); return b }), "magic"},
		{"version", mut(func(b []byte) []byte { b[4] = 9; return b }), "version"},
		{"truncated address", good[:len(good)-1], "address length"},
		{"trailing bytes", append(bytes.Clone(good), 0), "address length"},
		{"empty address", mut(func(b []byte) []byte { b[21] = 0; return b[:epFixedLen] }), "address length"},
		{"zero qpn", mut(func(b []byte) []byte { le.PutUint32(b[5:], 0); return b }), "zero"},
		{"zero nonce", mut(func(b []byte) []byte { le.PutUint64(b[13:], 0); return b }), "zero"},
		{"no port", endpoint{addr: "localhost", qpn: 1, nonce: 1}.marshal(), "address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseEndpoint(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseEndpoint: err %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestParseReq(t *testing.T) {
	valid := reqHeader{op: wireWrite, length: 64, seq: 9, addr: 1 << 40, rkey: 77}
	var b [reqLen]byte
	valid.put(b[:])
	if got, err := parseReq(b[:]); err != nil || got != valid {
		t.Fatalf("parseReq(valid) = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		edit func(b []byte)
	}{
		{"op 0", func(b []byte) { b[0] = 0 }},
		{"op 3", func(b []byte) { b[0] = 3 }},
		{"reserved", func(b []byte) { b[2] = 1 }},
		{"reserved tail", func(b []byte) { b[31] = 1 }},
		{"too long", func(b []byte) { le.PutUint32(b[4:], verbs.MaxMessageSize+1) }},
		{"max length", func(b []byte) { le.PutUint32(b[4:], 1<<32-1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c [reqLen]byte
			valid.put(c[:])
			tc.edit(c[:])
			if _, err := parseReq(c[:]); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    ackHeader
		ok   bool
	}{
		{"success", ackHeader{seq: 1, status: verbs.StatusSuccess, length: 10}, true},
		{"access", ackHeader{seq: 2, status: verbs.StatusRemoteAccessError}, true},
		{"retry", ackHeader{seq: 3, status: verbs.StatusRetryExceeded}, true},
		{"flush is not a wire status", ackHeader{status: verbs.StatusFlushError}, false},
		{"unknown status", ackHeader{status: 200}, false},
		{"too long", ackHeader{length: verbs.MaxMessageSize + 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b [ackLen]byte
			tc.h.put(b[:])
			got, err := parseAck(b[:])
			if (err == nil) != tc.ok {
				t.Fatalf("parseAck(%+v): err %v, want ok=%v", tc.h, err, tc.ok)
			}
			if tc.ok && got != tc.h {
				t.Fatalf("parseAck = %+v, want %+v", got, tc.h)
			}
		})
	}
}

func TestHelloCapsWait(t *testing.T) {
	h := hello{target: endpoint{qpn: 1, gen: 2, nonce: 3}, init: endpoint{qpn: 4, gen: 5, nonce: 6}, wait: 10 * time.Hour}
	var b [helloLen]byte
	h.put(b[:])
	got, err := parseHello(b[:])
	if err != nil {
		t.Fatal(err)
	}
	if got.wait != maxTargetWait || got.target != h.target || got.init != h.init {
		t.Fatalf("parseHello = %+v", got)
	}
	b[6] = 1
	if _, err := parseHello(b[:]); err == nil {
		t.Fatal("accepted nonzero reserved byte")
	}
}
