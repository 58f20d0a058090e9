// Package trader is the order book's workload, shared by orderbook-trader
// and bench-orderbook: N traders (Mu's TRADERS_NUM), each a goroutine with
// its own client session and one order outstanding, sending a configurable
// mix of orders around a moving mid price, timing every order from its
// first send to its final answer, and checking at the end that the
// exchange applied exactly what it answered.
//
// # The flow
//
// Every symbol's mid price is a random walk the traders share (Market);
// each trader's Gen draws the kind of its next order by the Mix weights and
// prices it from the mid: limits one to five ticks behind the best price of
// their side (they rest), crosses one to three ticks through the spread
// (they trade), markets, IOC and FOK orders at the opposite best, stop
// and stop-limit orders two to six ticks beyond the mid, and cancels and
// replaces of the trader's own open orders, which it knows by the
// exchange's order ids from its answers. A trader keeps at most MaxOpen
// orders open; one that would rest beyond that becomes a cancel, and a
// cancel or replace with nothing open becomes a limit. With one trader
// and a seed the flow is reproducible; with more it depends on how the
// traders interleave on the shared mids.
//
// # Latency
//
// An order's latency runs from its first send to its final answer: the
// client's resends through redirects, timeouts and a leader change are
// inside it, and so is the trader's own resend when the client gave up.
// Every order is a Sample (send time, latency, trader, kind, outcome,
// sends), kept raw for the timeline CSV and recorded in an HdrHistogram
// (internal/latency) for the percentiles and Mu's one-value-a-line dump.
//
// # Nothing lost, nothing doubled
//
// A request answered ok or rejected was applied by the exchange, once: it
// dedups by (trader, ClOrd). So each trader counts those requests and sums
// wire.Mix of their ClOrds; a request the client gave up on is resent with
// the same ClOrd until it is answered, so the trader's set is exact. At the
// end an OpTrader read returns the exchange's count and sum for the
// trader: a count short of the trader's is a lost order, one beyond it a
// doubled one, and equal counts with different sums a mix-up. A broken
// exchange is caught either way (see the tests' fakeExchange).
//
// # Allocation
//
// Choosing, pricing and encoding an order, taking its answer and
// recording its sample allocate nothing: the request, the generator's
// open-order table and the sample buffer are the trader's own and reused
// (TestOrderPathDoesNotAllocate).
//
// # Local exchanges
//
// StartLocal runs orderbook-server's processes on this machine through
// internal/cluster (an embedded registry, one process per replica, shm),
// so that orderbook-trader --local and bench-orderbook can pause a replica
// through its fifo, kill it and restart it while the traders run.
package trader
