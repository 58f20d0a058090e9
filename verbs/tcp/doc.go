// Package tcp is gomu's verbs provider for hosts without RDMA: a
// user-space "soft NIC" per device that carries one-sided WRITE and READ
// over TCP while keeping RDMA's semantics (verbs package contract).
//
// Placeholder: the full design notes follow.
package tcp
