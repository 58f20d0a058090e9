package book

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// MaxSymbol is the length limit of a symbol name.
const MaxSymbol = 16

// ValidSymbol reports whether s can name an instrument: 1 to MaxSymbol
// bytes of A-Z, 0-9 and '.'.
func ValidSymbol(s []byte) bool {
	if len(s) == 0 || len(s) > MaxSymbol {
		return false
	}
	for _, c := range s {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.') {
			return false
		}
	}
	return true
}

// Market is the books of many instruments, by symbol, each created on first
// use with the market's Config. It is not safe for concurrent use.
type Market struct {
	cfg   Config
	books map[string]*Book
	syms  []string // sorted
	buf   []byte   // Digest's scratch
}

// NewMarket returns a market without books.
func NewMarket(cfg Config) *Market {
	return &Market{cfg: cfg, books: map[string]*Book{}}
}

// Config is the configuration new books get.
func (m *Market) Config() Config { return m.cfg }

// Book returns the book of sym, creating it if there is none; nil if sym is
// not a valid symbol. Finding an existing book does not allocate.
func (m *Market) Book(sym []byte) *Book {
	if b := m.books[string(sym)]; b != nil {
		return b
	}
	if !ValidSymbol(sym) {
		return nil
	}
	s := string(sym)
	b := New(m.cfg)
	m.books[s] = b
	i, _ := slices.BinarySearch(m.syms, s)
	m.syms = slices.Insert(m.syms, i, s)
	return b
}

// Find returns the book of sym, or nil if there is none (creating none).
func (m *Market) Find(sym []byte) *Book { return m.books[string(sym)] }

// Symbols returns the symbols that have a book, sorted.
func (m *Market) Symbols() []string { return slices.Clone(m.syms) }

// A market's snapshot is "OBM1", the number of books as a uvarint, then per
// book in symbol order its symbol (length byte, bytes) and its snapshot.
const marketMagic = "OBM1"

// AppendSnapshot appends the market's snapshot to dst.
func (m *Market) AppendSnapshot(dst []byte) []byte {
	dst = append(dst, marketMagic...)
	dst = binary.AppendUvarint(dst, uint64(len(m.syms)))
	for _, s := range m.syms {
		dst = append(dst, byte(len(s)))
		dst = append(dst, s...)
		dst = m.books[s].AppendSnapshot(dst)
	}
	return dst
}

// RestoreMarket reads a market written by AppendSnapshot; data must hold
// exactly that. The books keep the configuration they were saved with; cfg is
// for the books created from now on (the same as the saved market's, on a
// replica).
func RestoreMarket(data []byte, cfg Config) (*Market, error) {
	r := &reader{b: data}
	if string(r.bytes(len(marketMagic), "magic")) != marketMagic {
		return nil, fmt.Errorf("%w: no %s magic", ErrSnapshot, marketMagic)
	}
	count := r.uvarint("book count")
	if r.err != nil {
		return nil, r.err
	}
	if count > uint64(len(r.b)) {
		return nil, fmt.Errorf("%w: %d books in %d bytes", ErrSnapshot, count, len(r.b))
	}
	m := NewMarket(cfg)
	for i := uint64(0); i < count; i++ {
		n := r.bytes(1, "symbol length")
		if r.err != nil {
			return nil, r.err
		}
		sym := r.bytes(int(n[0]), "symbol")
		if r.err != nil {
			return nil, r.err
		}
		s := string(sym)
		if !ValidSymbol(sym) || (len(m.syms) > 0 && m.syms[len(m.syms)-1] >= s) {
			return nil, fmt.Errorf("%w: symbol %q invalid or out of order", ErrSnapshot, sym)
		}
		b, rest, err := Restore(r.b)
		if err != nil {
			return nil, fmt.Errorf("book %s: %w", s, err)
		}
		r.b = rest
		m.books[s] = b
		m.syms = append(m.syms, s)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last book", ErrSnapshot, len(r.b))
	}
	return m, nil
}

// Digest is a 64-bit FNV-1a hash of the market's snapshot: equal on
// replicas that applied the same commands.
func (m *Market) Digest() uint64 {
	m.buf = m.AppendSnapshot(m.buf[:0])
	return digest(m.buf)
}

func digest(p []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range p {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
