package registry

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// EnvAddr is the environment variable that names the registry, as in Mu.
const EnvAddr = "DORY_REGISTRY_IP"

// DefaultPort is memcached's port, used when an address has none.
const DefaultPort = 11211

// MaxID is the largest replica id.
const MaxID = 1<<20 - 1

// MaxValueLen is the largest value Publish accepts, well inside memcached's
// 1 MiB item limit.
const MaxValueLen = 512 << 10

// Defaults of Config.
const (
	DefaultPollInterval = 2 * time.Millisecond
	DefaultOpTimeout    = time.Second
	DefaultWaitTimeout  = 30 * time.Second
	// DefaultDialTimeout is short because a registry that cannot be
	// reached at all is a configuration mistake far more often than a
	// memcached still starting: every tool should say so within seconds,
	// not after the 30 s it grants slow peers.
	DefaultDialTimeout      = 3 * time.Second
	DefaultProgressInterval = 2 * time.Second
	// Defaults of the inbox settings.
	DefaultInboxPollInterval = 10 * time.Millisecond
	DefaultInboxGrace        = 2 * time.Second
	DefaultInboxTTL          = 5 * time.Minute
)

// AddrFromEnv returns the registry address from DORY_REGISTRY_IP, with
// DefaultPort added when it names only a host, or "" when it is unset.
func AddrFromEnv() string {
	a := strings.TrimSpace(os.Getenv(EnvAddr))
	if a == "" {
		return ""
	}
	return withPort(a)
}

func withPort(a string) string {
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), strconv.Itoa(DefaultPort))
}

// Config configures a Registry.
type Config struct {
	// Addr is the memcached server, host:port (the port defaults to 11211).
	Addr string
	// Cluster namespaces every key: clusters with different names share a
	// memcached without seeing each other. 1 to 64 bytes of [A-Za-z0-9._-].
	Cluster string
	// ID is this replica's id, 1..MaxID, or 0 for an observer, which may
	// Lookup and Watch but not Publish or join barriers.
	ID int
	// Incarnation identifies this process among every process that has had
	// this id in this cluster. 0, the default, picks a random nonzero value;
	// set it only to a value never used before.
	Incarnation uint64
	// PollInterval is the period of waits (default 2 ms).
	PollInterval time.Duration
	// OpTimeout bounds one memcached round trip (default 1 s).
	OpTimeout time.Duration
	// WaitTimeout is the deadline of waits whose context has none
	// (default 30 s).
	WaitTimeout time.Duration
	// DialTimeout bounds how long Dial keeps trying to reach memcached at
	// all (connection refused, no route, no answer), within the context's
	// deadline: default 3 s; negative leaves Dial to the context alone.
	// It is separate from the deadlines of the waits for peers, which
	// start only once the registry has answered.
	DialTimeout time.Duration
	// Logger, when set, receives a progress report from every wait but
	// Watch that lasts longer than ProgressInterval, and again every
	// ProgressInterval: what it waits for and what is still missing (which
	// ids, which incarnations). nil is silent.
	Logger *slog.Logger
	// ProgressInterval is the period of those reports (default 2 s).
	ProgressInterval time.Duration
	// InboxPollInterval is how often Inbox.Next looks for a question
	// (default 10 ms): an inbox waits for questions all its life, so it
	// polls more gently than the waits above.
	InboxPollInterval time.Duration
	// InboxGrace is how long Inbox.Next waits for a question whose number
	// an asker has taken but not yet written before skipping it as
	// abandoned (default 2 s).
	InboxGrace time.Duration
	// InboxTTL is how long inbox keys live in memcached (default 5 min,
	// at least a second): questions and answers nobody reads expire.
	InboxTTL time.Duration
}

// Peer is one process of a replica: its id and incarnation.
type Peer struct {
	ID          int
	Incarnation uint64
}

// String formats p as "<id>@<incarnation in hex>".
func (p Peer) String() string { return fmt.Sprintf("%d@%016x", p.ID, p.Incarnation) }

// Announcement is what a replica's announce key says.
type Announcement struct {
	Peer
	// Time is when the process announced itself, or departed, by its clock.
	Time time.Time
	// Departed is set when the process closed its Registry cleanly.
	Departed bool
}

// Record is a published value.
type Record struct {
	// Peer is the publisher.
	Peer
	// Name is the name it was published under.
	Name string
	// Value is the published bytes.
	Value []byte
	// Time is when it was published, by the publisher's clock.
	Time time.Time
	// Key is the memcached key it was read from.
	Key string
	// Confirmed is set when the publisher's incarnation was confirmed live
	// by a barrier or watch (or given to LookupAt), not just announced.
	Confirmed bool
}

