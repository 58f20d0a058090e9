package server

import (
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestDebugReloadOptions: DEBUG RELOAD's options as Redis answers them:
// NOFLUSH without MERGE fails on the libraries already loaded, MERGE and
// NOSAVE reload, anything else is refused.
func TestDebugReloadOptions(t *testing.T) {
	srv := startStandalone(t)
	c := redistest.Dial(t, srv.Addr())
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"DEBUG", "RELOAD", "NOFLUSH"}, "+OK\r\n"}, // no library yet
		{[]string{"FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('f', function() return 1 end)"}, bulk("l")},
		{[]string{"DEBUG", "RELOAD", "NOFLUSH"}, "-ERR Error trying to load the RDB dump\r\n"},
		{[]string{"DEBUG", "RELOAD", "noflush", "MERGE"}, "+OK\r\n"},
		{[]string{"DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"}, "+OK\r\n"},
		{[]string{"DEBUG", "RELOAD", "FAST"}, "-ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.\r\n"},
		{[]string{"FCALL", "f", "0"}, ":1\r\n"},
	}
	for _, s := range steps {
		if got := c.Do(s.args...); got != s.want {
			t.Errorf("%q: %q, want %q", s.args, got, s.want)
		}
	}
}
