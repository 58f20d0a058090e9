package logring

import (
	"bytes"
	"errors"
	"testing"
)

func TestSpecialPayloads(t *testing.T) {
	chunk := func(total, off uint64, data string) []byte {
		b := make([]byte, SpecialHeaderSize+len(data))
		return b[:PutChunk(b, total, off, []byte(data))]
	}
	drop := make([]byte, SpecialHeaderSize)
	drop = drop[:PutDrop(drop)]
	bodied := append(append([]byte(nil), drop...), 'x')
	unknown := append([]byte(nil), drop...)
	unknown[4] = 9
	for _, tc := range []struct {
		name    string
		payload []byte
		special bool
		want    Special // when well formed
		bad     bool
	}{
		{"chunk", chunk(10, 4, "abc"), true, Special{Kind: KindChunk, Total: 10, Offset: 4, Data: []byte("abc")}, false},
		{"last chunk", chunk(7, 4, "abc"), true, Special{Kind: KindChunk, Total: 7, Offset: 4, Data: []byte("abc")}, false},
		{"drop", drop, true, Special{Kind: KindDrop, Data: []byte{}}, false},
		{"chunk past its command", chunk(6, 4, "abc"), true, Special{}, true},
		{"offset past its command", chunk(3, 4, ""), true, Special{}, true},
		{"drop with a body", bodied, true, Special{}, true},
		{"unknown kind", unknown, true, Special{}, true},
		{"short header", drop[:12], true, Special{}, true},
		{"a batch", AppendCommand(nil, []byte("set k v")), false, Special{}, true},
		{"empty batch", nil, false, Special{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsSpecial(tc.payload); got != tc.special {
				t.Fatalf("IsSpecial = %v, want %v", got, tc.special)
			}
			s, err := ParseSpecial(tc.payload)
			if tc.bad {
				if !errors.Is(err, ErrMalformedBatch) {
					t.Fatalf("ParseSpecial = %+v, %v; want an ErrMalformedBatch", s, err)
				}
				return
			}
			if err != nil || s.Kind != tc.want.Kind || s.Total != tc.want.Total || s.Offset != tc.want.Offset || !bytes.Equal(s.Data, tc.want.Data) {
				t.Fatalf("ParseSpecial = %+v, %v; want %+v", s, err, tc.want)
			}
		})
	}
}
