package logring

import (
	"bytes"
	"fmt"
	"unsafe"
)

// aligned returns n zeroed bytes starting Align-aligned, like an mmap'd MR.
func aligned(n int) []byte {
	b := make([]byte, n+Align)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (Align - 1))
	return b[off : off+n : off+n]
}

// payloadFor is a deterministic payload of n bytes for index.
func payloadFor(index uint64, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(index*131 + uint64(i)*7)
	}
	return p
}

// within reports whether sub lies inside mem.
func within(sub, mem []byte) bool {
	if len(sub) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	return p >= lo && p+uintptr(len(sub)) <= lo+uintptr(len(mem))
}

func checkEntry(e Entry, index, proposal, commit uint64, payload []byte, off int) error {
	switch {
	case e.Index != index || e.Proposal != proposal || e.Commit != commit:
		return fmt.Errorf("header (%d, %d, %d), want (%d, %d, %d)", e.Index, e.Proposal, e.Commit, index, proposal, commit)
	case !bytes.Equal(e.Payload, payload):
		return fmt.Errorf("payload %q, want %q", e.Payload, payload)
	case e.Off != off || e.Size != EntrySize(len(payload)):
		return fmt.Errorf("at %d size %d, want at %d size %d", e.Off, e.Size, off, EntrySize(len(payload)))
	case cap(e.Payload) != len(e.Payload):
		return fmt.Errorf("payload capacity %d beyond its length %d", cap(e.Payload), len(e.Payload))
	}
	return nil
}
