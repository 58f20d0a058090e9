//go:build race

package main

// linRace: the test binary runs under the race detector, so the server
// binary TestLinearizableProcesses builds does too (it links the packages
// the test already compiled that way, and races in the replicas show).
const linRace = true
