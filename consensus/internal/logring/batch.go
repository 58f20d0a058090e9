package logring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// CommandHeaderSize is the size of a command's length prefix in a batch.
const CommandHeaderSize = 4

// ErrMalformedBatch is wrapped by the errors of Commands and ValidateBatch.
var ErrMalformedBatch = errors.New("logring: malformed command batch")

// CommandSize is the number of batch bytes a command of n bytes takes.
func CommandSize(n int) int { return CommandHeaderSize + n }

// AppendCommand appends cmd to the batch payload dst as {u32 little-endian
// length, bytes} and returns the extended slice. It does not allocate when
// dst has room for CommandSize(len(cmd)) more bytes. It panics if cmd is
// longer than 4 GiB - 1.
func AppendCommand(dst, cmd []byte) []byte {
	if uint64(len(cmd)) > math.MaxUint32 {
		panic(fmt.Sprintf("logring: command of %d bytes is too long for a batch", len(cmd)))
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(cmd)))
	return append(dst, cmd...)
}

// Commands iterates over the commands of a batch payload without allocating:
//
//	cs := logring.NewCommands(e.Payload)
//	for cmd, ok := cs.Next(); ok; cmd, ok = cs.Next() {
//		...
//	}
//	if err := cs.Err(); err != nil { ... }
//
// The commands alias the payload, each with its capacity cut at its length.
// A malformed batch stops the iteration with an error; commands before the
// malformation have been returned by then, so a reader that must not apply
// part of a batch calls ValidateBatch first.
type Commands struct {
	p   []byte
	pos int
	n   int
	err error
}

// NewCommands returns an iterator over the commands of payload.
func NewCommands(payload []byte) Commands { return Commands{p: payload} }

// Next returns the next command, or false at the end of the batch or at a
// malformation (then Err says what is wrong).
func (c *Commands) Next() ([]byte, bool) {
	if c.err != nil || c.pos == len(c.p) {
		return nil, false
	}
	left := len(c.p) - c.pos
	if left < CommandHeaderSize {
		c.err = fmt.Errorf("%w: command %d at byte %d: %d bytes left for a %d-byte length", ErrMalformedBatch, c.n, c.pos, left, CommandHeaderSize)
		return nil, false
	}
	n := binary.LittleEndian.Uint32(c.p[c.pos:])
	if uint64(n) > uint64(left-CommandHeaderSize) {
		c.err = fmt.Errorf("%w: command %d at byte %d: length %d exceeds the %d bytes left", ErrMalformedBatch, c.n, c.pos, n, left-CommandHeaderSize)
		return nil, false
	}
	start := c.pos + CommandHeaderSize
	end := start + int(n)
	c.pos = end
	c.n++
	return c.p[start:end:end], true
}

// Err is the malformation that stopped the iteration, or nil.
func (c *Commands) Err() error { return c.err }

// Count is the number of commands returned so far.
func (c *Commands) Count() int { return c.n }

// ValidateBatch checks that payload is a well-formed batch and returns the
// number of commands in it.
func ValidateBatch(payload []byte) (n int, err error) {
	c := NewCommands(payload)
	for {
		if _, ok := c.Next(); !ok {
			return c.n, c.err
		}
	}
}
