package consensus

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/gomu-rdma/gomu/internal/poll"
	"github.com/gomu-rdma/gomu/verbs"
)

// MaxReplicas bounds the cluster size; ids are 1..MaxReplicas. The control
// MR has one slot per possible peer, so the bound is part of its layout.
const MaxReplicas = 15

// Profile is a named set of failure-detection and polling settings.
type Profile string

const (
	// ProfileFast aims at sub-millisecond fail-over: microsecond heartbeats
	// and spinning loops. It needs a core per replica.
	ProfileFast Profile = "fast"
	// ProfileRelaxed suits shared, loaded machines (2 cores running a whole
	// cluster, the race detector): millisecond heartbeats and sleeping
	// loops. It is the default.
	ProfileRelaxed Profile = "relaxed"
)

// Config configures a replica. Zero values mean the documented defaults,
// which come from Profile.
type Config struct {
	// ID is this replica's id, one of IDs.
	ID int
	// IDs lists every replica of the cluster, 1..MaxReplicas each.
	IDs []int
	// Registry is the memcached address of the registry (host:port).
	Registry string
	// Cluster namespaces the registry keys (default "gomu").
	Cluster string
	// Transport is the verbs provider: "shm" (default), "tcp" or "ibv".
	Transport string
	// Device is the provider's device name: the shm fabric, the tcp soft
	// NIC's listen address, the ibv device.
	Device string
	// Verbs tunes the device (retry and fence timeouts, shm directory, …).
	Verbs verbs.Options
	// WrapDevice, if set, wraps the device Start opens before anything is
	// made from it: fault experiments and tests hand in verbs/faulty's
	// Wrap here. If the wrapped device has a Label(verbs.QP, string)
	// method, every queue pair is labelled "rep->N" or "bg->N" (its plane
	// and peer), so that faults can aim at one link.
	WrapDevice func(verbs.Device) verbs.Device

	// RingSize is the log ring's size in bytes, a multiple of 64
	// (default 1 MiB).
	RingSize int
	// MaxBatch bounds the payload of one log entry, that is of a group of
	// commands committed together (default 64 KiB, at most a quarter of
	// the ring).
	MaxBatch int
	// MaxCommand bounds one command in bytes (default 1 GiB). A command
	// longer than what fits in one entry is appended in chunks of up to
	// MaxBatch bytes and applied whole once its last chunk commits; each
	// replica holds a copy of it while it is reassembled.
	MaxCommand int
	// Outstanding is how many entries the leader may have in flight,
	// written but not yet committed (default 8).
	Outstanding int
	// MaxWaiters bounds concurrent Propose calls (default 1024).
	MaxWaiters int

	// Profile picks the defaults below (default ProfileRelaxed).
	Profile Profile
	// Poll is how the replica's loops wait.
	Poll poll.Mode
	// HeartbeatPeriod is how often a replica bumps its heartbeat and reads
	// its peers'.
	HeartbeatPeriod time.Duration
	// SuspectTimeout is how long a peer's heartbeat may stand still before
	// it is suspected.
	SuspectTimeout time.Duration
	// DetectorPriority is the SCHED_FIFO priority (1..99) of the background
	// plane's thread, the one that bumps the heartbeat, reads the peers',
	// judges elections and serves permission requests; negative runs it as
	// an ordinary goroutine. Zero means the profile's: 1 for ProfileFast
	// (above every ordinary thread), none for ProfileRelaxed.
	//
	// Why: µs suspect timeouts only hold if heartbeats are bumped and read
	// on time, and on a machine with fewer cores than polling threads an
	// ordinary thread waits out other threads' time slices (ms). A
	// real-time thread preempts them as soon as its sleep ends. It never
	// spins: between iterations it sleeps in the kernel until the next
	// heartbeat, so it takes a few µs of CPU per HeartbeatPeriod. Setting
	// it needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance; without them
	// the replica logs a warning and the thread runs at ordinary priority,
	// still sleeping between heartbeats.
	DetectorPriority int
	// GrantTimeout bounds how long a candidate waits for grants from a
	// majority before it gives up and tries again later.
	GrantTimeout time.Duration
	// StartTimeout bounds Start's registry exchange (default 30 s).
	StartTimeout time.Duration

	// EagerCommit makes the leader write the new commit index into its
	// active followers' headers before it answers the proposers of the
	// entries it commits, instead of letting it ride on the next entry (or
	// the idle leader's header write). It costs one small WRITE per follower
	// per commit step; in return a follower's ReadBarrier sees every command
	// a client was told is committed, so a value written through the leader
	// is readable on any active follower right after the reply.
	EagerCommit bool
	// Meta is opaque application data published to every peer at Start
	// (a server's client address, say); Replica.Meta returns a peer's.
	Meta []byte

	// Fifo is the pause fifo's path (default /tmp/fifo-<id>); "-" disables
	// it.
	Fifo string
	// Logger receives role changes and permission switches (default: a
	// logger that discards everything).
	Logger *slog.Logger

	// pollSet records that Poll was given explicitly (its zero value,
	// Spin, is meaningful).
	pollSet bool
}

