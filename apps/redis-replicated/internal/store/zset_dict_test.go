package store

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestZDictRandom runs random sets, probes, gets and deletes (bursts of
// each, so the table grows through several sizes, and few distinct
// members, so runs of probes meet and deletes shift them) against a map,
// checking every member's presence and score, and the table's invariants.
// It compacts whenever the dict asks to, in an order of its own.
func TestZDictRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 9))
	var d zdict
	model := map[string]float64{}
	compactions := 0
	for step := range 40000 {
		m := "m" + strconv.Itoa(r.IntN(3000)) + strings.Repeat("x", r.IntN(3)*20)
		grow := (step/4000)%2 == 0
		switch k := r.IntN(4); {
		case k < 2 && grow || k == 0:
			sc := float64(step)
			if r.IntN(2) == 0 {
				d.set(m, sc)
			} else {
				ref, h, found := d.probe(m)
				if found {
					d.ent(uint32(ref)).score = sc
				} else {
					d.fill(ref, h, m, sc)
				}
			}
			model[m] = sc
		default:
			_, want := model[m]
			var got bool
			if d.n > 0 {
				var slot int
				slot, got = d.find(zhashString(m), m)
				if got {
					d.remove(slot, d.table[slot].idx)
				}
			}
			if got != want {
				t.Fatalf("step %d: delete(%q) = %v, want %v", step, m, got, want)
			}
			delete(model, m)
			if d.needsCompact() {
				compactions++
				compactZDict(t, &d)
			}
		}
		if step%499 == 0 {
			checkZDict(t, &d, model)
		}
	}
	checkZDict(t, &d, model)
	if compactions == 0 {
		t.Fatalf("never compacted")
	}
}

// compactZDict compacts d in descending order of entry index and checks
// the renumbering it returns.
func compactZDict(t *testing.T, d *zdict) {
	t.Helper()
	var live []uint32
	before := map[uint32]string{}
	for i := d.nents - 1; i >= 0; i-- {
		if d.ent(uint32(i)).n != zfreeMark {
			live = append(live, uint32(i))
			before[uint32(i)] = d.member(uint32(i))
		}
	}
	held := d.member(live[0]) // a string handed out before stays valid
	want := strings.Clone(held)
	renum := d.compact(slices.Values(live))
	for k, i := range live {
		if renum[i] != uint32(k) || d.member(uint32(k)) != before[i] {
			t.Fatalf("entry %d renumbered %d, want %d (%q)", i, renum[i], k, before[i])
		}
	}
	if held != want || d.garbage != 0 || d.free != 0 || d.nents != d.n || d.bytes != d.arenaLen() {
		t.Fatalf("after compact: held %q, garbage %d, free %d, %d entries of %d", held, d.garbage, d.free, d.nents, d.n)
	}
}

func checkZDict(t *testing.T, d *zdict, model map[string]float64) {
	t.Helper()
	if d.n != len(model) {
		t.Fatalf("%d entries, want %d", d.n, len(model))
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
	// The free list holds every entry not in use, once.
	free := 0
	for f := d.free; f != 0; f = uint32(d.ent(f - 1).off) {
		if d.ent(f-1).n != zfreeMark || free > d.nents {
			t.Fatalf("free list broken at %d", f-1)
		}
		free++
	}
	if free+d.n != d.nents {
		t.Fatalf("%d free and %d live of %d entries", free, d.n, d.nents)
	}
	used, liveBytes := 0, 0
	seen := make([]bool, d.nents)
	mask := len(d.table) - 1
	for i, s := range d.table {
		if s.hash == 0 {
			if s != (zdslot{}) {
				t.Fatalf("empty slot %d holds %v", i, s)
			}
			continue
		}
		used++
		if int(s.idx) >= d.nents || seen[s.idx] || d.ent(s.idx).n == zfreeMark {
			t.Fatalf("slot %d: entry %d of %d, free, or taken twice", i, s.idx, d.nents)
		}
		seen[s.idx] = true
		m := d.member(s.idx)
		liveBytes += len(m)
		if s.hash != zhashString(m) || s.hash != d.ent(s.idx).hash {
			t.Fatalf("slot %d: hash %x of another member", i, s.hash)
		}
		if d.slotOf(s.idx) != i {
			t.Fatalf("slot %d: slotOf(%d) = %d", i, s.idx, d.slotOf(s.idx))
		}
		// Every slot from its home to it is in use (the probe reaches it).
		for j := int(s.hash) & mask; j != i; j = (j + 1) & mask {
			if d.table[j].hash == 0 {
				t.Fatalf("slot %d: unreachable from its home %d", i, int(s.hash)&mask)
			}
		}
	}
	if used != d.n || used*4 > len(d.table)*3 {
		t.Fatalf("%d slots used of %d, %d entries", used, len(d.table), d.n)
	}
	if liveBytes+d.garbage != d.bytes || d.bytes != d.arenaLen() {
		t.Fatalf("%d live bytes and %d garbage in an arena of %d (%d)", liveBytes, d.garbage, d.bytes, d.arenaLen())
	}
}

// arenaLen is the bytes in d's arena's chunks.
func (d *zdict) arenaLen() int {
	n := 0
	for _, c := range d.chunks {
		n += len(c)
	}
	return n
}
