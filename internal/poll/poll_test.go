package poll

import (
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
	w := Waiter{Mode: Sleep}
	for i := 0; i < spinBeforeSleep; i++ {
		w.Wait()
	}
	if w.sleep != 0 {
		t.Fatalf("slept during the spin phase")
	}
	for i := 0; i < 12; i++ {
		w.Wait()
	}
	if w.sleep != maxSleep {
		t.Fatalf("back-off reached %v, want the cap %v", w.sleep, maxSleep)
	}
	w.Reset()
	if w.sleep != 0 || w.spins != 0 {
		t.Fatalf("Reset left %+v", w)
	}
}
