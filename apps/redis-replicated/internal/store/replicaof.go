package store

import (
	"bufio"
	"encoding/binary"
	"strconv"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// REPLICAOF as replicated state: the Redis master the whole cluster
// replicates (the server's replicaof.go runs the link, on the leader only).
// It changes through the log, as the internal
//
//	gomu.replicaof <host> <port>      become a replica of host:port
//	gomu.replicaof no one             become a master again; the data stays
//	gomu.replicaof link <epoch> up|down   the leader's link state
//	gomu.replicaof run <epoch> cmd…   a command the master sent, or its RDB
//
// Each REPLICAOF draws a new epoch from the proposal's seeded generator (the
// same on every replica); link and run carry the epoch of the link that
// proposed them and do nothing under another, so nothing a link proposed
// lands after REPLICAOF NO ONE or a later REPLICAOF, whatever the timing.

// ReplicaOfCommand is the internal command above. Clients cannot send it.
const ReplicaOfCommand = "gomu.replicaof"

// Master is the Redis master a store replicates. A Master is never changed
// once set: every change makes a new one, so that the server can publish
// the pointer to its connections through an atomic.
type Master struct {
	Host, Port string
	// Epoch names this REPLICAOF (see above).
	Epoch uint64
	// LinkUp is the leader's link state, as it last proposed it.
	LinkUp bool
}

// Master is the master this store replicates, nil when it is a master.
func (s *Store) Master() *Master { return s.master }

func cmdReplicaOf(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	switch {
	case len(args) == 3 && eqFoldString(args[1], "no") && eqFoldString(args[2], "one"):
		s.master = nil
		return resp.AppendOK(dst)
	case len(args) == 4 && string(args[1]) == "link":
		if m := s.masterOf(args[2]); m != nil {
			next := *m
			next.LinkUp = string(args[3]) == "up"
			s.master = &next
		}
		return resp.AppendOK(dst)
	case len(args) >= 4 && string(args[1]) == "run":
		if s.masterOf(args[2]) == nil {
			return resp.AppendError(dst, "ERR gomu: stale replication link")
		}
		if c := Lookup(args[3]); c != nil && c.Flags&Internal != 0 {
			return AppendUnknownCommand(dst, args[3:])
		}
		return s.Exec(dst, e, args[3:])
	case len(args) == 3:
		if m := s.master; m != nil && m.Host == string(args[1]) && m.Port == string(args[2]) {
			return resp.AppendSimple(dst, "OK Already connected to specified master")
		}
		s.master = &Master{Host: string(args[1]), Port: string(args[2]), Epoch: e.Rand.Uint64()}
		return resp.AppendOK(dst)
	}
	return resp.AppendError(dst, "ERR syntax error")
}

// masterOf is the master if it has epoch (decimal), else nil.
func (s *Store) masterOf(epoch []byte) *Master {
	if m := s.master; m != nil && string(epoch) == strconv.FormatUint(m.Epoch, 10) {
		return m
	}
	return nil
}

// EpochString is m's epoch as the link and run subcommands carry it.
func (m *Master) EpochString() string { return strconv.FormatUint(m.Epoch, 10) }

func init() {
	register(&Command{Name: ReplicaOfCommand, Arity: -3, Flags: Write | Internal, Group: "server",
		Summary: "Replicated REPLICAOF state and the commands its link proposes", run: cmdReplicaOf})
}

// masterSectionMarker opens the snapshot's optional REPLICAOF section,
// written only while the store replicates a master: host, port (both
// length-prefixed), epoch, link flag.
const masterSectionMarker = 'R'

func (m *Master) encodeTo(w *bufio.Writer) {
	var tmp [binary.MaxVarintLen64]byte
	str := func(b string) { w.Write(binary.AppendUvarint(tmp[:0], uint64(len(b)))); w.WriteString(b) }
	str(m.Host)
	str(m.Port)
	w.Write(binary.AppendUvarint(tmp[:0], m.Epoch))
	w.WriteByte(flagByte(m.LinkUp))
}

func decodeMaster(d *snapReader) *Master {
	m := &Master{Host: string(d.bytes()), Port: string(d.bytes())}
	m.Epoch = d.uv()
	m.LinkUp = d.flag("link")
	return m
}
