package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// xstep is a differential step whose comparison may depend on the store's
// state before the command runs (random picks, reply orders that depend on
// a set's encoding).
type xstep struct {
	args []string
	// judge, if set, sees the store before the command runs on it (and
	// may ask Redis about its state, without changing it) and returns how
	// to compare the store's reply (got) with Redis's (want); a nil
	// comparison means byte for byte.
	judge func(s *Store, rc *redistest.Conn) func(got, want string) error
	// after, if set, runs once both have replied: it may bring Redis's
	// state back in line with the store's (after a random pop).
	after func(rc *redistest.Conn, s *Store)
}

// x is an xstep compared byte for byte.
func x(args ...string) xstep { return xstep{args: args} }

// xAnyOrder is an xstep whose array reply is compared as a multiset.
func xAnyOrder(args ...string) xstep {
	return xstep{args: args, judge: func(*Store, *redistest.Conn) func(got, want string) error { return sameElems }}
}

// fromSteps turns runDiff steps into xsteps.
func fromSteps(steps []step) []xstep {
	out := make([]xstep, len(steps))
	for i, st := range steps {
		if st.unordered {
			out[i] = xAnyOrder(st.args...)
		} else {
			out[i] = x(st.args...)
		}
	}
	return out
}

// runDiffX is runDiff for xsteps: it runs script against a fresh Store and
// a fresh real Redis and fails on the first disagreement.
func runDiffX(t *testing.T, script []xstep) {
	t.Helper()
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	rnd := rand.New(rand.NewPCG(1, 2))
	for i, st := range script {
		var cmp func(got, want string) error
		if st.judge != nil {
			cmp = st.judge(s, rc)
		}
		want := rc.Do(st.args...)
		env := &Env{NowMs: time.Now().UnixMilli(), Rand: rnd}
		got := string(execArgs(s, env, st.args))
		var err error
		switch {
		case cmp != nil:
			err = cmp(got, want)
		case got != want:
			err = fmt.Errorf("differ")
		}
		if err != nil {
			t.Fatalf("step %d %q: %v\n got %q\nwant %q", i, st.args, err, trunc(got), trunc(want))
		}
		if st.after != nil {
			st.after(rc, s)
		}
	}
}

func trunc(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}

// sameElems accepts two array replies holding the same elements in any
// order (and two equal replies of any other kind).
func sameElems(got, want string) error {
	if got == want || sortedArrayRaw(got) == sortedArrayRaw(want) {
		return nil
	}
	return fmt.Errorf("different elements")
}

// sortedArrayRaw is sortedArray without a testing.T.
func sortedArrayRaw(raw string) string {
	elems, ok := arrayElems(raw)
	if !ok {
		return raw
	}
	slices.Sort(elems)
	return "*" + strconv.Itoa(len(elems)) + "\r\n" + strings.Join(elems, "")
}

// arrayElems splits a flat array reply into its elements' raw replies.
func arrayElems(raw string) ([]string, bool) {
	if !strings.HasPrefix(raw, "*") {
		return nil, false
	}
	br := bufio.NewReader(strings.NewReader(raw))
	head, err := br.ReadString('\n')
	if err != nil {
		return nil, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n < 0 {
		return nil, false
	}
	elems := make([]string, 0, n)
	for range n {
		e, err := resp.ReadReply(br, nil, 1<<30)
		if err != nil {
			return nil, false
		}
		elems = append(elems, string(e))
	}
	return elems, true
}

// bulkText returns the payload of a raw bulk reply.
func bulkText(raw string) (string, bool) {
	if !strings.HasPrefix(raw, "$") || raw == "$-1\r\n" {
		return "", false
	}
	i := strings.Index(raw, "\r\n")
	return raw[i+2 : len(raw)-2], true
}

// bulksOf returns the payloads of a flat array of bulk strings.
func bulksOf(raw string) ([]string, bool) {
	elems, ok := arrayElems(raw)
	if !ok {
		return nil, false
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if out[i], ok = bulkText(e); !ok {
			return nil, false
		}
	}
	return out, true
}

// both applies check to the store's reply and to Redis's, and requires them
// to be of the same shape (the same type and length) as well; errors must
// be the same.
func both(check func(raw string) error) func(got, want string) error {
	return func(got, want string) error {
		if strings.HasPrefix(got, "-") || strings.HasPrefix(want, "-") {
			if got != want {
				return fmt.Errorf("differ")
			}
			return nil
		}
		if err := check(want); err != nil {
			return fmt.Errorf("redis's reply: %v", err)
		}
		if err := check(got); err != nil {
			return fmt.Errorf("store's reply: %v", err)
		}
		if got[0] != want[0] {
			return fmt.Errorf("reply types differ")
		}
		if got[0] == '*' {
			g, _ := arrayElems(got)
			w, _ := arrayElems(want)
			if len(g) != len(w) {
				return fmt.Errorf("lengths differ")
			}
		}
		return nil
	}
}

// countArg parses an optional count argument.
func countArg(args []string, i int) (int64, bool) {
	if len(args) <= i {
		return 0, false
	}
	n, err := strconv.ParseInt(args[i], 10, 64)
	return n, err == nil
}

// samePairs accepts two array replies holding the same field/value pairs
// in any order.
func samePairs(got, want string) error {
	pairs := func(raw string) string {
		elems, ok := arrayElems(raw)
		if !ok {
			return raw
		}
		var ps []string
		for i := 0; i+1 < len(elems); i += 2 {
			ps = append(ps, elems[i]+elems[i+1])
		}
		slices.Sort(ps)
		return strconv.Itoa(len(elems)) + strings.Join(ps, "")
	}
	if got == want || pairs(got) == pairs(want) {
		return nil
	}
	return fmt.Errorf("different pairs")
}
