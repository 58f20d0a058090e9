package store

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestNotifyConfig: notify-keyspace-events parses and prints as Redis 7.0's
// CONFIG SET and GET do, travels through gomu.config as a number, and
// survives a snapshot; the events follow a restored store's setting.
func TestNotifyConfig(t *testing.T) {
	for _, tc := range []struct{ in, out, err string }{
		{"", "", ""}, {"KEA", "AKE", ""}, {"A", "A", ""}, {"Kg$lshzxetd", "AK", ""}, {"Kgm", "gKm", ""},
		{"Kn", "nK", ""}, {"AKEmn", "AKEm", ""}, {"Ex", "xE", ""}, {"$lshzxeKE", "$lshzxeKE", ""},
		{"xyz", "", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."}, {"5", "", "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."},
	} {
		canon, v, errText := ParseConfig("notify-keyspace-events", []byte(tc.in))
		if errText != tc.err {
			t.Errorf("%q: error %q, want %q", tc.in, errText, tc.err)
			continue
		}
		if errText != "" {
			continue
		}
		s := New()
		env := &Env{Rand: rand.New(rand.NewPCG(1, 2))}
		if got := string(execArgs(s, env, []string{ConfigCommand, canon, itoa(v)})); got != "+OK\r\n" {
			t.Fatalf("%q: gomu.config answered %q", tc.in, got)
		}
		if got, _ := s.ConfigGet("notify-keyspace-events"); got != tc.out {
			t.Errorf("%q: CONFIG GET %q, want %q", tc.in, got, tc.out)
		}
		var buf bytes.Buffer
		if err := s.Snapshot(&buf); err != nil {
			t.Fatal(err)
		}
		r := New()
		if err := r.Restore(&buf); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.ConfigGet("notify-keyspace-events"); got != tc.out {
			t.Errorf("%q: restored CONFIG GET %q, want %q", tc.in, got, tc.out)
		}
		var evs []string
		env.Publish = func(ch, msg []byte) int { evs = append(evs, string(ch)+" "+string(msg)); return 0 }
		execArgs(r, env, []string{"set", "k", "v"})
		if (v&(notifyString|notifyNew) != 0 && v&(notifyKeyspace|notifyKeyevent) != 0) != (len(evs) > 0) {
			t.Errorf("%q: SET on the restored store published %q", tc.in, evs)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