// Errors returned by Registry methods, wrapped with context.
var (
	ErrClosed     = errors.New("registry closed")
	ErrObserver   = errors.New("an observer (ID 0) cannot publish or join a barrier")
	ErrInvalidKey = errors.New("invalid registry key")
	// ErrUnreachable is wrapped by a *WaitError whose wait never got an
	// answer from memcached.
	ErrUnreachable = errors.New("registry unreachable")
)

// ConnError is a failure to talk to the memcached server. Waits retry
// after one until their deadline.
type ConnError struct {
	Addr string
	Err  error
}

func (e *ConnError) Error() string {
	return fmt.Sprintf("registry: memcached at %s: %v", e.Addr, e.Err)
}

func (e *ConnError) Unwrap() error { return e.Err }

// WaitError is returned when a wait ends before what it waited for
// happened: the context ended, or its deadline passed.
type WaitError struct {
	// Op is the operation: "dial", "publish", "lookup", "barrier", "watch".
	Op string
	// Addr is the registry's address.
	Addr string
	// What is what the operation waited for, in words.
	What string
	// Missing is what was still missing when it ended, in words.
	Missing string
	// MissingIDs lists, for a barrier, the ids that had not arrived or had
	// not acknowledged this participant.
	MissingIDs []int
	// Stale lists, for a barrier, the incarnations among MissingIDs whose
	// entries look left over by a process that is gone (or is past this
	// barrier): their entry did not change during the wait, and their
	// announcement is another incarnation's, departed, or older than the
	// wait. It is a diagnosis for messages, not part of the barrier rule.
	Stale []Peer
	// Unreachable is set when memcached never answered during the wait.
	Unreachable bool
	// Waited is how long the operation waited.
	Waited time.Duration
	// LastErr is the last error talking to memcached during the wait, if
	// the wait ended while retrying one.
	LastErr error
	// Err is the context's error.
	Err error
}

func (e *WaitError) Error() string {
	var b strings.Builder
	if e.Unreachable {
		fmt.Fprintf(&b, "registry %s unreachable: %s %s: no answer in %v", e.Addr, e.Op, e.What, e.Waited.Round(time.Millisecond))
	} else {
		fmt.Fprintf(&b, "registry %s: %s %s: gave up after %v", e.Addr, e.Op, e.What, e.Waited.Round(time.Millisecond))
	}
	if e.Missing != "" {
		fmt.Fprintf(&b, ": %s", e.Missing)
	}
	if e.LastErr != nil {
		fmt.Fprintf(&b, " (last error: %v)", e.LastErr)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the context's error, the last connection error, and
// ErrUnreachable when memcached never answered.
func (e *WaitError) Unwrap() []error {
	errs := []error{e.Err}
	if e.LastErr != nil {
		errs = append(errs, e.LastErr)
	}
	if e.Unreachable {
		errs = append(errs, ErrUnreachable)
	}
	return errs
}

// Registry is one participant's handle on the registry. It is safe for
// concurrent use.
type Registry struct {
	cfg  Config
	self Peer
	mc   *memcache.Client

	mu        sync.Mutex
	closed    bool
	confirmed map[int]uint64 // id → incarnation met at a barrier or watch
	ops       sync.WaitGroup // memcached calls in flight
}

// New is Dial with a context bounded by cfg.WaitTimeout.
func New(cfg Config) (*Registry, error) {
	return Dial(context.Background(), cfg)
}

// Dial connects to the registry, waiting until it answers, then announces
// this participant's incarnation, unless it is an observer. It gives up
// after cfg.DialTimeout or when ctx ends (by cfg.WaitTimeout when ctx has no
// deadline), whichever is first, with a *WaitError that wraps
// ErrUnreachable if memcached never answered.
func Dial(ctx context.Context, cfg Config) (*Registry, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var servers memcache.ServerList
	if err := servers.SetServers(cfg.Addr); err != nil {
		return nil, fmt.Errorf("registry: address %q: %w", cfg.Addr, err)
	}
	mc := memcache.NewFromSelector(&servers)
	mc.Timeout = cfg.OpTimeout
	mc.MaxIdleConns = 4
	r := &Registry{
		cfg:       cfg,
		self:      Peer{ID: cfg.ID, Incarnation: cfg.Incarnation},
		mc:        mc,
		confirmed: make(map[int]uint64),
	}
	ctx, cancel := r.waitContext(ctx)
	defer cancel()
	// The dial timeout is a child of the wait's context: the earlier of
	// the two ends the dial.
	if cfg.DialTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, cfg.DialTimeout)
		defer cancel()
	}
	var what string
	var value []byte
	if cfg.ID == 0 {
		what = fmt.Sprintf("to reach memcached for cluster %q (observer)", cfg.Cluster)
	} else {
		what = fmt.Sprintf("to announce %v in cluster %q", r.self, cfg.Cluster)
		value = encodeAnnounce(r.self, time.Now().UnixNano(), false)
	}
	err = r.poll(ctx, "dial", what, func() (bool, string, error) {
		if value == nil {
			return true, "", r.op(ctx, func(c *memcache.Client) error { return c.Ping() })
		}
		return true, "", r.set(ctx, r.announceKey(cfg.ID), value)
	})
	if err != nil {
		r.mc.Close()
		return nil, err
	}
	return r, nil
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Addr == "" {
		return cfg, fmt.Errorf("registry: no address (set Config.Addr or %s)", EnvAddr)
	}
	cfg.Addr = withPort(cfg.Addr)
	if err := validCluster(cfg.Cluster); err != nil {
		return cfg, err
	}
	if cfg.ID < 0 || cfg.ID > MaxID {
		return cfg, fmt.Errorf("registry: replica id %d out of range 0..%d", cfg.ID, MaxID)
	}
	for cfg.Incarnation == 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return cfg, fmt.Errorf("registry: choose an incarnation: %w", err)
		}
		cfg.Incarnation = binary.LittleEndian.Uint64(b[:])
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.InboxPollInterval <= 0 {
		cfg.InboxPollInterval = DefaultInboxPollInterval
	}
	if cfg.InboxGrace <= 0 {
		cfg.InboxGrace = DefaultInboxGrace
	}
	if cfg.InboxTTL <= 0 {
		cfg.InboxTTL = DefaultInboxTTL
	}
	cfg.InboxTTL = max(cfg.InboxTTL, time.Second)
	return cfg, nil
}

