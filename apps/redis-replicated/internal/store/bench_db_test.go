package store

import "testing"

// The store's hot paths in database 0, measured before and after the 16
// databases: SET and GET through Exec.

func benchExec(b *testing.B, args ...string) {
	s := New()
	e := &Env{NowMs: 1}
	cmd := make([][]byte, len(args))
	for i, a := range args {
		cmd[i] = []byte(a)
	}
	s.Exec(nil, e, [][]byte{[]byte("SET"), cmd[1], []byte("v")})
	out := make([]byte, 0, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out = s.Exec(out[:0], e, cmd)
	}
}

func BenchmarkExecSET(b *testing.B) { benchExec(b, "SET", "key:000001", "value-of-some-bytes") }
func BenchmarkExecGET(b *testing.B) { benchExec(b, "GET", "key:000001") }
