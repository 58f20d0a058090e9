package store

import "strconv"

// Keyspace notifications (notify-keyspace-events). Write commands produce
// their events while they are applied, in log order, on every replica
// alike, and each replica hands them to its own subscribers through
// Env.Publish, as it does PUBLISH's messages: subscribers on any replica
// hear every event in the same order. The setting is replicated
// configuration (Config.NotifyKeyspaceEvents, changed by gomu.config), so
// every replica agrees on which events exist at each point of the log.
// Keyspace-miss events ('m') are the exception: reads produce them, on the
// replica that served the read only (a read is not replicated).
//
// With notifications off (the default) a command pays one predictable
// branch per event point (notify's mask test) and allocates nothing.

// Event classes, as Redis's NOTIFY_* flags.
const (
	notifyKeyspace int64 = 1 << iota // K
	notifyKeyevent                   // E
	notifyGeneric                    // g
	notifyString                     // $
	notifyList                       // l
	notifySet                        // s
	notifyHash                       // h
	notifyZSet                       // z
	notifyExpired                    // x
	notifyEvicted                    // e
	notifyStream                     // t
	notifyKeyMiss                    // m
	notifyModule                     // d
	notifyNew                        // n

	// notifyAll is what 'A' stands for.
	notifyAll = notifyGeneric | notifyString | notifyList | notifySet | notifyHash |
		notifyZSet | notifyExpired | notifyEvicted | notifyStream | notifyModule
)

// notifyFlagChars maps each flag character to its class; also the order
// CONFIG GET prints the classes in (Redis's keyspaceEventsFlagsToString).
var notifyFlagChars = []struct {
	c     byte
	class int64
}{
	{'g', notifyGeneric}, {'$', notifyString}, {'l', notifyList}, {'s', notifySet},
	{'h', notifyHash}, {'z', notifyZSet}, {'x', notifyExpired}, {'e', notifyEvicted},
	{'t', notifyStream}, {'d', notifyModule}, {'n', notifyNew},
	{'K', notifyKeyspace}, {'E', notifyKeyevent}, {'m', notifyKeyMiss},
}

// parseNotifyFlags reads a notify-keyspace-events value as Redis does.
func parseNotifyFlags(b []byte) (int64, string) {
	var flags int64
	for _, c := range b {
		if c == 'A' {
			flags |= notifyAll
			continue
		}
		found := false
		for _, f := range notifyFlagChars {
			if f.c == c {
				flags |= f.class
				found = true
				break
			}
		}
		if !found {
			return 0, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
		}
	}
	return flags, ""
}

// formatNotifyFlags prints flags as CONFIG GET does: "A" for every class
// A covers (n is then not printed, as in Redis 7.0), then K, E and m.
func formatNotifyFlags(flags int64) string {
	var b []byte
	if flags&notifyAll == notifyAll {
		b = append(b, 'A')
	}
	for _, f := range notifyFlagChars {
		switch {
		case flags&f.class == 0:
		case f.class&(notifyKeyspace|notifyKeyevent|notifyKeyMiss) != 0:
			b = append(b, f.c)
		case flags&notifyAll != notifyAll:
			b = append(b, f.c)
		}
	}
	return string(b)
}

// notify produces the event named event of class for key in the selected
// database, if the configuration asks for it. It is meant to be inlined:
// off, it costs the mask test only.
func (s *keyspace) notify(e *Env, class int64, event string, key []byte) {
	if s.cfg.NotifyKeyspaceEvents&(class|notifyNew) != 0 {
		s.notifySlow(e, class, s.db, event, key)
	}
}

// notifyDB is notify for database db (MOVE's and COPY … DB's target).
func (s *keyspace) notifyDB(e *Env, class int64, event string, key []byte, db int) {
	if s.cfg.NotifyKeyspaceEvents&(class|notifyNew) != 0 {
		s.notifySlow(e, class, db, event, key)
	}
}

// notifySlow publishes the pending "new" events, then this one if its
// class is enabled.
func (s *keyspace) notifySlow(e *Env, class int64, db int, event string, key []byte) {
	s.flushNews(e)
	if s.cfg.NotifyKeyspaceEvents&class != 0 {
		s.publishEvent(e, db, event, key)
	}
}

// newKey is a key put created, whose "new" event is pending.
type newKey struct {
	db  int
	key string
}

