package store

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// checkZTree verifies t's invariants against want (the entries in order):
// counts, smallest entries, order, fill, depth, the leaf chain, and that
// every entry the tree holds is its member's live dict entry.
func checkZTree(t *testing.T, tr *ztree, want []zentry) {
	t.Helper()
	if tr.n != len(want) || tr.d.n != len(want) {
		t.Fatalf("n = %d, dict %d, want %d", tr.n, tr.d.n, len(want))
	}
	if len(want) == 0 {
		if tr.root != nil {
			t.Fatalf("empty tree has a root")
		}
		return
	}
	var leaves []*znode
	depth := -1
	var walk func(x *znode, d int, isRoot bool) (n int, min zentry)
	walk = func(x *znode, d int, isRoot bool) (int, zentry) {
		if len(x.idx) != len(x.keys) {
			t.Fatalf("node of %d keys, %d indexes", len(x.keys), len(x.idx))
		}
		if x.leaf {
			if depth == -1 {
				depth = d
			} else if depth != d {
				t.Fatalf("leaves at depths %d and %d", depth, d)
			}
			if len(x.keys) == 0 || len(x.keys) > zLeafMax || (!isRoot && len(x.keys) < zLeafMin) {
				t.Fatalf("leaf of %d entries", len(x.keys))
			}
			leaves = append(leaves, x)
			return len(x.keys), tr.entry(x, 0)
		}
		if len(x.kids) > zInnerMax || len(x.kids) < 2 || (!isRoot && len(x.kids) < zInnerMin) {
			t.Fatalf("inner node of %d children", len(x.kids))
		}
		total := 0
		if len(x.counts) != len(x.kids) || len(x.keys) != len(x.kids) {
			t.Fatalf("inner node of %d children, %d counts, %d smallest", len(x.kids), len(x.counts), len(x.keys))
		}
		for i, c := range x.kids {
			n, m := walk(c, d+1, false)
			if n != x.counts[i] || m != tr.entry(x, i) {
				t.Fatalf("child %d: n %d min %v, holds %d from %v", i, x.counts[i], tr.entry(x, i), n, m)
			}
			total += n
		}
		return total, tr.entry(x, 0)
	}
	walk(tr.root, 0, true)
	var got []zentry
	for i, l := range leaves {
		if (i == 0) != (l.prev == nil) || (i == len(leaves)-1) != (l.next == nil) {
			t.Fatalf("leaf %d: chain ends wrong", i)
		}
		if i > 0 && (l.prev != leaves[i-1] || leaves[i-1].next != l) {
			t.Fatalf("leaf %d: chain broken", i)
		}
		for j, k := range l.idx {
			en := tr.entry(l, j)
			if idx, ok := tr.d.lookup(en.member); !ok || idx != k || tr.d.ent(k).score != en.score {
				t.Fatalf("leaf %d: entry %d (%v) is not its member's dict entry", i, k, en)
			}
			if rk := tr.rankOfIdx(k); rk != len(got) {
				t.Fatalf("rankOfIdx(%d) (%v) = %d, want %d", k, en, rk, len(got))
			}
			got = append(got, en)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("entries differ:\n got %v\nwant %v", got, want)
	}
}

func zentryCmp(a, b zentry) int {
	return cmp.Or(cmp.Compare(a.score, b.score), strings.Compare(a.member, b.member))
}

// TestZTreeRandom runs random inserts and deletes (bursts of each, so the
// tree grows and shrinks through several heights) against a sorted slice.
func TestZTreeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	z := newZSet()
	tr := &z.tree
	var model []zentry
	members := map[string]float64{}
	for step := range 60000 {
		phase := (step / 5000) % 2 // grow, then shrink
		if len(model) == 0 || (phase == 0 && r.IntN(4) != 0) || (phase == 1 && r.IntN(4) == 0) {
			m := fmt.Sprintf("m%d", r.IntN(20000))
			if _, ok := members[m]; ok {
				continue
			}
			sc := float64(r.IntN(50)) // many ties: order by member
			members[m] = sc
			e := zentry{member: m, score: sc}
			i, _ := slices.BinarySearchFunc(model, e, zentryCmp)
			model = slices.Insert(model, i, e)
			z.add(e.member, e.score)
		} else {
			i := r.IntN(len(model))
			e := model[i]
			model = slices.Delete(model, i, i+1)
			delete(members, e.member)
			if !z.del([]byte(e.member)) {
				t.Fatalf("step %d: delete %v failed", step, e)
			}
			if z.del([]byte(e.member)) {
				t.Fatalf("step %d: deleted %v twice", step, e)
			}
		}
		if step%997 == 0 || len(model) < 3 {
			checkZTree(t, tr, model)
			for k := 0; k < len(model); k += 1 + len(model)/50 {
				e := model[k]
				if rk := tr.rank(e.score, e.member); rk != k {
					t.Fatalf("rank(%v) = %d, want %d", e, rk, k)
				}
				if c := tr.at(k); c.entry() != e {
					t.Fatalf("at(%d) = %v, want %v", k, c.entry(), e)
				}
				x := e.score
				want, _ := slices.BinarySearchFunc(model, x, func(a zentry, x float64) int { return cmp.Compare(a.score, x) })
				if got := tr.countBefore(func(en zentry) bool { return en.score >= x }); got != want {
					t.Fatalf("countBefore(>= %v) = %d, want %d", x, got, want)
				}
				if got := tr.scoreRank(x, false); got != want {
					t.Fatalf("scoreRank(%v) = %d, want %d", x, got, want)
				}
				wantLE := want
				for wantLE < len(model) && model[wantLE].score == x {
					wantLE++
				}
				if got := tr.scoreRank(x, true); got != wantLE {
					t.Fatalf("scoreRank(%v, orEqual) = %d, want %d", x, got, wantLE)
				}
				for _, orEqual := range []bool{false, true} {
					r, c := tr.scoreSeek(x, orEqual)
					if r < len(model) && (c.leaf == nil || c.entry() != model[r]) || r == len(model) && c.leaf != nil {
						t.Fatalf("scoreSeek(%v, %v): cursor not on rank %d", x, orEqual, r)
					}
				}
				if got := tr.searchRank(func(en zentry) bool { return en.score >= x }); got != want {
					t.Fatalf("searchRank(>= %v) = %d, want %d", x, got, want)
				}
			}
			if rk := tr.rank(-1, "nope"); rk != -1 {
				t.Fatalf("rank of a missing entry = %d", rk)
			}
		}
	}
	for _, n := range []int{0, 1, 2, 47, 48, 49, 64, 65, 95, 96, 97, 100, 128, 129, 1000, 1537, 5000, 9000} {
		ents := make([]zentry, n)
		for i := range ents {
			ents[i] = zentry{member: fmt.Sprintf("%08d", i), score: float64(i / 3)}
		}
		b := newZSetSorted(ents)
		checkZTree(t, &b.tree, ents)
		// A built tree takes inserts and deletes like any other.
		for i := 0; i < n; i += 2 {
			b.del([]byte(ents[i].member))
		}
		var rest []zentry
		for i := 1; i < n; i += 2 {
			rest = append(rest, ents[i])
		}
		checkZTree(t, &b.tree, rest)
	}
}

