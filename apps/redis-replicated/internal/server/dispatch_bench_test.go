package server

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// benchBatch runs batches of n pipelined commands made by cmd through
// conn.dispatch on a standalone server, as serve does, replies dropped.
func benchBatch(b *testing.B, n int, cmd func(i int) [][]byte) {
	srv := startStandalone(b)
	client, server := net.Pipe()
	defer client.Close()
	c := srv.newConn(server)
	batch := make([][][]byte, n)
	for i := range batch {
		batch[i] = cmd(i)
	}
	run := func() {
		for _, args := range batch {
			c.dispatch(args)
		}
		c.flushWrites()
		endBatch(c)
		c.out = c.out[:0]
	}
	run()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		run()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/cmd")
}

// endBatch is what serve does at a batch's end besides flushing writes:
// write reads the clock for its deadline and settles the batch's calls
// (INFO commandstats) with that reading.
func endBatch(c *conn) { c.settleCalls(time.Now()) }

func setArgs(i int) [][]byte {
	return [][]byte{[]byte("SET"), []byte("key:" + strconv.Itoa(i)), []byte("value-of-some-bytes")}
}

func getArgs(i int) [][]byte { return [][]byte{[]byte("GET"), []byte("key:" + strconv.Itoa(i))} }

func BenchmarkDispatchSET1(b *testing.B)   { benchBatch(b, 1, setArgs) }
func BenchmarkDispatchSET100(b *testing.B) { benchBatch(b, 100, setArgs) }
func BenchmarkDispatchGET1(b *testing.B)   { benchBatch(b, 1, getArgs) }
func BenchmarkDispatchGET100(b *testing.B) { benchBatch(b, 100, getArgs) }