// Self returns this participant.
func (r *Registry) Self() Peer { return r.self }

// Addr returns the registry's address.
func (r *Registry) Addr() string { return r.cfg.Addr }

// Cluster returns the cluster name.
func (r *Registry) Cluster() string { return r.cfg.Cluster }

// Close marks this participant departed (if its announce key still holds
// this incarnation), waits for memcached calls in flight, which take at
// most OpTimeout, and closes the connections. Keys are left in place: peers
// may still be reading them, and they are small.
func (r *Registry) Close() error { return r.shutdown(true) }

// shutdown is Close; without depart it leaves the announce key live, as a
// crashed process would.
func (r *Registry) shutdown(depart bool) error {
	var err error
	if depart && r.self.ID != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*r.cfg.OpTimeout)
		err = r.depart(ctx)
		cancel()
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	r.ops.Wait()
	r.mc.Close()
	if err != nil {
		return fmt.Errorf("registry: close %v: mark departed: %w", r.self, err)
	}
	return nil
}

// depart replaces this incarnation's announce record with a departed one,
// unless a newer incarnation has announced since.
func (r *Registry) depart(ctx context.Context) error {
	key := r.announceKey(r.self.ID)
	it, err := r.getItem(ctx, key)
	if err != nil {
		if errors.Is(err, memcache.ErrCacheMiss) || errors.Is(err, ErrClosed) {
			return nil
		}
		return err
	}
	a, err := decodeAnnounce(key, r.self.ID, it.Value)
	if err != nil || a.inc != r.self.Incarnation || a.departed {
		return nil // not ours to mark
	}
	it.Value = encodeAnnounce(r.self, time.Now().UnixNano(), true)
	err = r.op(ctx, func(c *memcache.Client) error { return c.CompareAndSwap(it) })
	if errors.Is(err, memcache.ErrCASConflict) || errors.Is(err, memcache.ErrNotStored) {
		return nil // replaced meanwhile by a newer incarnation
	}
	return err
}

// waitContext applies WaitTimeout to a context without a deadline.
func (r *Registry) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, r.cfg.WaitTimeout)
}

