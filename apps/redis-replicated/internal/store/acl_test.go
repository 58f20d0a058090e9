package store

import (
	"bytes"
	"strings"
	"testing"
)

func aclExec(t *testing.T, s *Store, cmd string) string {
	t.Helper()
	var args [][]byte
	for _, a := range strings.Fields(cmd) {
		args = append(args, []byte(a))
	}
	return string(s.Exec(nil, &Env{}, args))
}

func aclList(s *Store) string {
	var b strings.Builder
	for _, n := range s.ACLUserNames() {
		b.WriteString(s.ACLUser(n).ACLDescription() + "\n")
	}
	return b.String()
}

// TestACLSnapshot: the users survive Snapshot and Restore (the optional
// 'A' section, which a store with only the unchanged default user does
// not write, so its snapshot is as before ACLs), and a restore keeps the
// user objects connections hold, deleting those the snapshot lacks.
func TestACLSnapshot(t *testing.T) {
	s := New()
	var plain bytes.Buffer
	if err := s.Snapshot(&plain); err != nil {
		t.Fatal(err)
	}
	if got := aclExec(t, s, "gomu.acl setuser bob on >pw %R~r* ~k* &ch +@read -get +client|id +select|0"); got != "+OK\r\n" {
		t.Fatalf("setuser: %q", got)
	}
	aclExec(t, s, "gomu.acl setuser eve on nopass")
	aclExec(t, s, "gomu.acl setuser default >x")
	var snap bytes.Buffer
	if err := s.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(snap.Bytes(), plain.Bytes()) {
		t.Fatal("the snapshot has no ACL section")
	}
	r := New()
	if err := r.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got, want := aclList(r), aclList(s); got != want {
		t.Fatalf("restored users:\n%s\nwant\n%s", got, want)
	}
	if r.Digest() != s.Digest() {
		t.Fatal("digests differ after restore")
	}
	// Restoring the old snapshot over s: bob and eve go, default is reset,
	// and the objects connections hold follow.
	bob, def := s.ACLUser("bob"), s.ACLUser("default")
	if err := s.Restore(bytes.NewReader(plain.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !bob.Deleted() || s.ACLUser("bob") != nil {
		t.Fatal("bob survived a snapshot without him")
	}
	if s.ACLUser("default") != def || !def.Unrestricted() {
		t.Fatal("the default user was not reset in place")
	}
}

// TestACLCheck covers the permission checks (commands, subcommands,
// first arguments, read/write key patterns, channels).
func TestACLCheck(t *testing.T) {
	KeyPositions = func(c *Command, args [][]byte) ([]int, bool) {
		var pos []int
		for i := c.FirstKey; i > 0 && i < len(args); i++ {
			pos = append(pos, i)
			if c.LastKey > 0 && i >= c.LastKey {
				break
			}
		}
		return pos, true
	}
	defer func() { KeyPositions = nil }()
	s := New()
	aclExec(t, s, "gomu.acl setuser u on +@read +set +client|id +select|0 +publish +psubscribe %R~r* %W~w* ~b* &ch* &p*")
	u := s.ACLUser("u")
	for _, tc := range []struct {
		cmd  string
		want ACLDenial
		at   int
	}{
		{"get r1", ACLOK, 0}, {"get w1", ACLDeniedKey, 1}, {"set w1 v", ACLOK, 0}, {"set r1 v", ACLDeniedKey, 1},
		{"get b", ACLOK, 0}, {"set b v", ACLOK, 0}, {"hset b f v", ACLDeniedCommand, 0},
		{"client id", ACLOK, 0}, {"client kill x", ACLDeniedCommand, 0}, {"select 0", ACLOK, 0}, {"select 1", ACLDeniedCommand, 0},
		{"publish ch1 m", ACLOK, 0}, {"publish x m", ACLDeniedChannel, 1}, {"psubscribe p*", ACLOK, 0}, {"psubscribe p1", ACLDeniedChannel, 1},
		{"auth x", ACLOK, 0},
	} {
		var args [][]byte
		for _, a := range strings.Fields(tc.cmd) {
			args = append(args, []byte(a))
		}
		if d, at := u.Check(args); d != tc.want || at != tc.at {
			t.Errorf("%s: %v at %d, want %v at %d", tc.cmd, d, at, tc.want, tc.at)
		}
	}
}
