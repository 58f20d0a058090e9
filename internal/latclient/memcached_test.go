package latclient

import (
	"bufio"
	"reflect"
	"strings"
	"testing"
)

func TestMemcacheAppend(t *testing.T) {
	var mc memcacheCodec
	out := mc.appendSet(nil, []byte("k1"), []byte("hello"))
	out = mc.appendSet(out, []byte("k2"), nil)
	out = mc.appendGet(out, []byte("k1"))
	if want := "set k1 0 0 5\r\nhello\r\nset k2 0 0 0\r\n\r\nget k1\r\n"; string(out) != want {
		t.Fatalf("requests %q, want %q", out, want)
	}
}

func TestMemcacheClassify(t *testing.T) {
	const hint = " leader=2 addr=127.0.0.1:11212"
	for _, tc := range []struct {
		reply    string
		want     fault
		errReply bool
	}{
		// The replicated memcached's faults.
		{"SERVER_ERROR gomu: not the leader" + hint + "\r\n",
			fault{readOnly, 2, "127.0.0.1:11212", "SERVER_ERROR gomu: not the leader" + hint}, false},
		{"SERVER_ERROR gomu: not the leader leader=none\r\n",
			fault{readOnly, 0, "", "SERVER_ERROR gomu: not the leader leader=none"}, false},
		{"SERVER_ERROR gomu: no leader (election in progress)\r\n",
			fault{tryAgain, 0, "", "SERVER_ERROR gomu: no leader (election in progress)"}, false},
		{"SERVER_ERROR gomu: this replica is catching up." + hint + "\r\n",
			fault{tryAgain, 2, "127.0.0.1:11212", "SERVER_ERROR gomu: this replica is catching up." + hint}, false},
		{"SERVER_ERROR gomu: this replica is catching up. leader=0 addr=\r\n",
			fault{tryAgain, 0, "", "SERVER_ERROR gomu: this replica is catching up. leader=0 addr="}, false},
		{"SERVER_ERROR gomu: replication timed out\r\n",
			fault{tryAgain, 0, "", "SERVER_ERROR gomu: replication timed out"}, false},
		{"SERVER_ERROR gomu: this replica is paused\r\n",
			fault{tryAgain, 0, "", "SERVER_ERROR gomu: this replica is paused"}, false},
		{"SERVER_ERROR gomu: this replica is shutting down\r\n",
			fault{tryAgain, 0, "", "SERVER_ERROR gomu: this replica is shutting down"}, false},
		{"SERVER_ERROR gomu: not the leaderX leader=3 addr=h:3\r\n",
			fault{tryAgain, 3, "h:3", "SERVER_ERROR gomu: not the leaderX leader=3 addr=h:3"}, false},
		// Error replies: counted, the request over.
		{"SERVER_ERROR out of memory storing object\r\n", fault{}, true},
		{"SERVER_ERROR object too large for cache" + hint + "\r\n", fault{}, true},
		{"SERVER_ERROR gomux: leader=1 addr=a:1\r\n", fault{}, true},
		{"CLIENT_ERROR bad data chunk\r\n", fault{}, true},
		{"ERROR\r\n", fault{}, true},
		{"ERROR Too many open connections\r\n", fault{}, true},
		// Answers, a miss included.
		{"STORED\r\n", fault{}, false},
		{"END\r\n", fault{}, false},
		{"VALUE k 0 5\r\nERROR\r\nEND\r\n", fault{}, false},
		{"VALUE k 0 27\r\nSERVER_ERROR gomu: paused\r\nEND\r\n", fault{}, false},
		{"NOT_STORED\r\n", fault{}, false},
		{"ERRORS\r\n", fault{}, false},
	} {
		f, errReply := memcacheCodec{}.classify([]byte(tc.reply))
		if f != tc.want || errReply != tc.errReply {
			t.Errorf("classify(%q) = %+v, %v; want %+v, %v", tc.reply, f, errReply, tc.want, tc.errReply)
		}
	}
}

