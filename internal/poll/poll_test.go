package poll

import (
	"context"
	"testing"
	"time"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"spin", Spin, false},
		{"yield", SpinYield, false},
		{"spin-then-yield", SpinYield, false},
		{"sleep", Sleep, false},
		{"", 0, true},
		{"SPIN", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseMode(tc.in)
		if (err != nil) != tc.wantErr || (err == nil && got != tc.want) {
			t.Errorf("ParseMode(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err == nil {
			if back, _ := ParseMode(got.String()); back != got {
				t.Errorf("%v does not round-trip through String", got)
			}
		}
	}
}

func TestUntil(t *testing.T) {
	for _, mode := range []Mode{Spin, SpinYield, Sleep} {
		t.Run(mode.String(), func(t *testing.T) {
			n := 0
			if !Until(mode, time.Now().Add(time.Minute), func() bool { n++; return n == 500 }) {
				t.Fatal("condition that becomes true reported false")
			}
			if Until(mode, time.Now().Add(2*time.Millisecond), func() bool { return false }) {
				t.Fatal("condition that never holds reported true")
			}
		})
	}
}

// TestSleepBacksOff checks that the sleep mode stops polling hot: after its
// short spin it sleeps between polls, capped at maxSleep.
func TestSleepBacksOff(t *testing.T) {
	for _, tc := range []struct {
		max, want time.Duration
	}{
		{0, maxSleep},
		{50 * time.Microsecond, 50 * time.Microsecond},
		{5 * time.Microsecond, 5 * time.Microsecond}, // below the first step
	} {
		w := Waiter{Mode: Sleep, Max: tc.max}
		for i := 0; i < spinBeforeSleep; i++ {
			w.Wait()
		}
		if w.sleep != 0 {
			t.Fatalf("Max %v: slept during the spin phase", tc.max)
		}
		for i := 0; i < 12; i++ {
			w.Wait()
		}
		if w.sleep != tc.want {
			t.Fatalf("Max %v: back-off reached %v, want the cap %v", tc.max, w.sleep, tc.want)
		}
		w.Reset()
		if w.sleep != 0 || w.spins != 0 {
			t.Fatalf("Max %v: Reset left %+v", tc.max, w)
		}
	}
}

func TestSleepContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := SleepContext(ctx, time.Millisecond); err != nil {
		t.Fatalf("a sleep that ran out: %v", err)
	}
	cancel()
	if err := SleepContext(ctx, time.Hour); err != context.Canceled {
		t.Fatalf("a sleep under an ended context: %v, want context.Canceled", err)
	}
	if err := SleepContext(ctx, 0); err != context.Canceled {
		t.Fatalf("a zero sleep under an ended context: %v, want context.Canceled", err)
	}
}
