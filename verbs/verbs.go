// Package verbs is gomu's RDMA verbs API: protection domains, registered
// memory, completion queues and reliable-connected queue pairs with one-sided
// WRITE and READ, shaped after libibverbs but made Go-shaped.
//
// The API is implemented by providers that register themselves by name:
//
//	shm  same-host processes over shared memory (verbs/shm)
//	tcp  any hosts, a user-space soft NIC over TCP (verbs/tcp)
//	ibv  real RDMA NICs through cgo libibverbs, build tag rdma (verbs/ibv)
//
// A program links the providers it wants by importing them (or all of them
// through verbs/providers) and then calls Open.
//
// # Contract
//
// Every provider implements these semantics, and verbs/verbstest checks them:
//
//  1. WRITE and READ move exactly the bytes asked, into or out of the remote
//     MR, checked against the rkey, the MR's bounds and access, the MR's PD
//     (it must be the remote QP's PD) and the remote QP's state and access.
//  2. RC ordering: operations posted on one QP take effect and complete in
//     post order.
//  3. Fence on revoke: once SetAccess that removes AccessRemoteWrite returns
//     on the target, no WRITE from the connected QP lands afterwards,
//     including ones that were in flight.
//  4. A refused operation completes with StatusRemoteAccessError (or
//     StatusLocalProtectionError for a bad local buffer) and moves the
//     initiator QP to StateError; later posts complete with StatusFlushError
//     until the QP is Reset and connected again. A refusal may also move
//     the target's QP to StateError (real NICs do for responder errors);
//     a target whose SetAccess then fails with ErrQPState must Reset and
//     Connect again, as the shm and tcp providers never require.
//  5. If the remote process is dead or unreachable, operations complete with
//     StatusRetryExceeded within Options.RetryTimeout; nothing hangs.
//  6. A WRITE larger than 8 bytes is not atomic to a reader polling the
//     target memory: readers must validate what they read.
//
// # Work requests and the send queue
//
// Post errors are returned synchronously only for requests that could never
// be executed (bad arguments, QP not yet connected, send queue full); every
// other failure is reported as a Completion, as with ibverbs. A successful
// unsignaled request produces no completion, and its send-queue slot is only
// released when a later signaled request on the same QP completes, so a
// caller that never signals fills the queue (ErrQueueFull), exactly as on a
// real NIC. An error always produces a completion, signaled or not.
//
// Registered memory is allocated by the provider off the Go heap (mmap), so
// the Go garbage collector never moves or scans it and a NIC may DMA into it.
package verbs

import (
	"errors"
	"fmt"
	"time"
)

// Access is a set of memory or QP access rights (IBV_ACCESS_*).
type Access uint32

const (
	// AccessLocalWrite lets the local NIC write the memory (needed as the
	// destination of a READ).
	AccessLocalWrite Access = 1 << iota
	// AccessRemoteWrite lets a connected peer WRITE into the memory or,
	// on a QP, lets its peer write through it.
	AccessRemoteWrite
	// AccessRemoteRead lets a connected peer READ the memory or through
	// the QP.
	AccessRemoteRead
)

// AccessAll is every right; a convenience for always-open planes.
const AccessAll = AccessLocalWrite | AccessRemoteWrite | AccessRemoteRead

func (a Access) String() string {
	if a == 0 {
		return "none"
	}
	s := ""
	add := func(bit Access, name string) {
		if a&bit != 0 {
			if s != "" {
				s += "|"
			}
			s += name
		}
	}
	add(AccessLocalWrite, "local-write")
	add(AccessRemoteWrite, "remote-write")
	add(AccessRemoteRead, "remote-read")
	if rest := a &^ AccessAll; rest != 0 {
		add(rest, fmt.Sprintf("0x%x", uint32(rest)))
	}
	return s
}

// SendFlags modify one work request (IBV_SEND_*).
type SendFlags uint32

const (
	// Signaled asks for a completion when the request succeeds.
	Signaled SendFlags = 1 << iota
	// Inline copies the payload at post time, so the local buffer may be
	// reused as soon as Post returns. Length must not exceed the QP's
	// MaxInline.
	Inline
)

// Opcode says what a work request does.
type Opcode uint8

const (
	OpWrite Opcode = iota + 1 // RDMA WRITE
	OpRead                    // RDMA READ
)