func TestMemcacheReadReply(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // the reply read; "" with err
		err      string // part of the error
		rest     string // left in the reader
	}{
		{name: "stored", in: "STORED\r\nEND\r\n", want: "STORED\r\n", rest: "END\r\n"},
		{name: "miss", in: "END\r\n", want: "END\r\n"},
		{name: "hit", in: "VALUE k 0 5\r\nhe\r\no\r\nEND\r\nSTORED\r\n", want: "VALUE k 0 5\r\nhe\r\no\r\nEND\r\n", rest: "STORED\r\n"},
		{name: "hit with cas, empty value", in: "VALUE k 7 0 99\r\n\r\nEND\r\n", want: "VALUE k 7 0 99\r\n\r\nEND\r\n"},
		{name: "two values", in: "VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n", want: "VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n"},
		{name: "stats", in: "STAT gomu_id 1\r\nSTAT gomu_leader_addr \r\nEND\r\nX", want: "STAT gomu_id 1\r\nSTAT gomu_leader_addr \r\nEND\r\n", rest: "X"},
		{name: "error line", in: "SERVER_ERROR gomu: this replica is paused\r\n", want: "SERVER_ERROR gomu: this replica is paused\r\n"},
		{name: "no CRLF", in: "STORED\n", err: "not ended by CRLF"},
		{name: "bad length", in: "VALUE k 0 x\r\nab\r\nEND\r\n", err: "malformed"},
		{name: "no length", in: "VALUE k 0\r\nEND\r\n", err: "malformed"},
		{name: "length over maxBulk", in: "VALUE k 0 999999999999\r\n", err: "malformed"},
		{name: "value not ended", in: "VALUE k 0 2\r\nabc\r\nEND\r\n", err: "not followed by CRLF"},
		{name: "value cut short", in: "VALUE k 0 20\r\nabc\r\n", err: "unexpected EOF"},
		{name: "no END", in: "VALUE k 0 1\r\na\r\nSTORED\r\n", err: "where END was due"},
		{name: "closed", in: "", err: "EOF"},
		{name: "line cut short", in: "STOR", err: "EOF"},
	} {
		br := bufio.NewReader(strings.NewReader(tc.in))
		got, err := memcacheCodec{}.readReply(br, []byte("old"))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want one with %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case string(got) != "old"+tc.want:
			t.Errorf("%s: read %q, want %q appended to old", tc.name, got, tc.want)
		default:
			rest := make([]byte, br.Buffered())
			_, _ = br.Read(rest)
			if string(rest) != tc.rest {
				t.Errorf("%s: left %q, want %q", tc.name, rest, tc.rest)
			}
		}
	}
}

func TestMemcacheClusterInfo(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		want        clusterInfo
	}{
		{"replica", "STAT gomu_id 1\r\nSTAT gomu_leader_id 2\r\nSTAT gomu_leader_addr 127.0.0.1:11212\r\n" +
			"STAT gomu_replica_addrs 1=127.0.0.1:11211,2=127.0.0.1:11212,3=[::1]:11213\r\nEND\r\n",
			clusterInfo{1, 2, "127.0.0.1:11212", []member{{1, "127.0.0.1:11211"}, {2, "127.0.0.1:11212"}, {3, "[::1]:11213"}}}},
		{"no leader, address empty", "STAT gomu_id 3\r\nSTAT gomu_leader_id 0\r\nSTAT gomu_leader_addr \r\nSTAT gomu_replica_addrs 3=h:3\r\nEND\r\n",
			clusterInfo{3, 0, "", []member{{3, "h:3"}}}},
		{"no leader, address absent", "STAT gomu_id 3\r\nSTAT gomu_leader_id 0\r\nSTAT gomu_leader_addr\r\nEND\r\n",
			clusterInfo{self: 3}},
		{"leader without its address", "STAT gomu_id 1\r\nSTAT gomu_leader_id 2\r\nEND\r\n",
			clusterInfo{self: 1, leader: 2}},
		{"malformed entries skipped", "STAT gomu_replica_addrs 1=a:1,x=b:2,0=c:3,4=,5,6=f:6\r\nEND\r\n",
			clusterInfo{members: []member{{1, "a:1"}, {6, "f:6"}}}},
		// What memcached 1.6.18 answers to stats gomu.
		{"memcached", "ERROR\r\n", clusterInfo{}},
		{"other stats", "STAT pid 1\r\nSTAT uptime 5\r\nEND\r\n", clusterInfo{}},
		{"a fault", "SERVER_ERROR gomu: not the leader leader=2 addr=h:2\r\n", clusterInfo{}},
		{"nothing", "END\r\n", clusterInfo{}},
	} {
		if got := (memcacheCodec{}).clusterInfo([]byte(tc.reply)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: clusterInfo = %+v; want %+v", tc.name, got, tc.want)
		}
	}
}
