package book_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
	"github.com/gomu-rdma/gomu/apps/orderbook/internal/script"
)

var update = flag.Bool("update", false, "rewrite the expected transcripts of testdata/*.txt")

// TestGolden runs every testdata/*.txt. Such a file is a script with the
// expected transcript in it: the lines indented by two spaces are what the
// line above them must produce; the others are the script. The test runs the
// script and compares the transcript with the whole file; -update rewrites
// the files with what the engine does now (review the diff by hand).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var in strings.Builder
			for _, l := range strings.SplitAfter(string(data), "\n") {
				if l != "" && !strings.HasPrefix(l, "  ") {
					in.WriteString(l)
				}
			}
			var out bytes.Buffer
			m := book.NewMarket(book.Config{})
			if err := script.NewRunner(m, &out).Run(strings.NewReader(in.String())); err != nil {
				t.Fatal(err)
			}
			// The end state survives a snapshot round trip.
			snap := m.AppendSnapshot(nil)
			m2, err := book.RestoreMarket(snap, book.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m2.AppendSnapshot(nil), snap) {
				t.Errorf("snapshot of the restored market differs")
			}
			if *update {
				if err := os.WriteFile(f, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := out.String(); got != string(data) {
				t.Errorf("transcript differs from %s (run with -update and review the diff):\n%s", f, diff(string(data), got))
			}
		})
	}
}

// diff shows the first differing line of two transcripts with some context.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			lo := max(i-5, 0)
			return "context:\n" + strings.Join(g[lo:i], "\n") + "\nwant: " + wl + "\ngot:  " + gl
		}
	}
	return ""
}
