package server

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestInfoSections: INFO, INFO default, INFO all and single sections give
// the sections Debian's redis-server gives, in its order, and every field a
// monitoring tool reads from them that this server has (the names below)
// in each, so tools that parse Redis's INFO find what they look for.
func TestInfoSections(t *testing.T) {
	srv := startStandalone(t)
	ours := redistest.Dial(t, srv.Addr())
	redis := redistest.Dial(t, redistest.Start(t))
	header := regexp.MustCompile(`(?m)^# (\w+)\r$`)
	sections := func(reply string) string {
		var names []string
		for _, m := range header.FindAllStringSubmatch(reply, -1) {
			names = append(names, m[1])
		}
		return strings.Join(names, " ")
	}
	for _, args := range [][]string{{"INFO"}, {"INFO", "default"}, {"INFO", "all"}, {"INFO", "clients", "cpu"}, {"INFO", "keyspace"}} {
		if got, want := sections(ours.Do(args...)), sections(redis.Do(args...)); got != want {
			t.Errorf("%q: sections %q, want %q", args, got, want)
		}
	}
	info := ours.Do("INFO", "all")
	for _, f := range []string{"redis_version", "redis_mode", "os", "arch_bits", "process_id", "run_id", "tcp_port", "uptime_in_seconds", "uptime_in_days",
		"connected_clients", "maxclients", "blocked_clients",
		"used_memory", "used_memory_human", "used_memory_rss", "used_memory_peak", "maxmemory", "maxmemory_policy", "mem_allocator",
		"loading", "rdb_changes_since_last_save", "rdb_bgsave_in_progress", "aof_enabled",
		"total_connections_received", "rejected_connections", "evicted_keys", "pubsub_channels", "pubsub_patterns",
		"role", "connected_slaves", "master_repl_offset", "used_cpu_sys", "used_cpu_user", "cluster_enabled"} {
		if !regexp.MustCompile(`(?m)^` + f + `:.*\r$`).MatchString(info) {
			t.Errorf("INFO all has no %s field:\n%s", f, info)
		}
		if !regexp.MustCompile(`(?m)^` + f + `:`).MatchString(redis.Do("INFO", "all")) {
			t.Errorf("test list: Redis 7.0 has no field %s", f)
		}
	}
}
