package memcache

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/memcache/memcachedtest"
)

// metaCases run like protoCases (see protoCase: "$" is a key prefix unique
// to the run), against the embedded server with a frozen clock (so CAS
// values start at 1 and TTLs do not move), and, when real is set, against
// a real memcached, compared with compareMeta (CAS values one to one, TTLs
// within 2 seconds, access times ignored). «x» stands for x in base64.
var metaCases = []protoCase{
	{name: "mn", real: true,
		in:   "mn\r\nmn foo bar\r\n",
		want: "MN\r\nMN\r\n"},
	{name: "unknown m commands", real: true,
		in:   "mx $k\r\nmgg $k\r\nm\r\n",
		want: "ERROR\r\nERROR\r\nERROR\r\n"},
	{name: "mg miss", real: true,
		in:   "mg $k\r\nmg $k v\r\nmg $k k O123\r\nmg $k q\r\nmg $k q k v\r\nmn\r\n",
		want: "EN\r\nEN\r\nEN k$k O123\r\nMN\r\n"},
	{name: "ms mg", real: true,
		in:   "ms $k 3\r\nabc\r\nmg $k v\r\nmg $k s v f\r\nmg $k\r\nms $k 2 F42 T0\r\nhi\r\nmg $k f t v k\r\n",
		want: "HD\r\nVA 3\r\nabc\r\nVA 3 s3 f0\r\nabc\r\nHD\r\nHD\r\nVA 2 f42 t-1 k$k\r\nhi\r\n"},
	{name: "ms returns flags in order", real: true,
		in:   "ms $k 2 k O1 c\r\nhi\r\nms $k 2 c q\r\nhi\r\nms $k 2 Oxy k c ME\r\nhi\r\n",
		want: "HD k$k O1 c1\r\nNS Oxy k$k c0\r\n"},
	{name: "ms binary data and empty value", real: true,
		in:   "ms $k 4\r\n\r\n\x00 \r\nmg $k v s\r\nms $k 0\r\n\r\nmg $k v\r\n",
		want: "HD\r\nVA 4 s4\r\n\r\n\x00 \r\nHD\r\nVA 0\r\n\r\n"},
	{name: "ms data length truncated to 32 bits", real: true,
		in:   "ms $k 4294967297\r\na\r\nmg $k v\r\n",
		want: "HD\r\nVA 1\r\na\r\n"},
	{name: "ms modes", real: true,
		in: "ms $k 1 MR\r\na\r\nms $k 1 ME\r\na\r\nms $k 1 ME\r\nb\r\nms $k 1 MA\r\nz\r\nms $k 1 MP\r\n_\r\nmg $k v\r\n" +
			"ms $x 1 MA\r\na\r\nms $x 1 MP\r\na\r\nms $k 1 MS\r\ns\r\nmg $k v\r\n",
		want: "NS\r\nHD\r\nNS\r\nHD\r\nHD\r\nVA 3\r\n_az\r\nNS\r\nNS\r\nHD\r\nVA 1\r\ns\r\n"},
	{name: "append keeps flags and ttl", real: true,
		in:   "ms $k 1 F5 T100\r\na\r\nms $k 1 MA F9 T0\r\nb\r\nmg $k f t v\r\n",
		want: "HD\r\nHD\r\nVA 2 f5 t100\r\nab\r\n"},
	{name: "ms compare cas", // real CAS values are unknown to the input
		in: "ms $k 1 c\r\na\r\nms $k 1 C1 c\r\nb\r\nms $k 1 C1 c\r\nc\r\nms $n 1 C5\r\nx\r\nmg $k v c\r\n" +
			"ms $k 1 MA C2 c\r\nd\r\nms $k 1 MA C9\r\ne\r\nms $k 1 ME C9\r\nf\r\nms $k 1 MR C3 c\r\ng\r\n",
		want: "HD c1\r\nHD c2\r\nEX c0\r\nNF\r\nVA 1 c2\r\nb\r\nHD c3\r\nEX\r\nNS\r\nHD c4\r\n"},
	{name: "ms cas 0 and no match", real: true,
		in:   "ms $k 1 C0\r\na\r\nms $k 1\r\na\r\nms $k 1 C0\r\nb\r\nms $k 1 C99999999999\r\nb\r\nms $k 1 MA C0\r\nc\r\nmg $k v\r\n",
		want: "NF\r\nHD\r\nEX\r\nEX\r\nHD\r\nVA 2\r\nac\r\n"},
	{name: "ms quiet", real: true,
		in:   "ms $k 1 q\r\na\r\nms $k 1 q MR\r\nb\r\nms $k 1 q ME\r\nc\r\nms $k 1 q Z\r\nd\r\nms $k 2 q\r\nabc\r\nmn\r\n",
		want: "NS\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nMN\r\n"},
	{name: "ms errors", real: true,
		in: "ms\r\nms $k\r\nms $k x\r\nms $k -1\r\nms $k 1 Z\r\na\r\nms $k 1 MX\r\na\r\nms $k 1 MX O" + strings.Repeat("9", 32) + "\r\na\r\n" +
			"ms $k 1 O" + strings.Repeat("9", 32) + "\r\na\r\nms $k 1 F-1\r\na\r\nms $k 1 Fx Cx\r\na\r\nms $k 1 Mxx\r\na\r\nms $k 1 v v\r\na\r\n" +
			"ms " + strings.Repeat("k", 251) + " 1\r\na\r\nms $k 1 a b c d e f g h i j k l m n o p q\r\na\r\nmg $k\r\n",
		want: "ERROR\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n" +
			"CLIENT_ERROR invalid flag\r\nCLIENT_ERROR invalid mode for ms M token\r\nCLIENT_ERROR invalid mode for ms M token\r\n" +
			"CLIENT_ERROR opaque token too long\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad token in command line format\r\n" +
			"CLIENT_ERROR incorrect length for M token\r\nCLIENT_ERROR duplicate flag\r\n" +
			"CLIENT_ERROR bad command line format\r\nERROR\r\nCLIENT_ERROR options flags too long\r\nERROR\r\nEN\r\n"},
	{name: "ms expired on arrival", real: true,
		in:   "ms $k 1\r\na\r\nms $k 1 T-1 c\r\nb\r\nmg $k v\r\n",
		want: "HD\r\nHD c2\r\nEN\r\n"},
	{name: "base64 keys", real: true,
		in: "ms «$k» 2 b\r\nhi\r\nmg «$k» b k v\r\nmg $k k\r\nmg «$j» b k\r\nmg #«$k»# b k\r\nms $p 1\r\na\r\nmg «$p» b k\r\n" +
			"md «$k» b k q\r\nmg «$k» b k\r\nmg @@@ b\r\nmg ==== b\r\nmg ej=U b k\r\n",
		want: "HD\r\nVA 2 k«$k» b\r\nhi\r\nHD k«$k» b\r\nEN k«$j» b\r\nHD k«$k» b\r\nHD\r\nHD k$p\r\n" +
			"EN k«$k» b\r\nCLIENT_ERROR error decoding key\r\nCLIENT_ERROR error decoding key\r\nEN kejA= b\r\n"},
	{name: "mg errors", real: true,
		in: "mg\r\nmg $k v v\r\nmg $k Z\r\nmg $k \xff\r\nmg $k Tx\r\nmg $k T\r\nmg $k Fx\r\nmg $k Mxx\r\nmg $k Mxx Cx\r\n" +
			"mg $k Jx\r\nmg $k Dx\r\nmg " + strings.Repeat("k", 251) + "\r\nmg $k a b c d e f g h i j k l m n o p q r\r\n" +
			"mg $k O" + strings.Repeat("9", 32) + "\r\nmg $k q Z\r\n",
		want: "ERROR\r\nCLIENT_ERROR duplicate flag\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR duplicate flag\r\n" +
			"CLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR bad token in command line format\r\n" +
			"CLIENT_ERROR bad command line format\r\nCLIENT_ERROR incorrect length for M token\r\nCLIENT_ERROR bad token in command line format\r\n" +
			"CLIENT_ERROR invalid numeric initial value\r\nCLIENT_ERROR invalid numeric delta value\r\nCLIENT_ERROR bad command line format\r\n" +
			"CLIENT_ERROR options flags are too long\r\nCLIENT_ERROR opaque token too long\r\nCLIENT_ERROR invalid flag\r\n"},
	{name: "mg seventeen flags", real: true,
		in:   "mg $k v f t c s k h l u O1 P L I F1 C1 M1 D1\r\nmg $k v f t c s k h l u O1 P L I F1 C1 M1 D1 J1\r\n",
		want: "EN k$k O1\r\nCLIENT_ERROR options flags are too long\r\n"},
	{name: "mg quiet pipeline", real: true,
		in:   "ms $a 1\r\nA\r\nmg $a q v k\r\nmg $b q v k\r\nmg $c q k O9\r\nmg $a q\r\nmn\r\n",
		want: "HD\r\nVA 1 k$a\r\nA\r\nHD\r\nMN\r\n"},
	{name: "mg touch", real: true,
		in:   "ms $k 1 T100\r\na\r\nmg $k T30 t\r\nmg $k t\r\nmg $k t T60\r\nmg $k T70 t\r\nmg $k T-1\r\nmg $k\r\n",
		want: "HD\r\nHD t30\r\nHD t30\r\nHD t30\r\nHD t70\r\nHD\r\nEN\r\n"},
	{name: "mg vivify", real: true,
		in:   "mg $k N30 v t\r\nmg $k N30 v t\r\nmg $k v\r\nmg $k N30 T90 t\r\nmg $j N-1 v\r\nmg $j v\r\n",
		want: "VA 0 t30 W\r\n\r\nVA 0 t30 Z\r\n\r\nVA 0 Z\r\n\r\nHD t90 Z\r\nVA 0 W\r\n\r\nEN\r\n"},
	{name: "mg recache", real: true,
		in:   "ms $k 1 T100\r\na\r\nmg $k R200 t\r\nmg $k R200 t\r\nmg $k R50\r\nms $j 1\r\na\r\nmg $j R200\r\nms $m 1 T100\r\na\r\nmg $m R50\r\nmg $m R0 T-1\r\n",
		want: "HD\r\nHD t100 W\r\nHD t100 Z\r\nHD Z\r\nHD\r\nHD\r\nHD\r\nHD\r\nHD\r\n"},
	{name: "stale and win", real: true,
		in:   "ms $k 1 T100\r\na\r\nmd $k I T30\r\nmg $k t v\r\nmg $k t\r\nmg $k R50 t\r\nmd $k I\r\nmg $k c\r\nmg $k c\r\nms $k 1\r\nb\r\nmg $k\r\n",
		want: "HD\r\nHD\r\nVA 1 t30 X W\r\na\r\nHD t30 Z X\r\nHD t30 Z X\r\nHD\r\nHD c3 X W\r\nHD c3 Z X\r\nHD\r\nHD\r\n"},
	{name: "stale set", // needs the CAS values
		in:   "ms $k 1 T100\r\na\r\nmd $k I\r\nmg $k\r\nms $k 1 I C1 T5 c\r\nb\r\nmg $k v t\r\nms $k 1 I C9 c\r\nc\r\nms $k 1 I C3 c\r\nd\r\nmg $k v\r\n",
		want: "HD\r\nHD\r\nHD X W\r\nHD c3\r\nVA 1 t100 Z X\r\nb\r\nEX c0\r\nHD c4\r\nVA 1\r\nd\r\n"},
	{name: "fetched and accessed", real: true,
		in:   "ms $k 1\r\na\r\nmg $k h\r\nmg $k h u\r\nmg $k h l\r\nms $j 1\r\na\r\nmg $j h u\r\nmg $j h\r\nms $g 1\r\na\r\nget $g\r\nmg $g h\r\nmg $v N30 h\r\nmg $v h\r\n",
		want: "HD\r\nHD h0\r\nHD h1\r\nHD h1 l0\r\nHD\r\nHD h0\r\nHD h0\r\nHD\r\nVALUE $g 0 1\r\na\r\nEND\r\nHD h1\r\nHD h0 W\r\nHD h1 Z\r\n"},
	{name: "md", real: true,
		in: "md $k\r\nms $k 1\r\na\r\nmd $k q\r\nmd $k q\r\nmd $k k O7\r\nms $k 1\r\na\r\nmd $k C0\r\nmd $k C99999999999 q\r\nmd $k T1\r\nmg $k t\r\n" +
			"md $k Z\r\nmd $k v v\r\nmd $k O" + strings.Repeat("9", 32) + "\r\nmd\r\nmd $k a b c d e f g h i j k l m n o p q r\r\nmd $k x\r\nmn\r\n",
		want: "NF\r\nHD\r\nNF\r\nNF k$k O7\r\nHD\r\nEX\r\nEX\r\nHD\r\nEN\r\n" +
			"CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR opaque token too long\r\nERROR\r\n" +
			"CLIENT_ERROR options flags too long\r\nCLIENT_ERROR invalid or duplicate flag\r\nMN\r\n"},
	{name: "md cas", // needs the CAS values
		in:   "ms $k 1\r\na\r\nmd $k C2\r\nmd $k C1 I\r\nmd $k C2 q\r\nmg $k\r\n",
		want: "HD\r\nEX\r\nHD\r\nEN\r\n"},
	{name: "ma", real: true,
		in:   "ma $n\r\nma $n q\r\nma $n N0 J10 v\r\nma $n v\r\nma $n MD D3 v\r\nma $n M- D100 v\r\nma $n q\r\nma $n q v\r\nmg $n v\r\nma $v q N0\r\nma $v q k\r\nmn\r\n",
		want: "NF\r\nNF\r\nVA 2\r\n10\r\nVA 2\r\n11\r\nVA 1\r\n8\r\nVA 1\r\n0\r\nVA 2\r\n2 \r\nHD\r\nMN\r\n"},
	{name: "ma wraps and pads", real: true,
		in:   "ms $w 20\r\n18446744073709551615\r\nma $w v\r\nmg $w v\r\nma $d MD N0 J3 v D5\r\nma $d MD D5 v c\r\n",
		want: "HD\r\nVA 1\r\n0\r\nVA 20\r\n0                   \r\nVA 1\r\n3\r\nVA 1 c4\r\n0\r\n"},
	{name: "ma flags", real: true,
		in:   "ma $t N100 J5 t\r\nma $t T300 t\r\nma $t t T50\r\nmg $t t v\r\nms $q 1 T100\r\n9\r\nma $q T300 t\r\nmg $q t v\r\nma $q k O5 c\r\nma $x k O5 c\r\n",
		want: "HD t100\r\nHD t300\r\nHD t300\r\nVA 1 t50\r\n7\r\nHD\r\nHD t300\r\nVA 2 t100\r\n10\r\nHD k$q O5 c6\r\nNF k$x O5\r\n"},
	{name: "ma errors", real: true,
		in: "ms $x 1\r\na\r\nma $x\r\nms $x 0\r\n\r\nma $x q\r\nms $c 1\r\n5\r\nma $c C0 v\r\nma $c C99999999999\r\n" +
			"ma\r\nma $n MX\r\nma $n MII\r\nma $n Z\r\nma $n Dx\r\nma $n Jx\r\nma $n O" + strings.Repeat("9", 32) + "\r\nma $n D-1\r\n",
		want: "HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nHD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n" +
			"HD\r\nVA 1\r\n6\r\nEX\r\nERROR\r\nCLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR invalid or duplicate flag\r\n" +
			"CLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n" +
			"CLIENT_ERROR opaque token too long\r\nCLIENT_ERROR invalid or duplicate flag\r\n"},
	{name: "me", real: true,
		in:   "me $k\r\nme\r\nme @@@ b\r\nme $k bb\r\n",
		want: "EN\r\nCLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\nEN\r\n"},
	{name: "meta and classic commands share items", real: true,
		in:   "set $k 3 0 2\r\nhi\r\nmg $k v f\r\nms $k 2 F4\r\nyo\r\ngets $k\r\nincr $k 1\r\nma $n N0 J7\r\nincr $n 2\r\nget $n\r\n",
		want: "STORED\r\nVA 2 f3\r\nhi\r\nHD\r\nVALUE $k 4 2 2\r\nyo\r\nEND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nHD\r\n9\r\nVALUE $n 0 1\r\n9\r\nEND\r\n"},
	{name: "explicit cas (E, later memcached)",
		in: "ms $k 1 E500 c\r\na\r\nmg $k c\r\nms $k 1 C500 E42 c\r\nb\r\nmd $k I E77\r\nmg $k c\r\nma $n N0 E9 c\r\nma $n E10 c\r\nmg $j N30 E1234 c\r\n" +
			"mg $k Ex\r\nmd $k Ex\r\nms $k 1 E-1\r\na\r\ngets $k\r\n",
		want: "HD c500\r\nHD c500\r\nHD c42\r\nHD\r\nHD c77 X W\r\nHD c9\r\nHD c10\r\nHD c1234 W\r\n" +
			"CLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR bad token in command line format\r\n" +
			"VALUE $k 0 1 77\r\nb\r\nEND\r\n"},
}

