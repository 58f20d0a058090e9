package lincheck

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Hand-written operations; times are plain numbers.

func set(c int, k, v string, call, ret int64) Op {
	return Op{Client: c, Input: Input{Kind: Set, Key: k, Arg: v}, Call: call, Return: ret}
}

func get(c int, k, v string, call, ret int64) Op {
	return Op{Client: c, Input: Input{Kind: Get, Key: k}, Output: Output{Value: v}, Call: call, Return: ret}
}

func getNil(c int, k string, call, ret int64) Op {
	return Op{Client: c, Input: Input{Kind: Get, Key: k}, Output: Output{Nil: true}, Call: call, Return: ret}
}

func incr(c int, k string, n, call, ret int64) Op {
	return Op{Client: c, Input: Input{Kind: Incr, Key: k}, Output: Output{N: n}, Call: call, Return: ret}
}

func incrNotInt(c int, k string, call, ret int64) Op {
	return Op{Client: c, Input: Input{Kind: Incr, Key: k}, Output: Output{NotInt: true}, Call: call, Return: ret}
}

func appendOp(c int, k, s string, n, call, ret int64) Op {
	return Op{Client: c, Input: Input{Kind: Append, Key: k, Arg: s}, Output: Output{N: n}, Call: call, Return: ret}
}

