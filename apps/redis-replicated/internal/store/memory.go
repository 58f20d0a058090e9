package store

// MEMORY and DEBUG OBJECT: what a value costs and how Redis would encode it.
//
// MEMORY USAGE estimates what Redis 7.0 (64-bit, jemalloc) would allocate
// for the key and value, following its objectComputeSize: the key's sds
// and dict entry, the robj, and per encoding the listpack/intset blob, or
// the hash table's slots and per element entry and sds strings (averaged
// over SAMPLES elements, default 5, 0 all, then scaled to the size), each
// allocation rounded up to jemalloc's size class. It matches Redis's
// figure for values Redis encodes as encodingOf says; skiplist nodes are
// counted at level 1 (Redis's levels are random), a hash table as fully
// rehashed (Redis's counts both tables while it rehashes), and sds strings
// without spare room (Redis's may have some after APPEND and the like).
//
// MEMORY STATS has Redis's fields in Redis's order; the allocator figures
// are the Go runtime's (heap allocated, in use, obtained from the system;
// startup.allocated is the heap when the package initialized), the
// per-database overheads are computed as Redis computes them, and
// dataset.bytes is what is left; nothing Redis counts for clients,
// replication, AOF or scripts is counted (0). MEMORY DOCTOR gives Redis's
// two verdicts for a small (heap under 5 MB) or healthy instance;
// MALLOC-STATS answers as Redis built without jemalloc does; PURGE does
// nothing and answers OK.

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"strings"

	"github.com/gomu-rdma/gomu/internal/resp"
)

func init() {
	register(&Command{Name: "memory", Arity: -2, Flags: ReadOnly, Group: "server",
		Summary: "A container for memory diagnostics commands", run: cmdMemory})
}

// Sizes of Redis 7.0's structures on 64-bit platforms.
const (
	sizeRobj          = 16
	sizeDictEntry     = 24
	sizeDict          = 56
	sizeQuicklist     = 40
	sizeQuicklistNode = 40
	sizeZSet          = 16
	sizeSkiplist      = 32
	sizeSkiplistHead  = 24 + 32*16 // a node with ZSKIPLIST_MAXLEVEL levels
	sizeSkiplistNode  = 24 + 16    // a node with one level
	sizeIntsetHeader  = 8
	memorySamplesDef  = 5
)

// memoryHelp is MEMORY HELP's reply, line by line.
var memoryHelp = []string{
	"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"DOCTOR",
	"    Return memory problems reports.",
	"MALLOC-STATS",
	"    Return internal statistics report from the memory allocator.",
	"PURGE",
	"    Attempt to purge dirty pages for reclamation by the allocator.",
	"STATS",
	"    Return information about the memory usage of the server.",
	"USAGE <key> [SAMPLES <count>]",
	"    Return memory in bytes used by <key> and its value. Nested values are",
	"    sampled up to <count> times (default: 5, 0 means sample all).",
	"HELP",
	"    Prints this help.",
}

// cmdMemory is MEMORY DOCTOR|HELP|MALLOC-STATS|PURGE|STATS|USAGE.
func cmdMemory(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	sub := args[1]
	arity := 2
	switch {
	case collFold(sub, "usage"):
		if len(args) < 3 {
			return AppendWrongArity(dst, "memory|usage")
		}
		return s.memoryUsage(e, dst, args)
	case collFold(sub, "help"), collFold(sub, "doctor"), collFold(sub, "malloc-stats"),
		collFold(sub, "purge"), collFold(sub, "stats"):
	default:
		msg := "ERR unknown subcommand '" + string(truncate(cString(sub), 128)) + "'. Try MEMORY HELP."
		return resp.AppendError(dst, strings.NewReplacer("\r", " ", "\n", " ").Replace(msg))
	}
	if len(args) != arity {
		return AppendWrongArity(dst, "memory|"+string(bytesLower(sub)))
	}
	switch {
	case collFold(sub, "help"):
		return appendHelp(dst, memoryHelp)
	case collFold(sub, "doctor"):
		return resp.AppendBulkString(dst, s.memoryDoctor())
	case collFold(sub, "malloc-stats"):
		return resp.AppendBulkString(dst, "Stats not supported for the current allocator")
	case collFold(sub, "purge"):
		return resp.AppendOK(dst)
	}
	return s.memoryStats(dst)
}

