package server

import "time"

// endBatch is what serve does at a batch's end besides flushing writes:
// write reads the clock for its deadline (and settles the calls with it).
func endBatch(c *conn) { c.settleCalls(time.Now()) }
