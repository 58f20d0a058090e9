package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gomu-rdma/gomu/internal/redistest"
)

// TestWatchDifferential runs WATCH scripts on two connections, on a
// standalone server and on Debian's redis-server, comparing every reply:
// a transaction aborted because another client changed, created, deleted
// or expired a watched key; one that runs because nothing changed; UNWATCH,
// DISCARD and EXEC forgetting the watches; WATCH inside MULTI; a
// transaction whose own commands fail after a successful check.
func TestWatchDifferential(t *testing.T) {
	type step struct {
		conn int
		args []string
	}
	scripts := []struct {
		name  string
		steps []step
	}{
		{"changed by another client", []step{
			{0, []string{"SET", "k", "1"}}, {0, []string{"WATCH", "k"}},
			{1, []string{"SET", "k", "2"}},
			{0, []string{"MULTI"}}, {0, []string{"SET", "k", "3"}}, {0, []string{"EXEC"}},
			{0, []string{"GET", "k"}},
		}},
		{"untouched", []step{
			{0, []string{"SET", "k", "1"}}, {0, []string{"WATCH", "k", "other"}},
			{1, []string{"SET", "unrelated", "x"}},
			{0, []string{"MULTI"}}, {0, []string{"INCR", "k"}}, {0, []string{"GET", "k"}}, {0, []string{"EXEC"}},
		}},
		{"created, deleted, expired", []step{
			{0, []string{"WATCH", "new"}}, {1, []string{"SET", "new", "x"}},
			{0, []string{"MULTI"}}, {0, []string{"PING"}}, {0, []string{"EXEC"}},
			{0, []string{"WATCH", "new"}}, {1, []string{"DEL", "new"}},
			{0, []string{"MULTI"}}, {0, []string{"PING"}}, {0, []string{"EXEC"}},
			{0, []string{"SET", "ttl", "v", "PX", "30"}}, {0, []string{"WATCH", "ttl"}},
			{0, []string{"gomu-test-sleep"}},
			{0, []string{"MULTI"}}, {0, []string{"PING"}}, {0, []string{"EXEC"}},
		}},
		{"forgotten by UNWATCH, DISCARD and EXEC", []step{
			{0, []string{"WATCH", "a"}}, {0, []string{"UNWATCH"}}, {1, []string{"SET", "a", "1"}},
			{0, []string{"MULTI"}}, {0, []string{"GET", "a"}}, {0, []string{"EXEC"}},
			{0, []string{"WATCH", "a"}}, {0, []string{"MULTI"}}, {0, []string{"DISCARD"}}, {1, []string{"SET", "a", "2"}},
			{0, []string{"MULTI"}}, {0, []string{"GET", "a"}}, {0, []string{"EXEC"}},
			{0, []string{"WATCH", "a"}}, {0, []string{"MULTI"}}, {0, []string{"EXEC"}}, {1, []string{"SET", "a", "3"}},
			{0, []string{"MULTI"}}, {0, []string{"GET", "a"}}, {0, []string{"EXEC"}},
		}},
		{"empty transaction and errors", []step{
			{0, []string{"WATCH", "e"}}, {1, []string{"SET", "e", "1"}},
			{0, []string{"MULTI"}}, {0, []string{"EXEC"}},
			{0, []string{"WATCH", "e"}}, {0, []string{"MULTI"}}, {0, []string{"EXEC"}},
			{0, []string{"MULTI"}}, {0, []string{"WATCH", "e"}}, {0, []string{"SET", "e", "2"}}, {0, []string{"EXEC"}},
			{0, []string{"WATCH", "e"}}, {0, []string{"MULTI"}}, {0, []string{"LPUSH", "e", "x"}}, {0, []string{"SET", "e", "3"}}, {0, []string{"EXEC"}},
			{0, []string{"WATCH"}}, {0, []string{"UNWATCH", "x"}},
		}},
	}
	redisAddr := redistest.Start(t)
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			ours := startStandalone(t)
			run := func(addr string) []string {
				conns := [2]*redistest.Conn{redistest.Dial(t, addr), redistest.Dial(t, addr)}
				conns[0].Do("FLUSHALL")
				var got []string
				for _, st := range sc.steps {
					if st.args[0] == "gomu-test-sleep" {
						time.Sleep(60 * time.Millisecond) // past the 30 ms TTL
						got = append(got, "")
						continue
					}
					got = append(got, conns[st.conn].Do(st.args...))
				}
				return got
			}
			want, got := run(redisAddr), run(ours.Addr())
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("step %d %q:\n got %q\nwant %q", i, sc.steps[i].args, got[i], want[i])
				}
			}
		})
	}
}

// TestWatchRaces: clients on every replica of a cluster increment one
// counter by WATCH, GET, MULTI, SET, EXEC, retrying aborted transactions
// (the optimistic-locking idiom). Every EXEC that ran was checked where it
// was applied, so no increment is lost or doubled: the counter ends at the
// number of transactions that ran. (All on the leader: a transaction that
// writes must run there, and WATCH, GET and EXEC share the connection.)
func TestWatchRaces(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	const clients, each = 6, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran, aborted := 0, 0
	errs := make(chan error, clients)
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), hang)
			defer cancel()
			rc := redis.NewClient(&redis.Options{Addr: lead.Srv.Addr(), MaxRetries: -1})
			defer rc.Close()
			for done := 0; done < each; {
				err := rc.Watch(ctx, func(tx *redis.Tx) error {
					n, err := tx.Get(ctx, "counter").Int()
					if err != nil && !errors.Is(err, redis.Nil) {
						return err
					}
					_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, "counter", n+1, 0)
						return nil
					})
					return err
				}, "counter")
				switch {
				case err == nil:
					done++
					mu.Lock()
					ran++
					mu.Unlock()
				case errors.Is(err, redis.TxFailedErr):
					mu.Lock()
					aborted++
					mu.Unlock()
				default:
					errs <- fmt.Errorf("client %d: %w", k, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := redistest.Dial(t, lead.Srv.Addr()).Do("GET", "counter")
	want := fmt.Sprintf("$%d\r\n%d\r\n", len(fmt.Sprint(ran)), ran)
	if got != want {
		t.Fatalf("counter is %q after %d transactions ran (%d aborted): want %q", got, ran, aborted, want)
	}
	if ran != clients*each {
		t.Fatalf("%d transactions ran, want %d", ran, clients*each)
	}
	t.Logf("%d transactions ran, %d aborted and retried", ran, aborted)
}
