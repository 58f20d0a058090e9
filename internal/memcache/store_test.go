package memcache

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// apply parses every command of in and applies it to s at time now,
// returning the replies.
func apply(t *testing.T, s *Store, now time.Time, in string) string {
	t.Helper()
	p := NewParser(bufio.NewReader(strings.NewReader(in)), Limits{})
	var out []byte
	var cmd Command
	for {
		err := p.Parse(&cmd)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		out = s.Exec(out, &cmd, now.UnixNano())
	}
	return string(out)
}

// TestStoreExpiry steps a clock through a table: each step runs commands
// at an offset from the start and expects replies.
func TestStoreExpiry(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	abs := func(d time.Duration) string { return fmt.Sprint(t0.Add(d).Unix()) }
	type step struct {
		at   time.Duration
		in   string
		want string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"relative", []step{
			{0, "set k 0 10 1\r\na\r\n", "STORED\r\n"},
			{9 * time.Second, "get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n"},
			{10 * time.Second, "get k\r\n", "END\r\n"},
		}},
		{"30 days is relative", []step{
			{0, "set k 0 2592000 1\r\na\r\n", "STORED\r\n"},
			{29 * 24 * time.Hour, "get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n"},
			{30 * 24 * time.Hour, "get k\r\n", "END\r\n"},
		}},
		{"absolute", []step{
			{0, "set k 0 " + abs(time.Hour) + " 1\r\na\r\n", "STORED\r\n"},
			{time.Hour - time.Second, "get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n"},
			{time.Hour, "get k\r\n", "END\r\n"},
		}},
		{"touch extends", []step{
			{0, "set k 0 10 1\r\na\r\n", "STORED\r\n"},
			{5 * time.Second, "touch k 10\r\n", "TOUCHED\r\n"},
			{14 * time.Second, "get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n"},
			{15 * time.Second, "get k\r\ntouch k 10\r\n", "END\r\nNOT_FOUND\r\n"},
		}},
		{"gat extends", []step{
			{0, "set k 0 10 1\r\na\r\n", "STORED\r\n"},
			{5 * time.Second, "gat 0 k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n"},
			{time.Hour, "get k\r\n", "VALUE k 0 1\r\na\r\nEND\r\n"},
		}},
		{"append keeps expiry", []step{
			{0, "set k 0 10 1\r\na\r\n", "STORED\r\n"},
			{time.Second, "append k 0 0 1\r\nb\r\n", "STORED\r\n"},
			{10 * time.Second, "get k\r\n", "END\r\n"},
		}},
		{"incr keeps expiry", []step{
			{0, "set n 0 10 1\r\n1\r\n", "STORED\r\n"},
			{time.Second, "incr n 1\r\n", "2\r\n"},
			{10 * time.Second, "incr n 1\r\n", "NOT_FOUND\r\n"},
		}},
		{"expired add", []step{
			{0, "set k 0 1 1\r\na\r\n", "STORED\r\n"},
			{time.Second, "add k 0 0 1\r\nb\r\nget k\r\n", "STORED\r\nVALUE k 0 1\r\nb\r\nEND\r\n"},
		}},
		{"delayed flush_all", []step{
			{0, "set old 0 0 1\r\na\r\nflush_all 10\r\n", "STORED\r\nOK\r\n"},
			{5 * time.Second, "get old\r\nset mid 0 0 1\r\nm\r\n", "VALUE old 0 1\r\na\r\nEND\r\nSTORED\r\n"},
			{10 * time.Second, "get old mid\r\nset new 0 0 1\r\nn\r\n", "END\r\nSTORED\r\n"},
			{11 * time.Second, "get new\r\n", "VALUE new 0 1\r\nn\r\nEND\r\n"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStore(0, false)
			for i, st := range tc.steps {
				if got := apply(t, s, t0.Add(st.at), st.in); got != st.want {
					t.Errorf("step %d at +%v: %q\n got %q\nwant %q", i, st.at, st.in, got, st.want)
				}
			}
		})
	}
}

func TestStoreCAS(t *testing.T) {
	s := NewStore(0, false)
	now := time.Now()
	apply(t, s, now, "set k 0 0 1\r\na\r\n")
	got := apply(t, s, now, "gets k\r\n")
	var cas uint64
	if _, err := fmt.Sscanf(got, "VALUE k 0 1 %d", &cas); err != nil {
		t.Fatalf("%q: %v", got, err)
	}
	in := fmt.Sprintf("cas k 0 0 1 %d\r\nb\r\ncas k 0 0 1 %d\r\nc\r\nget k\r\n", cas, cas)
	if got, want := apply(t, s, now, in), "STORED\r\nEXISTS\r\nVALUE k 0 1\r\nb\r\nEND\r\n"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	// touch does not change the CAS value; a store does.
	got2 := apply(t, s, now, "touch k 100\r\ngets k\r\n")
	var cas2 uint64
	fmt.Sscanf(got2, "TOUCHED\r\nVALUE k 0 1 %d", &cas2)
	if cas2 == cas || cas2 == 0 {
		t.Errorf("cas after cas-store %d, before %d", cas2, cas)
	}
	if got3 := apply(t, s, now, "touch k 100\r\ngets k\r\n"); got3 != got2 {
		t.Errorf("touch changed the item: %q then %q", got2, got3)
	}
}

func TestStoreMemoryLimit(t *testing.T) {
	s := NewStore(4500, false) // four items of 1066 bytes
	now := time.Now()
	val := strings.Repeat("v", 1000)
	var replies []string
	for i := range 6 {
		replies = append(replies, apply(t, s, now, fmt.Sprintf("set k%d 0 0 1000\r\n%s\r\n", i, val)))
	}
	want := "STORED\r\n,STORED\r\n,STORED\r\n,STORED\r\n,SERVER_ERROR out of memory storing object\r\n,SERVER_ERROR out of memory storing object\r\n"
	if got := strings.Join(replies, ","); got != want {
		t.Fatalf("got %q", got)
	}
	// Expired items are reclaimed to make room.
	apply(t, s, now, "touch k0 1\r\ntouch k1 1\r\n")
	if got := apply(t, s, now.Add(2*time.Second), "set k9 0 0 1000\r\n"+val+"\r\n"); got != "STORED\r\n" {
		t.Fatalf("after expiry: %q", got)
	}
	// Accounting returns to zero.
	apply(t, s, now, "flush_all\r\n")
	if s.Bytes() != 0 || s.Len() != 0 {
		t.Errorf("after flush_all: %d bytes, %d items", s.Bytes(), s.Len())
	}
	apply(t, s, now, "set a 0 0 3\r\nabc\r\nappend a 0 0 2\r\nde\r\nset n 0 0 1\r\n9\r\nincr n 1\r\ndelete a\r\ndelete n\r\n")
	if s.Bytes() != 0 || s.Len() != 0 {
		t.Errorf("after deletes: %d bytes, %d items", s.Bytes(), s.Len())
	}
}

func TestStoreConcurrentIncr(t *testing.T) {
	s := NewStore(0, false)
	now := time.Now()
	apply(t, s, now, "set n 0 0 1\r\n0\r\n")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				apply(t, s, now, "incr n 1\r\n")
			}
		})
	}
	wg.Wait()
	if got := apply(t, s, now, "get n\r\n"); got != "VALUE n 0 4\r\n1600\r\nEND\r\n" {
		t.Errorf("got %q", got)
	}
}
