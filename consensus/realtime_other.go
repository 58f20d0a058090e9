//go:build !linux

package consensus

import (
	"errors"
	"runtime"
)

// lockRealtime locks the goroutine to its thread; real-time scheduling is
// a Linux feature here.
func lockRealtime(int) error {
	runtime.LockOSThread()
	return errors.New("real-time scheduling is only supported on Linux")
}
