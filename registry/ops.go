package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Publish stores value under name for this incarnation, replacing what it
// published there before. Names such as "qp/1->2" or "ctl/1" are the
// caller's; the resulting key must be valid (see the package doc). It
// retries while memcached is unreachable, until ctx's deadline
// (WaitTimeout if none).
func (r *Registry) Publish(ctx context.Context, name string, value []byte) error {
	if r.self.ID == 0 {
		return fmt.Errorf("registry: publish %q: %w", name, ErrObserver)
	}
	key := r.publishKey(r.self, name)
	if err := validName(name, key); err != nil {
		return err
	}
	if len(value) > MaxValueLen {
		return fmt.Errorf("registry: publish %q: value of %d bytes, the limit is %d", name, len(value), MaxValueLen)
	}
	ctx, cancel := r.waitContext(ctx)
	defer cancel()
	rec := encodePublish(r.self, time.Now().UnixNano(), value)
	return r.poll(ctx, "publish", fmt.Sprintf("%q as %v", name, r.self), func() (bool, string, error) {
		return true, "", r.set(ctx, key, rec)
	})
}

// Lookup waits until replica id has published name and returns it. It reads
// the incarnation of id confirmed by a barrier or watch if there is one, and
// otherwise the announced incarnation, which before the peer has been met
// may be a dead process's (see the package doc; Record.Confirmed says which).
// It waits until ctx's deadline (WaitTimeout if none).
func (r *Registry) Lookup(ctx context.Context, id int, name string) (Record, error) {
	if id <= 0 || id > MaxID {
		return Record{}, fmt.Errorf("registry: lookup %q: replica id %d out of range 1..%d", name, id, MaxID)
	}
	if p, ok := r.Confirmed(id); ok {
		return r.LookupAt(ctx, p, name)
	}
	if err := validName(name, r.publishKey(Peer{ID: id, Incarnation: 1<<64 - 1}, name)); err != nil {
		return Record{}, err
	}
	ctx, cancel := r.waitContext(ctx)
	defer cancel()
	var rec Record
	begun := time.Now()
	what := fmt.Sprintf("of %q published by replica %d in cluster %q", name, id, r.cfg.Cluster)
	err := r.poll(ctx, "lookup", what, func() (bool, string, error) {
		a, found, err := r.announced(ctx, id)
		switch {
		case err != nil:
			return false, "", err
		case !found:
			return false, fmt.Sprintf("replica %d has not announced itself (no key %s)", id, r.announceKey(id)), nil
		case a.Departed:
			return false, fmt.Sprintf("replica %v departed %v ago and no newer incarnation has announced", a.Peer, since(a.Time)), nil
		}
		var ok bool
		rec, ok, err = r.readPublished(ctx, a.Peer, name)
		if err != nil || ok {
			return ok, "", err
		}
		hint := ""
		if a.Time.Before(begun) {
			// Nothing has met this incarnation (Lookup would read the
			// confirmed one), and it is older than the wait.
			hint = ", before this wait began; unconfirmed, it may be an earlier run's process"
		}
		return false, fmt.Sprintf("replica %v, announced %v ago%s, has not published it (no key %s)",
			a.Peer, since(a.Time), hint, r.publishKey(a.Peer, name)), nil
	})
	return rec, err
}

// LookupAt waits until peer, that exact incarnation, has published name
// and returns it. It waits until ctx's deadline (WaitTimeout if none).
func (r *Registry) LookupAt(ctx context.Context, peer Peer, name string) (Record, error) {
	if peer.ID <= 0 || peer.ID > MaxID || peer.Incarnation == 0 {
		return Record{}, fmt.Errorf("registry: lookup %q: invalid peer %v", name, peer)
	}
	key := r.publishKey(peer, name)
	if err := validName(name, key); err != nil {
		return Record{}, err
	}
	ctx, cancel := r.waitContext(ctx)
	defer cancel()
	var rec Record
	what := fmt.Sprintf("of %q published by %v in cluster %q", name, peer, r.cfg.Cluster)
	err := r.poll(ctx, "lookup", what, func() (bool, string, error) {
		var ok bool
		var err error
		rec, ok, err = r.readPublished(ctx, peer, name)
		if err != nil || ok {
			return ok, "", err
		}
		return false, "no key " + key, nil
	})
	rec.Confirmed = true
	return rec, err
}

