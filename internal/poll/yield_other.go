//go:build !linux

package poll

// osYield has no portable equivalent; runtime.Gosched alone yields.
func osYield() {}
