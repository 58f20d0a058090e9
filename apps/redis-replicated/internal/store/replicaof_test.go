package store

import (
	"bytes"
	"testing"
)

// TestReplicaOfState runs gomu.replicaof's subcommands in order: the role,
// the link state and the wrapped commands of the link's epoch only, and
// the snapshot (and digest) carrying the role, also with an ACL section
// before it.
func TestReplicaOfState(t *testing.T) {
	s, e := fillStore(t)
	plain := s.Digest()
	var epoch string
	steps := []struct {
		args []string
		want string
	}{
		{[]string{ReplicaOfCommand, "localhost", "6379"}, "+OK\r\n"},
		{[]string{ReplicaOfCommand, "localhost", "6379"}, "+OK Already connected to specified master\r\n"},
		{[]string{ReplicaOfCommand, "run", "EPOCH", "set", "k", "v"}, "+OK\r\n"},
		{[]string{ReplicaOfCommand, "run", "1", "set", "k", "stale"}, "-ERR gomu: stale replication link\r\n"},
		{[]string{ReplicaOfCommand, "run", "EPOCH", ACLCommand, "x"}, ""},
		{[]string{ReplicaOfCommand, "link", "EPOCH", "up"}, "+OK\r\n"},
		{[]string{ReplicaOfCommand, "link", "2", "down"}, "+OK\r\n"},
		{[]string{"get", "k"}, "$1\r\nv\r\n"},
		{[]string{ReplicaOfCommand, "a", "b", "c", "d"}, "-ERR syntax error\r\n"},
	}
	for i, st := range steps {
		args := append([]string(nil), st.args...)
		for j, a := range args {
			if a == "EPOCH" {
				args[j] = epoch
			}
		}
		got := string(execArgs(s, e, args))
		if st.want == "" {
			if got[0] != '-' {
				t.Errorf("step %d %q: %q, want an error", i, args, got)
			}
		} else if got != st.want {
			t.Errorf("step %d %q: %q, want %q", i, args, got, st.want)
		}
		if i == 0 {
			epoch = s.Master().EpochString()
		}
	}
	m := s.Master()
	if m == nil || m.Host != "localhost" || m.Port != "6379" || !m.LinkUp {
		t.Fatalf("master: %+v", m)
	}
	if s.Digest() == plain {
		t.Error("the role is not in the digest")
	}
	execArgs(s, e, []string{ACLCommand, "setuser", "u", "on"})
	var buf bytes.Buffer
	if err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := r.Master(); got == nil || *got != *m {
		t.Fatalf("restored master %+v, want %+v", got, m)
	}
	if r.Digest() != s.Digest() {
		t.Error("restored digest differs")
	}
	if got := string(execArgs(r, e, []string{ReplicaOfCommand, "NO", "ONE"})); got != "+OK\r\n" || r.Master() != nil {
		t.Fatalf("NO ONE: %q, master %+v", got, r.Master())
	}
	buf.Reset()
	if err := r.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if err := New().Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("a master's snapshot: %v", err)
	}
}