// TestZTreeWide drives a tree of 50 000 entries through what wide nodes
// make rare: a crowd of inserts into one region splits leaves and then
// inner nodes; deleting whole regions, then everything, merges leaves and
// inner nodes and moves children between neighbours.
func TestZTreeWide(t *testing.T) {
	const n = 50000
	ents := make([]zentry, n)
	for i := range ents {
		ents[i] = zentry{member: fmt.Sprintf("m%06d", i), score: float64(i)}
	}
	z := newZSetSorted(ents)
	tr := &z.tree
	model := slices.Clone(ents)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 12000 {
		e := zentry{member: fmt.Sprintf("x%05d", i), score: 1000 + r.Float64()*300}
		z.add(e.member, e.score)
		model = append(model, e)
	}
	for i := range 700 { // a fuller inner node, left of the last ones
		e := zentry{member: fmt.Sprintf("y%05d", i), score: n - 6000 + r.Float64()*300}
		z.add(e.member, e.score)
		model = append(model, e)
	}
	slices.SortFunc(model, zentryCmp)
	checkZTreeSampled(t, tr, model)
	deleteSpan := func(lo, hi int) {
		if hi > len(model) {
			t.Fatalf("span [%d, %d) of %d entries", lo, hi, len(model))
		}
		gone := slices.Clone(model[lo:hi])
		r.Shuffle(len(gone), func(i, j int) { gone[i], gone[j] = gone[j], gone[i] })
		for _, e := range gone {
			if !z.del([]byte(e.member)) {
				t.Fatalf("delete %v failed", e)
			}
		}
		model = slices.Delete(model, lo, hi)
		checkZTreeSampled(t, tr, model)
	}
	for range 12 { // underfull last children
		deleteSpan(len(model)-500, len(model))
	}
	deleteSpan(800, 14000)
	deleteSpan(20000, 40000)
	deleteSpan(0, 500)
	for len(model) > 0 {
		lo := len(model) / 3
		deleteSpan(lo, min(len(model), lo+2000))
	}
}

// checkZTreeSampled is checkZTree and rank and select of some entries.
func checkZTreeSampled(t *testing.T, tr *ztree, model []zentry) {
	t.Helper()
	checkZTree(t, tr, model)
	for k := 0; k < len(model); k += 1 + len(model)/200 {
		e := model[k]
		if rk := tr.rank(e.score, e.member); rk != k {
			t.Fatalf("rank(%v) = %d, want %d", e, rk, k)
		}
		if c := tr.at(k); c.entry() != e {
			t.Fatalf("at(%d) = %v, want %v", k, c.entry(), e)
		}
	}
}

// TestZKeysBelow checks zkey, zscore and keysBelow against float
// comparisons, on nodes of every length up to a leaf's and past it, with
// the scores whose bits are special (zeros, infinities, the smallest and
// largest doubles) among random ones.
func TestZKeysBelow(t *testing.T) {
	special := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64, 0,
		math.SmallestNonzeroFloat64, 1, math.MaxFloat64, math.Inf(1)}
	r := rand.New(rand.NewPCG(8, 8))
	for n := range zLeafMax + 40 {
		scores := make([]float64, n)
		for i := range scores {
			if r.IntN(4) == 0 {
				scores[i] = special[r.IntN(len(special))]
			} else {
				scores[i] = r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10))
			}
		}
		slices.Sort(scores)
		keys := make([]uint64, n)
		for i, s := range scores {
			keys[i] = zkey(s)
			if zscore(keys[i]) != s || i > 0 && keys[i] < keys[i-1] {
				t.Fatalf("zkey(%v) = %x: back %v, or out of order", s, keys[i], zscore(keys[i]))
			}
		}
		probes := append(slices.Clone(special), math.Copysign(0, -1), r.NormFloat64())
		if n > 0 {
			probes = append(probes, scores[r.IntN(n)])
		}
		for _, x := range probes {
			want := 0
			for want < n && scores[want] < x {
				want++
			}
			if got := keysBelow(keys, zkey(x)); got != want {
				t.Fatalf("n %d: keysBelow(%v) = %d, want %d", n, x, got, want)
			}
		}
	}
}