// maybe makes op maybe-applied: invoked at op.Call, outcome unknown.
func maybe(op Op) Op {
	op.Unknown, op.Output, op.Return = true, Output{}, 0
	return op
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		history []Op
		want    Verdict
		bad     []string // BadKeys on a violation
	}{
		{"empty", nil, Ok, nil},
		{"sequential register", []Op{
			getNil(0, "x", 0, 5),
			set(0, "x", "a", 10, 20),
			get(1, "x", "a", 30, 40),
			set(1, "x", "b", 50, 60),
			get(0, "x", "b", 70, 80),
		}, Ok, nil},
		{"read concurrent with a SET sees either value", []Op{
			set(0, "x", "a", 0, 10),
			set(0, "x", "b", 20, 40),
			get(1, "x", "a", 25, 35),
			get(2, "x", "b", 26, 36),
		}, Ok, nil},
		{"stale read after an acknowledged SET", []Op{
			set(0, "x", "a", 0, 10),
			set(0, "x", "b", 20, 30),
			get(1, "x", "a", 40, 50),
		}, Violation, []string{"x"}},
		{"read flips back to the older value", []Op{
			set(0, "x", "a", 0, 10),
			set(0, "x", "b", 20, 100),
			get(1, "x", "b", 30, 40),
			get(2, "x", "a", 50, 60),
		}, Violation, []string{"x"}},
		{"read of a value never written", []Op{
			get(0, "x", "zzz", 0, 10),
		}, Violation, []string{"x"}},
		{"empty string is not nil", []Op{
			set(0, "x", "", 0, 10),
			getNil(1, "x", 20, 30),
		}, Violation, []string{"x"}},
		{"appends in order", []Op{
			appendOp(0, "l", "a,", 2, 0, 10),
			appendOp(1, "l", "b,", 4, 20, 30),
			get(2, "l", "a,b,", 40, 50),
		}, Ok, nil},
		{"concurrent appends in either order", []Op{
			appendOp(0, "l", "a,", 4, 0, 30),
			appendOp(1, "l", "b,", 2, 5, 25),
			get(2, "l", "b,a,", 40, 50),
		}, Ok, nil},
		{"lost APPEND", []Op{
			appendOp(0, "l", "a,", 2, 0, 10),
			appendOp(1, "l", "b,", 4, 20, 30),
			get(2, "l", "a,", 40, 50),
		}, Violation, []string{"l"}},
		{"appends out of acknowledged order", []Op{
			appendOp(0, "l", "a,", 2, 0, 10),
			appendOp(1, "l", "b,", 4, 20, 30),
			get(2, "l", "b,a,", 40, 50),
		}, Violation, []string{"l"}},
		{"APPEND length that counts a lost append", []Op{
			appendOp(0, "l", "a,", 2, 0, 10),
			appendOp(1, "l", "b,", 2, 20, 30),
		}, Violation, []string{"l"}},
		{"counter", []Op{
			incr(0, "n", 1, 0, 10),
			incr(1, "n", 3, 15, 40),
			incr(2, "n", 2, 20, 30),
			get(0, "n", "3", 50, 60),
		}, Ok, nil},
		{"INCR out of order", []Op{
			incr(0, "n", 2, 0, 10),
			incr(1, "n", 1, 20, 30),
		}, Violation, []string{"n"}},
		{"INCR answered twice the same", []Op{
			incr(0, "n", 1, 0, 30),
			incr(1, "n", 1, 5, 25),
		}, Violation, []string{"n"}},
		{"INCR on a non-integer changes nothing", []Op{
			set(0, "n", "abc", 0, 10),
			incrNotInt(1, "n", 20, 30),
			get(0, "n", "abc", 40, 50),
			set(1, "n", "41", 60, 70),
			incr(0, "n", 42, 80, 90),
		}, Ok, nil},
		{"INCR counted a non-integer", []Op{
			set(0, "n", "007", 0, 10),
			incr(1, "n", 8, 20, 30),
		}, Violation, []string{"n"}},
		{"INCR refused an integer", []Op{
			set(0, "n", "-7", 0, 10),
			incrNotInt(1, "n", 20, 30),
		}, Violation, []string{"n"}},
		{"maybe-applied SET explains a read", []Op{
			set(0, "x", "a", 0, 10),
			maybe(set(1, "x", "b", 20, 0)),
			get(2, "x", "b", 30, 40),
			get(2, "x", "b", 50, 60),
		}, Ok, nil},
		{"maybe-applied SET takes effect late", []Op{
			set(0, "x", "a", 0, 10),
			maybe(set(1, "x", "b", 20, 0)),
			get(2, "x", "a", 1000, 1010),
			get(2, "x", "b", 2000, 2010),
		}, Ok, nil},
		{"maybe-applied SET never takes effect", []Op{
			set(0, "x", "a", 0, 10),
			maybe(set(1, "x", "b", 20, 0)),
			get(2, "x", "a", 1000, 1010),
		}, Ok, nil},
		{"maybe-applied SET read before its invocation", []Op{
			set(0, "x", "a", 0, 10),
			get(2, "x", "b", 20, 30),
			maybe(set(1, "x", "b", 40, 0)),
		}, Violation, []string{"x"}},
		{"maybe-applied SET read, then undone", []Op{
			set(0, "x", "a", 0, 10),
			maybe(set(1, "x", "b", 20, 0)),
			get(2, "x", "b", 30, 40),
			get(2, "x", "a", 50, 60),
		}, Violation, []string{"x"}},
		{"maybe-applied APPEND, once only", []Op{
			maybe(appendOp(0, "l", "a,", 0, 0, 0)),
			get(1, "l", "a,", 10, 20),
			get(1, "l", "a,a,", 30, 40),
		}, Violation, []string{"l"}},
		{"maybe-applied INCRs explain a jump", []Op{
			incr(0, "n", 1, 0, 10),
			maybe(incr(1, "n", 0, 20, 0)),
			maybe(incr(2, "n", 0, 21, 0)),
			get(0, "n", "2", 30, 40),
			incr(0, "n", 4, 50, 60),
		}, Ok, nil},
		{"maybe-applied INCRs cannot explain too big a jump", []Op{
			incr(0, "n", 1, 0, 10),
			maybe(incr(1, "n", 0, 20, 0)),
			get(0, "n", "3", 30, 40),
		}, Violation, []string{"n"}},
		{"maybe-applied INCRs take effect in any order of invocation", []Op{
			maybe(incr(0, "n", 0, 100, 0)),
			maybe(incr(1, "n", 0, 10, 0)),
			get(2, "n", "1", 50, 60),
			get(2, "n", "2", 200, 210),
		}, Ok, nil},
		{"maybe-applied INCR read before its invocation", []Op{
			maybe(incr(0, "n", 0, 100, 0)),
			incr(1, "n", 1, 10, 20),
			get(2, "n", "2", 50, 60),
		}, Violation, []string{"n"}},
		{"maybe-applied INCR on a non-integer", []Op{
			set(0, "n", "abc", 0, 10),
			maybe(incr(1, "n", 0, 20, 0)),
			get(2, "n", "abc", 30, 40),
		}, Ok, nil},
		{"maybe-applied GET is dropped", []Op{
			set(0, "x", "a", 0, 10),
			maybe(get(1, "x", "", 20, 0)),
		}, Ok, nil},
		{"violation on one key of several", []Op{
			set(0, "x", "a", 0, 10),
			set(0, "y", "a", 0, 10),
			set(0, "y", "b", 20, 30),
			get(1, "x", "a", 40, 50),
			get(1, "y", "a", 40, 50),
			incr(2, "z", 1, 0, 10),
		}, Violation, []string{"y"}},
	}
	dir := t.TempDir() // only these hand-written histories: gone with the test
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Check(tc.history, Options{Budget: 10 * time.Second, Dir: dir, Name: t.Name()})
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res)
			if res.Verdict != tc.want {
				t.Fatalf("verdict %v, want %v", res.Verdict, tc.want)
			}
			if strings.Join(res.BadKeys, ",") != strings.Join(tc.bad, ",") {
				t.Errorf("bad keys %q, want %q", res.BadKeys, tc.bad)
			}
			if tc.want != Violation {
				if res.HTML != "" {
					t.Errorf("visualisation %s written for a %v history", res.HTML, res.Verdict)
				}
				return
			}
			html, err := os.ReadFile(res.HTML)
			if err != nil {
				t.Fatalf("visualisation: %v", err)
			}
			if filepath.Dir(res.HTML) != dir || !strings.Contains(string(html), "<html") {
				t.Errorf("visualisation %s (%d bytes) is not an HTML page in %s", res.HTML, len(html), dir)
			}
			h, err := ReadHistory(res.History)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h, tc.history) {
				t.Errorf("history read back from %s:\n%+v\nwant\n%+v", res.History, h, tc.history)
			}
		})
	}
}

