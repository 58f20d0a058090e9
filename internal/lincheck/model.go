package lincheck

import (
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// value is the state of one key: its partition's state in the model.
type value struct {
	exists bool
	s      string
	// maybeIncrs counts the maybe-applied INCRs taken so far: they take
	// effect in the order of their invocations (see input.rank).
	maybeIncrs int
}

// input is an operation's input as porcupine sees it.
type input struct {
	Input
	// rank numbers a maybe-applied INCR among those of its key, in the
	// order of their invocations. Such INCRs differ only in when they
	// were invoked, so if some linearization applies j of them, one
	// applies the j invoked first, in that order (the one invoked i-th
	// is never later than the i-th of them to take effect in the
	// original): trying them in rank order alone keeps the verdict and
	// turns 2^k subsets into k+1 choices.
	rank int
}

// output is an operation's output as porcupine sees it: unknown for a
// maybe-applied write, which the model lets take effect with any output.
type output struct {
	Output
	unknown bool
}

// step applies in to v; ok reports whether out is what the store may have
// answered.
func step(v value, in input, out output) (bool, value) {
	if in.Kind == Incr && out.unknown {
		if in.rank != v.maybeIncrs {
			return false, v
		}
		v.maybeIncrs++
	}
	switch in.Kind {
	case Get:
		if out.unknown {
			return true, v
		}
		if !v.exists {
			return out.Nil, v
		}
		return !out.Nil && out.Value == v.s, v
	case Set:
		return true, value{exists: true, s: in.Arg, maybeIncrs: v.maybeIncrs}
	case Incr:
		cur := "0"
		if v.exists {
			cur = v.s
		}
		n, ok := parseInt(cur)
		if !ok || n == 1<<63-1 {
			// Redis answers an error and leaves the value alone.
			return out.unknown || out.NotInt, v
		}
		next := value{exists: true, s: strconv.FormatInt(n+1, 10), maybeIncrs: v.maybeIncrs}
		return out.unknown || !out.NotInt && out.N == n+1, next
	case Append:
		next := value{exists: true, s: v.s + in.Arg, maybeIncrs: v.maybeIncrs}
		return out.unknown || out.N == int64(len(next.s)), next
	}
	return false, v
}

// parseInt parses s as Redis's string2ll does, the rule INCR applies: an
// optional '-', then decimal digits with no leading zero (bare "0" aside),
// nothing else, within int64.
func parseInt(s string) (int64, bool) {
	if s == "0" {
		return 0, true
	}
	d := s
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(s) > 20 || len(d) == 0 || d[0] < '1' || d[0] > '9' {
		return 0, false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// model is the key-value store for porcupine, partitioned by key.
var model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		idx := map[string]int{}
		var parts [][]porcupine.Operation
		for _, op := range h {
			k := op.Input.(input).Key
			i, ok := idx[k]
			if !ok {
				i = len(parts)
				idx[k] = i
				parts = append(parts, nil)
			}
			parts[i] = append(parts[i], op)
		}
		return parts
	},
	Init: func() any { return value{} },
	Step: func(state, in, out any) (bool, any) {
		return step(state.(value), in.(input), out.(output))
	},
	Hash: func(state any) uint64 {
		v := state.(value)
		h := fnv.New64a()
		h.Write([]byte{byte(v.maybeIncrs), byte(v.maybeIncrs >> 8)})
		if v.exists {
			h.Write([]byte{1})
		}
		h.Write([]byte(v.s))
		return h.Sum64()
	},
	DescribeOperation: func(in, out any) string {
		return describeOp(in.(input).Input, out.(output))
	},
	DescribeState: func(state any) string {
		v := state.(value)
		if !v.exists {
			return "nil"
		}
		return quote(v.s)
	},
	DescribeOperationMetadata: func(m any) string {
		if s, _ := m.(string); s != "" {
			return "at " + s
		}
		return ""
	},
}

func describeOp(in Input, out output) string {
	var s string
	switch in.Kind {
	case Get:
		s = "GET " + in.Key
	case Incr:
		s = "INCR " + in.Key
	default:
		s = fmt.Sprintf("%v %s %s", in.Kind, in.Key, quote(in.Arg))
	}
	switch {
	case out.unknown:
		return s + " -> ? (may have taken effect)"
	case in.Kind == Get && out.Nil:
		return s + " -> nil"
	case in.Kind == Get:
		return s + " -> " + quote(out.Value)
	case in.Kind == Incr && out.NotInt:
		return s + " -> ERR not an integer"
	case in.Kind == Set:
		return s + " -> OK"
	}
	return fmt.Sprintf("%s -> %d", s, out.N)
}

// quote quotes s, eliding the middle of long values (an APPEND log grows
// long) so that the visualisation stays readable; the end, where the
// latest appends are, is kept.
func quote(s string) string {
	const head, tail = 16, 48
	if len(s) <= head+tail+8 {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s…(%d bytes)…%s", strconv.Quote(s[:head]), len(s), strconv.Quote(s[len(s)-tail:]))
}
