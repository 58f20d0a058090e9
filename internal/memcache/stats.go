package memcache

import (
	"strconv"
	"time"
)

// ServerStats is what a server knows of itself for memcached's general
// stats, beside its store's counters.
type ServerStats struct {
	PID                      int
	Start                    time.Time
	Version                  string
	MaxConns                 int
	CurrConns, TotalConns    uint64
	RejectedConns            uint64
	Threads                  int
	RusageUser, RusageSystem time.Duration
	BytesRead, BytesWritten  uint64
	StoreTooLarge            uint64
}

// AppendGeneralStats appends the reply to a bare "stats": memcached's
// general statistics, as far as this server has them, ending with END.
// extra lines (name, value pairs) go before END.
func AppendGeneralStats(out []byte, now time.Time, sv ServerStats, st StoreStats, extra ...string) []byte {
	pairs := append(GeneralStats(nil, now, sv, st), extra...)
	for k := 0; k+1 < len(pairs); k += 2 {
		out = AppendStat(out, pairs[k], pairs[k+1])
	}
	return AppendStatus(out, StatusEnd)
}

// GeneralStats appends to dst memcached's general statistics, as far as
// this server has them, as name, value pairs in memcached's order: what
// "stats" lists in the text protocol (AppendGeneralStats) and Stat in the
// binary one (AppendBinaryStats).
func GeneralStats(dst []string, now time.Time, sv ServerStats, st StoreStats) []string {
	u := func(name string, v uint64) { dst = append(dst, name, strconv.FormatUint(v, 10)) }
	i := func(name string, v int64) { dst = append(dst, name, strconv.FormatInt(v, 10)) }
	rusage := func(name string, d time.Duration) {
		dst = append(dst, name, strconv.FormatFloat(d.Seconds(), 'f', 6, 64))
	}
	i("pid", int64(sv.PID))
	i("uptime", int64(now.Sub(sv.Start)/time.Second))
	i("time", now.Unix())
	dst = append(dst, "version", sv.Version)
	i("pointer_size", 64)
	rusage("rusage_user", sv.RusageUser)
	rusage("rusage_system", sv.RusageSystem)
	i("max_connections", int64(sv.MaxConns))
	u("curr_connections", sv.CurrConns)
	u("total_connections", sv.TotalConns)
	u("rejected_connections", sv.RejectedConns)
	u("cmd_get", st.CmdGet)
	u("cmd_set", st.CmdSet)
	u("cmd_flush", st.CmdFlush)
	u("cmd_touch", st.CmdTouch)
	u("get_hits", st.GetHits)
	u("get_misses", st.GetMisses)
	u("get_expired", st.GetExpired)
	u("get_flushed", st.GetFlushed)
	u("delete_misses", st.DeleteMisses)
	u("delete_hits", st.DeleteHits)
	u("incr_misses", st.IncrMisses)
	u("incr_hits", st.IncrHits)
	u("decr_misses", st.DecrMisses)
	u("decr_hits", st.DecrHits)
	u("cas_misses", st.CasMisses)
	u("cas_hits", st.CasHits)
	u("cas_badval", st.CasBadval)
	u("touch_hits", st.TouchHits)
	u("touch_misses", st.TouchMisses)
	u("store_too_large", sv.StoreTooLarge)
	u("store_no_memory", st.OutOfMemory)
	u("bytes_read", sv.BytesRead)
	u("bytes_written", sv.BytesWritten)
	u("limit_maxbytes", st.LimitMaxbytes)
	i("threads", int64(sv.Threads))
	u("bytes", st.Bytes)
	u("curr_items", st.CurrItems)
	u("total_items", st.TotalItems)
	u("evictions", st.Evictions)
	u("reclaimed", st.Reclaimed)
	return dst
}