func TestCheckCounts(t *testing.T) {
	h := []Op{
		set(0, "x", "a", 0, 10),
		maybe(set(1, "x", "b", 20, 0)),
		get(2, "x", "a", 30, 40),
		get(2, "x", "a", 50, 60),
		incr(0, "n", 1, 0, 10),
		maybe(get(1, "n", "", 20, 0)),
	}
	h[2].Where, h[3].Where = "r1", "r2"
	res, err := Check(h, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Verdict: Ok, Ops: 5, Reads: 2, Writes: 3, MaybeApplied: 1, Dropped: 1, Keys: 2}
	if res.Verdict != want.Verdict || res.Ops != want.Ops || res.Reads != want.Reads || res.Writes != want.Writes ||
		res.MaybeApplied != want.MaybeApplied || res.Dropped != want.Dropped || res.Keys != want.Keys {
		t.Fatalf("got %v\nwant %v", res, want)
	}
	if res.ReadsAt["r1"] != 1 || res.ReadsAt["r2"] != 1 || len(res.ReadsAt) != 2 {
		t.Fatalf("reads per server %v, want r1:1 r2:1", res.ReadsAt)
	}
}

// TestCheckInconclusive: a search that cannot finish within the budget says
// so instead of guessing. Forty concurrent maybe-applied APPENDs and a read
// none of their subsets explains leave 2^40 subsets to rule out.
func TestCheckInconclusive(t *testing.T) {
	var h []Op
	for i := range 40 {
		h = append(h, maybe(appendOp(i, "n", fmt.Sprintf("%d,", i), 0, int64(i), 0)))
	}
	h = append(h, get(40, "n", "x", 100, 110))
	start := time.Now()
	res, err := Check(h, Options{Budget: 50 * time.Millisecond, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != Inconclusive || !reflect.DeepEqual(res.Undecided, []string{"n"}) || res.History == "" {
		t.Fatalf("got %v, want inconclusive, key n undecided, the history written", res)
	}
	// A hang detector, not a timing assertion: the check, then the key
	// alone, each within its budget.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("a 50ms budget took %v", d)
	}
}

// TestCheckManyMaybeIncrs: maybe-applied INCRs differ only in when they
// were invoked, and the model tries them in that order, so forty of them
// leave forty-one choices, not 2^40 subsets: decided either way.
func TestCheckManyMaybeIncrs(t *testing.T) {
	for _, tc := range []struct {
		read string
		want Verdict
	}{{"17", Ok}, {"40", Ok}, {"41", Violation}} {
		var h []Op
		for i := range 40 {
			h = append(h, maybe(incr(i, "n", 0, int64(i), 0)))
		}
		h = append(h, get(40, "n", tc.read, 100, 110), get(40, "n", "3", 200, 210))
		if tc.want == Ok {
			h = h[:len(h)-1] // a count may not go back
		}
		res, err := Check(h, Options{Budget: 10 * time.Second, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != tc.want {
			t.Errorf("forty maybe-applied INCRs, then GET %s: %v, want %v", tc.read, res, tc.want)
		}
	}
}

func TestRecorder(t *testing.T) {
	rec := NewRecorder()
	done := make(chan struct{})
	for c := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				in := Input{Kind: Set, Key: "k", Arg: "v"}
				if i%2 == 1 {
					in = Input{Kind: Get, Key: "k"}
				}
				call := rec.Begin(c, in)
				switch i % 4 {
				case 0: // a SET answered
					call.End(Reply{Outcome: Done, Where: "a"})
				case 1: // a GET without a reply: dropped
					call.End(Reply{Outcome: Unknown, Where: "a"})
				case 2: // a SET whose outcome is unknown: kept
					call.End(Reply{Outcome: Unknown, Where: "a"})
				case 3: // a GET never sent: dropped
					call.End(Reply{Outcome: Refused})
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	h, dropped := rec.History()
	if len(h) != 200 || rec.Len() != 200 || dropped != 200 {
		t.Fatalf("%d operations recorded (Len %d), %d dropped; want 200, 200", len(h), rec.Len(), dropped)
	}
	unknown := 0
	for _, op := range h {
		if op.Return < op.Call {
			t.Fatalf("%+v returns before its call", op)
		}
		if op.Unknown {
			unknown++
		}
	}
	if unknown != 100 {
		t.Fatalf("%d maybe-applied, want 100", unknown)
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		s  string
		n  int64
		ok bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"-1", -1, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"-9223372036854775808", -1 << 63, true}, {"9223372036854775808", 0, false},
		{"", 0, false}, {"-", 0, false}, {"-0", 0, false}, {"01", 0, false}, {"+1", 0, false},
		{" 1", 0, false}, {"1 ", 0, false}, {"1.0", 0, false}, {"abc", 0, false},
	} {
		n, ok := parseInt(tc.s)
		if n != tc.n || ok != tc.ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tc.s, n, ok, tc.n, tc.ok)
		}
	}
}