// memoryUsage is MEMORY USAGE key [SAMPLES count]: the options are checked
// before the key is looked up, as Redis does.
func (s *Store) memoryUsage(e *Env, dst []byte, args [][]byte) []byte {
	samples := memorySamplesDef
	for j := 3; j < len(args); j++ {
		if !collFold(args[j], "samples") || j+1 >= len(args) {
			return resp.AppendError(dst, errSyntax)
		}
		n, ok := collInt(args[j+1])
		switch {
		case !ok:
			return resp.AppendError(dst, errNotInt)
		case n < 0:
			return resp.AppendError(dst, errSyntax)
		case n == 0 || n > math.MaxInt32:
			samples = math.MaxInt
		default:
			samples = int(n)
		}
		j++
	}
	v := s.lookup(e, args[2])
	if v == nil {
		return resp.AppendNull(dst)
	}
	return resp.AppendInt(dst, int64(keyUsage(args[2], v, samples)))
}

// keyUsage is the estimate of MEMORY USAGE for key holding v.
func keyUsage(key []byte, v *value, samples int) int {
	return sdsAlloc(len(key), true) + sizeDictEntry + valueUsage(v, samples)
}

// valueUsage follows objectComputeSize for each encoding.
func valueUsage(v *value, samples int) int {
	switch v.kind {
	case kindString:
		switch encodingOf(v) {
		case "int":
			return sizeRobj
		case "embstr":
			return jemallocSize(sizeRobj + 3 + len(v.str) + 1)
		}
		return sizeRobj + sdsAlloc(len(v.str), false)
	case kindList:
		var first []int // the first nodes' listpack sizes
		nodes := 0
		eachQuicklistNode(v.list.elems(), func(_, _, size int) {
			if nodes < samples {
				first = append(first, size)
			}
			nodes++
		})
		return sizeRobj + sizeQuicklist + sampled(nodes, len(first), func(i int) int {
			return sizeQuicklistNode + jemallocSize(first[i])
		})
	case kindSet:
		if v.set.intset {
			return sizeRobj + jemallocSize(sizeIntsetHeader+intsetWidth(v.set.members)*v.set.len())
		}
		return sizeRobj + dictUsage(v.set.len()) + sampled(v.set.len(), samples, func(i int) int {
			return sizeDictEntry + sdsAlloc(len(v.set.members[i]), true)
		})
	case kindHash:
		if encodingOf(v) == "listpack" {
			return sizeRobj + jemallocSize(len(hashListpack(v.hash)))
		}
		var live []*hashEntry
		v.hash.each(func(en *hashEntry) {
			if len(live) < samples {
				live = append(live, en)
			}
		})
		return sizeRobj + dictUsage(v.hash.len()) + sampled(v.hash.len(), len(live), func(i int) int {
			return sizeDictEntry + sdsAlloc(len(live[i].field), true) + sdsAlloc(len(live[i].val), true)
		})
	case kindZSet:
		if encodingOf(v) == "listpack" {
			return sizeRobj + jemallocSize(len(zsetListpack(v.zset)))
		}
		var first []zentry
		v.zset.each(func(en zentry) {
			if len(first) < samples {
				first = append(first, en)
			}
		})
		fixed := sizeRobj + sizeZSet + sizeSkiplist + dictUsage(v.zset.len()) + jemallocSize(sizeSkiplistHead)
		return fixed + sampled(v.zset.len(), len(first), func(i int) int {
			return sdsAlloc(len(first[i].member), true) + sizeDictEntry + jemallocSize(sizeSkiplistNode)
		})
	}
	return sizeRobj
}

// sampled is Redis's estimate of n elements' size from the first samples
// of them: their average size times n (truncated as Redis's size_t is).
func sampled(n, samples int, size func(i int) int) int {
	k := min(n, samples)
	if k == 0 {
		return 0
	}
	total := 0
	for i := range k {
		total += size(i)
	}
	return int(float64(total) / float64(k) * float64(n))
}

