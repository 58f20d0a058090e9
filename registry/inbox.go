package registry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Record kinds and layouts of the inbox; see "Inboxes" in the package doc.
const (
	kindQuestion = 'Q'
	kindAnswer   = 'R'

	questionHdr = headerLen + 8 + 4 + 8 // number, asker id, asker incarnation
	answerHdr   = headerLen + 8         // number
)

// Ask posts question to the inbox name of peer, that exact incarnation, and
// waits for its answer, until ctx's deadline (WaitTimeout if none).
// Observers may ask. An incarnation that is gone never answers: the
// *WaitError then says what its announce key shows instead.
func (r *Registry) Ask(ctx context.Context, peer Peer, name string, question []byte) ([]byte, error) {
	if peer.ID <= 0 || peer.ID > MaxID || peer.Incarnation == 0 {
		return nil, fmt.Errorf("registry: ask inbox %q: invalid peer %v", name, peer)
	}
	if err := validName(name, r.inboxKey(peer, name, "q/18446744073709551615")); err != nil {
		return nil, err
	}
	if len(question) > MaxValueLen-questionHdr {
		return nil, fmt.Errorf("registry: ask inbox %q of %v: question of %d bytes, the limit is %d", name, peer, len(question), MaxValueLen-questionHdr)
	}
	ctx, cancel := r.waitContext(ctx)
	defer cancel()
	where := fmt.Sprintf("inbox %q of %v in cluster %q", name, peer, r.cfg.Cluster)
	counter := r.inboxKey(peer, name, "next")
	ttl := r.ttlSeconds()

	// Take a number: create the counter if it is missing, then increment.
	var n uint64
	err := r.poll(ctx, "ask", "for a question number in "+where, func() (bool, string, error) {
		err := r.op(ctx, func(c *memcache.Client) error {
			err := c.Add(&memcache.Item{Key: counter, Value: []byte("0"), Expiration: ttl})
			if err != nil && !errors.Is(err, memcache.ErrNotStored) {
				return err
			}
			n, err = c.Increment(counter, 1)
			return err
		})
		if errors.Is(err, memcache.ErrCacheMiss) {
			return false, "the counter " + counter + " vanished between add and incr", nil
		}
		return err == nil, "", err
	})
	if err != nil {
		return nil, err
	}
	num := strconv.FormatUint(n, 10)
	qkey, akey := r.inboxKey(peer, name, "q/"+num), r.inboxKey(peer, name, "a/"+num)
	rec := encodeQuestion(peer, n, r.self, question)
	err = r.poll(ctx, "ask", fmt.Sprintf("to post question %d to %s", n, where), func() (bool, string, error) {
		return true, "", r.setTTL(ctx, qkey, rec)
	})
	if err != nil {
		return nil, err
	}
	var answer []byte
	keys := []string{akey, r.announceKey(peer.ID)}
	err = r.poll(ctx, "ask", fmt.Sprintf("for the answer to question %d in %s", n, where), func() (bool, string, error) {
		items, err := r.getMulti(ctx, keys)
		if err != nil {
			return false, "", err
		}
		if it, ok := items[akey]; ok {
			answer, err = decodeAnswer(akey, peer, n, it.Value)
			return err == nil, "", err
		}
		missing := "no key " + akey
		a, found, err := r.announcedIn(items, peer.ID)
		switch {
		case err != nil:
			return false, "", err
		case !found:
			missing += fmt.Sprintf(" (replica %d has never announced itself)", peer.ID)
		case a.Incarnation != peer.Incarnation:
			missing += fmt.Sprintf(" (replica %d is now incarnation %v, announced %v ago: %v is gone)", peer.ID, a.Peer, since(a.Time), peer)
		case a.Departed:
			missing += fmt.Sprintf(" (%v departed %v ago)", peer, since(a.Time))
		}
		return false, missing, nil
	})
	if err != nil {
		return nil, err
	}
	return answer, nil
}

// Inbox is one inbox of a participant: the questions askers post to it, in
// the order they took their numbers. Use one Inbox per name per process,
// from one goroutine at a time (Next serializes callers).
type Inbox struct {
	r    *Registry
	name string

	mu       sync.Mutex
	next     uint64    // number of the question Next returns next
	gapSince time.Time // when next was first seen taken but not written
	touched  time.Time // when the counter's lifetime was last renewed
}

// Inbox returns this participant's inbox name. Observers have none.
func (r *Registry) Inbox(name string) (*Inbox, error) {
	if r.self.ID == 0 {
		return nil, fmt.Errorf("registry: inbox %q: %w", name, ErrObserver)
	}
	if err := validName(name, r.inboxKey(r.self, name, "q/18446744073709551615")); err != nil {
		return nil, err
	}
	return &Inbox{r: r, name: name, next: 1}, nil
}

