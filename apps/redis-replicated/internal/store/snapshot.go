package store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// Snapshot format, version 3 (all integers unsigned varints unless noted):
//
//	magic "GOMURDS3"
//	count of non-empty databases
//	per non-empty database, in index order:
//	  index
//	  count of keys
//	  per key, in sorted key order:
//	    key (length-prefixed bytes)
//	    kind (one byte)
//	    expireAt (signed varint, Unix ms; 0: none)
//	    payload by kind:
//	      string: encoding byte (strEncoding), bytes
//	      list:   n, n elements
//	      hash:   hashtable flag byte (0/1), n, n field/value pairs in
//	              insertion order
//	      set:    intset flag byte (0/1), n, n members in slice order
//	      zset:   skiplist flag byte (0/1), n, n member/score pairs in
//	              rank order; score as 8 bytes of IEEE 754 bits, big endian
//	      stream: see streams_snapshot.go
//	config: count of parameters, then per parameter (configParams order)
//	  its name (length-prefixed) and value (signed varint)
//	waiters, only when some command is blocked:
//	  'V', count, per waiter in arrival order: id (bytes), db, arrival
//	  (signed varint, Unix ns), argc, args
//	scripting section, only when there are scripts or functions:
//	  marker byte 'L'
//	  count of cached scripts, then each script's body, in SHA order
//	  count of function libraries, then each one's code, in name order
//	ACL section, only when the users are not just the unchanged default:
//	  marker byte 'A', count of users, then per user in name order its
//	  name and its rules as ACL LIST prints them (acl.go), both
//	  length-prefixed. A snapshot without it (as every one written before
//	  ACLs) restores the default user alone.
//	REPLICAOF section, only while the store replicates a Redis master:
//	  marker byte 'R', host and port (length-prefixed), epoch, link flag
//	  (replicaof.go). A snapshot without it is a master's.
//	trailer: SHA-256 of everything before it
//
// Snapshots travel between replicas of one version (a state transfer,
// DEBUG RELOAD) and into an append-only file's base, which the build that
// wrote it reads back: a reader knows this version only and refuses
// another's encoding as corrupt (BGREWRITEAOF writes a base afresh).
//
// Hash field order and set slice order are part of the state (they decide
// HGETALL replies and SPOP picks), so they are kept exactly. Digest hashes
// the same encoding without the trailer.

const snapshotMagic = "GOMURDS3"

// errCorrupt wraps every Restore failure caused by the input's content.
var errCorrupt = errors.New("store: corrupt snapshot")

// encodeTo writes the canonical encoding of s (without magic or trailer).
func (s *Store) encodeTo(w *bufio.Writer) {
	var tmp [binary.MaxVarintLen64]byte
	uv := func(x uint64) { w.Write(binary.AppendUvarint(tmp[:0], x)) }
	used := 0
	for _, ks := range s.dbs {
		if len(ks.keys) > 0 {
			used++
		}
	}
	uv(uint64(used))
	for i, ks := range s.dbs {
		if len(ks.keys) > 0 {
			uv(uint64(i))
			ks.encodeTo(w)
		}
	}
	str := func(b string) { uv(uint64(len(b))); w.WriteString(b) }
	uv(uint64(len(configParams)))
	for _, p := range configParams {
		str(p.name)
		w.Write(binary.AppendVarint(tmp[:0], *p.field(&s.cfg)))
	}
	s.encodeWaiters(w)
	if !s.scripts.empty() {
		w.WriteByte(scriptSectionMarker)
		s.scripts.encodeTo(w)
	}
	if !s.acl.isDefault() {
		w.WriteByte(aclSectionMarker)
		s.acl.encodeTo(w)
	}
	if s.master != nil {
		w.WriteByte(masterSectionMarker)
		s.master.encodeTo(w)
	}
}

