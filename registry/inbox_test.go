package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	gomemcache "github.com/bradfitz/gomemcache/memcache"
)

// inboxTests is the inbox table every backend runs.
var inboxTests = []struct {
	name string
	run  func(t *testing.T, e env)
}{
	{"ask answer", testAskAnswer},
	{"askers in order", testAskersInOrder},
	{"abandoned number skipped", testAbandonedNumber},
	{"observer asks, has no inbox", testObserverInbox},
	{"ask deadline says what is missing", testAskDeadline},
	{"next deadline says what is missing", testNextDeadline},
	{"stale incarnation never answers", testStaleInbox},
	{"malformed question", testMalformedQuestion},
}

func TestInbox(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			addr := b.addr(t)
			for _, tc := range inboxTests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, env{t: t, addr: addr, cluster: fmt.Sprintf("t%x", rand.Uint64())})
				})
			}
		})
	}
}

// dialInbox dials id with quick inbox settings.
func (e env) dialInbox(id int) *Registry {
	e.t.Helper()
	cfg := e.cfg(id)
	cfg.InboxPollInterval = 2 * time.Millisecond
	cfg.InboxGrace = 200 * time.Millisecond
	r, err := Dial(ctxFor(e.t, 10*time.Second), cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close() })
	return r
}

// serve answers every question of inbox name with "re:" + question until
// ctx ends, and returns the questions it saw, in order, when done.
func serve(t *testing.T, ctx context.Context, r *Registry, name string) (wait func() []string) {
	t.Helper()
	in, err := r.Inbox(name)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			q, err := in.Next(ctx)
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("next: %v", err)
				}
				return
			}
			seen = append(seen, string(q.Value()))
			// The asker may see the answer and stop the test before
			// memcached's STORED reaches this side: an error after ctx
			// ended is not the inbox's.
			if err := q.Answer(ctx, append([]byte("re:"), q.Value()...)); err != nil && ctx.Err() == nil {
				t.Errorf("answer: %v", err)
			}
		}
	}()
	return func() []string { <-done; return seen }
}

func testAskAnswer(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, obs := e.dialInbox(1), e.dialInbox(0)
	sctx, stop := context.WithCancel(ctx)
	wait := serve(t, sctx, srv, "rpc/x")
	for i := range 3 {
		q := fmt.Sprintf("hello %d", i)
		a, err := obs.Ask(ctx, srv.Self(), "rpc/x", []byte(q))
		if err != nil || string(a) != "re:"+q {
			t.Fatalf("ask %q: %q %v", q, a, err)
		}
	}
	stop()
	if got := wait(); len(got) != 3 {
		t.Errorf("inbox saw %q", got)
	}
}

