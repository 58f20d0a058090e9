package verbsrpc

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/registry"
	"github.com/gomu-rdma/gomu/verbs"
)

// Defaults and limits of Config.
const (
	DefaultSlots         = 16
	DefaultMaxMsg        = 1024
	DefaultClientTimeout = 3 * time.Second
	MaxSlots             = 4096
	MaxMsgLimit          = 16 << 20
	// HeartbeatInterval is how often an idle client tells its server it
	// is still there.
	HeartbeatInterval = 100 * time.Millisecond
)

// Config configures a Server (Listen) or a client Conn (Dial).
type Config struct {
	// Device is the verbs device, opened by the caller (shm, tcp, ibv, or
	// a faulty wrapper of one), who closes it after the Server or Conn.
	Device verbs.Device
	// Registry is where the server publishes itself and where clients
	// find it. A server needs a participant (ID ≥ 1); a client may be an
	// observer.
	Registry *registry.Registry
	// Name is the service name: the server publishes "rpc/<Name>" and
	// reads its handshakes from the inbox of the same name.
	Name string
	// Slots is the ring depth K: how many requests a client may have
	// outstanding (default 16). A server accepts clients of up to its own
	// Slots.
	Slots int
	// MaxMsg is the largest request or response payload in bytes (default
	// 1024). A server accepts clients of up to its own MaxMsg.
	MaxMsg int
	// Poll is how waits poll: the client's Call and the server's poll
	// goroutine (spin, yield or sleep).
	Poll poll.Mode
	// ClientTimeout is how long a server keeps a connection whose client
	// has shown no sign of life (requests or heartbeats) before dropping
	// it (default 3 s). Clients send a heartbeat every HeartbeatInterval.
	ClientTimeout time.Duration
	// Logger receives connection events (accepted, dropped and why).
	// nil is silent.
	Logger *slog.Logger
}

func (cfg Config) withDefaults(server bool) (Config, error) {
	switch {
	case cfg.Device == nil:
		return cfg, errors.New("verbsrpc: Config.Device is nil")
	case cfg.Registry == nil:
		return cfg, errors.New("verbsrpc: Config.Registry is nil")
	case cfg.Name == "":
		return cfg, errors.New("verbsrpc: Config.Name is empty")
	case server && cfg.Registry.Self().ID == 0:
		return cfg, fmt.Errorf("verbsrpc: listen %q: the registry is an observer (ID 0); a server must be a participant", cfg.Name)
	}
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.MaxMsg == 0 {
		cfg.MaxMsg = DefaultMaxMsg
	}
	if cfg.Slots < 1 || cfg.Slots > MaxSlots {
		return cfg, fmt.Errorf("verbsrpc: Slots %d out of range 1..%d", cfg.Slots, MaxSlots)
	}
	if cfg.MaxMsg < 0 || cfg.MaxMsg > MaxMsgLimit {
		return cfg, fmt.Errorf("verbsrpc: MaxMsg %d out of range 0..%d", cfg.MaxMsg, MaxMsgLimit)
	}
	if cfg.ClientTimeout <= 0 {
		cfg.ClientTimeout = DefaultClientTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func (cfg Config) service() string { return "rpc/" + cfg.Name }

// Errors. Those returned are wrapped with what happened and to whom; test
// with errors.Is.
var (
	// ErrPeerDead: the other side is gone or unreachable (an error
	// completion: retry exceeded, flush, remote access), or dropped the
	// connection. The Conn is unusable; dial again.
	ErrPeerDead = errors.New("verbsrpc: peer dead or unreachable")
	// ErrTimeout: no answer by the Call's deadline. Errors that wrap it
	// also wrap context.DeadlineExceeded.
	ErrTimeout = errors.New("verbsrpc: no answer by the deadline")
	// ErrBackPressure: Slots requests were outstanding (sent, not yet
	// answered, timed-out ones included) for the whole wait, so the call
	// could not even be sent. Errors that wrap it also wrap ErrTimeout
	// and context.DeadlineExceeded.
	ErrBackPressure = errors.New("verbsrpc: every ring slot holds an unanswered request")
	// ErrTooLarge: a request or response longer than MaxMsg, or a
	// response longer than the caller's buffer.
	ErrTooLarge = errors.New("verbsrpc: message too large")
	// ErrClosed: the Conn, Server or connection was closed.
	ErrClosed = errors.New("verbsrpc: closed")
	// ErrRefused: the server refused the handshake (its text says why).
	ErrRefused = errors.New("verbsrpc: server refused the connection")
)