// encodeTo writes the canonical encoding of one database's keys.
func (s *keyspace) encodeTo(w *bufio.Writer) {
	var tmp [binary.MaxVarintLen64]byte
	uv := func(x uint64) { w.Write(binary.AppendUvarint(tmp[:0], x)) }
	str := func(b string) { uv(uint64(len(b))); w.WriteString(b) }
	keys := make([]string, 0, len(s.keys))
	for k := range s.keys {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	uv(uint64(len(keys)))
	for _, k := range keys {
		str(k)
		encodeValue(w, s.keys[k])
	}
}

// flagByte is a snapshot's encoding flag.
func flagByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// waitersTag opens the snapshot's waiters section. (Builds before waiters
// had arrivals wrote 'W': their snapshots are refused as unknown.)
const waitersTag = 'V'

// encodeWaiters writes the waiters section, if there are waiters.
func (s *Store) encodeWaiters(w *bufio.Writer) {
	if s.blk.n == 0 {
		return
	}
	var tmp [binary.MaxVarintLen64]byte
	uv := func(x uint64) { w.Write(binary.AppendUvarint(tmp[:0], x)) }
	bs := func(b []byte) { uv(uint64(len(b))); w.Write(b) }
	w.WriteByte(waitersTag)
	uv(uint64(s.blk.n))
	for wt := s.blk.first; wt != nil; wt = wt.next {
		bs([]byte(wt.id))
		uv(uint64(wt.db))
		w.Write(binary.AppendVarint(tmp[:0], wt.at))
		uv(uint64(len(wt.args)))
		for _, a := range wt.args {
			bs(a)
		}
	}
}

// decodeWaiters reads the waiters section into ns if one comes before the
// trailer (a snapshot ends with the 32-byte trailer).
func (d *snapReader) decodeWaiters(ns *Store) {
	if d.err != nil {
		return
	}
	if b, err := d.r.Peek(sha256.Size + 1); err != nil || b[0] != waitersTag {
		return // just the trailer, or not a section: the checksum decides
	}
	d.byte1()
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		id := string(d.bytes())
		db := d.uv()
		at := d.sv()
		argc := d.count()
		if d.err != nil || argc > 1<<20 {
			d.fail("waiter argument count %d", argc)
			return
		}
		args := make([][]byte, argc)
		for j := range args {
			args[j] = d.bytes()
		}
		if d.err != nil {
			return
		}
		c := Lookup(args[0])
		switch {
		case c == nil || c.blocking == nil || !c.CheckArity(argc) || c.blocking.validate(args) != "":
			d.fail("waiter runs %q", args[0])
		case ns.blk.byID[id] != nil:
			d.fail("waiter id %q twice", id)
		case db >= Databases:
			d.fail("waiter in database %d", db)
		default:
			ns.addWaiter(id, int(db), at, c, args)
		}
	}
}

// scriptSectionMarker opens the optional scripting section.
const scriptSectionMarker = 'L'

// encodeValue writes one key's value (kind, expiry, payload) in the
// snapshot's encoding.
func encodeValue(w *bufio.Writer, v *value) {
	var tmp [binary.MaxVarintLen64]byte
	uv := func(x uint64) { w.Write(binary.AppendUvarint(tmp[:0], x)) }
	bs := func(b []byte) { uv(uint64(len(b))); w.Write(b) }
	str := func(b string) { uv(uint64(len(b))); w.WriteString(b) }
	w.WriteByte(byte(v.kind))
	w.Write(binary.AppendVarint(tmp[:0], v.expireAt))
	switch v.kind {
	case kindString:
		w.WriteByte(byte(v.strEnc))
		bs(v.str)
	case kindList:
		es := v.list.elems()
		uv(uint64(len(es)))
		for _, x := range es {
			bs(x)
		}
	case kindHash:
		w.WriteByte(flagByte(v.hash.table))
		uv(uint64(v.hash.len()))
		v.hash.each(func(en *hashEntry) { str(en.field); bs(en.val) })
	case kindSet:
		w.WriteByte(flagByte(v.set.intset))
		uv(uint64(v.set.len()))
		for _, m := range v.set.members {
			str(m)
		}
	case kindZSet:
		w.WriteByte(flagByte(v.zset.skiplist))
		uv(uint64(v.zset.len()))
		v.zset.each(func(en zentry) {
			str(en.member)
			w.Write(binary.BigEndian.AppendUint64(tmp[:0], math.Float64bits(en.score)))
		})
	case kindStream:
		encodeStream(w, v.stream)
	}
}

// Snapshot writes the whole store to w.
func (s *Store) Snapshot(w io.Writer) error {
	h := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	bw.WriteString(snapshotMagic)
	s.encodeTo(bw)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	if _, err := w.Write(h.Sum(nil)); err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	return nil
}

// Digest is SHA-256 over the canonical encoding of the state, every
// database's (the snapshot's encoding, version 2): equal for
// stores in the same state whatever their map layouts. Expired keys not yet
// deleted are included, as they are state until a write removes them.
func (s *Store) Digest() [32]byte {
	h := sha256.New()
	bw := bufio.NewWriter(h)
	s.encodeTo(bw)
	bw.Flush()
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// snapReader decodes with bounds checks; the first error sticks.
type snapReader struct {
	r   *bufio.Reader
	err error
}

func (d *snapReader) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, a...))
	}
}

