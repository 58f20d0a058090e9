package store

import (
	"testing"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// TestMigrated: ReadMigration gives DUMP's payload and the key's expiry;
// gomu.migrated deletes a key only while its stamp still holds (not one
// written since MIGRATE read it, nor one gone), and replies with the keys
// it deleted.
func TestMigrated(t *testing.T) {
	s, e := New(), &Env{NowMs: 1_700_000_000_000}
	exec(s, e, "SET", "a", "1")
	exec(s, e, "PEXPIREAT", "a", "1700000100000")
	exec(s, e, "RPUSH", "b", "x", "y")
	exec(s, e, "SET", "c", "3")
	var stamps [][]byte
	for _, k := range []string{"a", "b", "c", "gone"} {
		m, ok, msg := s.ReadMigration(e, 0, []byte(k))
		if msg != "" || ok != (k != "gone") {
			t.Fatalf("ReadMigration(%s): %v %q", k, ok, msg)
		}
		if !ok {
			stamps = append(stamps, make([]byte, 32))
			continue
		}
		if dump := exec(s, e, "DUMP", k); dump != string(resp.AppendBulk(nil, m.Payload)) {
			t.Errorf("%s's payload %q, DUMP %q", k, m.Payload, dump)
		}
		if k == "a" && m.ExpireAt != 1_700_000_100_000 || k != "a" && m.ExpireAt != 0 {
			t.Errorf("%s's ExpireAt %d", k, m.ExpireAt)
		}
		stamps = append(stamps, m.Stamp[:])
	}
	exec(s, e, "SET", "c", "changed") // written since: stays
	got := exec(s, e, MigratedCommand, "a", string(stamps[0]), "b", string(stamps[1]), "c", string(stamps[2]), "gone", string(stamps[3]))
	if want := "*2\r\n$1\r\na\r\n$1\r\nb\r\n"; got != want {
		t.Errorf("gomu.migrated: %q, want %q", got, want)
	}
	if got := exec(s, e, "EXISTS", "a", "b", "c"); got != ":1\r\n" {
		t.Errorf("EXISTS a b c after: %q, want c only", got)
	}
	if got := exec(s, e, MigratedCommand, "a"); got != "-ERR wrong number of arguments for 'gomu.migrated' command\r\n" {
		t.Errorf("gomu.migrated without a stamp: %q", got)
	}
}
