package lincheck

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is what Check concluded.
type Verdict uint8

const (
	// Ok: some linearisation explains every reply.
	Ok Verdict = iota + 1
	// Violation: none does; Result.BadKeys and Result.HTML say where.
	Violation
	// Inconclusive: the search did not finish within Options.Budget.
	Inconclusive
)

func (v Verdict) String() string {
	switch v {
	case Ok:
		return "ok"
	case Violation:
		return "violation"
	case Inconclusive:
		return "inconclusive"
	}
	return fmt.Sprintf("Verdict(%d)", v)
}

// EnvDir names the directory for visualisations of violations; DefaultDir
// reads it.
const EnvDir = "GOMU_LIN_DIR"

// DefaultDir is $GOMU_LIN_DIR, or the system's temporary directory: a
// place that outlives the test (not t.TempDir, which is removed with it).
func DefaultDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return os.TempDir()
}

// Options tune Check.
type Options struct {
	// Budget bounds the search (default 30 s); past it the verdict is
	// Inconclusive. Finding the keys at fault and drawing a violation gets
	// another Budget.
	Budget time.Duration
	// Dir receives the visualisation of a violation and the history of a
	// violation or an inconclusive check (default DefaultDir()), created
	// if missing.
	Dir string
	// Name goes into the visualisation's file name (a test's name, say).
	Name string
}

// maxDrawn bounds the keys drawn in one visualisation: the first few say
// what went wrong, and a page of every key would be too big to open.
const maxDrawn = 4

// Result is Check's verdict and what the history held.
type Result struct {
	Verdict Verdict
	// Ops counts the operations checked, Reads and Writes; MaybeApplied
	// counts the writes whose outcome was unknown.
	Ops, Reads, Writes, MaybeApplied int
	// Dropped counts attempts left out: reads without a reply, refused
	// operations (Recorder.Check fills it in).
	Dropped int
	// Keys counts the keys (partitions) checked.
	Keys int
	// ReadsAt counts the reads checked by the server that served them.
	ReadsAt map[string]int
	// BadKeys lists the keys whose history is not linearisable (all of
	// them, even when only the first few are drawn).
	BadKeys []string
	// Elapsed is the time porcupine took.
	Elapsed time.Duration
	// Undecided lists the keys whose history the search could not
	// decide alone within a quarter of the budget (after an inconclusive
	// check, or a violation).
	Undecided []string
	// HTML is the path of the visualisation of BadKeys (the first few).
	HTML string
	// History is the path of the whole history as JSON, after a
	// violation or an inconclusive check.
	History string
}

// String sums the result up on one line.
func (r Result) String() string {
	var at []string
	for _, w := range slices.Sorted(maps.Keys(r.ReadsAt)) {
		at = append(at, fmt.Sprintf("%s:%d", w, r.ReadsAt[w]))
	}
	s := fmt.Sprintf("%v: %d ops (%d reads, %d writes, %d maybe-applied) on %d keys, %d dropped, reads per server [%s], porcupine %v",
		r.Verdict, r.Ops, r.Reads, r.Writes, r.MaybeApplied, r.Keys, r.Dropped, strings.Join(at, " "), r.Elapsed.Round(time.Millisecond))
	if n := len(r.BadKeys); n > 0 {
		s += fmt.Sprintf("; %d keys not linearizable: %q", n, r.BadKeys[:min(n, 8)])
		if n > 8 {
			s += " and more"
		}
	}
	if n := len(r.Undecided); n > 0 {
		s += fmt.Sprintf("; %d keys undecided: %q", n, r.Undecided[:min(n, 8)])
		if n > 8 {
			s += " and more"
		}
	}
	if r.HTML != "" {
		s += "; drawn in " + r.HTML
	}
	if r.History != "" {
		s += "; history in " + r.History
	}
	return s
}

