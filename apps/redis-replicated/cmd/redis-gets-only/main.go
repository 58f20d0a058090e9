// Command redis-gets-only is a closed-loop Redis latency client, after Mu's
// key-value clients: it preloads the key space with pipelined SETs (not timed), then times GETs of random keys from it.
//
//	redis-gets-only [flags] <key_size> <value_size> <host> <port>
//
// Flags: --requests N timed requests (default 500000); --keys N key space
// (default min(requests, 100000)); --seed S; --out FILE (default
// redis-cli.txt); --hgrm FILE, the percentile distribution in HdrHistogram's
// text format; --timeout D, the deadline of each network read, write and
// connect (default 5s); --retry-for D, how long one request may be
// redirected or reconnect before the run fails (default 10s).
//
// One request is outstanding at a time over one TCP connection, in raw RESP.
// Keys and values are random printable ASCII of the given sizes. A reply
// "-READONLY ... addr=<host:port>" from a replica of redis-server-replicated
// makes the client reconnect to that leader and resend the request; a broken
// connection makes it reconnect until --retry-for passes. Either way the
// request stays one sample, timed from its first send to its final reply.
//
// It writes FILE with one end-to-end latency in ns per line, in request
// order, and prints, last:
//
//	redis-gets-only: <n> requests (GET, key <k> B, value <v> B) in <s> s: <x> requests/s, <r> redirects, <c> reconnects, <e> errors
//	redis-gets-only key=<k> value=<v> n=<n> p50=<ns>ns p90=<ns>ns p99=<ns>ns p99.9=<ns>ns max=<ns>ns
//
// It exits non-zero on bad arguments, when the server cannot be reached or
// a request cannot be answered within --retry-for, and when any request got
// an error reply (counted, and the first one printed).
package main

import "github.com/gomu-rdma/gomu/apps/redis-replicated/internal/latclient"

func main() { latclient.Main("redis-gets-only", latclient.GetsOnly) }