var metaFrozen = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// expandMeta substitutes "$" with prefix and «x» with x in base64.
func expandMeta(s, prefix string) string {
	s = strings.ReplaceAll(s, "$", prefix)
	for {
		i := strings.Index(s, "«")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], "»") + i
		s = s[:i] + base64.StdEncoding.EncodeToString([]byte(s[i+len("«"):j])) + s[j+len("»"):]
	}
}

func TestMetaEmbedded(t *testing.T) {
	t.Parallel()
	for _, tc := range metaCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ListenAndServe("127.0.0.1:0", Config{Now: func() time.Time { return metaFrozen }})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			prefix := fmt.Sprintf("t%x-", rand.Uint64())
			runProtoCase(t, s.Addr(), protoCase{name: tc.name, in: expandMeta(tc.in, prefix), want: expandMeta(tc.want, prefix)})
		})
	}
}

// TestMetaMemcached checks the table against a real memcached.
func TestMetaMemcached(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	addr := memcachedtest.Addr(t)
	for _, tc := range metaCases {
		if !tc.real {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("t%x-", rand.Uint64())
			in := expandMeta(tc.in, prefix) + "mn\r\n"
			want := expandMeta(tc.want, prefix) + "MN\r\n"
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := realRoundTrip(c, bufio.NewReader(c), []byte(in), strings.Count(want, "MN\r\n"))
			if err != nil {
				t.Fatalf("after %q: %v", got, err)
			}
			if err := compareMeta([]byte(want), got, newCASMap()); err != nil {
				t.Errorf("%v\ninput %.300q\n got %.300q\nwant %.300q", err, in, got, want)
			}
		})
	}
}

