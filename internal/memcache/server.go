package memcache

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"time"
)

// Config configures a Server. Zero fields take the defaults.
type Config struct {
	// Limits bound each command (see Limits).
	Limits Limits
	// MaxBytes bounds the memory of stored items (default DefaultMaxBytes).
	MaxBytes int64
	// MaxConns bounds open connections (default 1024). One more is answered
	// "ERROR Too many open connections" and closed, like memcached. With
	// Limits, this bounds the server's buffer memory: each connection holds
	// at most two 16 KiB buffers, one command line and one value.
	MaxConns int
	// IdleTimeout closes a connection that sends nothing between commands
	// for this long (default 10 minutes).
	IdleTimeout time.Duration
	// CommandTimeout is the time a client has, once a command has started
	// to arrive, to send the rest of it and to take the reply (default 30 s).
	// A slow or stalled client is disconnected after it.
	CommandTimeout time.Duration
	// Version is the text of the VERSION reply (default "1.6.0-gomu").
	Version string
	// Now is the clock used for expiration (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	c.Limits = c.Limits.withDefaults()
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 1024
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 30 * time.Second
	}
	if c.Version == "" {
		c.Version = "1.6.0-gomu"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

const connBufSize = 16 << 10

var tooManyConns = []byte("ERROR Too many open connections\r\n")

// Server is an embedded memcached-protocol server over a Store. It speaks
// the text protocol commands the parser knows; see the package doc.
type Server struct {
	cfg   Config
	store *Store
	start time.Time

	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewServer returns a server with an empty store. Call Serve to run it.
func NewServer(cfg Config) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg:   cfg,
		store: NewStore(cfg.MaxBytes, false),
		start: time.Now(),
		lns:   make(map[net.Listener]struct{}),
		conns: make(map[net.Conn]struct{}),
	}
}

// ListenAndServe listens on the TCP address addr ("127.0.0.1:0" picks a
// free port) and serves it in the background. Unlike net/http's function of
// the same name it returns at once; Addr tells where it listens and Close
// stops it.
func ListenAndServe(addr string, cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("memcache: listen on %s: %w", addr, err)
	}
	s := NewServer(cfg)
	s.mu.Lock()
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.serve(ln)
	}()
	return s, nil
}

// Store returns the server's item store.
func (s *Server) Store() *Store { return s.store }

// Addr returns the address of a listener ListenAndServe or Serve is serving,
// or "" if there is none.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.lns {
		return ln.Addr().String()
	}
	return ""
}

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("memcache: server closed")

// Serve accepts connections on ln and serves each in its own goroutine
// until Close, then returns ErrServerClosed. ln is closed when Serve returns.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	return s.serve(ln)
}

func (s *Server) serve(ln net.Listener) error {
	defer func() {
		ln.Close()
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if isTemporary(err) {
				// Out of file descriptors and the like: wait and retry, as
				// net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("memcache: accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		if len(s.conns) >= s.cfg.MaxConns {
			s.mu.Unlock()
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write(tooManyConns)
			nc.Close()
			continue
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(nc)
	}
}

// isTemporary reports whether an accept error is worth retrying, such as
// running out of file descriptors.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Close stops the listeners, closes every connection and waits for their
// goroutines. The store is kept.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	for nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) serveConn(nc net.Conn) {
	defer func() {
		nc.Close()
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		s.wg.Done()
	}()
	br := bufio.NewReaderSize(nc, connBufSize)
	var p CommandParser // chosen by the first byte, as memcached does
	var cmd Command
	var out []byte
	flush := func() bool {
		if len(out) == 0 {
			return true
		}
		_, err := nc.Write(out)
		if cap(out) > 4*connBufSize {
			out = nil // do not keep a huge reply's buffer
		} else {
			out = out[:0]
		}
		return err == nil
	}
	for {
		if br.Buffered() == 0 {
			// Nothing pipelined: answer what we have, then wait for the
			// next command under the idle deadline.
			if !flush() {
				return
			}
			if err := nc.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout)); err != nil {
				return
			}
			if _, err := br.Peek(1); err != nil {
				return
			}
		}
		if p == nil {
			proto, err := DetectProto(br)
			if err != nil {
				return
			}
			p = NewProtoParser(proto, br, s.cfg.Limits)
		}
		// Deadlines follow the real clock; cfg.Now only drives expiration.
		if err := nc.SetDeadline(time.Now().Add(s.cfg.CommandTimeout)); err != nil {
			return
		}
		err := p.Parse(&cmd)
		now := s.cfg.Now()
		if err != nil {
			pe, ok := err.(*ProtocolError)
			if !ok {
				return // EOF, timeout or network error
			}
			if pe == ErrTooLarge && (cmd.Op == OpSet || cmd.Op == OpMetaSet) {
				s.store.Delete(cmd.Key(), now.UnixNano())
			}
			out = AppendCommandError(out, &cmd, pe)
			if pe.Close {
				if flush() {
					lingerClose(nc)
				}
				return
			}
			continue
		}
		if cmd.Proto == ProtoBinary {
			var quit bool
			if out, quit = s.serveBinary(out, &cmd, now); quit {
				flush()
				return
			}
			if len(out) >= connBufSize && !flush() {
				return
			}
			continue
		}
		switch cmd.Op {
		case OpQuit:
			flush()
			return
		case OpVersion:
			out = AppendVersion(out, s.cfg.Version)
		case OpStats:
			out = s.appendStats(out, &cmd, now)
		default:
			out = s.store.Exec(out, &cmd, now.UnixNano())
		}
		if len(out) >= connBufSize && !flush() {
			return
		}
	}
}

// lingerClose half-closes nc and drains what the client is still sending for
// a moment, bounded in time and bytes, before the caller closes it. Closing
// with unread input makes TCP send a reset, and the client could lose the
// error reply that explains why.
func lingerClose(nc net.Conn) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if nc.SetReadDeadline(time.Now().Add(500*time.Millisecond)) != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, nc, 256<<10)
}

// appendStats answers stats: the general group only; others answer an
// empty list, as this server has no slabs to describe.
func (s *Server) appendStats(out []byte, cmd *Command, now time.Time) []byte {
	if len(cmd.Keys) > 0 {
		if !IsStatsGroup(string(cmd.Keys[0])) {
			return AppendError(out, ErrUnknownCommand) // as memcached answers
		}
		// No slabs or items to describe.
		return AppendStatus(out, StatusEnd)
	}
	return AppendGeneralStats(out, now, s.serverStats(), s.store.Stats())
}

// serverStats is what the server knows of itself for the general stats.
func (s *Server) serverStats() ServerStats {
	s.mu.Lock()
	curr := uint64(len(s.conns))
	s.mu.Unlock()
	return ServerStats{PID: os.Getpid(), Start: s.start, Version: s.cfg.Version,
		MaxConns: s.cfg.MaxConns, CurrConns: curr, Threads: runtime.GOMAXPROCS(0)}
}