// dictUsage is a hash table's dict and bucket array for n entries.
func dictUsage(n int) int { return sizeDict + 8*dictSlots(n) }

// dictSlots is the bucket count of a Redis dict grown to n entries: the
// next power of two from 4, doubled when an insert finds it full.
func dictSlots(n int) int {
	slots := 4
	for slots < n {
		slots *= 2
	}
	return slots
}

// sdsAlloc is the allocation of an sds string of n bytes: its header (sds
// type 5, one byte, only for keys and members under 32 bytes), the bytes
// and a NUL.
func sdsAlloc(n int, allowType5 bool) int {
	var hdr int
	switch {
	case n < 32 && allowType5:
		hdr = 1
	case n < 1<<8:
		hdr = 3
	case n < 1<<16:
		hdr = 5
	case n < 1<<32:
		hdr = 9
	default:
		hdr = 17
	}
	return jemallocSize(hdr + n + 1)
}

// jemallocSize rounds n up to jemalloc's size class: multiples of 8 up to
// 16, of 16 up to 128, then four classes per doubling.
func jemallocSize(n int) int {
	switch {
	case n <= 8:
		return 8
	case n <= 128:
		return (n + 15) / 16 * 16
	}
	spacing := 1 << (bits.Len(uint(n-1)) - 3)
	return (n + spacing - 1) / spacing * spacing
}

// intsetWidth is the narrowest intset width holding every member.
func intsetWidth(members []string) int {
	is := buildIntset(members)
	return int(is[0])
}

// startupHeap is the Go heap when the package initialized: MEMORY STATS's
// startup.allocated.
var startupHeap = func() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}()

// memoryDoctor is MEMORY DOCTOR's verdict: Redis's for an instance using
// very little memory, else its all-clear (the reports it can give need
// allocator and client statistics this store does not keep). Redis judges
// by an allocated total under 5 MB; a Go process's heap says more about the
// runtime and its connections than about the data, so here the keys' own
// estimate (MEMORY USAGE's) decides, summed until it passes 5 MB: bounded
// work under the read lock, however large the keyspace.
func (s *Store) memoryDoctor() string {
	const little = 5 << 20
	total := 0
sum:
	for _, ks := range s.dbs {
		for k, v := range ks.keys {
			total += keyUsage([]byte(k), v, 5)
			if total >= little {
				break sum
			}
		}
	}
	if total < little {
		return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. " +
			"Please, leave for your mission on Earth and fill it with some data. " +
			"The new Sam and I will be back to our programming as soon as I finished rebooting.\n"
	}
	return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
}