// TestMetaClock steps a frozen clock: TTLs, recache windows, access times.
func TestMetaClock(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 500e6, time.UTC) // half a second in
	type step struct {
		at       time.Duration
		in, want string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"ttl counts whole seconds", []step{
			{0, "ms k 1 T30\r\na\r\nmg k t\r\n", "HD\r\nHD t30\r\n"},
			{400 * time.Millisecond, "mg k t\r\n", "HD t30\r\n"},
			{600 * time.Millisecond, "mg k t\r\n", "HD t29\r\n"},
			{29*time.Second + 400*time.Millisecond, "mg k t\r\n", "HD t1\r\n"},
			{30 * time.Second, "mg k t\r\n", "EN\r\n"},
		}},
		{"recache window", []step{
			{0, "ms k 1 T100\r\na\r\nmg k R100\r\n", "HD\r\nHD\r\n"},
			{time.Second, "mg k R100 t\r\n", "HD t99 W\r\n"},
			{2 * time.Second, "mg k R100 t\r\n", "HD t98 Z\r\n"},
		}},
		{"absolute ttl", []step{
			{0, fmt.Sprintf("ms k 1 T%d\r\na\r\nmg k t\r\nmg k T%d t\r\n", t0.Unix()+50, t0.Unix()-5), "HD\r\nHD t50\r\nHD t4294967291\r\n"},
			{0, "mg k\r\n", "EN\r\n"},
		}},
		{"last access", []step{
			{0, "ms k 1\r\na\r\nmg k l h\r\n", "HD\r\nHD l0 h0\r\n"},
			{5 * time.Second, "mg k l h\r\n", "HD l5 h1\r\n"},
			{7 * time.Second, "mg k l\r\nme k\r\n", "HD l2\r\nME k exp=-1 la=2 cas=1 fetch=yes cls=1 size=61\r\n"},
			{9 * time.Second, "ms k 2\r\nbb\r\nme k\r\n", "HD\r\nME k exp=-1 la=0 cas=2 fetch=no cls=1 size=62\r\n"},
		}},
		{"me", []step{
			{0, "ms k 1 T100 F3\r\na\r\nms «j» 1 b\r\na\r\nme k\r\nme «j» b\r\nme j\r\n",
				"HD\r\nHD\r\nME k exp=-100 la=0 cas=1 fetch=no cls=1 size=65\r\nME «j» exp=-1 la=0 cas=2 fetch=no cls=1 size=61\r\nME «j» exp=-1 la=0 cas=2 fetch=no cls=1 size=61\r\n"},
			{10 * time.Second, "mg k\r\nme k\r\n", "HD\r\nME k exp=-90 la=10 cas=1 fetch=yes cls=1 size=65\r\n"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(0, false)
			for i, st := range tc.steps {
				if got := apply(t, s, t0.Add(st.at), expandMeta(st.in, "")); got != expandMeta(st.want, "") {
					t.Errorf("step %d at +%v: %q\n got %q\nwant %q", i, st.at, st.in, got, st.want)
				}
			}
		})
	}
}

