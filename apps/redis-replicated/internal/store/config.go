package store

import (
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// Config is the part of Redis's configuration that is replicated state:
// the encoding thresholds. They decide what OBJECT ENCODING reports, the
// order an intset lists its members in and when a sparse HyperLogLog turns
// dense, so every replica must hold the same values at the same point of
// the log. CONFIG SET of them is therefore a write (ConfigCommand), and
// they travel in the snapshot and the Digest.
//
// The list and stream ones change nothing here (7.0's lists are always
// quicklists; there are no streams yet) but are kept so that CONFIG GET
// reads back what CONFIG SET wrote, as Redis does.
type Config struct {
	HashMaxListpackEntries int64
	HashMaxListpackValue   int64
	SetMaxIntsetEntries    int64
	ZSetMaxListpackEntries int64
	ZSetMaxListpackValue   int64
	ListMaxListpackSize    int64
	ListCompressDepth      int64
	HLLSparseMaxBytes      int64
	StreamNodeMaxBytes     int64
	StreamNodeMaxEntries   int64
	// NotifyKeyspaceEvents is notify-keyspace-events as a mask of the
	// notify* classes (notify.go): which events the writes produce.
	NotifyKeyspaceEvents int64
}

// DefaultConfig is Redis 7.0's defaults (redis.conf).
func DefaultConfig() Config {
	return Config{
		HashMaxListpackEntries: 512, HashMaxListpackValue: 64,
		SetMaxIntsetEntries:    512,
		ZSetMaxListpackEntries: 128, ZSetMaxListpackValue: 64,
		ListMaxListpackSize: -2, ListCompressDepth: 0,
		HLLSparseMaxBytes:  3000,
		StreamNodeMaxBytes: 4096, StreamNodeMaxEntries: 100,
	}
}

// ConfigCommand is the internal write command CONFIG SET of the encoding
// thresholds proposes: "gomu.config name value [name value ...]", with the
// parameters' canonical names and values already checked by ParseConfig.
const ConfigCommand = "gomu.config"

// configParam describes one replicated parameter as Redis 7.0 declares it.
type configParam struct {
	name, alias string
	min, max    int64
	// memory parameters accept units (1kb, 2mb …), as Redis's
	// MEMORY_CONFIG ones do.
	memory bool
	field  func(c *Config) *int64
	// parse and format, when set, read and print a value that is not a
	// number (notify-keyspace-events' flags); the value is still held,
	// and carried by gomu.config, as an int64.
	parse  func(b []byte) (int64, string)
	format func(v int64) string
}

// configParams lists the replicated parameters in a fixed order: the
// snapshot and the Digest encode them in it.
var configParams = []configParam{
	{"hash-max-listpack-entries", "hash-max-ziplist-entries", 0, maxLong, false, func(c *Config) *int64 { return &c.HashMaxListpackEntries }, nil, nil},
	{"hash-max-listpack-value", "hash-max-ziplist-value", 0, maxLong, true, func(c *Config) *int64 { return &c.HashMaxListpackValue }, nil, nil},
	{"set-max-intset-entries", "", 0, maxLong, false, func(c *Config) *int64 { return &c.SetMaxIntsetEntries }, nil, nil},
	{"zset-max-listpack-entries", "zset-max-ziplist-entries", 0, maxLong, false, func(c *Config) *int64 { return &c.ZSetMaxListpackEntries }, nil, nil},
	{"zset-max-listpack-value", "zset-max-ziplist-value", 0, maxLong, true, func(c *Config) *int64 { return &c.ZSetMaxListpackValue }, nil, nil},
	{"list-max-listpack-size", "list-max-ziplist-size", minInt32, maxInt32, false, func(c *Config) *int64 { return &c.ListMaxListpackSize }, nil, nil},
	{"list-compress-depth", "", 0, maxInt32, false, func(c *Config) *int64 { return &c.ListCompressDepth }, nil, nil},
	{"hll-sparse-max-bytes", "", 0, maxLong, true, func(c *Config) *int64 { return &c.HLLSparseMaxBytes }, nil, nil},
	{"stream-node-max-bytes", "", 0, maxLong, true, func(c *Config) *int64 { return &c.StreamNodeMaxBytes }, nil, nil},
	{"stream-node-max-entries", "", 0, maxLong, false, func(c *Config) *int64 { return &c.StreamNodeMaxEntries }, nil, nil},
	{"notify-keyspace-events", "", 0, maxLong, false, func(c *Config) *int64 { return &c.NotifyKeyspaceEvents }, parseNotifyFlags, formatNotifyFlags},
}

const (
	maxLong  = int64(^uint64(0) >> 1)
	maxInt32 = int64(1<<31 - 1)
	minInt32 = -int64(1 << 31)
)

// findConfigParam finds a replicated parameter by name or alias, in any
// case.
func findConfigParam(name string) *configParam {
	name = strings.ToLower(name)
	for i := range configParams {
		if p := &configParams[i]; p.name == name || (p.alias != "" && p.alias == name) {
			return p
		}
	}
	return nil
}

// IsConfigParam reports whether name (or its alias) is a replicated
// parameter, one CONFIG SET must propose.
func IsConfigParam(name string) bool { return findConfigParam(name) != nil }

// ParseConfig checks value for the replicated parameter name as Redis's
// CONFIG SET does: it returns the canonical name and value, or the error
// text Redis replies (after "ERR CONFIG SET failed (possibly related to
// argument '<name>') - ").
func ParseConfig(name string, value []byte) (canon string, v int64, errText string) {
	p := findConfigParam(name)
	if p == nil {
		return "", 0, "unknown parameter"
	}
	if p.parse != nil {
		v, errText := p.parse(value)
		return p.name, v, errText
	}
	var ok bool
	if p.memory {
		var u uint64
		u, ok = ParseMemory(value, uint64(maxLong))
		v = int64(u)
		if !ok {
			return "", 0, "argument must be a memory value"
		}
	} else {
		v, ok = collInt(value)
		if !ok {
			return "", 0, "argument couldn't be parsed into an integer"
		}
	}
	if v < p.min || v > p.max {
		return "", 0, "argument must be between " + strconv.FormatInt(p.min, 10) + " and " + strconv.FormatInt(p.max, 10) + " inclusive"
	}
	return p.name, v, ""
}

// ParseMemory reads a memory value as Redis's memtoull: digits then an
// optional unit b, k, kb, m, mb, g, gb in any case (k is 1000, kb 1024);
// ok is false for anything else and for a value above limit.
func ParseMemory(b []byte, limit uint64) (uint64, bool) {
	s := strings.ToLower(string(b))
	mul := uint64(1)
	for _, u := range []struct {
		suffix string
		mul    uint64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mul = s[:len(s)-len(u.suffix)], u.mul
			break
		}
	}
	// ParseUint takes digits only (no sign, no underscore), at least one.
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > limit/mul {
		return 0, false
	}
	return n * mul, true
}

