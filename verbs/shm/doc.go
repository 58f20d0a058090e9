// Package shm is the verbs provider for processes on one host: registered
// memory lives in shared-memory files, and a WRITE or READ is a memcpy done
// by the initiator straight into or out of the target's mapping. The target
// process does nothing to serve it, so operations are truly one-sided, as
// with an RDMA NIC. Importing the package registers the provider as "shm".
//
// # Fabric and files
//
// A device name selects a fabric: the directory <Options.Dir>/gomu-<name>
// (Dir defaults to /dev/shm, the name "" means "default"). Every device
// opened on a fabric is a node with a random 64-bit id and owns these files:
//
//	n-<node>.lock        held with flock(LOCK_EX) while the node lives
//	n-<node>.qp          the node's QP table (control blocks, below)
//	n-<node>.mr-<rkey>   one per MR: a header page, then the memory itself
//
// Close removes a node's files (and the directory once it is empty). A
// killed process cannot, so Open and Close try to flock every other node's
// lock file: winning the lock proves the owner is gone (the kernel drops
// flocks on death, and unlike a pid this cannot be fooled by pid reuse), and
// the winner removes that node's files. A lock file is created under a
// temporary name and renamed into place only once locked, so a reclaimer
// never mistakes a node that is still starting for a dead one. Open also
// sweeps the other gomu-* fabrics under Dir the same way and removes those
// left empty, so the fabrics of crashed runs do not pile up. The fabric
// directory is created with mode 0700 (a fabric is shared by the processes
// of one user); Dir itself must exist.
//
// # Control blocks
//
// Each QP owns a 128-byte slot in its node's QP table. The first cache line
// holds what the QP's peer reads on every operation: a state word (a
// generation in the high half, the QPState in the low half), the access
// flags granted to the peer, the PD id, and the identity of the connected
// peer QP (node id, QP number and generation). The second line holds the
// fence word, the only thing a remote initiator writes: the generation in
// the high half and the number of WRITEs in flight into this QP's memory in
// the low half. Keeping them on separate lines keeps the read-mostly line
// shared between the two cores.
//
// The generation is bumped by Reset (and Close), never by Connect, so an
// endpoint taken before Connect stays valid after it. An endpoint names
// (fabric, node, QP number, generation); a connection only works while both
// sides are in the generation they were connected with and the target names
// the initiator as its peer. Anything else completes with
// StatusRetryExceeded at once: on one host the provider knows for sure that
// retrying cannot help.
//
// # Hot path and the revoke fence
//
// PostWrite runs the whole operation before it returns: it increments the
// target's fence count with a compare-and-swap that also checks the
// generation, then checks the target's state, peer identity and access, the
// MR's validity, PD, access and bounds (plain loads of shared memory), copies
// the bytes, decrements the count and pushes the completion. SetAccess stores
// the new access and then waits until the count is zero. Both sides use Go's
// sequentially consistent atomics, so this is Dekker's handshake: either the
// writer's re-check sees the revoked access, or SetAccess sees the writer in
// flight and waits for its copy to finish. The wait is bounded by
// Options.FenceTimeout (ErrFenceTimeout), and ends early when the peer
// process is dead. Reset and QP.Close drain the count the same way before
// starting a new generation, so a write of the old connection can never land
// after a later revoke; the count of a new generation starts at zero, which
// also forgets the count a killed writer left behind.
//
// A remote MR is mapped on first use of its rkey and cached in the
// connection; after that an operation makes no system call and allocates
// nothing. Mappings of a peer are dropped when the last connection to it is
// reset or closed.
//
// # Completion and send queues
//
// A CQ is a lock-free multi-producer ring. Every post reserves a CQ entry
// before doing anything, since any request may fail and failures always
// complete; the reservation is returned at once when a request produces no
// completion (an unsignaled success). A send-queue slot is held by each
// unsignaled success until the QP produces a completion, which releases all
// of them, exactly as on a NIC: a caller that never signals gets
// ErrQueueFull.
//
// # Peer death
//
// Connect opens a pidfd for the peer's process and registers it with the
// device's watcher goroutine (one per device, blocked in epoll_wait). When the
// peer dies the watcher sets a flag the hot path checks, so operations
// towards it complete with StatusRetryExceeded, and SetAccess stops waiting
// for its in-flight writes. On kernels without pidfd the watcher probes the
// peer's lock file every RetryTimeout/4 instead.
//
// # Limits
//
// A device has at most 4096 QPs open at once; an MR is at most 1 TiB. Closing
// an MR while another goroutine is posting from it is a programming error,
// as freeing a buffer in use would be.
package shm