// TestMetaDebugSizes checks me's cls and size against what memcached 1.6.18
// answered for the same items.
func TestMetaDebugSizes(t *testing.T) {
	s := NewStore(0, false)
	now := time.Now()
	for _, tc := range []struct{ set, want string }{
		{"ms a4 1\r\nx\r\n", "ME a4 exp=-1 la=0 cas=1 fetch=no cls=1 size=62\r\n"},
		{"ms lg1 600000 F1\r\n" + strings.Repeat("x", 600000) + "\r\n", "ME lg1 exp=-1 la=0 cas=2 fetch=no cls=39 size=600066\r\n"},
		{"ms lg2 1000 F1\r\n" + strings.Repeat("x", 1000) + "\r\n", "ME lg2 exp=-1 la=0 cas=3 fetch=no cls=12 size=1066\r\n"},
		{"ms " + strings.Repeat("k", 200) + " 1\r\nx\r\n", "ME " + strings.Repeat("k", 200) + " exp=-1 la=0 cas=4 fetch=no cls=6 size=260\r\n"},
	} {
		key := strings.Fields(tc.set)[1]
		if got := apply(t, s, now, tc.set+"me "+key+"\r\n"); got != "HD\r\n"+tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestMetaIsWrite(t *testing.T) {
	for _, tc := range []struct {
		in    string
		write bool
	}{
		{"mg k\r\n", false},
		{"mg aw== v f t c s k O1 q b h l u\r\n", false},
		{"mg k v N30\r\n", true},
		{"mg k R30\r\n", true},
		{"mg k T30\r\n", true},
		{"ms k 1\r\na\r\n", true},
		{"ms k 1 q ME\r\na\r\n", true},
		{"md k\r\n", true},
		{"md k q C5\r\n", true},
		{"ma k\r\n", true},
		{"ma k q v\r\n", true},
		{"mn\r\n", false},
		{"me k\r\n", false},
	} {
		p := NewParser(bufio.NewReader(strings.NewReader(tc.in)), Limits{})
		var cmd Command
		if err := p.Parse(&cmd); err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := cmd.IsWrite(); got != tc.write {
			t.Errorf("%q: IsWrite %v, want %v", tc.in, got, tc.write)
		}
		if !cmd.Op.IsMeta() {
			t.Errorf("%q: op %v not meta", tc.in, cmd.Op)
		}
	}
}

// metaFill is a store state with every kind of meta state: stale items,
// sent win tokens, binary keys, chosen CAS values, a counter.
const metaFill = "ms a 1 T100\r\na\r\nmd a I\r\nms b 1\r\nb\r\nmg b R30 T20\r\nmg v N30\r\n" +
	"ms «\x00bin» 3 b F7\r\nbin\r\nms e 1 E99\r\ne\r\nma n N0 J5\r\nms s 1 T100\r\ns\r\nmd s I\r\nmg s T50\r\n"

// TestMetaReadsChangeNothing: commands that are not writes leave the
// replicated state (Snapshot, Digest) alone, a stale item's win token
// included.
func TestMetaReadsChangeNothing(t *testing.T) {
	s := NewStore(0, false)
	now := time.Now()
	apply(t, s, now, expandMeta(metaFill, ""))
	var before bytes.Buffer
	if err := s.Snapshot(&before); err != nil {
		t.Fatal(err)
	}
	reads := expandMeta("mg a v c t k h l\r\nmg a\r\nmg a\r\nmg b v f s\r\nmg «\x00bin» b k v\r\nmg e c u\r\nmg n v q\r\nmg x q k\r\n"+
		"me a\r\nme «\x00bin» b\r\nmn\r\nget a b n\r\ngets e\r\n", "")
	p := NewParser(bufio.NewReader(strings.NewReader(reads)), Limits{})
	var cmd Command
	var out []byte
	for {
		if err := p.Parse(&cmd); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		if cmd.IsWrite() {
			t.Fatalf("%s is a write", cmd.Op)
		}
		out = s.Exec(out, &cmd, now.UnixNano())
	}
	want := expandMeta("VA 1 c2 t100 ka h0 l0 X W\r\na\r\nHD Z X\r\nHD Z X\r\nVA 1 f0 s1\r\nb\r\nVA 3 k«\x00bin» b\r\nbin\r\nHD c99\r\nVA 1\r\n5\r\n"+
		"ME a exp=-100 la=0 cas=2 fetch=yes cls=1 size=61\r\nME «\x00bin» exp=-1 la=0 cas=5 fetch=yes cls=1 size=70\r\nMN\r\n"+
		"VALUE a 0 1\r\na\r\nVALUE b 0 1\r\nb\r\nVALUE n 0 1\r\n5\r\nEND\r\nVALUE e 0 1 99\r\ne\r\nEND\r\n", "")
	if string(out) != want {
		t.Errorf("replies\n got %q\nwant %q", out, want)
	}
	var after bytes.Buffer
	if err := s.Snapshot(&after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Error("reads changed the snapshot")
	}
}

// TestMetaReplicas applies the writes of a command stream on a leader
// and, through AppendRequest and a new parse, on a follower, while reads go
// to the leader only: the two must stay equal.
func TestMetaReplicas(t *testing.T) {
	leader, follower := NewStore(0, true), NewStore(0, true)
	now := time.Now().UnixNano()
	in := expandMeta(metaFill+"mg a v\r\nmg a R10\r\nmg s v\r\nmg s T10\r\nmd s I\r\nmg s\r\nmg s N5\r\nms a 2 I C1\r\nxx\r\nmg a\r\n"+
		"ma n D3 MD v\r\nma n D100\r\nmg n v\r\nms «\x00bin» 1 MA b\r\nz\r\nmd b q\r\nms e 1 MR E7\r\nf\r\nmg e c\r\n", "")
	p := NewParser(bufio.NewReader(strings.NewReader(in)), Limits{})
	var cmd Command
	var req []byte
	for {
		if err := p.Parse(&cmd); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			break
		}
		leader.Exec(nil, &cmd, now)
		if !cmd.IsWrite() {
			continue
		}
		req = cmd.AppendRequest(req[:0])
		fp := NewParser(bufio.NewReader(bytes.NewReader(req)), Limits{})
		var fcmd Command
		if err := fp.Parse(&fcmd); err != nil {
			t.Fatalf("replay %q: %v", req, err)
		}
		follower.Exec(nil, &fcmd, now)
		if leader.Digest() != follower.Digest() {
			t.Fatalf("replicas differ after %q", req)
		}
	}
	// The follower answers as the leader once restored from its snapshot.
	var snap bytes.Buffer
	if err := leader.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	restored := NewStore(0, true)
	if err := restored.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	if restored.Digest() != leader.Digest() {
		t.Fatal("restored store differs")
	}
	q := expandMeta("mg a v c k\r\nmg b c k\r\nmg «\x00bin» b v k c f\r\nmg e c v\r\nmg n v c\r\nms z 1\r\nz\r\nmg z c\r\n", "")
	if got, want := apply(t, restored, time.Unix(0, now), q), apply(t, follower, time.Unix(0, now), q); got != want {
		t.Errorf("restored store answers\n%q\nfollower\n%q", got, want)
	}
}

// TestMetaConcurrentWin: reads of a stale item, concurrent, under the
// shared lock: one of them, and only one, gets the win token.
func TestMetaConcurrentWin(t *testing.T) {
	s := NewStore(0, false)
	now := time.Now()
	apply(t, s, now, "ms k 1\r\na\r\nmd k I\r\n")
	var mu sync.Mutex
	wins := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			p := NewParser(bufio.NewReader(strings.NewReader(strings.Repeat("mg k v c h l\r\nme k\r\n", 200))), Limits{})
			var cmd Command
			var out []byte
			for p.Parse(&cmd) == nil {
				out = s.Exec(out[:0], &cmd, now.UnixNano())
				if bytes.HasSuffix(bytes.SplitN(out, []byte("\r\n"), 2)[0], []byte(" W")) {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("%d reads won the stale item, want 1", wins)
	}
}

func TestMetaParse(t *testing.T) {
	tests := []struct {
		in      string
		op      Op
		key     string
		value   string
		err     error
		nextKey string // the key of the command after, parsed next
	}{
		{in: "mg k v\r\n", op: OpMetaGet, key: "k"},
		{in: "mg " + base64.StdEncoding.EncodeToString([]byte("a b\x00")) + " b\r\n", op: OpMetaGet, key: "a b\x00"},
		{in: "ms k 3 T5\r\nabc\r\nmg n\r\n", op: OpMetaSet, key: "k", value: "abc", nextKey: "n"},
		{in: "ms k 3 Z\r\nabc\r\nmg n\r\n", err: errMetaInvalidFlag, nextKey: "n"},
		{in: "ms k 3 MX\r\nabc\r\nmg n\r\n", err: errMetaSetMode, nextKey: "n"},
		{in: "ms k 2\r\nabc\r\n", err: ErrBadDataChunk},
		{in: "ms k x\r\nmg n\r\n", err: ErrBadFormat, nextKey: "n"},
		{in: "ms k 2000000 b\r\n" + strings.Repeat("x", 2000000) + "\r\nmg n\r\n", err: errMetaDecodeKey, nextKey: "n"},
		{in: "ms az== 2000000 b\r\n" + strings.Repeat("x", 2000000) + "\r\nmg n\r\n", op: OpMetaSet, key: "k", err: ErrTooLarge, nextKey: "n"},
		{in: "ms k 5\r\nab", err: io.ErrUnexpectedEOF},
		{in: "ms k 5 Z\r\nab", err: io.ErrUnexpectedEOF},
		{in: "md k O" + strings.Repeat("o", 32) + "\r\n", err: errMetaOpaqueTooLong},
		{in: "mg k O" + strings.Repeat("o", 32) + "\r\n", op: OpMetaGet, key: "k"}, // answered by Exec
		{in: "ma k MX\r\n", err: errMetaArithMode},
		{in: "ma k Z\r\n", err: errMetaBadFlag},
		{in: "me k b\r\n", err: ErrBadFormat},
		{in: "me k bb\r\n", op: OpMetaDebug, key: "k"},
		{in: "me az== b\r\n", op: OpMetaDebug, key: "k"},
		{in: "mn x y\r\n", op: OpMetaNoop},
	}
	for _, tc := range tests {
		p := NewParser(bufio.NewReaderSize(strings.NewReader(tc.in), 16), Limits{})
		var cmd Command
		err := p.Parse(&cmd)
		if !errors.Is(err, tc.err) {
			t.Errorf("%.40q: err %v, want %v", tc.in, err, tc.err)
			continue
		}
		if cmd.NoReply {
			t.Errorf("%.40q: noreply", tc.in)
		}
		if err == nil || err == ErrTooLarge {
			if cmd.Op != tc.op || string(cmd.Key()) != tc.key || string(cmd.Value) != tc.value {
				t.Errorf("%.40q: op %v key %q value %q", tc.in, cmd.Op, cmd.Key(), cmd.Value)
			}
		}
		if tc.nextKey != "" {
			if err := p.Parse(&cmd); err != nil || string(cmd.Key()) != tc.nextKey {
				t.Errorf("%.40q: next command %v %q", tc.in, err, cmd.Key())
			}
		}
	}
}

func TestMetaAppendRequest(t *testing.T) {
	for _, in := range []string{"ms k 3 T5 c\r\nabc\r\n", "ms az== 0 b q\r\n\r\n", "mg k v N30\r\n", "md k I q\r\n", "ma k D5 MD\r\n", "mn\r\n"} {
		p := NewParser(bufio.NewReader(strings.NewReader(in)), Limits{})
		var cmd Command
		if err := p.Parse(&cmd); err != nil {
			t.Fatal(err)
		}
		if got := cmd.AppendRequest(nil); string(got) != in {
			t.Errorf("AppendRequest %q, want %q", got, in)
		}
	}
}

// TestMetaParseAllocs: once its buffers grew, a Command parses meta
// commands, base64 keys included, without allocating; mg replies do not
// allocate either.
func TestMetaParseAllocs(t *testing.T) {
	one := "mg key v c t k O123 q\r\nmg a2V5 b v k s f\r\nms key 10 T30 F5 c\r\n0123456789\r\nmd key q C1\r\nma n N0 J5 v\r\nmn\r\nme a2V5 b\r\n"
	in := strings.Repeat(one, 200)
	src := strings.NewReader(in)
	br := bufio.NewReaderSize(src, 4096)
	p := NewParser(br, Limits{})
	var cmd Command
	parseAll := func() {
		src.Reset(in)
		br.Reset(src)
		for {
			if err := p.Parse(&cmd); err != nil {
				if err != io.EOF {
					t.Fatal(err)
				}
				return
			}
		}
	}
	parseAll()
	if n := testing.AllocsPerRun(20, parseAll); n != 0 {
		t.Errorf("%.1f allocations per 1400 commands, want 0", n)
	}

	s := NewStore(0, false)
	now := time.Now()
	apply(t, s, now, "ms a2V5 10 b\r\n0123456789\r\n")
	p = NewParser(bufio.NewReader(strings.NewReader("mg a2V5 b v c t k f s h l O12\r\n")), Limits{})
	if err := p.Parse(&cmd); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { out = s.Exec(out[:0], &cmd, now.UnixNano()) }); n != 0 {
		t.Errorf("%.1f allocations per mg, want 0", n)
	}
}

func TestMetaNumbers(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ll     int64
		llOK   bool
		ull    uint64
		ullOK  bool
		reason string
	}{
		{"5", 5, true, 5, true, ""},
		{"+5", 5, true, 5, true, ""},
		{"\t 5", 5, true, 5, true, "leading white space"},
		{"5\t", 5, true, 5, true, "trailing white space"},
		{"5x", 0, false, 0, false, ""},
		{"", 0, false, 0, false, ""},
		{"-", 0, false, 0, false, ""},
		{"-5", -5, true, 0, false, "unsigned: negative once wrapped"},
		{"-0", 0, true, 0, true, ""},
		{"-9223372036854775809", 0, false, 1<<63 - 1, true, "strtoull wraps, and the result looks positive"},
		{"18446744073709551615", 0, false, 1<<64 - 1, true, ""},
		{"18446744073709551616", 0, false, 0, false, "ERANGE"},
		{"-9223372036854775808", -1 << 63, true, 0, false, ""},
	} {
		ll, llOK := cStrtoll([]byte(tc.in))
		ull, ullOK := cStrtoull([]byte(tc.in))
		if ll != tc.ll || llOK != tc.llOK || ull != tc.ull || ullOK != tc.ullOK {
			t.Errorf("%q (%s): strtoll %d %v, strtoull %d %v", tc.in, tc.reason, ll, llOK, ull, ullOK)
		}
	}
}

