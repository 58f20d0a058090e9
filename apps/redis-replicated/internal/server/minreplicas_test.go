package server

import (
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestMinReplicasDiff: with min-replicas-to-write above the good replicas
// (a standalone server has none, nor has a Redis without replicas),
// writes, scripts declaring writes and a flagless script's writes fail
// with NOREPLICAS (a pcall catches the latter), reads and no-writes
// scripts run; compared with Redis byte for byte.
func TestMinReplicasDiff(t *testing.T) {
	script := [][]string{
		{"SET", "x", "v"},
		{"CONFIG", "SET", "min-replicas-to-write", "1"},
		{"CONFIG", "GET", "min-replicas-to-write"}, {"CONFIG", "GET", "min-replicas-max-lag"},
		{"GET", "x"}, {"SET", "x", "w"}, {"INCR", "n"},
		{"EVAL", "#!lua flags=no-writes\nreturn redis.call('get','x')", "1", "x"},
		{"EVAL", "return redis.call('get','x')", "1", "x"},
		{"EVAL", "#!lua\nreturn redis.call('get','x')", "1", "x"},
		{"EVAL", "return redis.call('set','x', 1)", "1", "x"},
		{"EVAL", "return redis.pcall('set','x', 1)", "1", "x"},
		{"EVAL", "local r = redis.pcall('set','x', 1); return {r.err, redis.call('get', 'x')}", "1", "x"},
		{"CONFIG", "SET", "min-replicas-max-lag", "0"}, {"SET", "x", "lagless"},
		{"CONFIG", "SET", "min-replicas-max-lag", "10"}, {"CONFIG", "SET", "min-replicas-to-write", "x"},
		{"CONFIG", "SET", "min-replicas-max-lag", "-1"}, {"CONFIG", "SET", "min-slaves-to-write", "0"},
		{"CONFIG", "SET", "min-replicas-to-write", "0"}, {"SET", "x", "w"}, {"GET", "x"},
	}
	run := func(addr string) []string {
		c := redistest.Dial(t, addr)
		var got []string
		for _, args := range script {
			got = append(got, c.Do(args...))
		}
		return got
	}
	want, got := run(redistest.Start(t)), run(startStandalone(t).Addr())
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("step %d %q:\n got %q\nwant %q", i, script[i], got[i], want[i])
		}
	}
}
