package server

import "testing"

// The hot paths in database 0, measured before and after the 16
// databases: SET and GET applied as one-command proposals.

func benchApply(b *testing.B, args ...string) {
	m := NewMachine()
	cmd := make([][]byte, len(args))
	for i, a := range args {
		cmd[i] = []byte(a)
	}
	m.Apply(0, oneCommand([][]byte{[]byte("SET"), cmd[1], []byte("v")})) // the key exists for GET
	var p proposal
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p.reset(propBatch)
		p.add(cmd)
		m.Apply(0, p.seal(1, 1))
	}
}

func oneCommand(cmd [][]byte) []byte {
	var p proposal
	p.reset(propBatch)
	p.add(cmd)
	return p.seal(1, 1)
}

func BenchmarkApplySET(b *testing.B) { benchApply(b, "SET", "key:000001", "value-of-some-bytes") }
func BenchmarkApplyGET(b *testing.B) { benchApply(b, "GET", "key:000001") }