func TestMetaBase64(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"YWJj", "abc", true},
		{"YWI=", "ab", true},
		{"YQ==", "a", true},
		{"#Y#W#J#j#", "abc", true}, // bytes outside the alphabet are skipped
		{"YQ==YWJj", "a", true},    // decoding stops after padding
		{"ej=U", "z0", true},       // "=" counts as a zero and as padding
		{"YWJ", "", false},
		{"====", "", false},
		{"", "", false},
		{"@@@@", "", false},
	} {
		got, ok := base64DecodeLenient(nil, []byte(tc.in))
		if ok != tc.ok || ok && string(got) != tc.want {
			t.Errorf("%q: %q %v, want %q %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for _, s := range []string{"", "a", "ab", "abc", "abcd", "\x00\xff\x10"} {
		if got, want := string(appendBase64(nil, s)), base64.StdEncoding.EncodeToString([]byte(s)); got != want {
			t.Errorf("encode %q: %q, want %q", s, got, want)
		}
	}
}

// FuzzMeta: whatever the input, parsing and running meta commands never
// panics, and commands that are not writes never change the replicated
// state.
func FuzzMeta(f *testing.F) {
	for _, tc := range metaCases {
		f.Add([]byte(expandMeta(tc.in, "")))
	}
	f.Add([]byte(expandMeta(metaFill, "")))
	lim := Limits{MaxLineLen: 256, MaxValueLen: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewStore(1<<16, true)
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
		apply(t, s, time.Unix(0, now), expandMeta(metaFill, ""))
		p := NewParser(bufio.NewReader(bytes.NewReader(data)), lim)
		var cmd Command
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("no progress after %d commands", i)
			}
			err := p.Parse(&cmd)
			var pe *ProtocolError
			switch {
			case err == nil:
				before := s.Digest()
				s.Exec(nil, &cmd, now)
				if !cmd.IsWrite() && s.Digest() != before {
					t.Fatalf("%s, not a write, changed the store", cmd.AppendRequest(nil))
				}
			case errors.As(err, &pe):
				if pe.Close {
					return
				}
			default:
				return
			}
			now += 1e8
		}
	})
}
