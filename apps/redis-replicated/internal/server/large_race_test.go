//go:build race

package server

// largeValueSize is TestLargeValue's value: under the race detector, which
// slows every byte the store and the transfer touch, 16 MB (still sixteen
// times the batch limit) instead of 100 MB.
const largeValueSize = 16 << 20
