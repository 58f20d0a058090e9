package store

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// zmodel is the simplest sorted set: a map of scores.
type zmodel map[string]float64

// sorted is the model's entries in Redis's order.
func (m zmodel) sorted() []zentry {
	out := make([]zentry, 0, len(m))
	for k, v := range m {
		out = append(out, zentry{member: k, score: v})
	}
	slices.SortFunc(out, func(a, b zentry) int {
		return cmp.Or(cmp.Compare(a.score, b.score), strings.Compare(a.member, b.member))
	})
	return out
}

// TestZSetArenaModel drives a sorted set to 200 000 members and back
// through every write its commands use (add, set as a new score, delete by
// member, pop by rank) against a map, in phases that grow it, churn it
// and shrink it, so that the member arena and the free entries compact
// many times: members of many lengths (the empty one and ones longer than
// an arena chunk among them) and scores with many ties. It checks every
// member's score, the order, ranks, the dict and tree invariants, and that
// members handed out before a compaction keep their bytes.
func TestZSetArenaModel(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 12))
	z := newZSet()
	model := zmodel{}
	long := strings.Repeat("L", zchunkMax+100)
	member := func() string {
		n := r.IntN(400000)
		switch n % 97 {
		case 0:
			return ""
		case 1:
			return long + strconv.Itoa(n%5)
		}
		return strconv.Itoa(n) + strings.Repeat("m", n%40)
	}
	score := func() float64 {
		if r.IntN(3) == 0 {
			return float64(r.IntN(100)) // ties: order by member
		}
		return r.NormFloat64() * 1e5
	}
	type held struct{ member, copy string }
	var handed []held // members read out earlier, with copies of their bytes
	compactions := 0
	// step adds with probability add (in tenths), else deletes a member
	// or pops by rank.
	step := func(add int) {
		switch k := r.IntN(10); {
		case k < add:
			m, sc := member(), score()
			if _, ok := model[m]; ok {
				z.set(m, sc)
			} else {
				z.add(m, sc)
			}
			model[m] = sc
		case k < add+(10-add)*2/3:
		case k < 8:
			m := member()
			_, want := model[m]
			before := z.dict.bytes
			if got := z.del([]byte(m)); got != want {
				t.Fatalf("del(%q) = %v, want %v", m, got, want)
			}
			if z.dict.bytes < before {
				compactions++
			}
			delete(model, m)
		default:
			if z.len() == 0 {
				return
			}
			rk := r.IntN(z.len())
			en := z.removeAt(rk)
			if want, ok := model[en.member]; !ok || want != en.score {
				t.Fatalf("removeAt(%d) = %v, model holds %v %v", rk, en, want, ok)
			}
			delete(model, en.member)
			if len(handed) < 1000 {
				handed = append(handed, held{en.member, strings.Clone(en.member)})
			}
		}
	}
	check := func() {
		t.Helper()
		want := model.sorted()
		checkZTree(t, &z.tree, want)
		for i := 0; i < len(want); i += 1 + len(want)/300 {
			en := want[i]
			if rk := z.tree.rank(en.score, en.member); rk != i {
				t.Fatalf("rank(%v) = %d, want %d", en, rk, i)
			}
			if sc, ok := z.score([]byte(en.member)); !ok || sc != en.score {
				t.Fatalf("score(%q) = %v %v, want %v", en.member, sc, ok, en.score)
			}
		}
		for _, h := range handed {
			if h.member != h.copy {
				t.Fatalf("a member handed out changed: %q, was %q", h.member, h.copy)
			}
		}
	}
	checked := 0
	for len(model) < 200000 {
		step(8)
		if len(model)%50000 == 0 && len(model) != checked {
			check()
			checked = len(model)
		}
	}
	check()
	for i := range 300000 { // churn at about 200 000 members
		step(5 + i%2) // about even
	}
	check()
	for len(model) > 0 {
		step(1)
		if len(model)%40000 == 0 && len(model) != checked {
			check()
			checked = len(model)
		}
	}
	check()
	if compactions < 10 {
		t.Fatalf("%d compactions", compactions)
	}
	if z.dict.nents > 64 || z.dict.bytes > 1024 {
		t.Fatalf("an emptied set keeps %d entries, %d arena bytes", z.dict.nents, z.dict.bytes)
	}
}