func (o Opcode) String() string {
	switch o {
	case OpWrite:
		return "WRITE"
	case OpRead:
		return "READ"
	}
	return fmt.Sprintf("Opcode(%d)", uint8(o))
}

// Status is the outcome of a work request, modelled on enum ibv_wc_status.
type Status uint8

const (
	StatusSuccess              Status = iota // IBV_WC_SUCCESS
	StatusLocalProtectionError               // IBV_WC_LOC_PROT_ERR: local buffer outside its MR, wrong PD or access
	StatusRemoteAccessError                  // IBV_WC_REM_ACCESS_ERR: rkey, bounds, PD or access refused by the target
	StatusFlushError                         // IBV_WC_WR_FLUSH_ERR: posted while the QP was in error
	StatusRetryExceeded                      // IBV_WC_RETRY_EXC_ERR: the peer did not answer in time
	StatusRemoteInvalidRequest               // IBV_WC_REM_INV_REQ_ERR: the target QP cannot take the request
	StatusGeneralError                       // IBV_WC_GENERAL_ERR: anything else
)

var statusNames = [...]string{
	StatusSuccess:              "success",
	StatusLocalProtectionError: "local protection error",
	StatusRemoteAccessError:    "remote access error",
	StatusFlushError:           "work request flushed",
	StatusRetryExceeded:        "transport retry counter exceeded",
	StatusRemoteInvalidRequest: "remote invalid request",
	StatusGeneralError:         "general error",
}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Completion reports one finished work request (struct ibv_wc).
type Completion struct {
	WRID   uint64 // the id given at post time
	QPNum  uint32 // the local QP the request was posted on
	Bytes  uint32 // bytes moved (READ and WRITE)
	Status Status
	Op     Opcode
}

// Err returns nil for a successful completion and a descriptive error
// otherwise.
func (c Completion) Err() error {
	if c.Status == StatusSuccess {
		return nil
	}
	return &CompletionError{Completion: c}
}

// CompletionError is a failed completion as an error.
type CompletionError struct{ Completion Completion }

func (e *CompletionError) Error() string {
	c := e.Completion
	return fmt.Sprintf("verbs: %s wr %d on qp %d: %s", c.Op, c.WRID, c.QPNum, c.Status)
}

// QPState is a queue pair's state (enum ibv_qp_state, without SQD/SQE).
type QPState uint8

const (
	StateReset QPState = iota
	StateInit
	StateRTR // ready to receive: the peer may access us
	StateRTS // ready to send: we may post
	StateError
)

var stateNames = [...]string{"RESET", "INIT", "RTR", "RTS", "ERROR"}

func (s QPState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("QPState(%d)", uint8(s))
}

// Remote names remote registered memory: an address in the peer's MR and
// the rkey that grants access to it. Peers exchange Remotes out of band
// (the registry) alongside QP endpoints.
type Remote struct {
	Addr uint64
	RKey uint32
}

// Add returns r shifted by off bytes.
func (r Remote) Add(off uint64) Remote { return Remote{Addr: r.Addr + off, RKey: r.RKey} }

// Device is an opened RDMA device (struct ibv_context).
type Device interface {
	// Provider is the name the device was opened with ("shm", "tcp", "ibv").
	Provider() string
	// Name identifies the device within its provider.
	Name() string
	AllocPD() (PD, error)
	// CreateCQ makes a completion queue holding up to depth completions.
	CreateCQ(depth int) (CQ, error)
	// Close releases the device and everything made from it that is still
	// open. Closing twice returns ErrClosed.
	Close() error
}

// PD is a protection domain: a QP only reaches MRs registered in its own PD.
type PD interface {
	// AllocMR allocates size bytes of zeroed memory off the Go heap and
	// registers it with the given access rights.
	AllocMR(size int, access Access) (MR, error)
	CreateQP(cfg QPConfig) (QP, error)
	Close() error
}

// MR is registered memory.
type MR interface {
	// Bytes is the memory itself; valid until Close.
	Bytes() []byte
	// Addr is the address peers use to name the first byte.
	Addr() uint64
	LKey() uint32
	RKey() uint32
	// Remote is {Addr(), RKey()}: what a peer needs to target this MR.
	Remote() Remote
	Close() error
}

// CQ is a completion queue.
type CQ interface {
	// Poll moves up to len(out) completions into out and returns how many.
	// It never blocks and never allocates.
	Poll(out []Completion) (int, error)
	Close() error
}