// Check checks whether history is linearizable. After a violation or an
// inconclusive search it names the keys at fault and writes the history
// (and a violation's drawing) to opt.Dir; the error is about writing those,
// the verdict stands regardless.
func Check(history []Op, opt Options) (Result, error) {
	if opt.Budget <= 0 {
		opt.Budget = 30 * time.Second
	}
	if opt.Dir == "" {
		opt.Dir = DefaultDir()
	}
	res := Result{ReadsAt: map[string]int{}}
	byKey := map[string][]porcupine.Operation{}
	for _, op := range history {
		if op.Unknown && op.Input.Kind == Get {
			res.Dropped++ // a read without a reply says nothing
			continue
		}
		res.Ops++
		switch {
		case op.Input.Kind == Get:
			res.Reads++
			res.ReadsAt[op.Where]++
		case op.Unknown:
			res.Writes++
			res.MaybeApplied++
		default:
			res.Writes++
		}
		pop := porcupine.Operation{ClientId: op.Client, Input: input{Input: op.Input}, Call: op.Call,
			Output: output{Output: op.Output}, Return: op.Return, Metadata: op.Where}
		if op.Unknown {
			// Maybe-applied: it may take effect anywhere after its
			// invocation, including after everything else, which is
			// the same as never.
			pop.Output, pop.Return = output{unknown: true}, math.MaxInt64
		}
		byKey[op.Input.Key] = append(byKey[op.Input.Key], pop)
	}
	res.Keys = len(byKey)
	for _, ops := range byKey {
		rankMaybeIncrs(ops)
	}
	var all []porcupine.Operation
	for _, ops := range byKey {
		all = append(all, ops...)
	}
	start := time.Now()
	verdict := porcupine.CheckOperationsTimeout(model, all, opt.Budget)
	res.Elapsed = time.Since(start)
	switch verdict {
	case porcupine.Ok:
		res.Verdict = Ok
		return res, nil
	case porcupine.Unknown:
		res.Verdict = Inconclusive
	default:
		res.Verdict = Violation
	}

	// Which keys? Each alone, within one more budget, a quarter of it at
	// most per key, so that one hard key leaves time for the others.
	deadline := time.Now().Add(opt.Budget)
	var bad []porcupine.Operation
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		left := min(time.Until(deadline), opt.Budget/4)
		if left <= 0 {
			break
		}
		switch porcupine.CheckOperationsTimeout(model, byKey[k], left) {
		case porcupine.Illegal:
			res.BadKeys = append(res.BadKeys, k)
			if len(res.BadKeys) <= maxDrawn {
				bad = append(bad, byKey[k]...)
			}
		case porcupine.Unknown:
			res.Undecided = append(res.Undecided, k)
		}
	}
	var err error
	res.History, err = writeHistory(opt, history)
	if len(bad) == 0 {
		// Nothing to draw (inconclusive, or the budget ran out before
		// a culprit showed): draw nothing rather than every key.
		return res, err
	}
	_, info := porcupine.CheckOperationsVerbose(model, bad, max(time.Until(deadline), time.Second))
	var herr error
	res.HTML, herr = writeHTML(opt, info)
	return res, errors.Join(err, herr)
}

// rankMaybeIncrs numbers the maybe-applied INCRs of one key's operations
// in the order of their invocations (see input.rank).
func rankMaybeIncrs(ops []porcupine.Operation) {
	var idx []int
	for i, op := range ops {
		if op.Input.(input).Kind == Incr && op.Output.(output).unknown {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(ops[a].Call, ops[b].Call) })
	for r, i := range idx {
		in := ops[i].Input.(input)
		in.rank = r
		ops[i].Input = in
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// writeHTML writes porcupine's visualisation to a fresh file in opt.Dir.
func writeHTML(opt Options, info porcupine.LinearizationInfo) (string, error) {
	return writeFile(opt, "html", func(w io.Writer) error { return porcupine.Visualize(model, info, w) })
}

// writeHistory writes h as JSON to a fresh file in opt.Dir, for a second
// look (ReadHistory reads it back).
func writeHistory(opt Options, h []Op) (string, error) {
	return writeFile(opt, "json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		return enc.Encode(h)
	})
}

// ReadHistory reads a history Check wrote (Result.History).
func ReadHistory(path string) ([]Op, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lincheck: %w", err)
	}
	var h []Op
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("lincheck: %s: %w", path, err)
	}
	return h, nil
}

// writeFile writes a fresh lincheck-<name>-*.<ext> in opt.Dir with write
// and returns its absolute path.
func writeFile(opt Options, ext string, write func(io.Writer) error) (string, error) {
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return "", fmt.Errorf("lincheck: %w", err)
	}
	name := unsafeName.ReplaceAllString(opt.Name, "-")
	f, err := os.CreateTemp(opt.Dir, "lincheck-"+name+"-*."+ext)
	if err != nil {
		return "", fmt.Errorf("lincheck: %w", err)
	}
	path, _ := filepath.Abs(f.Name())
	err = f.Chmod(0o644) // CreateTemp's 0600 hides it from whoever reads the report
	if err == nil {
		bw := bufio.NewWriter(f)
		if err = write(bw); err == nil {
			err = bw.Flush()
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return path, fmt.Errorf("lincheck: write %s: %w", path, err)
	}
	return path, nil
}
