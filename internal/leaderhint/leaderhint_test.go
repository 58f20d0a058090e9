package leaderhint

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		msg      string
		wantID   int
		wantAddr string
	}{
		{"READONLY You can't write against a read only replica. " + Format(2, "10.0.0.2:6379"), 2, "10.0.0.2:6379"},
		{"TRYAGAIN gomu: this replica is catching up. " + Format(3, "[::1]:6381"), 3, "[::1]:6381"},
		{"READONLY You can't write against a read only replica. leader=none", 0, ""},
		{"TRYAGAIN gomu: no leader (election in progress)", 0, ""},
		{"READONLY … leader=0 addr=", 0, ""},
		{"READONLY … leader=x addr=h:1", 0, "h:1"},
	} {
		id, addr := Parse(tc.msg)
		if id != tc.wantID || addr != tc.wantAddr {
			t.Errorf("Parse(%q) = %d, %q; want %d, %q", tc.msg, id, addr, tc.wantID, tc.wantAddr)
		}
	}
}
