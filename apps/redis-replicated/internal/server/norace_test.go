//go:build !race

package server

// Sizes of the tests' work without the race detector: see race_test.go.

const (
	largeValueSize  = 100 << 20
	busyScriptLoops = "1e7"
)