// noteNew records that put created key (with 'n' enabled). Redis
// publishes "new" as it adds the key (dbAdd), before the command's own
// event; put has no Env to publish through, so the event waits for the
// command's next one, which every creating command produces right after.
func (s *keyspace) noteNew(key []byte) {
	*s.news = append(*s.news, newKey{s.db, string(key)})
}

// endNews publishes the "new" events still pending at the end of a
// command that created a key and then produced no event of its own (a
// BITFIELD whose writes all failed, an HINCRBY that overflowed), so that
// none waits past its command.
func (s *keyspace) endNews(e *Env) {
	if len(*s.news) != 0 {
		s.flushNews(e)
	}
}

// flushNews publishes the pending "new" events, oldest first.
func (s *keyspace) flushNews(e *Env) {
	for _, n := range *s.news {
		s.publishEvent(e, n.db, "new", []byte(n.key))
	}
	*s.news = (*s.news)[:0]
}

// publishEvent publishes the keyspace ("__keyspace@<db>__:<key>", message
// the event) and keyevent ("__keyevent@<db>__:<event>", message the key)
// forms the configuration enables, through e.Publish.
func (s *keyspace) publishEvent(e *Env, db int, event string, key []byte) {
	if e.Publish == nil {
		return
	}
	flags := s.cfg.NotifyKeyspaceEvents
	if flags&notifyKeyspace != 0 {
		ch := eventChannel(e.notifyBuf[:0], "__keyspace@", db, key)
		e.Publish(ch, []byte(event))
		e.notifyBuf = ch
	}
	if flags&notifyKeyevent != 0 {
		ch := eventChannel(e.notifyBuf[:0], "__keyevent@", db, []byte(event))
		e.Publish(ch, key)
		e.notifyBuf = ch
	}
}

func eventChannel(dst []byte, prefix string, db int, suffix []byte) []byte {
	dst = append(dst, prefix...)
	dst = strconv.AppendInt(dst, int64(db), 10)
	dst = append(dst, "__:"...)
	return append(dst, suffix...)
}

// notifyMiss produces a keyspace-miss event for a read that found no key
// (the 'm' class): local to the replica that served the read.
func (s *keyspace) notifyMiss(e *Env, key []byte) {
	if s.cfg.NotifyKeyspaceEvents&notifyKeyMiss != 0 {
		s.publishEvent(e, s.db, "keymiss", key)
	}
}

// notifySet is SET's events: "set", and "expire" when it gave a TTL.
func (s *keyspace) notifySet(e *Env, key []byte, at int64) {
	s.notify(e, notifyString, "set", key)
	if at != 0 {
		s.notify(e, notifyGeneric, "expire", key)
	}
}

// pushEvent and popEvent name a list push or pop at the front or back.
func pushEvent(front bool) string {
	if front {
		return "lpush"
	}
	return "rpush"
}

func popEvent(front bool) string {
	if front {
		return "lpop"
	}
	return "rpop"
}

// zaddEvent is ZADD's event: "zincr" with INCR (and for ZINCRBY).
func zaddEvent(incr bool) string {
	if incr {
		return "zincr"
	}
	return "zadd"
}

// notifyZPop ends a ZPOPMIN/ZPOPMAX/ZMPOP of count entries from key's z:
// its event, and the key's deletion when that emptied it.
func (s *Store) notifyZPop(e *Env, key []byte, z *zsetValue, count int64, max bool) {
	if count > 0 {
		event := "zpopmin"
		if max {
			event = "zpopmax"
		}
		s.notify(e, notifyZSet, event, key)
	}
	if z.len() == 0 {
		s.remove(key)
		s.notify(e, notifyGeneric, "del", key)
	}
}

// zremrangeEvents names ZREMRANGEBYRANK's, …SCORE's and …LEX's event by
// their range kind.
var zremrangeEvents = map[int]string{zrRank: "zremrangebyrank", zrScore: "zremrangebyscore", zrLex: "zremrangebylex"}

// touchConsumer is streamGroup.touchConsumer that tells of a consumer it
// creates (XREADGROUP, XCLAIM, XAUTOCLAIM), as Redis's
// streamCreateConsumer does.
func (s *Store) touchConsumer(e *Env, key []byte, g *streamGroup, name []byte, now int64) *streamConsumer {
	c, created := g.touchConsumer(name, now)
	if created {
		s.notify(e, notifyStream, "xgroup-createconsumer", key)
	}
	return c
}
