package trader

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gomu-rdma/gomu/apps/orderbook/book"
)

// Kind is what one order of the workload is, as the trader chose it; the
// timeline names it. Several kinds are the same wire op (New) with a
// different price, flags or stop.
type Kind uint8

const (
	KindLimit   Kind = iota // a limit order at or behind the best price of its side: it rests
	KindCross               // a limit order through the spread: it trades, the rest rests
	KindMarket              // a market order (price 0): trades what it finds, never rests
	KindCancel              // cancel one of the trader's own resting orders or stops
	KindReplace             // change one of the trader's own resting orders (quantity, price)
	KindIOC                 // a limit order at the opposite best price, immediate-or-cancel
	KindFOK                 // the same, fill-or-kill
	KindStop                // a stop-market or stop-limit order beyond the mid
	numKinds
)

var kindNames = [numKinds]string{"limit", "cross", "market", "cancel", "replace", "ioc", "fok", "stop"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Kinds lists every kind, in the order of the --mix flag.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// Mix is the workload's composition: relative weights per kind. Cancel and
// Replace need a resting order of the trader's own; with none they become
// a limit order (a trader with nothing open has nothing to cancel).
type Mix [numKinds]int

// DefaultMix is about what a market maker's flow looks like: mostly
// passive limits, a good share of cancels and replaces, some aggression.
var DefaultMix = Mix{KindLimit: 50, KindCross: 15, KindMarket: 5, KindCancel: 12, KindReplace: 10, KindIOC: 4, KindFOK: 2, KindStop: 2}

// ParseMix reads "limit=50,cross=15,…": kinds left out weigh 0; at least
// one must weigh more.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := [numKinds]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("--mix: %q is not kind=weight", part)
		}
		k, ok := kindByName(strings.TrimSpace(name))
		if !ok {
			return m, fmt.Errorf("--mix: unknown kind %q (want some of %s)", name, strings.Join(kindNames[:], ","))
		}
		if seen[k] {
			return m, fmt.Errorf("--mix: %s given twice", k)
		}
		seen[k] = true
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 || w > 1_000_000 {
			return m, fmt.Errorf("--mix: %s=%s: want a weight from 0 to 1000000", k, val)
		}
		m[k] = w
	}
	if m.total() == 0 {
		return m, fmt.Errorf("--mix %q: every weight is 0", s)
	}
	return m, nil
}

func kindByName(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

func (m Mix) total() int {
	t := 0
	for _, w := range m {
		t += w
	}
	return t
}

// String is the flag's form, every kind named.
func (m Mix) String() string {
	var b strings.Builder
	for i, w := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%d", Kind(i), w)
	}
	return b.String()
}

// ParseSymbols reads a comma-separated list of distinct symbols.
func ParseSymbols(s string) ([]string, error) {
	var out []string
	for sym := range strings.SplitSeq(s, ",") {
		sym = strings.TrimSpace(sym)
		if sym == "" {
			continue
		}
		if !book.ValidSymbol([]byte(sym)) {
			return nil, fmt.Errorf("--symbols: %q: want 1 to %d capital letters, digits or '.' (what the exchange takes)", sym, book.MaxSymbol)
		}
		for _, o := range out {
			if o == sym {
				return nil, fmt.Errorf("--symbols: %q given twice", sym)
			}
		}
		out = append(out, sym)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--symbols %q: no symbol", s)
	}
	return out, nil
}
