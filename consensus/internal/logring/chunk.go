package logring

import (
	"encoding/binary"
	"fmt"
)

// Large commands: a command too long for one entry travels as a sequence
// of chunk entries, each a special payload instead of a command batch. A
// special payload starts with SpecialTag where a batch starts with its first
// command's length: no command can be 2^32-1 bytes long, since no payload
// can (its Length field reserves that value for wrap markers), so the two
// never mix up, and telling them apart costs a reader one 4-byte load per
// entry.
//
//	off  size  field
//	0    4     SpecialTag (0xFFFFFFFF)
//	4    4     Kind: KindChunk or KindDrop
//	8    8     Total: the whole command's length (chunks; 0 for a drop)
//	16   8     Offset: where this chunk's bytes start in the command
//	24   n     the chunk's bytes (chunks; nothing for a drop)
//
// A drop tells every reader to discard a command it is assembling: a new
// leader writes one when it may have adopted the first chunks of a command
// whose proposer lost its leadership before the last.
const (
	SpecialTag        = 0xFFFFFFFF
	SpecialHeaderSize = 24
)

// Kinds of special payloads.
const (
	KindChunk uint32 = 1
	KindDrop  uint32 = 2
)

// Special is a decoded special payload; Data aliases the payload.
type Special struct {
	Kind   uint32
	Total  uint64
	Offset uint64
	Data   []byte
}

// IsSpecial reports whether payload is a special payload rather than a
// command batch.
func IsSpecial(payload []byte) bool {
	return len(payload) >= 4 && binary.LittleEndian.Uint32(payload) == SpecialTag
}

// PutChunk writes a chunk of a command of total bytes, starting at offset,
// into dst (which must hold SpecialHeaderSize+len(data) bytes) and returns
// the payload size.
func PutChunk(dst []byte, total, offset uint64, data []byte) int {
	putSpecialHeader(dst, KindChunk, total, offset)
	return SpecialHeaderSize + copy(dst[SpecialHeaderSize:], data)
}

// PutDrop writes a drop into dst and returns the payload size.
func PutDrop(dst []byte) int {
	putSpecialHeader(dst, KindDrop, 0, 0)
	return SpecialHeaderSize
}

func putSpecialHeader(dst []byte, kind uint32, total, offset uint64) {
	binary.LittleEndian.PutUint32(dst, SpecialTag)
	binary.LittleEndian.PutUint32(dst[4:], kind)
	binary.LittleEndian.PutUint64(dst[8:], total)
	binary.LittleEndian.PutUint64(dst[16:], offset)
}

// ParseSpecial decodes a special payload, rejecting a malformed one (a
// short header, an unknown kind, a chunk that does not fit its command)
// with an error wrapping ErrMalformedBatch.
func ParseSpecial(payload []byte) (Special, error) {
	if len(payload) < SpecialHeaderSize || !IsSpecial(payload) {
		return Special{}, fmt.Errorf("%w: special payload of %d bytes", ErrMalformedBatch, len(payload))
	}
	s := Special{
		Kind:   binary.LittleEndian.Uint32(payload[4:]),
		Total:  binary.LittleEndian.Uint64(payload[8:]),
		Offset: binary.LittleEndian.Uint64(payload[16:]),
		Data:   payload[SpecialHeaderSize:],
	}
	switch s.Kind {
	case KindChunk:
		if s.Offset > s.Total || uint64(len(s.Data)) > s.Total-s.Offset {
			return Special{}, fmt.Errorf("%w: chunk of %d bytes at %d of a %d-byte command", ErrMalformedBatch, len(s.Data), s.Offset, s.Total)
		}
	case KindDrop:
		if len(s.Data) != 0 || s.Total != 0 || s.Offset != 0 {
			return Special{}, fmt.Errorf("%w: drop with a body", ErrMalformedBatch)
		}
	default:
		return Special{}, fmt.Errorf("%w: special payload of unknown kind %d", ErrMalformedBatch, s.Kind)
	}
	return s, nil
}
