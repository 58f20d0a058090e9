//go:build race

package faulty_test

// raceEnabled keeps allocation counts out of race-detector runs, whose
// instrumentation allocates.
const raceEnabled = true