// QPConfig configures a reliable-connected queue pair.
type QPConfig struct {
	// SendCQ receives the QP's completions. Required.
	SendCQ CQ
	// MaxSendWR is the send-queue depth. Zero means DefaultMaxSendWR.
	MaxSendWR int
	// MaxInline is the largest inline payload. Zero means DefaultMaxInline;
	// a provider may cap it at what its device supports.
	MaxInline int
}

// Defaults for QPConfig and Options.
const (
	DefaultMaxSendWR    = 256
	DefaultMaxInline    = 256
	DefaultRetryTimeout = 500 * time.Millisecond // about an InfiniBand default (timeout 14, retry 7)
	DefaultFenceTimeout = time.Second
	// MaxMessageSize bounds a single WRITE or READ (as ibv_port_attr.max_msg_sz).
	MaxMessageSize = 1 << 30
)

// QP is a reliable-connected queue pair.
type QP interface {
	// Num is the QP number, unique within its device.
	Num() uint32
	State() QPState
	// Endpoint is the opaque address a peer passes to its own Connect.
	Endpoint() []byte
	// Connect moves the QP RESET→INIT→RTR→RTS towards the peer endpoint,
	// letting the peer access our memory with the given rights.
	Connect(remote []byte, access Access) error
	// SetAccess changes the rights the peer has through this QP while it is
	// connected. Removing AccessRemoteWrite is a fence: when SetAccess
	// returns, no WRITE from the peer lands any more.
	SetAccess(access Access) error
	// Access returns the rights the peer currently has through this QP.
	Access() Access
	// Reset moves the QP to RESET from any state; outstanding requests are
	// dropped without completions. Connect may then be called again.
	Reset() error
	// PostWrite copies length bytes at localOff in local to remote.
	PostWrite(wrID uint64, local MR, localOff, length int, remote Remote, flags SendFlags) error
	// PostRead copies length bytes at remote into local at localOff.
	PostRead(wrID uint64, local MR, localOff, length int, remote Remote, flags SendFlags) error
	Close() error
}

// Options tune a device. Zero values mean the documented defaults.
type Options struct {
	// RetryTimeout bounds how long an operation towards a dead or
	// unreachable peer takes to complete with StatusRetryExceeded.
	RetryTimeout time.Duration
	// FenceTimeout bounds how long SetAccess waits for in-flight WRITEs of
	// a live but stalled peer to drain before giving up with ErrFenceTimeout.
	FenceTimeout time.Duration
	// Dir is the shm provider's base directory (default /dev/shm).
	Dir string
	// Port is the ibv provider's port number (default 1).
	Port int
	// GIDIndex selects the GID used on RoCE ports (ibv). InfiniBand ports
	// address peers by LID and ignore it.
	GIDIndex int
}

// WithDefaults fills in every zero field.
func (o Options) WithDefaults() Options {
	if o.RetryTimeout <= 0 {
		o.RetryTimeout = DefaultRetryTimeout
	}
	if o.FenceTimeout <= 0 {
		o.FenceTimeout = DefaultFenceTimeout
	}
	if o.Dir == "" {
		o.Dir = "/dev/shm"
	}
	if o.Port <= 0 {
		o.Port = 1
	}
	return o
}

// Errors returned synchronously by the API. Providers wrap them with detail;
// test with errors.Is.
var (
	ErrClosed          = errors.New("verbs: already closed")
	ErrInvalidArgument = errors.New("verbs: invalid argument")
	ErrQueueFull       = errors.New("verbs: send queue full (signal a request and poll its completion)")
	ErrCQFull          = errors.New("verbs: completion queue full (poll it)")
	ErrQPState         = errors.New("verbs: invalid QP state for this operation")
	ErrBadEndpoint     = errors.New("verbs: malformed endpoint")
	ErrFenceTimeout    = errors.New("verbs: in-flight writes did not drain before the fence deadline")
	ErrNoDevice        = errors.New("verbs: no RDMA device")
	ErrUnknownProvider = errors.New("verbs: unknown provider")
	ErrForeignObject   = errors.New("verbs: object belongs to another device or provider")
)

// Completion-queue capacity: Post never lets a CQ overflow. A provider
// reserves room for the completion a request may produce when it is posted
// (every request may fail, and failures always complete) and returns
// ErrCQFull instead of losing a completion later.
