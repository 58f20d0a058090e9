// Command redis-puts-only is a closed-loop Redis latency client, after Mu's
// key-value clients: every request is a SET of a fresh random key and value.
//
//	redis-puts-only [flags] <key_size> <value_size> <host> <port>
//
// <host> <port> is one replica (of redis-server-replicated, or any Redis
// server). Flags: --requests N timed requests (default 500000); --keys N
// key space (default min(requests, 100000)); --seed S; --out FILE (default
// redis-cli.txt); --hgrm FILE, the percentile distribution in
// HdrHistogram's text format; --replicas host:port,host:port,... the other
// replicas (the rest are discovered through INFO replication's
// gomu_replica_addrs); --timeout D, the deadline of each attempt, a dial or
// a request's write and reply (default 250ms: a replica silent for longer
// is taken as hung or paused; raise it when healthy replies can take
// longer); --retry-for D, how long one request may keep moving between
// replicas before the run fails (default 30s).
//
// One request is outstanding at a time over one TCP connection, in raw RESP.
// Keys and values are random printable ASCII of the given sizes. The client
// follows the leader through faults: a request whose attempt times out,
// finds its connection refused or closed, or gets -READONLY or -TRYAGAIN is
// sent again, to the leader the reply names or to the next replica, with a
// short back-off after a whole round without an answer. It stays one
// sample, timed from its first send to its final reply, so a paused,
// stopped or killed leader shows as one long latency.
//
// It writes FILE with one end-to-end latency in ns per line, in request
// order, and prints, last:
//
//	redis-puts-only: <n> requests (SET, key <k> B, value <v> B) in <s> s: <x> requests/s, <e> errors
//	redis-puts-only: faults: <t> timeouts, <b> broken connections, <r> redirects, <a> TRYAGAINs, <c> reconnects; <q> requests retried; longest stall <d> (request <i>, <m> attempts); <p> replicas known, ended on <host:port>
//	redis-puts-only key=<k> value=<v> n=<n> p50=<ns>ns p90=<ns>ns p99=<ns>ns p99.9=<ns>ns max=<ns>ns
//
// It exits non-zero on bad arguments, when no given replica can be reached
// at start, when a request finds no answer within --retry-for (the error
// names what every replica last answered), and when any request got an
// error reply (counted, and the first one printed). Faults the cluster
// survives do not end the run.
package main

import "github.com/gomu-rdma/gomu/internal/latclient"

func main() { latclient.Main("redis-puts-only", latclient.Redis, latclient.PutsOnly) }