// op runs one memcached call, returning when it completes or ctx ends,
// whichever is first; a call abandoned by ctx still ends within OpTimeout,
// and Close waits for it. Errors other than the memcache protocol outcomes
// (miss, not stored, CAS conflict) come back as *ConnError.
func (r *Registry) op(ctx context.Context, fn func(*memcache.Client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.ops.Add(1)
	r.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer r.ops.Done()
		done <- fn(r.mc)
	}()
	select {
	case err := <-done:
		switch {
		case err == nil, errors.Is(err, memcache.ErrCacheMiss), errors.Is(err, memcache.ErrNotStored),
			errors.Is(err, memcache.ErrCASConflict):
			return err
		case errors.Is(err, memcache.ErrMalformedKey):
			return fmt.Errorf("registry: %w: %v", ErrInvalidKey, err) // validated before, so a bug
		}
		return &ConnError{Addr: r.cfg.Addr, Err: err}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Registry) set(ctx context.Context, key string, value []byte) error {
	return r.op(ctx, func(c *memcache.Client) error {
		return c.Set(&memcache.Item{Key: key, Value: value})
	})
}

// getItem returns the item under key; memcache.ErrCacheMiss if none.
func (r *Registry) getItem(ctx context.Context, key string) (*memcache.Item, error) {
	var it *memcache.Item
	err := r.op(ctx, func(c *memcache.Client) error {
		var err error
		it, err = c.Get(key)
		return err
	})
	if err != nil {
		return nil, err
	}
	return it, nil
}

// getMulti returns the items found under keys.
func (r *Registry) getMulti(ctx context.Context, keys []string) (map[string]*memcache.Item, error) {
	var m map[string]*memcache.Item
	err := r.op(ctx, func(c *memcache.Client) error {
		var err error
		m, err = c.GetMulti(keys)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// maxConnBackoff caps the retry period while memcached cannot be reached.
const maxConnBackoff = 100 * time.Millisecond

// lack is what a wait still lacks after one try, in words and, for a
// barrier, as ids and stale incarnations.
type lack struct {
	missing string
	ids     []int
	stale   []Peer
}

// poll runs try every PollInterval until it reports done, fails with an
// error other than a *ConnError, or ctx ends (after connection errors it
// backs off, up to maxConnBackoff); then it returns a *WaitError
// built from op, what, the last "missing" description try gave, and the last
// connection error.
func (r *Registry) poll(ctx context.Context, op, what string, try func() (done bool, missing string, err error)) error {
	return r.wait(ctx, op, what, func() (bool, lack, error) {
		done, missing, err := try()
		return done, lack{missing: missing}, err
	})
}

// wait is poll with a barrier's richer account of what is missing. Every
// ProgressInterval past the first it reports progress to Config.Logger
// (Watch excepted: waiting indefinitely is its job).
func (r *Registry) wait(ctx context.Context, op, what string, try func() (done bool, l lack, err error)) error {
	start := time.Now()
	// A context that has already ended says nothing about memcached.
	endedEarly := ctx.Err() != nil
	var (
		lastErr    error
		last       lack
		reached    bool // memcached answered at least once
		timer      *time.Timer
		backoff    time.Duration // grows while memcached is unreachable
		nextReport = start.Add(r.cfg.ProgressInterval)
	)
	for {
		done, l, err := try()
		var ce *ConnError
		switch {
		case err == nil && done:
			if timer != nil {
				timer.Stop()
			}
			return nil
		case err == nil:
			last, lastErr, backoff, reached = l, nil, 0, true
		case errors.As(err, &ce):
			lastErr = err
			backoff = min(max(2*backoff, r.cfg.PollInterval), maxConnBackoff)
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
			// The deadline passed during a round trip: if none ever
			// answered, that is what the caller needs to hear.
			if !reached && lastErr == nil && !endedEarly {
				lastErr = &ConnError{Addr: r.cfg.Addr, Err: errors.New("no answer")}
			}
		default:
			return err
		}
		if now := time.Now(); r.cfg.Logger != nil && op != "watch" && !now.Before(nextReport) {
			nextReport = now.Add(r.cfg.ProgressInterval)
			r.report(op, what, now.Sub(start), last, lastErr)
		}
		delay := max(r.cfg.PollInterval, backoff)
		if timer == nil {
			timer = time.NewTimer(delay)
		} else {
			timer.Reset(delay)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return &WaitError{
				Op: op, Addr: r.cfg.Addr, What: what, Missing: last.missing, MissingIDs: last.ids, Stale: last.stale,
				Waited: time.Since(start), LastErr: lastErr, Err: ctx.Err(),
				Unreachable: !reached && lastErr != nil,
			}
		}
	}
}

// report logs that a wait is still going on, and what it lacks.
func (r *Registry) report(op, what string, waited time.Duration, l lack, lastErr error) {
	missing := l.missing
	if lastErr != nil {
		// While memcached does not answer, what was missing before may
		// be out of date; the connection is the news.
		missing = fmt.Sprintf("memcached not answering (%v)", lastErr)
	}
	if missing == "" {
		missing = "nothing yet"
	}
	waited = waited.Round(100 * time.Millisecond)
	attrs := []any{"registry", r.cfg.Addr, "op", op}
	if len(l.ids) > 0 {
		attrs = append(attrs, "missing_ids", l.ids)
	}
	if len(l.stale) > 0 {
		attrs = append(attrs, "stale", l.stale)
	}
	r.cfg.Logger.Info(fmt.Sprintf("registry: still waiting %s %s: %s (%v)", op, what, missing, waited), attrs...)
}

// confirm records incarnations met at a barrier or watch.
func (r *Registry) confirm(peers ...Peer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range peers {
		r.confirmed[p.ID] = p.Incarnation
	}
}

// Confirmed returns the incarnation of id met at a barrier or watch, if any.
func (r *Registry) Confirmed(id int) (Peer, bool) {
	if id == r.self.ID && id != 0 {
		return r.self, true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	inc, ok := r.confirmed[id]
	return Peer{ID: id, Incarnation: inc}, ok
}
