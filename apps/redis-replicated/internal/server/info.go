package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
)

// INFO gives Redis 7.0's sections, with the fields clients and monitoring
// tools read, each one true of this server: what it does not have is
// reported as Redis reports its absence (no persistence, no cluster, no
// blocked clients), and what it does not track is left out rather than
// made up (keyspace hits and misses). Per-command statistics are this
// replica's own (stats.go).

// infoSections are INFO's sections in Redis's order; "default" and a bare
// INFO give all but commandstats and latencystats.
var infoSections = []string{"server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
	"commandstats", "errorstats", "latencystats", "cluster", "keyspace"}

// inDefault reports whether a section is in INFO's default set.
func inDefault(section string) bool { return section != "commandstats" && section != "latencystats" }

// runID is this process's run_id: 40 random hex digits, as Redis's.
var runID = func() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

func cmdInfo(c *conn, args [][]byte) bool {
	out := c.reply()
	c.settlePending() // the batch's calls before this INFO count in it
	want := func(section string) bool {
		if len(args) == 1 {
			return inDefault(section)
		}
		for _, a := range args[1:] {
			if lowerEq(a, section) || lowerEq(a, "all") || lowerEq(a, "everything") ||
				lowerEq(a, "default") && inDefault(section) {
				return true
			}
		}
		return false
	}
	s := c.s
	var b strings.Builder
	section := func(name string) {
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		fmt.Fprintf(&b, "# %s\r\n", name)
	}
	field := func(name string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", name, v) }
	now := time.Now()
	for _, sec := range infoSections {
		if !want(sec) {
			continue
		}
		switch sec {
		case "server":
			section("Server")
			up := now.Sub(s.start)
			exe, _ := os.Executable()
			field("redis_version", redisVersion)
			field("redis_git_sha1", "00000000")
			field("redis_git_dirty", 0)
			field("gomu_server", "redis-server-replicated")
			field("redis_mode", "standalone")
			field("os", runtime.GOOS+" "+runtime.GOARCH)
			field("arch_bits", 64)
			field("multiplexing_api", "go")
			field("process_id", os.Getpid())
			field("run_id", runID)
			field("tcp_port", portOf(s.Addr()))
			field("server_time_usec", now.UnixMicro())
			field("uptime_in_seconds", int64(up.Seconds()))
			field("uptime_in_days", int64(up.Hours()/24))
			field("executable", exe)
			field("config_file", "")
		case "clients":
			s.mu.Lock()
			n := len(s.conns)
			s.mu.Unlock()
			section("Clients")
			field("connected_clients", n)
			field("cluster_connections", 0)
			field("maxclients", 10000)
			field("blocked_clients", s.blockedClients.Load())
			field("tracking_clients", 0)
			field("clients_in_timeout_table", 0)
		case "memory":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			section("Memory")
			field("used_memory", ms.HeapAlloc)
			field("used_memory_human", humanBytes(ms.HeapAlloc))
			field("used_memory_rss", ms.Sys-ms.HeapReleased)
			field("used_memory_rss_human", humanBytes(ms.Sys-ms.HeapReleased))
			field("used_memory_peak", ms.HeapSys)
			field("used_memory_peak_human", humanBytes(ms.HeapSys))
			field("maxmemory", s.maxMemory.Load())
			field("maxmemory_human", humanBytes(uint64(s.maxMemory.Load())))
			field("maxmemory_policy", store.PolicyNames[s.cfg.Machine.access.Policy()])
			field("mem_allocator", "go-"+runtime.Version())
			var scripts int
			s.cfg.Machine.read(func(st *store.Store) { scripts = st.ScriptCount() })
			field("number_of_cached_scripts", scripts)
		case "persistence":
			section("Persistence")
			field("loading", 0)
			field("async_loading", 0)
			s.cfg.Machine.writeRDBInfo(field)
			s.cfg.Machine.writeAOFInfo(field)
		case "stats":
			s.mu.Lock()
			total := s.total
			s.mu.Unlock()
			proposed, failed := s.link.Counts()
			h := s.cfg.Machine.hub
			h.mu.Lock()
			channels, patterns := len(h.channels), len(h.patterns)
			h.mu.Unlock()
			section("Stats")
			field("total_connections_received", total)
			field("rejected_connections", 0)
			var evicted int64
			s.cfg.Machine.read(func(st *store.Store) { evicted = st.EvictedKeys() })
			field("evicted_keys", evicted)
			field("pubsub_channels", channels)
			field("pubsub_patterns", patterns)
			field("latest_fork_usec", 0)
			field("migrate_cached_sockets", s.migrations.cached())
			field("total_error_replies", s.errs.totalReplies())
			field("gomu_proposals", proposed)
			field("gomu_proposals_failed", failed)
			field("gomu_commands_applied", s.cfg.Machine.cmds.Load())
		case "replication":
			section("Replication")
			s.writeReplication(&b)
		case "cpu":
			section("CPU")
			var ru syscall.Rusage
			if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
				field("used_cpu_sys", fmt.Sprintf("%.6f", tv(ru.Stime)))
				field("used_cpu_user", fmt.Sprintf("%.6f", tv(ru.Utime)))
			}
		case "modules":
			section("Modules")
		case "commandstats":
			section("Commandstats")
			s.writeCommandStats(&b)
		case "errorstats":
			section("Errorstats")
			s.writeErrorStats(&b)
		case "latencystats":
			section("Latencystats")
			s.writeLatencyStats(&b)
		case "cluster":
			section("Cluster")
			field("cluster_enabled", 0)
		case "keyspace":
			section("Keyspace")
			// avg_ttl is 0: Redis estimates it in its own expiry cycle,
			// which the leader's sweep is not.
			var keys, expires [store.Databases]int
			s.cfg.Machine.read(func(st *store.Store) {
				for db := range keys {
					keys[db], expires[db] = st.DBStats(db)
				}
			})
			for db, n := range keys {
				if n > 0 {
					fmt.Fprintf(&b, "db%d:keys=%d,expires=%d,avg_ttl=0\r\n", db, n, expires[db])
				}
			}
		}
	}
	*out = c.appendText(*out, []byte(b.String()))
	return false
}

// tv is a timeval in seconds.
func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// humanBytes formats n as Redis's *_human fields do (1.50M, 512.00K, 100B).
func humanBytes(n uint64) string {
	f := float64(n)
	for _, u := range []string{"B", "K", "M", "G", "T", "P"} {
		if f < 1024 || u == "P" {
			if u == "B" {
				return fmt.Sprintf("%dB", n)
			}
			return fmt.Sprintf("%.2f%s", f, u)
		}
		f /= 1024
	}
	return ""
}
