// Package exchange is the replicated stock exchange of orderbook-server: a
// state machine (Machine) over the matching engine of apps/orderbook/book,
// and the server (Server) that takes traders' requests from verbsrpc and
// proposes them.
//
// # What is replicated
//
// A proposal carries order-entry requests exactly as traders sent them
// (wire.Request, fixed size), one proposal per sweep of the request rings:
// every trader whose request was waiting joins it. Every replica applies
// them in log order. Nothing in a request depends on the replica that
// applies it: exchange order ids are numbered by the machine, and the book
// reads no clock, so every replica reaches the same books, byte for byte
// (Digest).
//
// # Exactly once
//
// Each request carries (Trader, ClOrd). The machine remembers, per trader,
// the results of its last Window requests: a request seen before is not
// applied again, and its resend gets the first result. A leader that
// cannot tell whether a request was applied (its proposal failed: it lost
// leadership, the proposal timed out) answers StatusRetry; the trader
// resends the same request to the new leader, which either applies it or,
// if the old leader's entry survived into the new leader's log, answers
// from the window. Either way the order is placed once. The windows are
// part of the snapshot that catches up a restarted replica.
//
// # Roles
//
// Only the leader proposes; a follower answers order entry with
// StatusNotLeader and the leader's id. Depth and trader reads are served on
// any replica behind consensus's read barrier (linearizable; stale with
// StaleFollowerReads). A paused replica (its fifo's p) answers nothing
// until it resumes, as a hung process would; then, if it lost the
// leadership meanwhile, it redirects.
//
// # Watching
//
// Config.Stats, a TCP listener, answers "stats gomu" (role, leader,
// commit and applied indexes, catching up, paused) and "stats gomu
// digest" (the same and Machine.Digest, taken between two applies) in
// memcached's text form, as memcached-replicated answers them, so that a
// watcher with nothing but TCP, the fault runner above all, can tell who
// leads and whether the replicas agree. It passes no read barrier; a
// paused replica answers it nothing until it resumes.
//
// # Hot path
//
// A sweep's requests are decoded in place, appended to one reusable
// proposal buffer and proposed; results are read back from the trader
// windows and written into the reply ring. Nothing on that path allocates
// once the traders and symbols exist.
package exchange
