package consensus

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// startFifo creates the pause fifo if needed and watches it: 'p' pauses the
// replica, 'c' resumes it; other bytes are ignored. The fifo is opened
// read-write so that reads block instead of seeing end-of-file when no
// writer is connected, and so that Close can wake the watcher by writing to
// it.
func (r *Replica) startFifo() error {
	path := r.cfg.Fifo
	if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create fifo %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		return fmt.Errorf("fifo %s: not a named pipe", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open fifo %s: %w", path, err)
	}
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		<-r.stop
		f.Close() // unblocks the reader
	}()
	go func() {
		defer r.wg.Done()
		var b [64]byte
		for {
			n, err := f.Read(b[:])
			for _, c := range b[:n] {
				switch c {
				case 'p':
					r.Pause()
				case 'c':
					r.Resume()
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && !r.closed.Load() {
					r.cfg.Logger.Warn("fifo watcher stopped", "id", r.id, "err", err)
				}
				return
			}
		}
	}()
	return nil
}
