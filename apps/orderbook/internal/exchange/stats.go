package exchange

import (
	"bufio"
	"encoding/hex"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"
)

// The stats port answers, over TCP, what the replica is and holds, in
// memcached's text form, as memcached-replicated answers it: "stats gomu"
// (role, leader, indexes) and "stats gomu digest" (the same and
// gomu_digest). Traders never use it (they speak verbsrpc); it is there
// for whoever watches the cluster from outside, fault tests above all,
// with nothing but a TCP connection from wherever they run.

// statsIdle drops a stats connection that asked nothing for this long.
const statsIdle = time.Minute

// statsWrite bounds writing one answer to a client that does not read.
const statsWrite = 5 * time.Second

// serveStats accepts stats connections on ln until Close closes it.
func (s *Server) serveStats(ln net.Listener) {
	defer close(s.statsDone)
	for {
		nc, err := ln.Accept()
		if err != nil {
			return // closed by Close
		}
		s.statsMu.Lock()
		if s.statsConns == nil {
			s.statsMu.Unlock()
			nc.Close()
			return
		}
		s.statsConns[nc] = struct{}{}
		s.statsWG.Add(1)
		s.statsMu.Unlock()
		go s.statsConn(nc)
	}
}

// closeStats stops the stats port: no new connection, the open ones
// closed, their handlers ended.
func (s *Server) closeStats() error {
	if s.cfg.Stats == nil {
		return nil
	}
	err := s.cfg.Stats.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	<-s.statsDone
	s.statsMu.Lock()
	for nc := range s.statsConns {
		nc.Close()
	}
	s.statsConns = nil
	s.statsMu.Unlock()
	s.statsWG.Wait()
	return err
}

// statsConn answers one connection's commands, one a line.
func (s *Server) statsConn(nc net.Conn) {
	defer s.statsWG.Done()
	defer func() {
		s.statsMu.Lock()
		if s.statsConns != nil {
			delete(s.statsConns, nc)
		}
		s.statsMu.Unlock()
		nc.Close()
	}()
	br := bufio.NewReaderSize(nc, 512)
	var out []byte
	for {
		_ = nc.SetReadDeadline(time.Now().Add(statsIdle))
		line, err := br.ReadSlice('\n')
		if err != nil {
			return // gone, idle, or a line longer than any command
		}
		// A paused replica answers nothing until it resumes, as on its
		// RPC: a hung process does not tell anyone it hangs.
		s.link.AwaitResumed(s.stop)
		out = out[:0]
		switch strings.Join(strings.Fields(string(line)), " ") {
		case "stats gomu":
			out = appendStatLines(out, s.statsPairs(false))
		case "stats gomu digest":
			out = appendStatLines(out, s.statsPairs(true))
		case "quit":
			return
		default:
			out = append(out, "ERROR\r\n"...)
		}
		_ = nc.SetWriteDeadline(time.Now().Add(statsWrite))
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// statsPairs are the stats answer's names and values. gomu_role is there
// only once the replica serves: a replica still joining its cluster
// (or a standalone exchange) has none, and a watcher that looks for the
// leader skips it.
func (s *Server) statsPairs(digest bool) []string {
	var p []string
	// serving is stored after SetReplica: reading it first orders the
	// read of the replica after that write.
	switch r := s.link.Replica; {
	case !s.serving.Load():
		p = []string{"gomu_mode", "starting"}
	case r == nil:
		p = []string{"gomu_mode", "standalone"}
	default:
		st := r.Stats()
		lid, _ := s.link.LeaderAddr()
		p = []string{
			"gomu_id", strconv.Itoa(st.ID),
			"gomu_role", strings.ToLower(st.Role.String()),
			"gomu_leader_id", strconv.Itoa(lid),
			"gomu_commit_index", strconv.FormatUint(st.Commit, 10),
			"gomu_applied_index", strconv.FormatUint(st.Applied, 10),
			"gomu_catching_up", boolStat(st.Behind),
			"gomu_state_transfers", strconv.FormatUint(st.Transfers, 10),
			"gomu_paused", boolStat(r.Paused()),
		}
	}
	props, orders := s.m.Applied()
	p = append(p, "gomu_applied_proposals", strconv.FormatUint(props, 10), "gomu_applied_orders", strconv.FormatUint(orders, 10))
	if digest {
		// Digest hashes the whole exchange under the machine's lock,
		// between two applies, holding off order entry meanwhile: only
		// on request, never in the plain "stats gomu".
		d := s.m.Digest()
		p = append(p, "gomu_digest", hex.EncodeToString(d[:]))
	}
	return p
}

func appendStatLines(out []byte, pairs []string) []byte {
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, "STAT "...)
		out = append(out, pairs[i]...)
		out = append(out, ' ')
		out = append(out, pairs[i+1]...)
		out = append(out, "\r\n"...)
	}
	return append(out, "END\r\n"...)
}

func boolStat(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
