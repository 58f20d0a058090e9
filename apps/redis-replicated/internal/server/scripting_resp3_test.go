package server

import (
	"fmt"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestScriptRESP3Differential runs scripts that use RESP3 (redis.setresp,
// the typed tables, DEBUG PROTOCOL from a script) from RESP2 and RESP3
// connections, on a standalone server and on Debian's redis-server, and
// compares the replies byte for byte: what scripts see of their commands'
// replies in each Lua protocol, and how their replies reach each client,
// for reads (speculative runs), writes (replicated runs) and a
// transaction.
func TestScriptRESP3Differential(t *testing.T) {
	setup := [][]string{
		{"DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"},
		{"HSET", "h", "f", "v"}, {"ZADD", "z", "1.5", "m"}, {"SADD", "s", "x"},
	}
	var scripts []string
	for _, typ := range []string{"bignum", "map", "set", "double", "null", "verbatim", "true", "false", "attrib", "array", "string", "integer"} {
		for _, lua := range []int{2, 3} {
			scripts = append(scripts, fmt.Sprintf("redis.setresp(%d); return redis.call('debug', 'protocol', '%s')", lua, typ))
		}
	}
	scripts = append(scripts,
		// What scripts see of real commands' replies.
		"redis.setresp(3); return redis.call('hgetall', 'h')",
		"redis.setresp(3); local r = redis.call('hgetall', 'h'); return {type(r.map), r.map.f}",
		"redis.setresp(3); return redis.call('zscore', 'z', 'm')",
		"redis.setresp(3); local r = redis.call('zscore', 'z', 'm'); return tostring(r.double)",
		"redis.setresp(3); return redis.call('smembers', 's')",
		"redis.setresp(3); local r = redis.call('smembers', 's'); return tostring(r.set.x)",
		"redis.setresp(3); return redis.call('get', 'nope') == nil",
		"redis.setresp(3); return redis.call('get', 'nope')",
		"return redis.call('get', 'nope')",
		"redis.setresp(2); return redis.call('hgetall', 'h')",
		// Typed tables and booleans, in each Lua protocol.
		"return {double=3.5}", "return {double=1/0}", "return {big_number='123\\r\\n123'}",
		"return {map={a=1}}", "return {set={x=true}}", "return {verbatim_string={format='txt', string='hi'}}",
		"return {1, {map={k={double=2}}}, {set={}}}",
		"return true", "return false", "return nil",
		"redis.setresp(3); return true", "redis.setresp(3); return false", "redis.setresp(3); return {false, true}",
		"redis.setresp(4)",
		// Writes: replicated runs.
		"redis.call('set', 'w', '1'); return {map={w=redis.call('get', 'w')}}",
		"redis.setresp(3); redis.call('incr', 'c'); return {double=2.5}",
		"redis.call('del', 'w'); return false",
	)
	run := func(addr string) []string {
		cn := redistest.Dial(t, addr)
		for _, args := range setup {
			cn.Do(args...)
		}
		var got []string
		for _, proto := range []string{"2", "3"} {
			cn.Do("HELLO", proto)
			for _, s := range scripts {
				got = append(got, cn.Do("EVAL", s, "0"))
			}
			cn.Do("MULTI")
			cn.Do("EVAL", "return {map={a={double=1}}}", "0")
			cn.Do("EVAL", "redis.call('set', 'x', 'y'); return {set={z=true}}", "0")
			got = append(got, cn.Do("EXEC"))
		}
		cn.Do("HELLO", "2")
		cn.Do("DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0")
		got = append(got, cn.Do("EVAL", "return redis.call('debug', 'protocol', 'map')", "0"))
		return got
	}
	want, got := run(redistest.Start(t)), run(startStandalone(t).Addr())
	if len(got) != len(want) {
		t.Fatalf("%d replies, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}
