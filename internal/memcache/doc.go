// Package memcache implements memcached's protocols for gomu: the text
// protocol with its meta commands, and the binary protocol; a parser per
// protocol, reply writers, an item Store with memcached semantics built to
// be a deterministic state machine, and an embedded Server built from them.
//
// The Server lets one machine run a gomu cluster with no external memcached:
// the registry (package registry) talks to it with an ordinary memcached
// client, and the --local modes start one. The parsers, the Store and the
// reply writers are separate so that the replicated memcached application
// can put consensus between parsing a command and applying it, instead of
// writing a second parser: a Command can be written back as the request
// the client sent (AppendRequest), for every replica to parse again, and
// IsWrite says which commands must be replicated.
//
// # Parsers
//
// Parser.Parse reads one text command from a bufio.Reader into a reusable
// Command; BinaryParser.Parse one binary request (DetectProto tells a
// connection's protocol from its first byte, as memcached does). Once a
// Command's buffers have grown to the largest line and value seen, parsing
// allocates nothing. Limits bound those buffers, so whatever a client
// sends, a connection holds at most MaxLineLen+MaxValueLen+2 bytes of
// input.
//
// Malformed input yields one of the *ProtocolError sentinels, which carry
// their reply (ERROR, CLIENT_ERROR <msg> or SERVER_ERROR <msg>; in the
// binary protocol a response status, see AppendCommandError). After one,
// the reader is where memcached 1.6 would be, so replies to a byte stream
// match memcached's, bad input included:
//
//   - unknown command, wrong number of tokens: ERROR;
//   - bad number or key longer than 250 bytes: CLIENT_ERROR bad command line
//     format, and a storage command's data block is not skipped (it is then
//     read as a command line, usually answered with ERROR);
//   - data block not followed by "\r\n": CLIENT_ERROR bad data chunk, after
//     consuming exactly <bytes>+2 bytes;
//   - data block over MaxValueLen: the block is consumed and discarded, then
//     SERVER_ERROR object too large for cache (a set also drops the item it
//     would have replaced);
//   - a command ending in noreply gets no reply at all, errors included.
//
// Where memcached closes the connection on a command line too long, the
// parser returns ErrLineTooLong, whose Close field says so.
//
// Text commands: get, gets, gat, gats (multi-key), set, add, replace,
// append, prepend, cas, delete, touch, incr, decr, flush_all [delay],
// version, verbosity, stats, quit, and the meta commands mg, ms, md, ma, mn,
// me with memcached 1.6.18's flags and replies, errors included (see
// meta.go), plus E (explicit new CAS value) from later memcached versions.
// ms, md, ma and mg with N, R or T are writes; other mg, me and mn are
// reads. Binary: every opcode of memcached 1.6.18 but SASL's (see
// binary.go).
//
// # Store and Server
//
// Store keeps items under one lock (writes alone, reads shared) and honours
// flags, exptime (relative up to 30 days, else absolute), CAS values and
// delayed flush_all. It is told the time by its caller, reads change
// nothing, and eviction follows write order, so replicas that apply the
// same writes at the same times hold the same items (see Store). Memory is
// bounded; the embedded Server's store answers SERVER_ERROR out of memory
// storing object rather than evicting (a registry must not lose entries).
//
// Server serves each connection in its own goroutine, answers pipelined
// commands in order and flushes when the input is drained. Each connection
// has an idle deadline between commands and a deadline for receiving a whole
// command and taking its reply, so a slow or stalled client is disconnected
// rather than holding resources; the number of connections is bounded too.
package memcache
