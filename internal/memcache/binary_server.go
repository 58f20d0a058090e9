package memcache

import "time"

// serveBinary answers a binary command for the embedded Server; it reports
// whether the connection ends.
func (s *Server) serveBinary(out []byte, cmd *Command, now time.Time) ([]byte, bool) {
	switch cmd.Op {
	case OpQuit:
		return AppendBinaryQuit(out, cmd), true
	case OpVersion:
		return AppendBinaryVersion(out, cmd, s.cfg.Version), false
	case OpStats:
		if len(cmd.Keys) == 0 {
			return AppendBinaryStats(out, cmd, GeneralStats(nil, now, s.serverStats(), s.store.Stats())...), false
		}
		if !IsStatsGroup(string(cmd.Key())) {
			return AppendBinaryStatus(out, cmd, BinaryKeyNotFound, ""), false
		}
		// No slabs to describe: an empty list, as the text stats answers.
		return AppendBinaryStats(out, cmd), false
	}
	return s.store.Exec(out, cmd, now.UnixNano()), false
}

// IsStatsGroup reports whether memcached's stats knows the group;
// it answers Not found to others. Like memcached it compares only a prefix
// for some.
func IsStatsGroup(g string) bool {
	for _, p := range [...]string{"reset", "settings", "detail on", "detail off", "detail dump"} {
		if len(g) >= len(p) && g[:len(p)] == p {
			return true
		}
	}
	switch g {
	case "items", "slabs", "sizes", "sizes_enable", "sizes_disable":
		return true
	}
	return false
}
