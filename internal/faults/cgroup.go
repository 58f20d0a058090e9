package faults

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroup is a control group of one controller that a fault moves a
// process into, and out of again when it ends. Both hierarchies are
// handled: cgroup v2 (one tree at /sys/fs/cgroup, cpu.max and memory.max)
// and v1 (a tree per controller, cpu.cfs_quota_us and
// memory.limit_in_bytes), since machines still boot either.
type cgroup struct {
	dir    string // this group's directory
	parent string // where its processes go back to
	v2     bool
}

const cgroupRoot = "/sys/fs/cgroup"

// newCgroup makes the group name under controller ("cpu" or "memory").
func newCgroup(controller, name string) (*cgroup, error) {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		g := &cgroup{dir: filepath.Join(cgroupRoot, name), parent: cgroupRoot, v2: true}
		// The controller must be enabled for the root's children.
		_ = os.WriteFile(filepath.Join(cgroupRoot, "cgroup.subtree_control"), []byte("+"+controller), 0)
		if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("cgroup %s: %w", g.dir, err)
		}
		return g, nil
	}
	root := filepath.Join(cgroupRoot, controller)
	if _, err := os.Stat(filepath.Join(root, "tasks")); err != nil {
		return nil, fmt.Errorf("cgroup: no %s controller mounted at %s or a v2 tree at %s", controller, root, cgroupRoot)
	}
	g := &cgroup{dir: filepath.Join(root, name), parent: root}
	if err := os.Mkdir(g.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup %s: %w", g.dir, err)
	}
	return g, nil
}

func (g *cgroup) write(file, value string) error {
	if err := os.WriteFile(filepath.Join(g.dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", value, filepath.Join(g.dir, file), err)
	}
	return nil
}

// setCPU limits the group to share of one CPU (0.1: 10 ms of every 100).
func (g *cgroup) setCPU(share float64) error {
	quota := int(share * 100_000)
	if g.v2 {
		return g.write("cpu.max", fmt.Sprintf("%d 100000", quota))
	}
	if err := g.write("cpu.cfs_period_us", "100000"); err != nil {
		return err
	}
	return g.write("cpu.cfs_quota_us", strconv.Itoa(quota))
}

// setMemory limits the group's memory to bytes.
func (g *cgroup) setMemory(bytes int64) error {
	if g.v2 {
		return g.write("memory.max", strconv.FormatInt(bytes, 10))
	}
	return g.write("memory.limit_in_bytes", strconv.FormatInt(bytes, 10))
}

// memoryUsage is what the group's processes use now.
func (g *cgroup) memoryUsage() (int64, error) {
	file := "memory.usage_in_bytes"
	if g.v2 {
		file = "memory.current"
	}
	b, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// add moves pid (all its threads) into the group.
func (g *cgroup) add(pid int) error { return g.write("cgroup.procs", strconv.Itoa(pid)) }

// close moves the group's processes back to the parent and removes it.
func (g *cgroup) close() error {
	b, _ := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
	for _, f := range strings.Fields(string(b)) {
		_ = os.WriteFile(filepath.Join(g.parent, "cgroup.procs"), []byte(f), 0)
	}
	if err := os.Remove(g.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cgroup: remove %s: %w", g.dir, err)
	}
	return nil
}

// SweepCgroups removes the groups a killed run left (empty ones only: a
// group still holding a process belongs to a run still going).
func SweepCgroups() {
	for _, dir := range []string{cgroupRoot, filepath.Join(cgroupRoot, "cpu"), filepath.Join(cgroupRoot, "memory")} {
		m, _ := filepath.Glob(filepath.Join(dir, "gomu-faults-*"))
		for _, g := range m {
			_ = os.Remove(g)
		}
	}
}
