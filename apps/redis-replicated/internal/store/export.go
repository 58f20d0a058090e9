package store

// ExpireCommand is the internal write command the leader proposes to sweep
// expired keys: "gomu.expire <max>" (see keys.go).
const ExpireCommand = "gomu.expire"

// ExpireKeysCommand is the internal write command the leader proposes for
// the expired keys its reads met: "gomu.expirekeys key ..." deletes each
// that is still expired at the proposal's time (see keys.go).
const ExpireKeysCommand = "gomu.expirekeys"

// PFCacheCommand is the internal write command the leader proposes after a
// PFCOUNT found an HLL's cached cardinality stale: "gomu.pfcache key ..."
// computes and caches it, as Redis's PFCOUNT writes it (see
// hyperloglog.go).
const PFCacheCommand = "gomu.pfcache"

// Match reports whether s matches the glob pattern, in the syntax of KEYS
// and SCAN MATCH; the server uses it for CONFIG GET too.
func Match(pattern, s []byte) bool { return globMatch(pattern, s) }
