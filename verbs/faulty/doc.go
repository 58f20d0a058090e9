// Package faulty is a fault-injecting verbs provider, after pebble's errorfs:
// it wraps any verbs.Device (shm, tcp, ibv) and, by rule, makes chosen
// operations fail, complete with an error status, complete late or not at
// all, land torn, or lose their link, so that consensus tests can drive
// recovery, catch-up and reconnection deterministically instead of waiting
// for a real fault.
//
// # Using it
//
// Wrap a device and use the wrapper wherever the device was used; every PD,
// MR, CQ and QP made from it is a wrapper too. Label the QPs a test wants to
// aim at, then install rules and assert that they fired:
//
//	dev := faulty.Wrap(inner)
//	... build the replica on dev ...
//	dev.Label(qp, "rep->2")
//	r := dev.Inject(
//		faulty.And(faulty.Kind(faulty.Write), faulty.Label("rep->2"), faulty.OnIndex(2)),
//		faulty.Complete(verbs.StatusRetryExceeded))
//	... drive the replica, expect it to Reset, reconnect and catch up ...
//	if r.Fired() != 1 { t.Fatal("the fault never happened") }
//
// Programs and tests that open devices by provider name (the conformance
// suite, child processes) use Register("shm"), which makes "faulty+shm"
// openable with verbs.Open; type-assert the device to *Device to add rules.
//
// # Rules
//
// A rule is a Predicate (which operations) and an Action (what happens to
// them). Rules are installed and removed at run time, from any goroutine,
// while others post and poll. The first installed rule whose action applies
// to an operation and whose predicate matches fires, once per operation.
// Actions:
//
//	Fail(err)         the call (post or SetAccess) returns an error wrapping err
//	Complete(status)  the request is not executed and completes with status;
//	                  an error status moves the QP to ERROR (contract item 4)
//	Hold()            the request executes, its completion waits for Release
//	Delay(d)          the request executes, its completion shows after d
//	Tear(n, status)   only the first n bytes of a WRITE land; then as Complete
//	Partition(d)      every request completes with StatusRetryExceeded (and
//	                  the QP goes to ERROR) until Heal, or for d
//
// Completions keep RC order per QP: those behind a held or delayed one wait
// for it. A QP that a rule moved to ERROR completes later requests with
// StatusFlushError until it is Reset and connected again, as a real one
// does; Reset also drops the completions the wrapper still withholds for the
// QP, as a NIC drops outstanding requests.
//
// # Cost
//
// With no rule installed and nothing withheld, every call goes straight to
// the inner object after one atomic load, and posting and polling allocate
// nothing. While rules are installed, requests take a locked slow path: each
// is posted to the inner QP signaled, with a wrapper-chosen work-request id,
// so that its completion can be recognised and withheld, rewritten or
// dropped (an unsignaled success is dropped, as the caller asked). As a
// consequence, unsignaled requests do not accumulate in the send queue while
// rules are installed (no ErrQueueFull for a caller that never signals).
//
// Rules apply to requests posted after Inject returns. With an asynchronous
// provider (tcp, ibv), a completion synthesized by a rule may overtake the
// completion of a request posted before the rule was installed and still in
// flight; install rules while the targeted QPs are quiet. The shm provider
// completes every request before Post returns, so it has no such window.
package faulty
