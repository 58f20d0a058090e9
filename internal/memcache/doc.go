// Package memcache implements the memcached text protocol for gomu: a
// command parser, reply writers, an item Store with memcached semantics, and
// an embedded Server built from the three.
//
// The Server lets one machine run a gomu cluster with no external memcached:
// the registry (package registry) talks to it with an ordinary memcached
// client, and the --local modes start one. The parser and reply writers are
// separate so the replicated memcached application can put consensus between
// parsing a command and applying it, instead of writing a second parser.
//
// # Parser
//
// Parser.Parse reads one command from a bufio.Reader into a reusable
// Command. Once a Command's buffers have grown to the largest line and value
// seen, parsing allocates nothing. Limits bound those buffers, so whatever a
// client sends, a connection holds at most MaxLineLen+MaxValueLen+2 bytes of
// input.
//
// Malformed input yields one of the *ProtocolError sentinels, which carry
// their reply (ERROR, CLIENT_ERROR <msg> or SERVER_ERROR <msg>). After one,
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
// Commands: get, gets, gat, gats (multi-key), set, add, replace, append,
// prepend, cas, delete, touch, incr, decr, flush_all [delay], version,
// verbosity, quit. Not yet: meta commands (mg, ms, md, ...), stats.
//
// # Store and Server
//
// Store keeps items in a sharded map and honours flags, exptime (relative up
// to 30 days, else absolute), CAS values and delayed flush_all. It is told the
// time by its caller. Memory is bounded (Config.MaxBytes); when full it
// answers SERVER_ERROR out of memory storing object rather than evicting.
//
// Server serves each connection in its own goroutine, answers pipelined
// commands in order and flushes when the input is drained. Each connection
// has an idle deadline between commands and a deadline for receiving a whole
// command and taking its reply, so a slow or stalled client is disconnected
// rather than holding resources; the number of connections is bounded too.
package memcache
