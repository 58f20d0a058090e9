// Command memcached-gets-only is a closed-loop memcached latency client,
// after Mu's key-value clients: it preloads the key space with pipelined sets
// (not timed), then times gets of random keys from it.
//
//	memcached-gets-only [flags] <key_size> <value_size> <host> <port>
//
// <host> <port> is one replica (of the replicated memcached, or any
// memcached server). Flags: --requests N timed requests (default 500000);
// --keys N key space (default min(requests, 100000)); --seed S; --out FILE
// (default memcached-cli.txt); --hgrm FILE, the percentile distribution in
// HdrHistogram's text format; --replicas host:port,host:port,... the other
// replicas (the rest are discovered through stats gomu's
// gomu_replica_addrs); --timeout D, the deadline of each attempt, a dial or
// a request's write and reply (default 250ms: a replica silent for longer
// is taken as hung or paused; raise it when healthy replies can take
// longer); --retry-for D, how long one request may keep moving between
// replicas before the run fails (default 30s); --stay, time the requests on
// the replica given rather than on the leader (writes are still
// redirected).
//
// One request is outstanding at a time over one TCP connection, in
// memcached's text protocol (set <key> 0 0 <bytes>, get <key>; a get that
// misses is an answer, not an error). Keys (at most 250 bytes) and values
// are random printable ASCII of the given sizes. The client follows the
// leader through faults: a request whose attempt times out, finds its
// connection refused or closed, or gets a SERVER_ERROR gomu: ... reply (not
// the leader, no leader, catching up, replication timed out, paused,
// shutting down; with leader=<id> addr=<host:port> when the replica knows
// the leader) is sent again, to the leader the reply names or to the next
// replica, with a short back-off after a whole round without an answer. It
// stays one sample, timed from its first send to its final reply, so a
// paused, stopped or killed leader shows as one long latency. The gets are
// timed on the leader, like the sets, although followers serve them: after
// a request another replica answered, the client moves back to the leader,
// untimed (--stay keeps them on the replica given).
//
// It writes FILE with one end-to-end latency in ns per line, in request
// order, and prints, last:
//
//	memcached-gets-only: <n> requests (GET, key <k> B, value <v> B) in <s> s: <x> requests/s, <e> errors
//	memcached-gets-only: faults: <t> timeouts, <b> broken connections, <r> redirects, <a> TRYAGAINs, <c> reconnects; <q> requests retried; longest stall <d> (request <i>, <m> attempts); <p> replicas known, ended on <host:port>
//	memcached-gets-only key=<k> value=<v> n=<n> p50=<ns>ns p90=<ns>ns p99=<ns>ns p99.9=<ns>ns max=<ns>ns
//
// The faults line keeps the Redis clients' words: redirects counts the
// SERVER_ERROR gomu: not the leader replies, TRYAGAINs the other
// SERVER_ERROR gomu: ones.
//
// It exits non-zero on bad arguments, when no given replica can be reached
// at start, when a request finds no answer within --retry-for (the error
// names what every replica last answered), and when any request got an
// error reply (any other SERVER_ERROR, CLIENT_ERROR or ERROR: counted, and
// the first one printed). Faults the cluster survives do not end the run.
package main

import "github.com/gomu-rdma/gomu/internal/latclient"

func main() { latclient.Main("memcached-gets-only", latclient.Memcached, latclient.GetsOnly) }