// memoryStats is MEMORY STATS: Redis 7.0's fields in its order (see the
// file comment for what each is here).
func (s *Store) memoryStats(dst []byte) []byte {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// O(1) in the keyspace: this runs under the read lock, which holds
	// writes back.
	keys, expires := len(s.keys), s.expiring
	mainOverhead := keys*(sizeDictEntry+sizeRobj) + 8*dictSlots(keys)
	expiresOverhead := expires*sizeDictEntry + 8*dictSlots(expires)
	total := int64(ms.HeapAlloc)
	startup := min(startupHeap, total)
	overhead := startup + int64(mainOverhead+expiresOverhead)
	peak := max(int64(ms.HeapSys), total)
	active := int64(ms.HeapInuse)
	resident := int64(ms.Sys - ms.HeapReleased)
	net := total - startup
	bytesPerKey := int64(0)
	if keys > 0 {
		bytesPerKey = net / int64(keys)
	}
	ratio := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	type field struct {
		name string
		i    int64
		f    float64
		db   bool
		dbl  bool
	}
	fields := []field{
		{name: "peak.allocated", i: peak},
		{name: "total.allocated", i: total},
		{name: "startup.allocated", i: startup},
		{name: "replication.backlog"},
		{name: "clients.slaves"},
		{name: "clients.normal"},
		{name: "cluster.links"},
		{name: "aof.buffer"},
		{name: "lua.caches"},
		{name: "functions.caches"},
		{name: "db.0", db: keys > 0},
		{name: "overhead.total", i: overhead},
		{name: "keys.count", i: int64(keys)},
		{name: "keys.bytes-per-key", i: bytesPerKey},
		{name: "dataset.bytes", i: total - overhead},
		{name: "dataset.percentage", f: 100 * ratio(total-overhead, net), dbl: true},
		{name: "peak.percentage", f: 100 * ratio(total, peak), dbl: true},
		{name: "allocator.allocated", i: total},
		{name: "allocator.active", i: active},
		{name: "allocator.resident", i: resident},
		{name: "allocator-fragmentation.ratio", f: ratio(active, total), dbl: true},
		{name: "allocator-fragmentation.bytes", i: active - total},
		{name: "allocator-rss.ratio", f: ratio(resident, active), dbl: true},
		{name: "allocator-rss.bytes", i: resident - active},
		{name: "rss-overhead.ratio", f: 1, dbl: true},
		{name: "rss-overhead.bytes"},
		{name: "fragmentation", f: ratio(resident, total), dbl: true},
		{name: "fragmentation.bytes", i: resident - total},
	}
	n := len(fields)
	if keys == 0 {
		n-- // Redis lists only databases with keys
	}
	dst = resp.AppendArrayLen(dst, 2*n)
	for _, f := range fields {
		switch {
		case f.name == "db.0":
			if !f.db {
				continue
			}
			dst = resp.AppendBulkString(dst, f.name)
			dst = resp.AppendArrayLen(dst, 6)
			dst = resp.AppendBulkString(dst, "overhead.hashtable.main")
			dst = resp.AppendInt(dst, int64(mainOverhead))
			dst = resp.AppendBulkString(dst, "overhead.hashtable.expires")
			dst = resp.AppendInt(dst, int64(expiresOverhead))
			dst = resp.AppendBulkString(dst, "overhead.hashtable.slot-to-keys")
			dst = resp.AppendInt(dst, 0)
			continue
		case f.dbl:
			dst = resp.AppendBulkString(dst, f.name)
			dst = appendScore(dst, f.f)
		default:
			dst = resp.AppendBulkString(dst, f.name)
			dst = resp.AppendInt(dst, f.i)
		}
	}
	return dst
}

// DebugObject appends DEBUG OBJECT key's reply in Redis 7.0's layout: the
// value's address (a Go pointer here), refcount, encoding, the length of
// its RDB encoding (as DUMP writes it), the LRU clock at nowMs (no access
// times are kept, so the idle time is 0), and for lists the quicklist's
// shape as DUMP lays it out.
func (s *Store) DebugObject(dst []byte, nowMs int64, key []byte) []byte {
	v := s.keys[string(key)]
	if v == nil { // an expired key not yet deleted is shown, as Redis's dictFind does
		return resp.AppendError(dst, errNoSuchKey)
	}
	_, body, _ := dumpObject(v) // a kind without one: length 0
	const lruClockMax = 1<<24 - 1
	line := fmt.Sprintf("Value at:%p refcount:%d encoding:%s serializedlength:%d lru:%d lru_seconds_idle:0",
		v, objectRefcount(v), encodingOf(v), len(body), (nowMs/1000)&lruClockMax)
	if v.kind == kindList {
		nodes, size := 0, 0
		eachQuicklistNode(v.list.elems(), func(_, _, n int) { nodes, size = nodes+1, size+n })
		line += fmt.Sprintf(" ql_nodes:%d ql_avg_node:%.2f ql_listpack_max:-2 ql_compressed:0 ql_uncompressed_size:%d",
			nodes, float64(v.list.len())/float64(nodes), size)
	}
	return resp.AppendSimple(dst, line)
}

// objectRefcount is the refcount Redis reports: shared integers (0 to
// 9999, as strings) are shared objects, everything else is referenced
// once.
func objectRefcount(v *value) int64 {
	if v.kind == kindString {
		if n, ok := collInt(v.str); ok && n >= 0 && n < sharedIntegers {
			return math.MaxInt32 // OBJ_SHARED_REFCOUNT
		}
	}
	return 1
}
