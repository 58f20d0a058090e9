package latency

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRecorder(t *testing.T) {
	r := New(time.Second, 5)
	for i := 1; i <= 100; i++ {
		r.Record(time.Duration(i) * time.Microsecond)
	}
	r.Record(time.Hour) // clamped, not lost
	r.Record(-1)        // clamped to 1 ns
	if r.Count() != 102 {
		t.Fatalf("count %d, want 102", r.Count())
	}
	if p := r.Percentile(50); p < 49_000 || p > 51_000 {
		t.Fatalf("p50 %d ns, want about 50 µs", p)
	}
	if !strings.HasPrefix(r.Summary(), "n=102 p50=") {
		t.Fatalf("summary %q", r.Summary())
	}

	dir := t.TempDir()
	raw := filepath.Join(dir, "dump.txt")
	if err := r.WriteRaw(raw); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(raw)
	if got, want := string(b), "1000\n2000\n3000\n4000\n5000\n"; got != want {
		t.Fatalf("raw dump %q, want the first 5 values in order %q", got, want)
	}
	hgrm := filepath.Join(dir, "x.hgrm")
	if err := r.WriteHgrm(hgrm); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(hgrm); !strings.Contains(string(b), "Value") {
		t.Fatalf("hgrm file has no percentile table:\n%s", b)
	}
	if err := r.WriteRaw(filepath.Join(dir, "missing", "x")); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	r := New(time.Second, 0)
	if a := testing.AllocsPerRun(1000, func() { r.Record(123) }); a != 0 {
		t.Fatalf("Record allocates %.1f times", a)
	}
}