func testAskersInOrder(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := e.dialInbox(1)
	askers := []*Registry{e.dialInbox(0), e.dialInbox(0), e.dialInbox(2)}
	// Take the numbers before the inbox reads anything, then check the
	// inbox took them in number order.
	in, err := srv.Inbox("hs")
	if err != nil {
		t.Fatal(err)
	}
	const each = 4
	var wg sync.WaitGroup
	answers := make(chan string, len(askers)*each)
	for i, a := range askers {
		wg.Go(func() {
			for j := range each {
				q := fmt.Sprintf("%d.%d", i, j)
				got, err := a.Ask(ctx, srv.Self(), "hs", []byte(q))
				if err != nil || string(got) != "re:"+q {
					t.Errorf("ask %s: %q %v", q, got, err)
				}
				answers <- string(got)
			}
		})
	}
	var last uint64
	for range len(askers) * each {
		q, err := in.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if q.Number() != last+1 {
			t.Errorf("question %d after %d", q.Number(), last)
		}
		last = q.Number()
		if want := 0; q.Asker().ID != want && q.Asker().ID != 2 {
			t.Errorf("asker %v", q.Asker())
		}
		if err := q.Answer(ctx, append([]byte("re:"), q.Value()...)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if len(answers) != len(askers)*each {
		t.Errorf("%d answers", len(answers))
	}
}

func testAbandonedNumber(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, obs := e.dialInbox(1), e.dialInbox(0)
	// An asker takes number 1 and dies before writing its question.
	counter := srv.inboxKey(srv.Self(), "hs", "next")
	mc := gomemcache.New(e.addr)
	if err := mc.Add(&gomemcache.Item{Key: counter, Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}
	if n, err := mc.Increment(counter, 1); err != nil || n != 1 {
		t.Fatalf("incr: %d %v", n, err)
	}
	sctx, stop := context.WithCancel(ctx)
	wait := serve(t, sctx, srv, "hs")
	start := time.Now()
	a, err := obs.Ask(ctx, srv.Self(), "hs", []byte("after the gap"))
	if err != nil || string(a) != "re:after the gap" {
		t.Fatalf("ask after an abandoned number: %q %v", a, err)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("answered after %v, before the grace period", waited)
	}
	stop()
	if got := wait(); len(got) != 1 {
		t.Errorf("inbox saw %q", got)
	}
}

func testObserverInbox(t *testing.T, e env) {
	obs := e.dialInbox(0)
	if _, err := obs.Inbox("hs"); !errors.Is(err, ErrObserver) {
		t.Errorf("observer inbox: %v", err)
	}
	if _, err := obs.Ask(ctxFor(t, time.Second), Peer{ID: 0, Incarnation: 1}, "hs", nil); err == nil {
		t.Error("ask of id 0 accepted")
	}
	if _, err := obs.Ask(ctxFor(t, time.Second), Peer{ID: 1, Incarnation: 1}, strings.Repeat("x", 300), nil); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("ask with a name too long: %v", err)
	}
}

func testAskDeadline(t *testing.T, e env) {
	srv, obs := e.dialInbox(1), e.dialInbox(0)
	_, err := obs.Ask(ctxFor(t, 300*time.Millisecond), srv.Self(), "hs", []byte("?"))
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ask nobody answers: %v", err)
	}
	for _, want := range []string{"answer to question 1", `inbox "hs"`, srv.Self().String(), "no key " + srv.inboxKey(srv.Self(), "hs", "a/1")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func testNextDeadline(t *testing.T, e env) {
	srv := e.dialInbox(1)
	in, err := srv.Inbox("hs")
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.Next(ctxFor(t, 100*time.Millisecond))
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, context.DeadlineExceeded) || we.Op != "inbox" {
		t.Fatalf("next with no asker: %v", err)
	}
	if !strings.Contains(err.Error(), "question 1") || !strings.Contains(err.Error(), "no question yet") {
		t.Errorf("error %q does not say what is missing", err)
	}
}

func testStaleInbox(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old := e.dialInbox(1)
	gone := old.Self()
	old.Close()
	// The new incarnation of replica 1 serves the same inbox name.
	cur := e.dialInbox(1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	serve(t, sctx, cur, "hs")
	obs := e.dialInbox(0)
	_, err := obs.Ask(ctxFor(t, 300*time.Millisecond), gone, "hs", []byte("?"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ask of a gone incarnation: %v", err)
	}
	if want := fmt.Sprintf("replica 1 is now incarnation %v", cur.Self()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if a, err := obs.Ask(ctx, cur.Self(), "hs", []byte("!")); err != nil || string(a) != "re:!" {
		t.Errorf("ask of the current incarnation: %q %v", a, err)
	}
}

func testMalformedQuestion(t *testing.T, e env) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, obs := e.dialInbox(1), e.dialInbox(0)
	mc := gomemcache.New(e.addr)
	counter := srv.inboxKey(srv.Self(), "hs", "next")
	mc.Add(&gomemcache.Item{Key: counter, Value: []byte("0")})
	if _, err := mc.Increment(counter, 1); err != nil {
		t.Fatal(err)
	}
	mc.Set(&gomemcache.Item{Key: srv.inboxKey(srv.Self(), "hs", "q/1"), Value: []byte("garbage")})
	in, err := srv.Inbox("hs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Next(ctx); !errors.Is(err, ErrMalformedValue) || !strings.Contains(err.Error(), "q/1") {
		t.Fatalf("garbage question: %v", err)
	}
	// The number was consumed: the next asker is served.
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		defer close(done)
		q, err := in.Next(ctx)
		if err == nil {
			err = q.Answer(ctx, []byte("ok"))
		}
		if err != nil {
			t.Errorf("next after garbage: %v", err)
		}
	}()
	if a, err := obs.Ask(ctx, srv.Self(), "hs", nil); err != nil || string(a) != "ok" {
		t.Errorf("ask after garbage: %q %v", a, err)
	}
}

func TestInboxRecords(t *testing.T) {
	owner, asker := Peer{ID: 3, Incarnation: 0xabc}, Peer{ID: 0, Incarnation: 7}
	b := encodeQuestion(owner, 5, asker, []byte("q"))
	if a, v, err := decodeQuestion("k", owner, 5, b); err != nil || a != asker || string(v) != "q" {
		t.Errorf("question round trip: %v %q %v", a, v, err)
	}
	for _, tc := range []struct {
		name  string
		owner Peer
		n     uint64
		b     []byte
		want  string
	}{
		{"other number", owner, 6, b, "question 5 under the key of question 6"},
		{"other incarnation", Peer{ID: 3, Incarnation: 1}, 5, b, "incarnation"},
		{"short", owner, 5, b[:20], "shorter"},
		{"answer as question", owner, 5, encodeAnswer(owner, 5, nil), "kind"},
	} {
		if _, _, err := decodeQuestion("k", tc.owner, tc.n, tc.b); !errors.Is(err, ErrMalformedValue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if v, err := decodeAnswer("k", owner, 5, encodeAnswer(owner, 5, []byte("a"))); err != nil || string(v) != "a" {
		t.Errorf("answer round trip: %q %v", v, err)
	}
}