func (d *snapReader) uv() uint64 {
	if d.err != nil {
		return 0
	}
	x, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail("varint: %v", err)
	}
	return x
}

func (d *snapReader) byte1() byte {
	if d.err != nil {
		return 0
	}
	b, err := d.r.ReadByte()
	if err != nil {
		d.fail("byte: %v", err)
	}
	return b
}

// bytes reads a length-prefixed byte string, growing the buffer as data
// arrives so that a corrupt length cannot force a huge allocation.
func (d *snapReader) bytes() []byte {
	n := d.uv()
	if d.err != nil {
		return nil
	}
	if n > 1<<40 {
		d.fail("length %d", n)
		return nil
	}
	if n <= 64<<10 {
		// The common case, read in place: growing a buffer as data
		// arrives allocated and cleared 512 bytes a string, which made
		// restoring a million small keys take seconds.
		b := make([]byte, n)
		if _, err := io.ReadFull(d.r, b); err != nil {
			d.fail("string of %d bytes: %v", n, err)
			return nil
		}
		return b
	}
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, d.r, int64(n)); err != nil {
		d.fail("string of %d bytes: %v", n, err)
		return nil
	}
	return buf.Bytes()
}

// flag reads an encoding flag byte.
func (d *snapReader) flag(what string) bool {
	b := d.byte1()
	if b > 1 {
		d.fail("%s flag %d", what, b)
	}
	return b == 1
}

// config reads the config section: every parameter, by name, in
// configParams order.
func (d *snapReader) config() Config {
	c := DefaultConfig()
	if n := d.uv(); d.err == nil && n != uint64(len(configParams)) {
		d.fail("%d config parameters", n)
	}
	for _, p := range configParams {
		if d.err != nil {
			break
		}
		if name := string(d.bytes()); d.err == nil && name != p.name {
			d.fail("config parameter %q, want %q", name, p.name)
			break
		}
		x, err := binary.ReadVarint(d.r)
		if err != nil {
			d.fail("config %s: %v", p.name, err)
			break
		}
		if x < p.min || x > p.max {
			d.fail("config %s out of range: %d", p.name, x)
			break
		}
		*p.field(&c) = x
	}
	return c
}

// count reads an element count; a collection is never empty.
func (d *snapReader) count() int {
	n := d.uv()
	if d.err == nil && (n == 0 || n > math.MaxInt32) {
		d.fail("element count %d", n)
	}
	return int(n)
}

// Restore replaces the store's content with a snapshot read from r (see
// above). On any error the store is left unchanged; errors from corrupt
// content wrap errCorrupt.
func (s *Store) Restore(r io.Reader) error {
	br := bufio.NewReader(r)
	d := &snapReader{r: br}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return fmt.Errorf("%w: bad magic", errCorrupt)
	}
	ns := New()
	n := d.uv()
	prev := -1
	for range min(n, Databases+1) {
		db := d.uv()
		if d.err != nil {
			break
		}
		if int(db) <= prev || db >= Databases {
			d.fail("database %d after %d", db, prev)
			break
		}
		prev = int(db)
		d.decodeKeys(ns.dbs[db])
	}
	ns.cfg = d.config()
	d.decodeWaiters(ns)
	// More than a trailer left: the scripting section, then the ACL
	// section, each optional, come next.
	if more, _ := br.Peek(sha256.Size + 1); d.err == nil && len(more) == sha256.Size+1 && more[0] == scriptSectionMarker {
		d.byte1()
		ns.scripts = decodeScripts(d)
		if d.err == nil && ns.scripts.empty() {
			d.fail("empty scripting section")
		}
	}
	if more, _ := br.Peek(sha256.Size + 1); d.err == nil && len(more) == sha256.Size+1 && more[0] == aclSectionMarker {
		d.byte1()
		ns.acl = decodeACL(d)
	}
	if more, _ := br.Peek(sha256.Size + 1); d.err == nil && len(more) == sha256.Size+1 {
		if d.byte1() != masterSectionMarker {
			d.fail("unknown section")
		}
		ns.master = decodeMaster(d)
	}
	if d.err != nil {
		return d.err
	}
	var trailer [32]byte
	if _, err := io.ReadFull(br, trailer[:]); err != nil {
		return fmt.Errorf("%w: missing checksum: %v", errCorrupt, err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: data after checksum", errCorrupt)
	}
	// The checksum covers the canonical encoding, so re-encoding what was
	// decoded checks both the bytes and that they were canonical.
	h := sha256.New()
	bw := bufio.NewWriter(h)
	bw.WriteString(snapshotMagic)
	ns.encodeTo(bw)
	bw.Flush()
	if !bytes.Equal(h.Sum(nil), trailer[:]) {
		return fmt.Errorf("%w: checksum mismatch", errCorrupt)
	}
	for i, ks := range ns.dbs {
		ks.rebuildExpiry()
		ks.cfg, ks.news = &s.cfg, &s.news
		s.dbs[i] = ks
	}
	s.keyspace = s.dbs[0]
	s.blk = ns.blk // the restored keyspaces' own
	s.scripts = ns.scripts
	s.cfg = ns.cfg
	ns.acl.adopt(s.acl)
	s.acl = ns.acl
	s.master = ns.master
	return nil
}