// WithPoll returns c with Poll set explicitly, overriding the profile.
func (c Config) WithPoll(m poll.Mode) Config {
	c.Poll, c.pollSet = m, true
	return c
}

// profileDefaults are the settings a profile implies.
type profileDefaults struct {
	poll                      poll.Mode
	heartbeat, suspect, grant time.Duration
	detectorPriority          int
}

var profiles = map[Profile]profileDefaults{
	ProfileFast:    {poll.Spin, 50 * time.Microsecond, 250 * time.Microsecond, 20 * time.Millisecond, 1},
	ProfileRelaxed: {poll.Sleep, 2 * time.Millisecond, 100 * time.Millisecond, 2 * time.Second, -1},
}

// withDefaults validates c and fills in every zero field.
func (c Config) withDefaults() (Config, error) {
	if c.Profile == "" {
		c.Profile = ProfileRelaxed
	}
	p, ok := profiles[c.Profile]
	if !ok {
		return c, fmt.Errorf("consensus: unknown profile %q (want %q or %q)", c.Profile, ProfileFast, ProfileRelaxed)
	}
	if !c.pollSet {
		c.Poll = p.poll
	}
	if c.HeartbeatPeriod <= 0 {
		c.HeartbeatPeriod = p.heartbeat
	}

	if c.SuspectTimeout <= 0 {
		c.SuspectTimeout = p.suspect
	}
	if c.SuspectTimeout < 2*c.HeartbeatPeriod {
		return c, fmt.Errorf("consensus: suspect timeout %v must be at least two heartbeat periods (%v)", c.SuspectTimeout, c.HeartbeatPeriod)
	}
	if c.DetectorPriority == 0 {
		c.DetectorPriority = p.detectorPriority
	}
	if c.DetectorPriority > 99 {
		return c, fmt.Errorf("consensus: detector priority %d out of range 1..99", c.DetectorPriority)
	}
	if c.GrantTimeout <= 0 {
		c.GrantTimeout = p.grant
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 30 * time.Second
	}
	if c.Cluster == "" {
		c.Cluster = "gomu"
	}
	if c.Transport == "" {
		c.Transport = "shm"
	}
	if c.RingSize == 0 {
		c.RingSize = 1 << 20
	}
	if c.RingSize < 4096 || c.RingSize%64 != 0 {
		return c, fmt.Errorf("consensus: ring size %d must be a multiple of 64, at least 4096", c.RingSize)
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 64 << 10
	}
	if c.MaxBatch > c.RingSize/4 {
		c.MaxBatch = c.RingSize / 4
	}
	if c.MaxCommand <= 0 {
		c.MaxCommand = 1 << 30
	}
	if c.Outstanding <= 0 {
		c.Outstanding = 8
	}
	if c.MaxWaiters <= 0 {
		c.MaxWaiters = 1024
	}
	if c.Fifo == "" {
		c.Fifo = fmt.Sprintf("/tmp/fifo-%d", c.ID)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if len(c.IDs) == 0 {
		return c, fmt.Errorf("consensus: no replica ids")
	}
	if len(c.IDs) > MaxReplicas {
		return c, fmt.Errorf("consensus: %d replicas, at most %d", len(c.IDs), MaxReplicas)
	}
	seen := map[int]bool{}
	self := false
	for _, id := range c.IDs {
		if id < 1 || id > MaxReplicas {
			return c, fmt.Errorf("consensus: replica id %d out of range 1..%d", id, MaxReplicas)
		}
		if seen[id] {
			return c, fmt.Errorf("consensus: replica id %d listed twice", id)
		}
		seen[id] = true
		self = self || id == c.ID
	}
	if !self {
		return c, fmt.Errorf("consensus: own id %d is not in ids %v", c.ID, c.IDs)
	}
	if c.Registry == "" {
		return c, fmt.Errorf("consensus: no registry address")
	}
	return c, nil
}