// Question is one question taken from an Inbox.
type Question struct {
	in    *Inbox
	n     uint64
	asker Peer
	value []byte
}

// Value is what the asker asked.
func (q *Question) Value() []byte { return q.value }

// Number is the question's number in its inbox (1, 2, ...).
func (q *Question) Number() uint64 { return q.n }

// Asker is the participant that asked (ID 0 for an observer).
func (q *Question) Asker() Peer { return q.asker }

// Answer stores the answer the asker waits for. It retries while memcached
// is unreachable, until ctx's deadline (WaitTimeout if none).
func (q *Question) Answer(ctx context.Context, answer []byte) error {
	r := q.in.r
	if len(answer) > MaxValueLen-answerHdr {
		return fmt.Errorf("registry: answer to question %d in inbox %q: %d bytes, the limit is %d", q.n, q.in.name, len(answer), MaxValueLen-answerHdr)
	}
	ctx, cancel := r.waitContext(ctx)
	defer cancel()
	key := r.inboxKey(r.self, q.in.name, "a/"+strconv.FormatUint(q.n, 10))
	rec := encodeAnswer(r.self, q.n, answer)
	return r.poll(ctx, "answer", fmt.Sprintf("question %d of %v in inbox %q", q.n, q.asker, q.in.name), func() (bool, string, error) {
		return true, "", r.setTTL(ctx, key, rec)
	})
}

// Next waits for the next question, in the order askers took their
// numbers, until ctx ends (deadline or not: an inbox waits all its life).
// It polls every Config.InboxPollInterval. A number taken by an asker that
// has not written its question within Config.InboxGrace is skipped, so an
// asker that died in between blocks no one. A malformed question is
// returned as a *ValueError, and its number is consumed.
func (in *Inbox) Next(ctx context.Context) (*Question, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	r := in.r
	start := time.Now()
	counter := in.key("next")
	var (
		timer    *time.Timer
		lastErr  error
		backoff  time.Duration
		reached  bool
		missing  string
		endEarly = ctx.Err() != nil
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q, why, err := in.try(ctx, counter)
		var ce *ConnError
		switch {
		case q != nil:
			return q, nil
		case err == nil && why == "":
			continue // skipped an abandoned number: look again at once
		case err == nil:
			missing, lastErr, backoff, reached = why, nil, 0, true
		case errors.As(err, &ce):
			lastErr = err
			backoff = min(max(2*backoff, r.cfg.InboxPollInterval), maxConnBackoff)
		case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		default:
			return nil, err
		}
		delay := max(r.cfg.InboxPollInterval, backoff)
		if timer == nil {
			timer = time.NewTimer(delay)
		} else {
			timer.Reset(delay)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, &WaitError{
				Op: "inbox", Addr: r.cfg.Addr, Missing: missing,
				What:   fmt.Sprintf("for question %d in inbox %q of %v in cluster %q", in.next, in.name, r.self, r.cfg.Cluster),
				Waited: time.Since(start), LastErr: lastErr, Err: ctx.Err(),
				Unreachable: !reached && lastErr != nil && !endEarly,
			}
		}
	}
}

// try looks once for question in.next. It returns the question, or why
// there is none ("" after skipping an abandoned number), or an error.
func (in *Inbox) try(ctx context.Context, counter string) (*Question, string, error) {
	r := in.r
	qkey := in.key("q/" + strconv.FormatUint(in.next, 10))
	items, err := r.getMulti(ctx, []string{qkey, counter})
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	if it, ok := items[qkey]; ok {
		n := in.next
		in.next++
		in.gapSince = time.Time{}
		asker, value, err := decodeQuestion(qkey, r.self, n, it.Value)
		if err != nil {
			return nil, "", err
		}
		return &Question{in: in, n: n, asker: asker, value: value}, "", nil
	}
	it, found := items[counter]
	var taken uint64
	if found {
		if taken, err = strconv.ParseUint(strings.TrimSpace(string(it.Value)), 10, 64); err != nil {
			return nil, "", &ValueError{Key: counter, Reason: fmt.Sprintf("question counter %q is not a number", it.Value)}
		}
	}
	ttl := r.ttlSeconds()
	switch {
	case !found:
		// Expired or lost (a memcached restart): put it back where we
		// are, so that the next asker takes the number we wait for.
		err := r.op(ctx, func(c *memcache.Client) error {
			return c.Add(&memcache.Item{Key: counter, Value: []byte(strconv.FormatUint(in.next-1, 10)), Expiration: ttl})
		})
		if err != nil && !errors.Is(err, memcache.ErrNotStored) {
			return nil, "", err
		}
		in.touched = now
		in.gapSince = time.Time{}
		return nil, "no question yet (no key " + qkey + ")", nil
	case taken+1 < in.next:
		// Recreated behind us by an asker after it was lost: move it
		// past the numbers already used. Askers that took a number below
		// ours meanwhile wait out their deadline.
		it.Value = []byte(strconv.FormatUint(in.next-1, 10))
		it.Expiration = ttl
		err := r.op(ctx, func(c *memcache.Client) error { return c.CompareAndSwap(it) })
		if err != nil && !errors.Is(err, memcache.ErrCASConflict) && !errors.Is(err, memcache.ErrNotStored) && !errors.Is(err, memcache.ErrCacheMiss) {
			return nil, "", err
		}
		in.touched = now
		return nil, fmt.Sprintf("question counter %s was reset to %d behind question %d", counter, taken, in.next), nil
	case taken >= in.next:
		if in.gapSince.IsZero() {
			in.gapSince = now
		} else if now.Sub(in.gapSince) > r.cfg.InboxGrace {
			if r.cfg.Logger != nil {
				r.cfg.Logger.Warn(fmt.Sprintf("registry: inbox %q of %v: question %d was taken %v ago but never written; skipping it",
					in.name, r.self, in.next, since(in.gapSince)))
			}
			in.next++
			in.gapSince = time.Time{}
			return nil, "", nil
		}
		return nil, fmt.Sprintf("question %d taken by an asker %v ago, not written yet (no key %s)", in.next, since(in.gapSince), qkey), nil
	}
	in.gapSince = time.Time{}
	if now.Sub(in.touched) > r.cfg.InboxTTL/4 {
		// Keep the counter alive while we are, however quiet the inbox.
		err := r.op(ctx, func(c *memcache.Client) error { return c.Touch(counter, ttl) })
		if err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			return nil, "", err
		}
		in.touched = now
	}
	return nil, "no question yet (no key " + qkey + ")", nil
}

