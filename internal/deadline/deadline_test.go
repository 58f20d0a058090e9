package deadline

import (
	"context"
	"errors"
	"testing"
	"time"
)

// hang bounds waits: a hang detector, not a performance threshold.
const hang = 10 * time.Second

func TestExpiresAndRearms(t *testing.T) {
	c := New()
	for round := range 3 {
		c.Arm(time.Millisecond)
		select {
		case <-c.Done():
		case <-time.After(hang):
			t.Fatalf("round %d: Done not closed after the deadline", round)
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("round %d: Err %v", round, c.Err())
		}
		c.Arm(hang)
		if c.Err() != nil {
			t.Fatalf("round %d: re-armed but Err %v", round, c.Err())
		}
		select {
		case <-c.Done():
			t.Fatalf("round %d: Done closed right after re-arming", round)
		default:
		}
		c.Disarm()
	}
}

func TestDisarmedNeverExpires(t *testing.T) {
	c := New()
	c.Arm(5 * time.Millisecond)
	c.Disarm()
	time.Sleep(20 * time.Millisecond)
	c.Arm(hang)
	if c.Err() != nil {
		t.Fatalf("a disarmed deadline expired the next use: %v", c.Err())
	}
	if d, ok := c.Deadline(); !ok || time.Until(d) < hang/2 {
		t.Fatalf("Deadline %v %v", d, ok)
	}
}

func TestWorksAsContext(t *testing.T) {
	c := New()
	c.Arm(time.Millisecond)
	ctx, cancel := context.WithCancel(c) // a child sees the expiry
	defer cancel()
	select {
	case <-ctx.Done():
	case <-time.After(hang):
		t.Fatal("child context not done")
	}
}

func TestArmDoesNotAllocate(t *testing.T) {
	c := New()
	if n := testing.AllocsPerRun(100, func() {
		c.Arm(hang)
		_ = c.Done()
		c.Disarm()
	}); n != 0 {
		t.Fatalf("%.1f allocations per use, want 0", n)
	}
}