// decodeKeys reads one database's keys into ks, an empty one.
func (d *snapReader) decodeKeys(ks *keyspace) {
	br := d.r
	n := d.uv()
	// Sized up front (within reason: a corrupt count must not allocate
	// the world), so a large restore does not rehash the map a dozen
	// times.
	ks.keys = make(map[string]*value, min(n, 1<<22))
	var prev string
	for i := uint64(0); i < n && d.err == nil; i++ {
		key := string(d.bytes())
		if i > 0 && key <= prev {
			d.fail("keys out of order at %q", key)
		}
		prev = key
		v := &value{kind: kind(d.byte1())}
		if d.err != nil {
			break
		}
		at, err := binary.ReadVarint(br)
		if err != nil {
			d.fail("expiry: %v", err)
		}
		if at < 0 {
			d.fail("negative expiry %d", at)
		}
		v.expireAt = at
		switch v.kind {
		case kindString:
			if v.strEnc = strEncoding(d.byte1()); v.strEnc > strNoInt {
				d.fail("string encoding %d", v.strEnc)
			}
			v.str = d.bytes()
		case kindList:
			c := d.count()
			l := &listValue{}
			for j := 0; j < c && d.err == nil; j++ {
				l.pushBack(d.bytes())
			}
			v.list = l
		case kindHash:
			table := d.flag("hashtable")
			c := d.count()
			hv := newHash()
			hv.table = table
			for j := 0; j < c && d.err == nil; j++ {
				f, val := d.bytes(), d.bytes()
				if d.err == nil && !hv.set(f, val) {
					d.fail("duplicate hash field %q", f)
				}
			}
			v.hash = hv
		case kindSet:
			intset := d.flag("intset")
			c := d.count()
			st := &setValue{index: make(map[string]int), intset: intset}
			for j := 0; j < c && d.err == nil; j++ {
				m := d.bytes()
				if d.err != nil {
					break
				}
				if st.has(m) {
					d.fail("duplicate set member %q", m)
					break
				}
				if _, isInt := collInt(m); st.intset && !isInt {
					d.fail("intset holds %q", m)
					break
				}
				// Appended directly: add would recompute the encoding.
				st.index[string(m)] = len(st.members)
				st.members = append(st.members, string(m))
			}
			v.set = st
		case kindZSet:
			skiplist := d.flag("skiplist")
			c := d.count()
			z := newZSet()
			z.skiplist = skiplist
			var last zentry
			var ents []zentry
			for j := 0; j < c && d.err == nil; j++ {
				m := string(d.bytes())
				var b [8]byte
				if _, err := io.ReadFull(br, b[:]); err != nil && d.err == nil {
					d.fail("score: %v", err)
				}
				if d.err != nil {
					break
				}
				sc := math.Float64frombits(binary.BigEndian.Uint64(b[:]))
				if math.IsNaN(sc) {
					d.fail("NaN score")
					break
				}
				if _, dup := z.scoreOf(m); dup {
					d.fail("duplicate zset member %q", m)
					break
				}
				if j > 0 && !zless(last, sc, m) {
					d.fail("zset out of order at %q", m)
					break
				}
				last = zentry{member: m, score: sc}
				z.dict.set(m, sc)
				ents = append(ents, last)
			}
			z.tree = buildZTree(&z.dict, len(ents))
			v.zset = z
		case kindStream:
			v.stream = decodeStream(d)
		default:
			d.fail("unknown kind %d", v.kind)
		}
		if d.err == nil {
			ks.put([]byte(key), v)
		}
	}
}
