package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gomu-rdma/gomu/internal/latency"
	"github.com/gomu-rdma/gomu/internal/poll"
)

// bare is the shm provider's side-by-side peer: the same ping-pong over a
// plain shared-memory file both processes map, with no verbs in between. The
// difference between the two is what the verbs layer costs (checks, fence,
// completions).
type bare struct {
	mem  []byte
	slot int
	off  int
	mode poll.Mode
}

// The file holds two inboxes a page apart, the server's first; a message is
// placed so that it ends on an 8-byte boundary, its last byte the sequence.
const bareInbox = 4096

func bareLen(size int) int { return 2 * ((size + 7 + bareInbox - 1) &^ (bareInbox - 1)) }

func mapBare(path string, size int, create bool, mode poll.Mode) (*bare, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("bare shared memory: %w", err)
	}
	defer f.Close()
	n := bareLen(size)
	if create {
		if err := f.Truncate(int64(n)); err != nil {
			return nil, fmt.Errorf("bare shared memory: %w", err)
		}
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("bare shared memory: map %s: %w", path, err)
	}
	slot := (size + 7) &^ 7
	return &bare{mem: mem, slot: slot, off: slot - size, mode: mode}, nil
}

func (b *bare) close() { unix.Munmap(b.mem) }

// inbox returns the start of the server's (0) or the client's (1) inbox.
func (b *bare) inbox(which int) int { return which * len(b.mem) / 2 }

func (b *bare) send(to int, src []byte, seq byte) {
	src[len(src)-1] = seq
	copy(b.mem[b.inbox(to)+b.off:], src)
}

func (b *bare) await(me int, seq byte) error {
	return awaitSeq((*uint64)(unsafe.Pointer(&b.mem[b.inbox(me)+b.slot-8])), seq, b.mode, nil)
}

// bareServe is the server's half: make the file, tell the client its path,
// echo every message, remove the file.
func bareServe(conn net.Conn, rd *bufio.Reader, cfg config, total int) error {
	path := fmt.Sprintf("/dev/shm/gomu-verbs-lat-bare-%d", os.Getpid())
	b, err := mapBare(path, cfg.size, true, cfg.mode)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	defer b.close()
	fmt.Fprintf(conn, "bare %s\n", path)
	conn.SetReadDeadline(time.Now().Add(silence))
	if l, err := rd.ReadString('\n'); err != nil || strings.TrimSpace(l) != "mapped" {
		return fmt.Errorf("bare baseline: client did not map the file: %q %v", l, err)
	}
	src := make([]byte, cfg.size)
	defer pin(cfg.mode)()
	for i := 0; i < total; i++ {
		seq := seqOf(i)
		if err := b.await(0, seq); err != nil {
			return fmt.Errorf("bare round %d: %w", i, err)
		}
		b.send(1, src, seq)
	}
	conn.SetReadDeadline(time.Now().Add(silence))
	rd.ReadString('\n') // the client is done with the file
	return nil
}

// barePing is the client's half; it returns the half round trips.
func barePing(conn net.Conn, rd *bufio.Reader, cfg config, total int) (*latency.Recorder, error) {
	conn.SetReadDeadline(time.Now().Add(silence))
	l, err := rd.ReadString('\n')
	path, ok := strings.CutPrefix(strings.TrimSpace(l), "bare ")
	if err != nil || !ok {
		return nil, fmt.Errorf("bare baseline: server said %q %v", l, err)
	}
	b, err := mapBare(path, cfg.size, false, cfg.mode)
	if err != nil {
		return nil, err
	}
	defer b.close()
	fmt.Fprintln(conn, "mapped")
	rec := latency.New(time.Minute, 0)
	src := make([]byte, cfg.size)
	defer pin(cfg.mode)()
	for i := 0; i < total; i++ {
		seq := seqOf(i)
		start := time.Now()
		b.send(0, src, seq)
		if err := b.await(1, seq); err != nil {
			return nil, fmt.Errorf("bare round %d: %w", i, err)
		}
		if i >= cfg.warmup {
			rec.Record(time.Since(start) / 2)
		}
	}
	fmt.Fprintln(conn, "done")
	return rec, nil
}
