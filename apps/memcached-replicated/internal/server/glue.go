package server

// Temporary glue until internal/memcache's binary protocol lands.

import (
	"bufio"

	"github.com/gomu-rdma/gomu/internal/memcache"
)

type requestReader interface {
	Parse(*memcache.Command) error
}

const binaryRequestMagic = 0x80

func newBinaryParser(br *bufio.Reader, lim memcache.Limits) requestReader {
	return memcache.NewParser(br, lim)
}

func appendQuit(out []byte, cmd *memcache.Command) []byte { return out }

func appendVersion(out []byte, cmd *memcache.Command, v string) []byte {
	return memcache.AppendVersion(out, v)
}

func appendBinaryStats(out []byte, cmd *memcache.Command, pairs []string) []byte { return out }

func generalStats(out []byte, sv memcache.ServerStats, st memcache.StoreStats) []string { return nil }
