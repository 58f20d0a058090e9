package trader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/wire"
)

func TestParseMix(t *testing.T) {
	m, err := ParseMix("limit=50,cross=15,market=5,cancel=12,replace=10,ioc=4,fok=2,stop=2")
	if err != nil || m != DefaultMix {
		t.Fatalf("ParseMix = %v, %v; want %v", m, err, DefaultMix)
	}
	if back, err := ParseMix(m.String()); err != nil || back != m {
		t.Fatalf("round trip of %q: %v, %v", m.String(), back, err)
	}
	if m, err := ParseMix(" market=1 "); err != nil || m[KindMarket] != 1 || m.total() != 1 {
		t.Fatalf("one kind: %v, %v", m, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"limit", "not kind=weight"},
		{"limit=x", "want a weight"},
		{"limit=-1", "want a weight"},
		{"bogus=3", `unknown kind "bogus"`},
		{"limit=1,limit=2", "given twice"},
		{"limit=0,cancel=0", "every weight is 0"},
		{"", "every weight is 0"},
	} {
		if _, err := ParseMix(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMix(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestParseSymbols(t *testing.T) {
	s, err := ParseSymbols("AAPL, MSFT,BRK.B")
	if err != nil || strings.Join(s, "|") != "AAPL|MSFT|BRK.B" {
		t.Fatalf("%v, %v", s, err)
	}
	for _, in := range []string{"", ",", "A,A", "THISISTOOLONGANAME", "A B", "aapl", "BRK-B"} {
		if _, err := ParseSymbols(in); err == nil {
			t.Errorf("ParseSymbols(%q) accepted", in)
		}
	}
}

// TestGenFollowsMix draws many orders against an exchange where one new
// order in four rests (the others fill) and checks the kinds come out near their weights, every
// request is one the exchange accepts, and cancels name open orders.
func TestGenFollowsMix(t *testing.T) {
	mkt := NewMarket([]string{"AAA", "BBB"})
	g := NewGen(mkt, DefaultMix, 1, 0)
	x := newFakeExchange()
	s := &fakeSession{x: x, trader: 9}
	var counts [numKinds]int
	const n = 20000
	var req wire.Request
	for range n {
		k := g.Next(&req)
		counts[k]++
		if err := checkRequest(&req, k); err != nil {
			t.Fatalf("%v: %v (%+v)", k, err, req)
		}
		if k == KindCancel || k == KindReplace {
			if g.find(req.Order) < 0 {
				t.Fatalf("%v of order %d, not open", k, req.Order)
			}
		}
		res, _, err := s.Do(&req)
		if err != nil {
			t.Fatal(err)
		}
		if req.Op == wire.OpNew && req.ClOrd%4 != 0 {
			res.State, res.Open = wire.StateDone, 0
		}
		g.Done(k, &req, &res)
		if g.Open() > MaxOpen {
			t.Fatalf("%d open", g.Open())
		}
	}
	total := DefaultMix.total()
	for k, c := range counts {
		if c == 0 {
			t.Errorf("no %v drawn", Kind(k))
		}
		// Cancels and replaces stand in for orders that would rest when
		// the trader is full, and limits for them when it has nothing
		// open: only the other kinds keep their share exactly.
		switch Kind(k) {
		case KindMarket, KindIOC, KindFOK:
			want := float64(n) * float64(DefaultMix[k]) / float64(total)
			if math.Abs(float64(c)-want) > 0.15*want+30 {
				t.Errorf("%v: %d of %d, want about %.0f", Kind(k), c, n, want)
			}
		}
	}
}

// checkRequest checks what the exchange's wire decoding and the book would
// refuse.
func checkRequest(r *wire.Request, k Kind) error {
	b := r.Append(nil)
	var back wire.Request
	r2 := *r
	r2.Trader, r2.ClOrd = 1, 1
	if err := back.Decode(r2.Append(b[:0])); err != nil {
		return err
	}
	switch {
	case r.Op == wire.OpNew && (r.Qty <= 0 || r.Price < 0 || r.Stop < 0):
		return errors.New("bad quantity or price")
	case r.Op == wire.OpNew && k == KindMarket && r.Price != 0:
		return errors.New("market order with a price")
	case r.Op == wire.OpNew && k != KindMarket && k != KindStop && r.Price == 0:
		return errors.New("limit order without a price")
	case r.Op == wire.OpReplace && r.Qty == 0:
		return errors.New("replace changing nothing")
	case k == KindFOK && r.Flags != book.FOK, k == KindIOC && r.Flags != book.IOC:
		return fmt.Errorf("flags %v", r.Flags)
	case k == KindStop && r.Stop == 0:
		return errors.New("stop without a stop price")
	}
	return nil
}

func TestGenIsDeterministic(t *testing.T) {
	draw := func(seed uint64) []wire.Request {
		g := NewGen(NewMarket([]string{"AAA"}), DefaultMix, seed, 3)
		s := &echoSession{}
		var out []wire.Request
		var req wire.Request
		for range 200 {
			k := g.Next(&req)
			out = append(out, req)
			res, _, _ := s.Do(&req)
			g.Done(k, &req, &res)
		}
		return out
	}
	a, b, c := draw(5), draw(5), draw(6)
	if len(a) != len(b) {
		t.Fatal("lengths differ")
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("order %d differs with the same seed: %+v vs %+v", i, a[i], b[i])
		}
	}
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("another seed drew the same orders")
	}
}

func TestRunChecks(t *testing.T) {
	for _, tc := range []struct {
		name                string
		setup               func(*fakeExchange)
		wantOK              bool
		wantLost, wantDoubl bool
	}{
		{"exact", func(*fakeExchange) {}, true, false, false},
		// The client gives up on some requests the exchange applied: the
		// trader resends them, the exchange answers from memory, and the
		// sets still agree.
		{"gave up, resent", func(x *fakeExchange) { x.giveUp = 7 }, true, false, false},
		// An exchange that applies resends again doubles them.
		{"doubled", func(x *fakeExchange) { x.giveUp, x.noDedup = 5, true }, false, false, true},
		{"lost", func(x *fakeExchange) { x.forget = 50 }, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newFakeExchange()
			tc.setup(x)
			r, err := Run(context.Background(), Config{Traders: 3, Orders: 600, Mix: DefaultMix, Symbols: []string{"AAA", "BBB"},
				Seed: 1, Check: true, Dial: x.dialer()})
			if r == nil {
				t.Fatal(err)
			}
			c := r.Check
			if c.OK() != tc.wantOK || (err == nil) != tc.wantOK {
				t.Fatalf("check %v ok=%v, err %v; want ok=%v", c, c.OK(), err, tc.wantOK)
			}
			if (c.Lost > 0) != tc.wantLost || (c.Doubled > 0) != tc.wantDoubl {
				t.Fatalf("check %v", c)
			}
			if r.Orders != 600 || len(r.Samples) != 600 || r.Latency.Count() != 600 {
				t.Fatalf("orders %d, samples %d, recorded %d", r.Orders, len(r.Samples), r.Latency.Count())
			}
			if !c.Ran || c.Traders != 3 || c.Acked != 600 {
				t.Fatalf("check %v: want 3 traders and 600 acked", c)
			}
			for i := 1; i < len(r.Samples); i++ {
				if r.Samples[i].Send < r.Samples[i-1].Send {
					t.Fatal("samples not in send order")
				}
			}
			var out bytes.Buffer
			r.Print(&out)
			if !strings.Contains(out.String(), c.String()) || !strings.Contains(out.String(), "latency: p50=") {
				t.Fatalf("summary:\n%s", out.String())
			}
		})
	}
}

func TestRunForDuration(t *testing.T) {
	x := newFakeExchange()
	var started time.Time
	r, err := Run(context.Background(), Config{Traders: 2, Duration: 100 * time.Millisecond, Mix: DefaultMix, Symbols: []string{"AAA"},
		Check: true, Keep: 100, Dial: x.dialer(), OnStart: func(t time.Time) { started = t }})
	if err != nil {
		t.Fatal(err)
	}
	if started.IsZero() || !r.Start.Equal(started) {
		t.Fatalf("OnStart got %v, run started %v", started, r.Start)
	}
	if r.Orders <= 100 || len(r.Samples) != 100 || r.Dropped != r.Orders-100 {
		t.Fatalf("orders %d, kept %d, dropped %d: want more than 100 kept at 100", r.Orders, len(r.Samples), r.Dropped)
	}
	if r.Check.Acked != uint64(r.Orders) {
		t.Fatalf("acked %d of %d", r.Check.Acked, r.Orders)
	}
}

func TestRunConfigErrors(t *testing.T) {
	x := newFakeExchange()
	base := Config{Traders: 1, Orders: 10, Mix: DefaultMix, Symbols: []string{"A"}, Dial: x.dialer()}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no traders", func(c *Config) { c.Traders = 0 }},
		{"nothing to do", func(c *Config) { c.Orders = 0 }},
		{"fewer orders than traders", func(c *Config) { c.Traders = 11 }},
		{"empty mix", func(c *Config) { c.Mix = Mix{} }},
		{"no symbols", func(c *Config) { c.Symbols = nil }},
		{"no dialer", func(c *Config) { c.Dial = nil }},
	} {
		cfg := base
		tc.mod(&cfg)
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestTimelineRoundTrip(t *testing.T) {
	in := []Sample{
		{Send: 1_700_000_000_000_000_000, Latency: 4200, Trader: 1, Kind: KindLimit, Status: Outcome(wire.StatusOK), Attempts: 1},
		{Send: 1_700_000_000_000_005_000, Latency: 31_000_000, Trader: 2, Kind: KindCancel, Status: Outcome(wire.StatusRejected), Attempts: 4},
		{Send: 1_700_000_000_000_009_000, Latency: 9, Trader: 2, Kind: KindStop, Status: OutcomeError, Attempts: 0},
	}
	var b bytes.Buffer
	if err := WriteTimeline(&b, in); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), TimelineHeader+"\n1700000000000000000,4200,1,limit,ok,1\n") {
		t.Fatalf("timeline:\n%s", b.String())
	}
	out, err := ReadTimeline(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d samples back", len(out))
	}
	for i := range in {
		if in[i] != out[i] {
			t.Fatalf("sample %d: %+v, read back %+v", i, in[i], out[i])
		}
	}
	if _, err := ReadTimeline(strings.NewReader("a,b\n")); err == nil {
		t.Fatal("bad header accepted")
	}
}

// TestOrderPathDoesNotAllocate: choosing, pricing, encoding, answering and
// recording an order allocate nothing once the trader exists.
func TestOrderPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	mkt := NewMarket([]string{"AAA", "BBB", "CCC"})
	g := NewGen(mkt, DefaultMix, 1, 0)
	var req wire.Request
	buf := make([]byte, 0, wire.RequestSize)
	s := &echoSession{}
	gen := testing.AllocsPerRun(10000, func() {
		k := g.Next(&req)
		req.Trader, req.ClOrd = 7, 1
		buf = req.Append(buf[:0])
		res, _, _ := s.Do(&req)
		g.Done(k, &req, &res)
	})
	if gen != 0 {
		t.Errorf("generate+encode: %v allocations per order", gen)
	}
	tr := &trader{sess: s, gen: g, samples: make([]Sample, 0, 20000)}
	ctx := context.Background()
	order := testing.AllocsPerRun(10000, func() {
		tr.order(ctx, tr.gen.Next(&tr.req))
	})
	if order != 0 {
		t.Errorf("whole order: %v allocations per order", order)
	}
}
