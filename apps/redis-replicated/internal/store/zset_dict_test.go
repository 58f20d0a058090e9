package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestZDictRandom runs random sets, probes, gets and deletes (bursts of
// each, so the table grows through several sizes, and few distinct
// members, so runs of probes meet and deletes shift them) against a map,
// checking every member's presence and score, and the table's invariants.
func TestZDictRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 9))
	var d zdict
	model := map[string]float64{}
	for step := range 40000 {
		m := "m" + strconv.Itoa(r.IntN(3000))
		grow := (step/4000)%2 == 0
		switch k := r.IntN(4); {
		case k < 2 && grow || k == 0:
			sc := float64(step)
			if r.IntN(2) == 0 {
				d.set(m, sc)
			} else {
				ref, h, found := d.probe([]byte(m))
				if found {
					d.entry(ref).score = sc
				} else {
					d.fill(ref, h, m, sc)
				}
			}
			model[m] = sc
		default:
			_, want := model[m]
			if got := d.delete(m); got != want {
				t.Fatalf("step %d: delete(%q) = %v, want %v", step, m, got, want)
			}
			delete(model, m)
		}
		if step%499 == 0 {
			checkZDict(t, &d, model)
		}
	}
	checkZDict(t, &d, model)
}

func checkZDict(t *testing.T, d *zdict, model map[string]float64) {
	t.Helper()
	if d.entries.n != len(model) {
		t.Fatalf("%d entries, want %d", d.entries.n, len(model))
	}
	for m, want := range model {
		got, ok := d.get([]byte(m))
		if got2, ok2 := d.getString(m); !ok || !ok2 || got != want || got2 != want {
			t.Fatalf("get(%q) = %v %v, want %v", m, got, ok, want)
		}
	}
	if _, ok := d.getString("absent"); ok {
		t.Fatalf("found an absent member")
	}
	used := 0
	seen := make([]bool, d.entries.n)
	mask := len(d.table) - 1
	for i, s := range d.table {
		if s.hash == 0 {
			if s != (zdslot{}) {
				t.Fatalf("empty slot %d holds %v", i, s)
			}
			continue
		}
		used++
		if int(s.idx) >= d.entries.n || seen[s.idx] {
			t.Fatalf("slot %d: entry %d of %d, or taken twice", i, s.idx, d.entries.n)
		}
		seen[s.idx] = true
		if s.hash != zhashString(d.entries.at(int(s.idx)).member) {
			t.Fatalf("slot %d: hash %x of another member", i, s.hash)
		}
		// Every slot from its home to it is in use (the probe reaches it).
		for j := int(s.hash) & mask; j != i; j = (j + 1) & mask {
			if d.table[j].hash == 0 {
				t.Fatalf("slot %d: unreachable from its home %d", i, int(s.hash)&mask)
			}
		}
	}
	if used != d.entries.n || used*4 > len(d.table)*3 {
		t.Fatalf("%d slots used of %d, %d entries", used, len(d.table), d.entries.n)
	}
	// Past the last entry, the segments hold nothing, and none is empty.
	segs := d.entries.segs
	if n := d.entries.n; n > 0 {
		if seg, _ := zsegOf(n - 1); seg != len(segs)-1 {
			t.Fatalf("%d entries in %d segments", n, len(segs))
		}
	}
	for i := d.entries.n; len(segs) > 0; i++ {
		seg, off := zsegOf(i)
		if seg >= len(segs) {
			break
		}
		if e := segs[seg][off]; e != (zslot{}) {
			t.Fatalf("a removed entry stays referenced: %v", e)
		}
	}
}
