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
				slot, h, found := d.probe([]byte(m))
				if found {
					d.slots[slot].score = sc
				} else {
					d.fill(slot, h, m, sc)
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
	if d.n != len(model) {
		t.Fatalf("n = %d, want %d", d.n, len(model))
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
	mask := len(d.hashes) - 1
	for i, h := range d.hashes {
		if h == 0 {
			if d.slots[i] != (zslot{}) {
				t.Fatalf("empty slot %d holds %v", i, d.slots[i])
			}
			continue
		}
		used++
		if h != zhashString(d.slots[i].member) {
			t.Fatalf("slot %d: hash %x of another member", i, h)
		}
		// Every slot from its home to it is in use (the probe reaches it).
		for j := int(h) & mask; j != i; j = (j + 1) & mask {
			if d.hashes[j] == 0 {
				t.Fatalf("slot %d: unreachable from its home %d", i, int(h)&mask)
			}
		}
	}
	if used != d.n || used*4 > len(d.hashes)*3 {
		t.Fatalf("%d slots used of %d, n = %d", used, len(d.hashes), d.n)
	}
}
