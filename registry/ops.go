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
		return false, fmt.Sprintf("replica %v, announced %v ago, has not published it (no key %s)",
			a.Peer, since(a.Time), r.publishKey(a.Peer, name)), nil
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
// ids still missing. It waits until ctx's deadline (WaitTimeout if none).
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
	keys := make([]string, len(ids))
	for i, id := range ids {
		if id <= 0 || id > MaxID {
			return nil, fmt.Errorf("registry: barrier %q: replica id %d out of range 1..%d", name, id, MaxID)
		}
		keys[i] = r.barrierKey(name, id)
		if err := validName(name, keys[i]); err != nil {
			return nil, err
		}
	}
	ctx, cancel := r.waitContext(ctx)
	defer cancel()
	ownKey := r.barrierKey(name, r.self.ID)
	var (
		peers   []Peer
		written []byte // our entry as last written
	)
	what := fmt.Sprintf("%q of cluster %q for ids %v as %v", name, r.cfg.Cluster, ids, r.self)
	err := r.pollIDs(ctx, "barrier", what, func() (bool, string, []int, error) {
		items, err := r.getMulti(ctx, keys)
		if err != nil {
			return false, "", nil, err
		}
		var (
			seen    []Peer
			missing []int
			why     []string
		)
		entries := make(map[int]barrierRec, len(ids))
		for i, id := range ids {
			it, ok := items[keys[i]]
			if !ok {
				if id != r.self.ID {
					missing = append(missing, id)
					why = append(why, fmt.Sprintf("%d has not arrived", id))
				}
				continue
			}
			e, err := decodeBarrier(keys[i], id, it.Value)
			if err != nil {
				return false, "", nil, err
			}
			if id == r.self.ID {
				if e.inc != r.self.Incarnation && written != nil {
					return false, "", nil, fmt.Errorf("registry: barrier %q: our entry %s was overwritten by incarnation %016x: two processes with replica id %d in cluster %q?",
						name, ownKey, e.inc, id, r.cfg.Cluster)
				}
				continue
			}
			entries[id] = e
			seen = append(seen, Peer{ID: id, Incarnation: e.inc})
			if !e.acknowledges(r.self) {
				missing = append(missing, id)
				why = append(why, fmt.Sprintf("%v has not acknowledged us", Peer{ID: id, Incarnation: e.inc}))
			}
		}
		// Write our entry if it is missing (first round, or flushed or
		// evicted since) or its seen list has changed.
		mine := encodeBarrier(r.self, seen)
		own, ok := items[ownKey]
		if !ok || string(own.Value) != string(mine) {
			if err := r.set(ctx, ownKey, mine); err != nil {
				return false, "", nil, err
			}
			written = mine
		}
		if len(missing) > 0 {
			return false, "waiting for " + strings.Join(why, ", "), missing, nil
		}
		peers = append(seen, r.self)
		return true, "", nil, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(peers, func(a, b Peer) int { return a.ID - b.ID })
	r.confirm(peers...)
	return peers, nil
}

// since formats the time since t for messages, tolerating clock skew.
func since(t time.Time) time.Duration {
	d := time.Since(t)
	if d < 0 {
		return 0
	}
	return d.Round(time.Millisecond)
}
