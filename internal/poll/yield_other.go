//go:build !linux

package poll

import "time"

// osYield has no portable equivalent; runtime.Gosched alone yields.
func osYield() {}

// Nap sleeps for d; without nanosleep(2) at hand it is time.Sleep.
func Nap(d time.Duration) { time.Sleep(d) }

// NapHoldingP is Nap here.
func NapHoldingP(d time.Duration) { time.Sleep(d) }
