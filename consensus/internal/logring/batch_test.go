package logring

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    []string
		wantErr string // substring; "" for a well-formed batch
	}{
		{"empty batch", nil, nil, ""},
		{"one", batch("set a 1"), []string{"set a 1"}, ""},
		{"several", batch("a", "", "ccc"), []string{"a", "", "ccc"}, ""},
		{"truncated length", append(batch("a"), 1, 0), []string{"a"}, "command 1 at byte 5: 2 bytes left"},
		{"length past the end", append(batch("a"), 9, 0, 0, 0, 'x'), []string{"a"}, "length 9 exceeds the 1 bytes left"},
		{"huge length", []byte{0xFF, 0xFF, 0xFF, 0xFF}, nil, "length 4294967295 exceeds the 0 bytes left"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := NewCommands(tt.payload)
			var got []string
			for cmd, ok := cs.Next(); ok; cmd, ok = cs.Next() {
				if cap(cmd) != len(cmd) {
					t.Fatalf("command %q has capacity %d", cmd, cap(cmd))
				}
				got = append(got, string(cmd))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Fatalf("commands %q, want %q", got, tt.want)
			}
			if cs.Count() != len(got) {
				t.Fatalf("Count %d, want %d", cs.Count(), len(got))
			}
			n, verr := ValidateBatch(tt.payload)
			for _, err := range []error{cs.Err(), verr} {
				if tt.wantErr == "" && err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if tt.wantErr != "" && (!errors.Is(err, ErrMalformedBatch) || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("error %v, want ErrMalformedBatch containing %q", err, tt.wantErr)
				}
			}
			if n != len(got) {
				t.Fatalf("ValidateBatch counted %d, want %d", n, len(got))
			}
			// The iteration stays stopped.
			if _, ok := cs.Next(); ok {
				t.Fatal("Next after the end returned a command")
			}
		})
	}
}

func batch(cmds ...string) []byte {
	var b []byte
	for _, c := range cmds {
		b = AppendCommand(b, []byte(c))
	}
	return b
}

func TestAppendCommandLayout(t *testing.T) {
	got := AppendCommand([]byte{9}, []byte("hey"))
	if want := []byte{9, 3, 0, 0, 0, 'h', 'e', 'y'}; !bytes.Equal(got, want) {
		t.Fatalf("AppendCommand = % x, want % x", got, want)
	}
	if CommandSize(3) != 7 {
		t.Fatalf("CommandSize(3) = %d", CommandSize(3))
	}
}

// TestBatchInPlace builds a batch directly in the ring and seals it, the
// zero-copy group-commit path, then reads it back through a cursor.
func TestBatchInPlace(t *testing.T) {
	ring := aligned(1024)
	dst := ring[EntryHeaderSize:EntryHeaderSize:MaxPayload(len(ring))]
	cmds := []string{"set x 1", "incr x", ""}
	for _, c := range cmds {
		dst = AppendCommand(dst, []byte(c))
	}
	if !within(dst, ring) {
		t.Fatal("the batch left the ring")
	}
	Seal(ring, 1, 1, 0, len(dst))
	c := Cursor{Next: 1}
	e, ok := c.Poll(ring)
	if !ok {
		t.Fatal("sealed batch not read")
	}
	cs := NewCommands(e.Payload)
	for _, want := range cmds {
		if got, ok := cs.Next(); !ok || string(got) != want {
			t.Fatalf("command %q, want %q", got, want)
		}
	}
	if _, ok := cs.Next(); ok || cs.Err() != nil {
		t.Fatalf("trailing command or error %v", cs.Err())
	}
}
