// Package tcp is gomu's verbs provider for hosts without RDMA: every
// device is a user-space "soft NIC" that carries one-sided WRITE and READ
// over TCP and keeps the semantics of the verbs contract. It registers
// itself as "tcp":
//
//	dev, err := verbs.Open("tcp", "10.0.0.5:7000", opts) // "" = 127.0.0.1:0
//
// # Model
//
// A device listens on its name, a host:port that peers can reach (a
// wildcard host is accepted but advertised as is, so it only suits peers on
// the same host). Registered memory is an anonymous private mmap, off the Go
// heap; MR.Addr is its real virtual address in this process, and rkeys and
// lkeys are random, nonzero and unique within the device.
//
// A QP's endpoint carries magic and version, the device's listen address,
// the QP number, the QP's generation (bumped by every Reset, so an endpoint
// names one incarnation) and the device's random nonce (so a restarted
// process on the same address is a different peer). Connect parses it
// (garbage is a wrapped ErrBadEndpoint), moves the QP straight to RTS and
// starts the QP's link; it never touches the network itself.
//
// Each connected QP has one connection per direction: the link of the
// initiator QP dials the target's device and owns the connection, so
// requests and acks of one QP pair follow TCP order (RC ordering for
// free). A link has two goroutines: the sender dials (with the retry
// timeout as deadline), says hello (which QP incarnation it targets and
// who it is), then writes queued requests, one buffered flush per batch;
// the receiver reads acks and turns them into completions. A post may
// also write its own request (the direct path, below). On the target,
// one goroutine per accepted connection, part of the device's soft NIC,
// validates and executes every request and acks it; the target's
// application goroutines are never involved.
//
// # Posting
//
// Post never blocks on the network and does not allocate. It validates
// the arguments, reserves a CQ slot (so no completion is ever lost to a
// full CQ) and puts the request in its send-queue slot. WRITEs of up to
// MaxInline bytes (capped at 64 KiB) are copied into the slot's part of a
// per-QP mmap'd inline buffer at post time, whether or not Inline was
// asked for; larger ones pin the local MR and the sender streams the
// payload from it, so, as with a real NIC, that memory must stay unchanged
// until the request completes. A local MR of another PD (or provider), a
// closed one, or a READ into one without AccessLocalWrite fails with
// StatusLocalProtectionError in turn, after everything posted before it.
//
// # The direct path
//
// Handing every request to the sender costs a goroutine wake-up, which on
// a small machine is most of a round trip. So a post whose request has
// nothing queued ahead of it and at most directInFlight requests in flight,
// on a link whose sender last took a single request (a latency-bound
// caller, not a pipeline, which is better served by the sender's one
// write per batch), a READ or an inlined WRITE of at most
// maxDirect bytes, tries to take the sender's right to write (the link's
// sendMu, with TryLock). If it gets it, it moves the request to in flight,
// encodes the frame into the link's direct buffer, releases the QP lock
// and writes the frame to the socket itself, with one non-blocking write
// (RawConn.Write with a callback that calls write(2) once and always
// reports done). Whatever did not fit, because the socket buffer was full
// (EAGAIN) or took only part, stays in the direct buffer, and the sender
// is kicked to write it.
//
// It cannot block: sendMu is only tried, never waited for, and the write
// never parks on a full socket. It cannot reorder: the sender holds sendMu
// from before it takes a batch until that batch is flushed into the
// socket, and releases it only to park; a post moves its request to in
// flight while holding both the QP lock and sendMu, and only when nothing
// is queued ahead of it. So every request sent earlier is already in the
// socket, and the sender writes the direct buffer's leftover before it
// takes anything newer. A direct write that fails shuts the link down like
// a failed sender write (the receiver then fails what is outstanding), and
// a sender that exits keeps sendMu, so nothing is written to a link whose
// sender is gone.
//
// # Target checks and the revoke fence
//
// For every request the target checks, in order: that its QP is connected
// to this initiator (RTR or RTS, same generation, peer is the initiator's
// QP incarnation), the QP's access, the rkey, that the MR is in the QP's
// PD, the bounds and the MR's access. A QP that is not connected yet (RESET
// at the generation the initiator named) is waited for up to the
// initiator's retry timeout, as a NIC drops packets for a QP not yet in RTR
// and the initiator retransmits; any other QP failure is RetryExceeded at
// once, an access failure is RemoteAccessError. Zero-length requests touch
// no memory and check no rkey. After refusing a request, a connection
// executes nothing more: the initiator flushes everything behind it.
//
// A WRITE's payload is landed in pieces of at most 64 KiB (what the
// connection's buffer holds), each copied while holding the target QP's
// rxMu after re-checking state and AccessRemoteWrite under it, and the lock
// is never held while waiting for the network. SetAccess takes rxMu to
// change the access, so when it returns no further piece of any WRITE
// lands. A stalled initiator can therefore never hold the fence, and
// SetAccess never returns ErrFenceTimeout. A WRITE refused half-way leaves
// its earlier pieces in place (as a real NIC may) and completes with
// RemoteAccessError.
//
// # Failure detection
//
// The retry timer watches progress: acks, bytes the sender gets into the
// socket, READ data, and progress notes that the target sends every MiB of
// a long WRITE. When requests are in flight and nothing has progressed for
// RetryTimeout, or the connection breaks (EOF, reset, malformed ack), the
// oldest outstanding request completes with StatusRetryExceeded, the rest
// are flushed and the QP goes to ERROR. A connection that breaks while
// nothing is outstanding is remembered, and the next post fails the same
// way at once. A link is never redialed: the peer device it names is gone,
// and recovery is Reset and Connect to a fresh endpoint. The timer costs no
// timer operation per request: the receiver's read deadline is armed when
// requests go in flight and re-armed from the last progress when it fires.
//
// So a SIGKILLed peer is noticed as soon as its kernel closes the socket,
// a refused or unroutable dial within RetryTimeout of Connect, and a
// stopped peer or a silent network within RetryTimeout of the last
// progress (plus the time to fill the socket buffers).
//
// # Wire protocol and hostile peers
//
// The framing is documented in wire.go. Every length is checked against
// its limit (MaxMessageSize for payloads, 255 for addresses) before
// anything is read, payloads are streamed through fixed 64 KiB buffers,
// and reserved bytes must be zero, so a malformed or hostile frame closes
// its connection with an slog debug line and never crashes the NIC or
// makes it allocate in proportion to what the peer claims.
//
// # Lifetimes
//
// MRs are reference counted: the registration and every in-flight use
// (a request streaming from it, a target landing into it) hold a
// reference, and the last one unmaps, so MR.Close never waits and never
// pulls memory from under the NIC. QP Reset and Close stop the link and
// wait for its goroutines before dropping outstanding requests. Device
// Close closes the listener, every QP, every accepted connection, and
// waits for all goroutines before unmapping memory: nothing leaks.
//
// # Performance
//
// The hot path (post, send, target execution, ack, completion, Poll) does
// not allocate: BenchmarkPostWritePoll reports 0 allocs/op. With the
// direct path a round trip costs two goroutine wake-ups (target,
// receiver) and two loopback TCP hops, so it is bound by the kernel and
// the Go scheduler, not by the provider. On the 2-core development VM
// (noisy, shared), BenchmarkPostWritePoll went from about 45-85µs to
// 35-50µs (and from about 160µs to 50µs while the machine was loaded),
// and verbs-lat's 64-byte half round trip (p50) from about 70-90µs to
// 22-33µs with --poll spin, 90-150µs to 53-98µs with yield and
// 115-150µs to 88-110µs with sleep, against 11-20µs for a bare Go TCP
// ping-pong (which itself jumps to 60-80µs in some runs). The yield and
// sleep numbers are dominated by the poller's own yields and sleeps. A
// post that is first in the unsent queue yields once to the sender it
// woke (see kickSender), which keeps a caller spinning on its CQ from
// stranding the sender on its own P. Pipelined, one QP moves a 64-byte
// WRITE every 2-4µs on an idle machine.
package tcp