// readPublished reads name as published by peer.
func (r *Registry) readPublished(ctx context.Context, peer Peer, name string) (Record, bool, error) {
	key := r.publishKey(peer, name)
	it, err := r.getItem(ctx, key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	t, value, err := decodePublish(key, peer, it.Value)
	if err != nil {
		return Record{}, false, err
	}
	confirmed := false
	if p, ok := r.Confirmed(peer.ID); ok && p == peer {
		confirmed = true
	}
	return Record{Peer: peer, Name: name, Value: value, Time: time.Unix(0, t), Key: key, Confirmed: confirmed}, true, nil
}

// announced reads the announce key of id once.
func (r *Registry) announced(ctx context.Context, id int) (Announcement, bool, error) {
	key := r.announceKey(id)
	it, err := r.getItem(ctx, key)
	if errors.Is(err, memcache.ErrCacheMiss) {
		return Announcement{}, false, nil
	}
	if err != nil {
		return Announcement{}, false, err
	}
	a, err := decodeAnnounce(key, id, it.Value)
	if err != nil {
		return Announcement{}, false, err
	}
	return Announcement{
		Peer:     Peer{ID: id, Incarnation: a.inc},
		Time:     time.Unix(0, a.unixNano),
		Departed: a.departed,
	}, true, nil
}

// Announced returns what replica id's announce key says now, without
// waiting; found is false if it has never announced. An announced
// incarnation is not proof of a live process (see the package doc).
func (r *Registry) Announced(ctx context.Context, id int) (a Announcement, found bool, err error) {
	if id <= 0 || id > MaxID {
		return Announcement{}, false, fmt.Errorf("registry: replica id %d out of range 1..%d", id, MaxID)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.OpTimeout)
	defer cancel()
	return r.announced(ctx, id)
}

// Watch waits until replica id's announcement differs from incarnation
// since being live: a new incarnation has announced, or since has
// departed. since 0 returns the first announcement found. Unlike the other
// waits, Watch runs until ctx ends, deadline or not.
//
// A new live incarnation that replaces a nonzero since is recorded as
// confirmed, so Lookup reads it from then on; a departed one is forgotten.
func (r *Registry) Watch(ctx context.Context, id int, since uint64) (Announcement, error) {
	if id <= 0 || id > MaxID {
		return Announcement{}, fmt.Errorf("registry: watch: replica id %d out of range 1..%d", id, MaxID)
	}
	var got Announcement
	what := fmt.Sprintf("for replica %d of cluster %q to change from incarnation %016x", id, r.cfg.Cluster, since)
	err := r.poll(ctx, "watch", what, func() (bool, string, error) {
		a, found, err := r.announced(ctx, id)
		if err != nil || !found {
			return false, "", err
		}
		if a.Incarnation == since && !a.Departed {
			return false, "", nil
		}
		got = a
		return true, "", nil
	})
	if err != nil {
		return Announcement{}, err
	}
	r.mu.Lock()
	switch {
	case got.Departed:
		if r.confirmed[id] == got.Incarnation {
			delete(r.confirmed, id)
		}
	case since != 0:
		r.confirmed[id] = got.Incarnation
	}
	r.mu.Unlock()
	return got, nil
}

// Barrier waits until every replica in ids has reached the barrier name in
// this run, and returns them, this participant included, sorted by id. ids
// must include this participant's own id. See the package doc for the rule
// that keeps an earlier run's entries from satisfying it. The participants
// are recorded as confirmed for Lookup. On timeout the *WaitError lists the
// ids still missing, and among them the incarnations that look stale. It
// waits until ctx's deadline (WaitTimeout if none).
//
// A replica restarted into a running cluster must not call Barrier with the
// names its peers have passed: they will never come back to acknowledge it,
// and it would wait out its deadline. See "Restarting into a running
// cluster" in the package doc.
func (r *Registry) Barrier(ctx context.Context, name string, ids []int) ([]Peer, error) {
	if r.self.ID == 0 {
		return nil, fmt.Errorf("registry: barrier %q: %w", name, ErrObserver)
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if !slices.Contains(ids, r.self.ID) {
		return nil, fmt.Errorf("registry: barrier %q: ids %v do not include this replica, %d", name, ids, r.self.ID)
	}
	if len(ids) > maxSeen {
		return nil, fmt.Errorf("registry: barrier %q: %d ids, the limit is %d", name, len(ids), maxSeen)
	}
	// One multi-get per round reads every entry and, for the diagnosis of
	// peers that do not acknowledge us, every other id's announcement.
	keys := make([]string, len(ids), 2*len(ids))
	for i, id := range ids {
		if id <= 0 || id > MaxID {
			return nil, fmt.Errorf("registry: barrier %q: replica id %d out of range 1..%d", name, id, MaxID)
		}
		keys[i] = r.barrierKey(name, id)
		if err := validName(name, keys[i]); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		if id != r.self.ID {
			keys = append(keys, r.announceKey(id))
		}
	}
	ctx, cancel := r.waitContext(ctx)
	defer cancel()
	ownKey := r.barrierKey(name, r.self.ID)
	var (
		peers   []Peer
		written []byte // our entry as last written
		begun   = time.Now()
		// first holds each peer's entry as first read in this wait;
		// fresh marks the peers whose entry was written during it, by a
		// process therefore alive at this barrier now.
		first = make(map[int]string, len(ids))
		fresh = make(map[int]bool, len(ids))
		round int
	)
	what := fmt.Sprintf("%q of cluster %q for ids %v as %v", name, r.cfg.Cluster, ids, r.self)
	err := r.wait(ctx, "barrier", what, func() (bool, lack, error) {
		round++
		items, err := r.getMulti(ctx, keys)
		if err != nil {
			return false, lack{}, err
		}
		var (
			seen []Peer
			l    lack
			why  []string
		)
		for i, id := range ids {
			it, ok := items[keys[i]]
			if !ok {
				if id != r.self.ID {
					if _, had := first[id]; had {
						fresh[id] = true // flushed or evicted: what comes back is new
					}
					a, found, err := r.announcedIn(items, id)
					if err != nil {
						return false, lack{}, err
					}
					l.ids = append(l.ids, id)
					why = append(why, fmt.Sprintf("%d has not arrived%s", id, r.lastAnnounced(a, found, begun)))
				}
				continue
			}
			e, err := decodeBarrier(keys[i], id, it.Value)
			if err != nil {
				return false, lack{}, err
			}
			if id == r.self.ID {
				if e.inc != r.self.Incarnation && written != nil {
					return false, lack{}, fmt.Errorf("registry: barrier %q: our entry %s was overwritten by incarnation %016x: two processes with replica id %d in cluster %q?",
						name, ownKey, e.inc, id, r.cfg.Cluster)
				}
				continue
			}
			if v, had := first[id]; !had {
				first[id] = string(it.Value)
				fresh[id] = fresh[id] || round > 1
			} else if v != string(it.Value) {
				fresh[id] = true
			}
			p := Peer{ID: id, Incarnation: e.inc}
			seen = append(seen, p)
			if e.acknowledges(r.self) {
				continue
			}
			a, found, err := r.announcedIn(items, id)
			if err != nil {
				return false, lack{}, err
			}
			l.ids = append(l.ids, id)
			w, stale := r.unacknowledged(p, e, fresh[id], a, found, begun)
			why = append(why, w)
			if stale {
				l.stale = append(l.stale, p)
			}
		}
		// Write our entry if it is missing (first round, or flushed or
		// evicted since) or its seen list has changed.
		mine := encodeBarrier(r.self, seen)
		own, ok := items[ownKey]
		if !ok || string(own.Value) != string(mine) {
			if err := r.set(ctx, ownKey, mine); err != nil {
				return false, lack{}, err
			}
			written = mine
		}
		if len(l.ids) > 0 {
			l.missing = strings.Join(why, "; ")
			return false, l, nil
		}
		peers = append(seen, r.self)
		return true, lack{}, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(peers, func(a, b Peer) int { return a.ID - b.ID })
	r.confirm(peers...)
	return peers, nil
}

// announcedIn decodes id's announcement from a barrier round's items.
func (r *Registry) announcedIn(items map[string]*memcache.Item, id int) (Announcement, bool, error) {
	key := r.announceKey(id)
	it, ok := items[key]
	if !ok {
		return Announcement{}, false, nil
	}
	a, err := decodeAnnounce(key, id, it.Value)
	if err != nil {
		return Announcement{}, false, err
	}
	return Announcement{Peer: Peer{ID: id, Incarnation: a.inc}, Time: time.Unix(0, a.unixNano), Departed: a.departed}, true, nil
}

// lastAnnounced qualifies "<id> has not arrived" with what id's announce
// key says, when that helps: nothing, or a process older than the wait.
func (r *Registry) lastAnnounced(a Announcement, found bool, begun time.Time) string {
	switch {
	case !found:
		return " (never announced)"
	case a.Departed:
		return fmt.Sprintf(" (its last incarnation, %v, departed %v ago)", a.Peer, since(a.Time))
	case a.Time.Before(begun):
		return fmt.Sprintf(" (last announced %v %v ago, before this wait began)", a.Peer, since(a.Time))
	}
	return fmt.Sprintf(" (%v announced %v ago)", a.Peer, since(a.Time))
}

// unacknowledged says why p, whose entry e does not acknowledge us, is
// missing, and whether its entry looks stale.
//
// A live participant of this barrier rewrites its entry within a poll
// interval of reading ours, so an entry that never changed during the wait
// was left by a process that is gone, or that passed this barrier before we
// arrived; the announce key then tells which incarnation is current, and
// its time (by the announcer's clock, so only a hint) how old it is. An
// entry written during the wait is a live peer's, slow or stuck, and is
// reported as such.
func (r *Registry) unacknowledged(p Peer, e barrierRec, fresh bool, a Announcement, found bool, begun time.Time) (string, bool) {
	if fresh || (found && a.Incarnation == p.Incarnation && !a.Departed && !a.Time.Before(begun)) {
		return fmt.Sprintf("%v has not acknowledged us", p), false
	}
	var s string
	switch {
	case !found:
		s = fmt.Sprintf("%d: only a stale incarnation %v (never announced; its entry predates this wait)", p.ID, p)
	case a.Incarnation != p.Incarnation && a.Departed:
		s = fmt.Sprintf("%d: only a stale incarnation %v; the last one, %v, departed %v ago", p.ID, p, a.Peer, since(a.Time))
	case a.Incarnation != p.Incarnation:
		s = fmt.Sprintf("%d: only a stale incarnation %v; the current one, %v, announced %v ago, has not arrived", p.ID, p, a.Peer, since(a.Time))
	case a.Departed:
		s = fmt.Sprintf("%d: only a stale incarnation %v (departed %v ago)", p.ID, p, since(a.Time))
	default:
		s = fmt.Sprintf("%d: only a stale incarnation %v (announced %v ago, before this wait began)", p.ID, p, since(a.Time))
	}
	// An entry that met an earlier incarnation of ours: if its process
	// still runs, it is past this barrier and will not come back.
	for _, q := range e.seen {
		if q.ID == r.self.ID && q.Incarnation != r.self.Incarnation {
			return s + fmt.Sprintf("; it met our earlier incarnation %v here — not started, or running past this barrier?", q), true
		}
	}
	return s + " — not started?", true
}

// since formats the time since t for messages, tolerating clock skew.
func since(t time.Time) time.Duration {
	d := time.Since(t)
	if d < 0 {
		return 0
	}
	return d.Round(time.Millisecond)
}

// RejoinBarrier names the barrier at which a replica restarted as
// restarted and the running peer other meet (see "Restarting into a running
// cluster" in the package doc). The name holds the new incarnation, so no
// entry from before the restart can be under it, and the peer's id, so the
// restarted replica's entries for different peers, met concurrently, are
// under different keys and never overwrite each other.
func RejoinBarrier(restarted Peer, other int) string {
	return fmt.Sprintf("rejoin/%v/%d", restarted, other)
}
