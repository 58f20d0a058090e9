package logring

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzDecode feeds arbitrary ring contents, offsets and expected indexes to
// Decode, Stable and Cursor.Poll, aligned and not: none may panic, and
// whatever is accepted must be a consistent entry inside the ring.
func FuzzDecode(f *testing.F) {
	seed := aligned(512)
	Encode(seed[64:], 3, 2, 1, []byte("payload"))
	EncodeWrap(seed[256:], 4)
	Encode(seed, 4, 2, 3, nil)
	f.Add(bytes.Clone(seed), 64, uint64(3))
	f.Add(bytes.Clone(seed), 256, uint64(4))
	f.Add(bytes.Clone(seed[:100]), 64, uint64(3))
	f.Add([]byte{}, 0, uint64(0))
	f.Add(make([]byte, 64), 0, uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, off int, expect uint64) {
		al := aligned(len(data))
		copy(al, data)
		for _, ring := range [][]byte{al, data} {
			e, wrap, ok := Decode(ring, off, expect)
			if !ok {
				if e.Payload != nil || e.Index != 0 || e.Size != 0 || wrap {
					t.Fatalf("rejection returned %+v wrap %v", e, wrap)
				}
			} else {
				if e.Index != expect || e.Off != off || off%Align != 0 {
					t.Fatalf("accepted %+v at %d expecting %d", e, off, expect)
				}
				if wrap {
					if e.Payload != nil || e.Size != EntryHeaderSize || off == 0 {
						t.Fatalf("bad marker %+v", e)
					}
				} else {
					if !within(e.Payload, ring) || e.Size != EntrySize(len(e.Payload)) || off+e.Size > len(ring) {
						t.Fatalf("bad entry %+v in a ring of %d", e, len(ring))
					}
					// Re-encoding what was accepted gives the same bytes.
					re := aligned(e.Size)
					Encode(re, e.Index, e.Proposal, e.Commit, e.Payload)
					if !bytes.Equal(re[:EntryHeaderSize+len(e.Payload)], ring[off:off+EntryHeaderSize+len(e.Payload)]) {
						t.Fatal("re-encoding differs")
					}
				}
				if !Stable(ring, e) {
					t.Fatal("accepted entry not Stable")
				}
			}
			c := Cursor{Next: expect, Off: off}
			if e, ok := c.Poll(ring); ok && (e.Index != expect || c.Next != expect+1 || c.Off < 0 || c.Off >= len(ring) || c.Off%Align != 0) {
				t.Fatalf("Poll returned %+v, cursor %+v", e, c)
			}
		}
	})
}

// FuzzCommands iterates arbitrary payloads: no panic, and a payload the
// iterator accepts whole re-encodes to itself with AppendCommand.
func FuzzCommands(f *testing.F) {
	f.Add([]byte{})
	f.Add(batch("a", "", "hello"))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0x7F, 1})
	f.Fuzz(func(t *testing.T, payload []byte) {
		cs := NewCommands(payload)
		var re []byte
		for cmd, ok := cs.Next(); ok; cmd, ok = cs.Next() {
			if !within(cmd, payload) || cap(cmd) != len(cmd) {
				t.Fatalf("command %q outside the payload", cmd)
			}
			re = AppendCommand(re, cmd)
		}
		n, err := ValidateBatch(payload)
		if n != cs.Count() || (err == nil) != (cs.Err() == nil) {
			t.Fatalf("ValidateBatch = (%d, %v), iteration (%d, %v)", n, err, cs.Count(), cs.Err())
		}
		if cs.Err() == nil {
			if !bytes.Equal(re, payload) {
				t.Fatalf("re-encoded % x, want % x", re, payload)
			}
		} else if len(re) >= len(payload) || !bytes.Equal(re, payload[:len(re)]) {
			t.Fatalf("a malformed batch yielded %d bytes of %d", len(re), len(payload))
		}
		// The length prefix of the first bad command is what is wrong.
		if cs.Err() != nil && len(payload)-len(re) >= 4 {
			if l := binary.LittleEndian.Uint32(payload[len(re):]); uint64(l) <= uint64(len(payload)-len(re)-4) {
				t.Fatalf("rejected a command of %d bytes with %d left", l, len(payload)-len(re)-4)
			}
		}
	})
}
