package store

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// step is one command of a differential script.
type step struct {
	args []string
	// unordered: the reply is an array whose element order Redis leaves
	// to its hash tables (SMEMBERS of a large set, KEYS): compared sorted.
	unordered bool
}

// cmd is shorthand for an ordered step.
func cmd(args ...string) step { return step{args: args} }

// anyOrder is shorthand for an unordered step.
func anyOrder(args ...string) step { return step{args: args, unordered: true} }

// runDiff runs script against a fresh Store and a fresh real Redis and
// fails on the first reply that differs byte for byte.
func runDiff(t *testing.T, script []step) {
	t.Helper()
	addr := redistest.Start(t)
	rc := redistest.Dial(t, addr)
	s := New()
	rnd := rand.New(rand.NewPCG(1, 2))
	for i, st := range script {
		want := rc.Do(st.args...)
		env := &Env{NowMs: time.Now().UnixMilli(), Rand: rnd}
		got := string(execArgs(s, env, st.args))
		if st.unordered {
			want, got = sortedArray(t, want), sortedArray(t, got)
		}
		if got != want {
			t.Fatalf("step %d %q:\n got %q\nwant %q", i, st.args, got, want)
		}
	}
}

// execArgs runs one command given as strings.
func execArgs(s *Store, e *Env, args []string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return s.Exec(nil, e, b)
}

// sortedArray returns a flat array reply with its elements sorted.
func sortedArray(t *testing.T, raw string) string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(raw))
	head, err := br.ReadString('\n')
	if err != nil || head[0] != '*' {
		return raw
	}
	var elems []string
	for {
		e, err := resp.ReadReply(br, nil, 1<<30)
		if err != nil {
			break
		}
		elems = append(elems, string(e))
	}
	slices.Sort(elems)
	var b bytes.Buffer
	b.WriteString(head)
	for _, e := range elems {
		b.WriteString(e)
	}
	return b.String()
}
