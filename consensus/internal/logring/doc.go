// Package logring is the byte format and the ring arithmetic of gomu's
// replicated log: what a leader writes into its followers' memory with
// one-sided RDMA WRITEs, and how a reader validates it without any help from
// the writer. It is pure: no I/O, no goroutines, and nothing on the hot paths
// allocates.
//
// # Memory layout
//
// Every replica registers one log MR with the same layout:
//
//	[0, 64)              log header: four little-endian 8-byte words
//	[64, 64+ringSize)    the ring (ringSize is a multiple of Align)
//
// Header words (each 8-aligned, so one 8-byte WRITE or store updates it
// atomically; read them with [LoadU64] or [ReadHeader], write them with
// [PutU64]):
//
//	off  word            meaning
//	0    MinProposal     Paxos promise, written by a candidate during prepare
//	8    CommitIndex     highest committed index; an idle leader writes it
//	16   FirstUndecided  reserved (CommitIndex+1 in this design)
//	24   CommitProposal  proposal of the leader that wrote CommitIndex
//
// An entry starts at a 64-byte-aligned ring offset: a 32-byte header, the
// payload, then padding to a multiple of 64 bytes ([EntrySize]):
//
//	off  size  field
//	0    8     Index     1-based log index
//	8    8     Proposal  proposal number of the leader that wrote the entry
//	16   8     Commit    the writer's commit index (commits ride on the next write)
//	24   4     Length    payload bytes; WrapLength (0xFFFFFFFF) marks a wrap marker
//	28   4     Checksum  CRC-32C (Castagnoli) of bytes [0,28) and the payload
//	32   n     payload
//	32+n pad   to a multiple of 64; not covered by the checksum
//
// All integers are little-endian. The four header words of an entry are read
// and written as aligned 8-byte atomics (Length and Checksum share the word at
// offset 24).
//
// # Validation instead of zeroing
//
// The writer never clears space before reusing it, and nothing tells a reader
// that a WRITE has finished landing. Instead a reader that expects index k at
// offset off ([Decode]) accepts what it finds only if Index == k, the entry
// fits in the ring from off, and the checksum matches. An entry from an
// earlier lap sits at the right offset but carries a smaller index, so it is
// rejected; an entry whose WRITE is still landing (new header, old payload, or
// the reverse) fails the checksum; zeroed memory fails both. The reader simply
// polls again.
//
// Entries never straddle the ring's end. When the next entry does not fit
// before the end, the writer puts a wrap marker at the current offset — an
// entry header with the next entry's index and Length == WrapLength — and the
// entry itself at offset 0. [Cursor.Poll] follows markers.
//
// # Mirrors at the same offsets
//
// Where an entry goes is a function only of where the previous one ended and
// of its own size ([Ring.Reserve]), never of how much space happens to be
// free, and the leader writes each entry at the same offset in every
// follower's ring as in its own. So every replica's ring is a byte mirror of
// the leader's: a new leader finds index k at the same offset in every log
// that holds it, and can re-register the entries it adopts with
// [Ring.Reset] and [Ring.Appended].
//
// # Reading memory that is being written
//
// [Decode] copies nothing: [Entry.Payload] (and the commands a [Commands]
// iterator yields from it) alias the ring, which the writer may reuse once the
// entry is released. The writer ([Ring.Release]) reuses the space of entry k
// only after a majority has applied k. That makes the zero-copy payload safe
// for any reader whose own applied position is counted before the space is
// released and who reports "applied" only after it is done with the bytes —
// the leader reading its own log, for example. A follower outside that
// majority can fall behind the reuse point while it still holds an entry;
// such a reader copies the payload into its own buffer, then calls [Stable],
// and uses the copy only if Stable reports the entry intact. The check is
// sound because an overwrite never restores the old bytes: if the copy caught
// a byte of a newer entry that differs from the old one, that byte is still in
// the ring (or the header has moved on) when Stable re-validates, and the
// checksum no longer matches (but for a CRC-32C collision, about 2^-32).
// A reader that finds its entry unstable has fallen behind the reuse point
// and needs a state transfer.
//
// # Command batches
//
// Group commit packs several commands into one entry. A batch payload is a
// sequence of {u32 little-endian length, bytes}; build it with
// [AppendCommand] and walk it with [Commands], which rejects malformed
// batches with an error wrapping [ErrMalformedBatch] instead of panicking.
//
// A command too long for one entry travels in chunk entries instead, whose
// payload is a special payload ([IsSpecial], [PutChunk], [PutDrop],
// [ParseSpecial]): it starts with [SpecialTag], which no batch can start
// with, so a reader tells the two apart with one 4-byte load per entry.
package logring
