//go:build linux

package shm

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// staleTempAge is how old an unrenamed temporary lock file must be before a
// reclaimer treats it as the leftover of a process that died while opening.
const staleTempAge = time.Minute

// nodeFile is the path of one of node's files; suffix is ".lock", ".qp" or
// ".mr-<rkey>".
func nodeFile(dir string, node uint64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("n-%016x%s", node, suffix))
}

func mrSuffix(rkey uint32) string { return fmt.Sprintf(".mr-%08x", rkey) }

// createLock creates the fabric directory if needed and node's lock file,
// locked. The file is locked under a temporary name and only then renamed
// into place, so a reclaimer can never take the lock of a node that is still
// starting and think it dead.
func createLock(dir string, node uint64) (int, error) {
	tmp := filepath.Join(dir, fmt.Sprintf("t-%016x.lock", node))
	final := nodeFile(dir, node, ".lock")
	for attempt := 0; ; attempt++ {
		// Mkdir, not MkdirAll: the base directory must exist, so that a
		// mistyped Options.Dir is reported rather than created.
		if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
			return -1, fmt.Errorf("shm: create fabric directory: %w", err)
		}
		fd, err := unix.Open(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if errIs(err, unix.ENOENT) && attempt < 10 {
			continue // the last node of the fabric removed the directory under us
		}
		if err != nil {
			return -1, fmt.Errorf("shm: create %s: %w", tmp, err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			os.Remove(tmp)
			return -1, fmt.Errorf("shm: lock %s: %w", tmp, err)
		}
		if err := os.Rename(tmp, final); err != nil {
			unix.Close(fd)
			os.Remove(tmp)
			return -1, fmt.Errorf("shm: %w", err)
		}
		return fd, nil
	}
}

// reclaim removes the files of every dead node in dir but self.
func reclaim(dir string, self uint64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "n-") && strings.HasSuffix(name, ".lock"):
			node, err := strconv.ParseUint(strings.TrimSuffix(name[2:], ".lock"), 16, 64)
			if err == nil && node != self {
				reclaimNode(dir, node)
			}
		case strings.HasPrefix(name, "t-") && strings.HasSuffix(name, ".lock"):
			info, err := e.Info()
			if err == nil && time.Since(info.ModTime()) > staleTempAge {
				path := filepath.Join(dir, name)
				if dead, _ := lockFree(path); dead {
					os.Remove(path)
				}
			}
		}
	}
}

// sweep reclaims dead nodes in the other fabrics under base and removes
// the fabric directories it leaves empty, so that fabrics nobody opens again
// (a crashed test's, say) do not pile up in /dev/shm.
func sweep(base, self string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "gomu-") || dir == self {
			continue
		}
		reclaim(dir, 0)
		// Fails unless empty. A node that is creating this directory
		// right now retries (see createLock).
		os.Remove(dir)
	}
}

// reclaimNode removes node's files if node is dead.
func reclaimNode(dir string, node uint64) {
	lock := nodeFile(dir, node, ".lock")
	fd, err := unix.Open(lock, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // alive
	}
	// We hold the dead node's lock, so no other reclaimer is removing
	// its files; the lock file goes last so that a crash of ours leaves
	// the job to the next one.
	files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("n-%016x.*", node)))
	for _, f := range files {
		if f != lock {
			os.Remove(f)
		}
	}
	os.Remove(lock)
}

// lockFree reports whether nobody holds the lock on path (a missing file
// counts as free): for a node's lock file, whether the node is dead.
func lockFree(path string) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errIs(err, unix.ENOENT) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("shm: probe %s: %w", path, err)
	}
	defer unix.Close(fd)
	return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil, nil
}

// createMapped creates path with size zeroed bytes, backed by allocated
// pages (so running out of shared memory fails here and not as SIGBUS on a
// later store), and maps it shared.
func createMapped(path string, size int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shm: create %s: %w", path, err)
	}
	defer unix.Close(fd)
	fail := func(what string, err error) ([]byte, error) {
		os.Remove(path)
		return nil, fmt.Errorf("shm: %s %s (%d bytes): %w", what, path, size, err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return fail("size", err)
	}
	if err := unix.Fallocate(fd, 0, 0, int64(size)); err != nil && !errIs(err, unix.EOPNOTSUPP) {
		return fail("allocate", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fail("map", err)
	}
	return mem, nil
}

// mapFile maps an existing file shared, whole; it returns nil, nil when the
// file does not exist.
func mapFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if errIs(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("shm: open %s: %w", path, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("shm: stat %s: %w", path, err)
	}
	if st.Size < headerSize {
		return nil, fmt.Errorf("shm: %s: truncated (%d bytes)", path, st.Size)
	}
	mem, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("shm: map %s: %w", path, err)
	}
	return mem, nil
}
