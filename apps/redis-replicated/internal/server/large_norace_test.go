//go:build !race

package server

// largeValueSize: see large_race_test.go.
const largeValueSize = 100 << 20
