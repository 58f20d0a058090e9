// Package deadline gives a connection one context.Context that it re-arms
// for each request it sends through consensus, where context.WithTimeout
// would allocate a context and a timer per request: with it, the request
// paths of gomu's servers allocate nothing.
package deadline

import (
	"context"
	"sync"
	"time"
)

// Context is a context.Context whose deadline is set again for each use.
// One goroutine arms it, passes it to calls that return before the next
// Arm (Propose, ReadBarrier), and arms it again; it must not be handed to
// anything that keeps it. Done is a channel closed when the armed deadline
// passes; after that, the next Arm makes a new channel (the only
// allocation, and only after a timeout).
type Context struct {
	mu       sync.Mutex
	timer    *time.Timer
	done     chan struct{}
	deadline time.Time
	expired  bool
}

// New returns a disarmed Context: Done never closes until Arm.
func New() *Context {
	c := &Context{done: make(chan struct{})}
	c.timer = time.AfterFunc(time.Hour, c.fire)
	c.timer.Stop()
	return c
}

// Arm starts a deadline d from now, for the next call.
func (c *Context) Arm(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		c.done = make(chan struct{})
		c.expired = false
	}
	c.deadline = time.Now().Add(d)
	c.timer.Reset(d)
}

// Disarm stops the deadline once the call returned. (A firing already
// under way may still expire it; the next Arm starts afresh anyway.)
func (c *Context) Disarm() {
	c.mu.Lock()
	c.timer.Stop()
	c.mu.Unlock()
}

// fire runs on the timer's goroutine: it expires the deadline it was set
// for, unless the Context was re-armed or disarmed since.
func (c *Context) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired || time.Now().Before(c.deadline) {
		return // a stale firing: re-armed for later since
	}
	c.expired = true
	close(c.done)
}

// Deadline implements context.Context.
func (c *Context) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, true
}

// Done implements context.Context.
func (c *Context) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// Err implements context.Context.
func (c *Context) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context: a Context carries no values.
func (c *Context) Value(any) any { return nil }