// ConfigGet returns the value of the replicated parameter name (or
// alias) as CONFIG GET prints it, and whether there is one.
func (s *Store) ConfigGet(name string) (string, bool) {
	p := findConfigParam(name)
	if p == nil {
		return "", false
	}
	if p.format != nil {
		return p.format(*p.field(&s.cfg)), true
	}
	return strconv.FormatInt(*p.field(&s.cfg), 10), true
}

// parseConfigWire reads a gomu.config value: ParseConfig's, except that a
// parameter with a parse of its own travels as its int64 (what the server
// proposes for it: ParseConfig's v).
func parseConfigWire(name string, value []byte) (canon string, v int64, errText string) {
	if p := findConfigParam(name); p != nil && p.parse != nil {
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || n < 0 {
			return "", 0, "invalid value"
		}
		return p.name, n, ""
	}
	return ParseConfig(name, value)
}

// cmdConfigSet is the internal gomu.config name value ...: it sets the
// replicated parameters, all or none, in log order on every replica.
// Values already converted keep their encoding, as in Redis: a lower
// threshold only decides the next conversion.
func cmdConfigSet(s *Store, _ *Env, dst []byte, args [][]byte) []byte {
	if len(args)%2 != 1 {
		return AppendWrongArity(dst, ConfigCommand)
	}
	next := s.cfg
	for i := 1; i < len(args); i += 2 {
		name, v, errText := parseConfigWire(string(args[i]), args[i+1])
		if errText != "" {
			return resp.AppendError(dst, "ERR CONFIG SET failed (possibly related to argument '"+string(args[i])+"') - "+errText)
		}
		*findConfigParam(name).field(&next) = v
	}
	s.cfg = next
	return resp.AppendOK(dst)
}

func init() {
	register(&Command{Name: ConfigCommand, Arity: -3, Flags: Write | Internal, Group: "server",
		Summary: "Set replicated configuration parameters (CONFIG SET of the encoding thresholds)", run: cmdConfigSet})
}
