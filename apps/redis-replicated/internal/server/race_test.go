//go:build race

package server

// Sizes of the tests' work under the race detector, which slows every byte
// the store and the transfer touch and every Lua instruction many times.

// largeValueSize is TestLargeValue's value: 16 MB (still sixteen times the
// batch limit) instead of 100 MB.
const largeValueSize = 16 << 20

// busyScriptLoops is how many iterations TestScriptBusyAndKill's
// replicated scripts count to: enough to outlast lua-time-limit, a few
// seconds at most.
const busyScriptLoops = "1e6"
