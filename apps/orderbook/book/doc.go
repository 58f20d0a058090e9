// Package book is a limit-order-book matching engine for one instrument
// (Book) and for many instruments keyed by symbol (Market). It is pure and
// deterministic: no clocks, no goroutines, no I/O and no map iteration on any
// path that decides something, so replicas that apply the same commands in
// the same order hold byte-identical books (AppendSnapshot) and emit the same
// events. That is what a state-machine-replicated exchange needs; the engine
// is the state machine.
//
// # Commands and events
//
// Add, Cancel and Replace are the only commands that change a book. Each
// appends the events it causes to a caller-supplied slice; with enough
// capacity in it, and once the book's pools have grown to the working set,
// nothing allocates. A rejected command appends exactly one event (Rejected,
// CancelRejected or ReplaceRejected) and changes nothing. An accepted Add
// appends, in this order:
//
//   - Accepted;
//   - StopTriggered, if it is a stop order whose stop price is already
//     reached;
//   - for every match, Filled for the arriving order, Filled for the resting
//     order and one Trade;
//   - Cancelled with ReasonNoLiquidity for the part of a market, IOC or FOK
//     order that found nothing to trade with (such orders never rest);
//   - for every stop order the trades triggered: StopTriggered and then the
//     events of entering it, as above (a cascade, processed iteratively);
//   - BBOChanged, at most once, if the best bid or best ask (price or
//     quantity) differs from before the command;
//   - DepthChanged, at most once, if any of the best Config.DepthLevels
//     levels of either side differs (price, quantity or number of orders).
//     A change further down the book emits none.
//
// # Matching
//
// Price-time priority. A buy matches asks priced at or below its limit, the
// lowest first and first-come first-served within a price; a sell is the
// mirror image. The trade price is always the resting order's price. Orders
// match only when one arrives (Add, a Replace that moves the order, a stop
// that triggers): resting orders never match each other.
//
// Market orders (Price 0) take liquidity at any price and never rest: what
// they cannot fill at once is cancelled (Cancelled, ReasonNoLiquidity). Since
// no market order ever rests, two market orders never meet, and the market
// price is not a trade price for anything; it only drives stop orders. (This
// differs from Liquibook, which lets an unfilled market order wait.)
//
// # All-or-none, IOC, FOK
//
// AON fills only completely, possibly against several resting orders at once.
// An arriving order passes over a resting AON order that it cannot fill
// completely (with what it still has open) and goes on matching the orders
// behind it, at that price and worse. An arriving AON order first checks,
// without trading, that the same walk would fill it completely; if not, it
// does not trade at all and rests (a limit order) or is cancelled (a market
// order, or one with IOC). IOC cancels whatever is not filled at once. FOK is
// AON|IOC: everything at once or nothing. Because an arriving order may pass
// over a resting AON, the book may be left crossed (a resting AON at or
// beyond the opposite best price); that AON waits for an arriving order that
// can fill it, since resting orders never match each other.
//
// # Stops and the market price
//
// The market price is the price of the last trade, or what SetMarketPrice set
// last (0: unknown). A stop order (Stop > 0) waits outside the visible book
// until it is triggered: a buy stop when the market price is at or above its
// stop price, a sell stop when at or below; a stop never triggers while the
// market price is unknown. A stop whose price is already reached when it is
// added is triggered at once. Triggering emits StopTriggered (Price: the
// market price that triggered it) and enters the order as a market order
// (Price 0) or a limit order (Price > 0); from then on it is an ordinary
// order and Order reports Stop 0. AON, IOC and FOK are allowed on stop
// orders and apply when the order is entered. Stops are checked after an
// arriving order that traded has finished matching (rested or been
// cancelled); the ones triggered are entered one by one, buy stops before
// sell stops, on each side the stop first crossed first (lowest buy stop,
// highest sell stop) and equal stops by arrival. Each entry can trade and
// trigger more; the cascade runs in a loop, not by recursion. Only trades
// trigger waiting stops: SetMarketPrice has no events and triggers nothing,
// and a stop it passes over triggers at the next trade whose price reaches
// it (a stop added while the market price, however set, is past it is
// triggered at once, as above).
//
// # Cancel and Replace
//
// Cancel removes an order's open quantity (resting or a pending stop). An id
// that is not live (unknown, filled, cancelled) is answered with
// CancelRejected, ReasonUnknownOrder.
//
// Replace changes open quantity by a signed delta and optionally the limit
// price (0 keeps it; a resting order cannot become a market order). A change
// that would leave nothing open is rejected (ReasonWouldLeaveNothing). A
// decrease at the same price keeps the order's time priority. An increase or
// a new price takes the order out of the book and enters it again as if it
// had just arrived: it goes to the back of its (new) level, and if its new
// price crosses the spread it matches at once (Replaced, then its fills). A
// pending stop can be replaced too: the quantity changes, and a new price
// becomes its limit (turning a stop-market order into a stop-limit one); the
// stop price cannot change. An increase or a price change puts it behind the
// stops of the same stop price.
//
// # Validation
//
// Add rejects id 0 (ReasonBadID), a live id (ReasonDuplicateID), a side other
// than Buy or Sell (ReasonBadSide), Qty <= 0 (ReasonBadQty), a negative price
// (ReasonBadPrice) or stop (ReasonBadStop) and unknown flag bits
// (ReasonBadFlags).
package book
