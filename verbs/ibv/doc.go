// Package ibv is gomu's verbs provider for real RDMA NICs, through cgo
// bindings to libibverbs. It is built only with the rdma build tag (and
// cgo); without it the package registers a provider named "ibv" whose Open
// fails with ErrNotBuiltIn, which says how to rebuild.
//
// A device is opened by name ("" for the first one; "mlx5_0" or "mlx5_0:2"
// to pick a port, otherwise Options.Port). Both InfiniBand ports, where
// peers are addressed by LID, and RoCE ports, where they are addressed by
// the GID at Options.GIDIndex, are supported. Queue pairs are
// reliable-connected; Connect takes them RESET→INIT→RTR→RTS towards a peer
// endpoint, SetAccess changes the peer's rights with
// ibv_modify_qp(IBV_QP_ACCESS_FLAGS), and Reset returns them to RESET.
// Registered memory is mmap'd by the provider, never Go heap memory.
//
// One behaviour of real NICs goes beyond the verbs contract: a target that
// refuses a WRITE or READ (unknown rkey, out of bounds, missing right) moves
// its own QP to ERROR as well as the initiator's (an IBA class C responder
// error). Regranting access through that QP then takes Reset and Connect;
// SetAccess returns ErrQPState. The ibvfake double behaves the same way.
//
// Send-queue and completion-queue occupancy is accounted in Go, so that
// posting returns ErrQueueFull or ErrCQFull before the NIC's queues could
// overflow, and the completion of a request is matched to it by a
// per-QP sequence number carried as the NIC's work-request id.
//
// Under the additional ibvfake build tag, fake.c, a software double of the
// libibverbs subset used here, replaces the library, so the provider's cgo
// code runs in tests on machines without a NIC:
//
//	go test -tags rdma,ibvfake ./verbs/ibv
package ibv

import "errors"

// ErrNotBuiltIn is what opening "ibv" returns in a binary built without the
// rdma tag.
var ErrNotBuiltIn = errors.New("ibv transport not built in: rebuild with -tags rdma (needs libibverbs-dev)")