func (in *Inbox) key(leaf string) string { return in.r.inboxKey(in.r.self, in.name, leaf) }

func (r *Registry) inboxKey(p Peer, name, leaf string) string {
	return fmt.Sprintf("%sinbox/%d/%016x/%s/%s", r.prefix(), p.ID, p.Incarnation, name, leaf)
}

func (r *Registry) ttlSeconds() int32 { return int32(r.cfg.InboxTTL / time.Second) }

// setTTL stores value under key for InboxTTL.
func (r *Registry) setTTL(ctx context.Context, key string, value []byte) error {
	return r.op(ctx, func(c *memcache.Client) error {
		return c.Set(&memcache.Item{Key: key, Value: value, Expiration: r.ttlSeconds()})
	})
}

func encodeQuestion(owner Peer, n uint64, asker Peer, value []byte) []byte {
	b := putHeader(make([]byte, 0, questionHdr+len(value)), kindQuestion, owner)
	b = binary.LittleEndian.AppendUint64(b, n)
	b = binary.LittleEndian.AppendUint32(b, uint32(asker.ID))
	b = binary.LittleEndian.AppendUint64(b, asker.Incarnation)
	return append(b, value...)
}

// checkInbox validates the header and number of an inbox record read under
// key of owner's inbox.
func checkInbox(key string, b []byte, kind byte, owner Peer, n uint64, hdr int) error {
	inc, err := checkHeader(key, b, kind, owner.ID)
	if err != nil {
		return err
	}
	if inc != owner.Incarnation {
		return &ValueError{Key: key, Reason: fmt.Sprintf("record of incarnation %016x under the key of incarnation %016x", inc, owner.Incarnation)}
	}
	if len(b) < hdr {
		return &ValueError{Key: key, Reason: fmt.Sprintf("record of %d bytes, shorter than its %d-byte header", len(b), hdr)}
	}
	if got := binary.LittleEndian.Uint64(b[headerLen:]); got != n {
		return &ValueError{Key: key, Reason: fmt.Sprintf("record of question %d under the key of question %d", got, n)}
	}
	return nil
}

// decodeQuestion returns the asker and the value (aliasing b).
func decodeQuestion(key string, owner Peer, n uint64, b []byte) (Peer, []byte, error) {
	if err := checkInbox(key, b, kindQuestion, owner, n, questionHdr); err != nil {
		return Peer{}, nil, err
	}
	asker := Peer{
		ID:          int(binary.LittleEndian.Uint32(b[headerLen+8:])),
		Incarnation: binary.LittleEndian.Uint64(b[headerLen+12:]),
	}
	return asker, b[questionHdr:], nil
}

func encodeAnswer(owner Peer, n uint64, value []byte) []byte {
	b := putHeader(make([]byte, 0, answerHdr+len(value)), kindAnswer, owner)
	b = binary.LittleEndian.AppendUint64(b, n)
	return append(b, value...)
}

// decodeAnswer returns the answer's value (aliasing b).
func decodeAnswer(key string, owner Peer, n uint64, b []byte) ([]byte, error) {
	if err := checkInbox(key, b, kindAnswer, owner, n, answerHdr); err != nil {
		return nil, err
	}
	return b[answerHdr:], nil
}
