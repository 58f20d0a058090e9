package lincheck

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// The environment variables that size a test's runs, so that a long run
// (GOMU_LIN_OPS=20000 GOMU_LIN_RUNS=5) needs no edit. EnvDir names where
// visualisations go.
const (
	EnvOps    = "GOMU_LIN_OPS"    // operations per history (per fault kind)
	EnvRuns   = "GOMU_LIN_RUNS"   // histories per fault kind, each on a fresh cluster
	EnvBudget = "GOMU_LIN_BUDGET" // porcupine's time budget per history (a Go duration)
)

// Knobs are a test's sizes.
type Knobs struct {
	Ops    int
	Runs   int
	Budget time.Duration
}

// KnobsFromEnv returns ops, one run and a 30 s budget, or what the
// environment says instead.
func KnobsFromEnv(ops int) (Knobs, error) {
	k := Knobs{Ops: ops, Runs: 1, Budget: 30 * time.Second}
	for _, v := range []struct {
		name string
		dst  *int
	}{{EnvOps, &k.Ops}, {EnvRuns, &k.Runs}} {
		if s := os.Getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return k, fmt.Errorf("%s=%q: want a positive count", v.name, s)
			}
			*v.dst = n
		}
	}
	if s := os.Getenv(EnvBudget); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return k, fmt.Errorf("%s=%q: want a positive duration", EnvBudget, s)
		}
		k.Budget = d
	}
	return k, nil
}
