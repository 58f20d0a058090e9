package resp

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unsafe"
)

// fuzzChunks returns data in reads whose sizes cycle through sizes.
type fuzzChunks struct {
	data  []byte
	sizes []byte
	i     int
}

func (f *fuzzChunks) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(f.sizes) > 0 {
		n = int(f.sizes[f.i%len(f.sizes)])%17 + 1
		f.i++
	}
	n = copy(p, f.data[:min(n, len(f.data))])
	f.data = f.data[n:]
	return n, nil
}

// fuzzParse runs data through Fill and Next, checking that every argument
// lies inside the buffer's filled part and that the args returned between
// two Fills do not overlap. It returns the commands and the final error.
func fuzzParse(t *testing.T, rd io.Reader, lim Limits) ([][]string, error) {
	var cmds [][]string
	r := NewReader(rd, lim)
	for range 1 << 16 {
		var held [][]byte
		for {
			args, ok, err := r.Next()
			if err != nil {
				return cmds, err
			}
			if !ok {
				break
			}
			if len(args) == 0 {
				t.Fatal("Next returned a command of no arguments")
			}
			base := uintptr(unsafe.Pointer(unsafe.SliceData(r.buf)))
			for _, a := range args {
				if len(a) == 0 {
					continue
				}
				p := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
				if p < base || p+uintptr(len(a)) > base+uintptr(r.w) {
					t.Fatalf("arg %q lies outside the buffer's %d filled bytes", a, r.w)
				}
				for _, h := range held {
					q := uintptr(unsafe.Pointer(unsafe.SliceData(h)))
					if p < q+uintptr(len(h)) && q < p+uintptr(len(a)) {
						t.Fatalf("args %q and %q overlap", a, h)
					}
				}
				held = append(held, a)
			}
			s := make([]string, len(args))
			for i, a := range args {
				s[i] = string(a)
			}
			cmds = append(cmds, s)
		}
		if err := r.Fill(); err != nil {
			if err == io.EOF {
				return cmds, nil
			}
			return cmds, err
		}
	}
	t.Fatal("no progress")
	return nil, nil
}

// FuzzReader feeds random bytes through the Reader in one read and in
// reads of varying sizes: neither may panic or return args outside the
// buffer, and both must give the same commands and the same error.
func FuzzReader(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), []byte{0})
	f.Add([]byte("SET \"a\\x41\\n\" 'b\\'c'\r\nPING\n"), []byte{2, 5})
	f.Add([]byte("*0\r\n*-1\r\n*1\r\n$-1\r\n"), []byte{1})
	lim := Limits{MaxBulk: 40, MaxArgs: 6, MaxInline: 32}
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		whole, werr := fuzzParse(t, bytes.NewReader(bytes.Clone(data)), lim)
		split, serr := fuzzParse(t, &fuzzChunks{data: bytes.Clone(data), sizes: sizes}, lim)
		var wpe, spe *ProtocolError
		if (werr != nil) != (serr != nil) || (werr != nil && (!errors.As(werr, &wpe) || !errors.As(serr, &spe) || wpe.Error() != spe.Error())) {
			t.Fatalf("one read: %v; split reads: %v", werr, serr)
		}
		if len(whole) != len(split) {
			t.Fatalf("one read: %q; split reads: %q", whole, split)
		}
		for i := range whole {
			if len(whole[i]) != len(split[i]) {
				t.Fatalf("command %d: %q vs %q", i, whole[i], split[i])
			}
			for j := range whole[i] {
				if whole[i][j] != split[i][j] {
					t.Fatalf("command %d: %q vs %q", i, whole[i], split[i])
				}
			}
		}
	})
}
