package lincheck

import (
	"fmt"
	"sync"
	"time"
)

// Kind is what an operation does to its key.
type Kind uint8

const (
	Get Kind = iota + 1
	Set
	Incr
	Append
)

func (k Kind) String() string {
	switch k {
	case Get:
		return "GET"
	case Set:
		return "SET"
	case Incr:
		return "INCR"
	case Append:
		return "APPEND"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Input is an operation as a client invokes it.
type Input struct {
	Kind Kind
	Key  string
	Arg  string // SET's value, APPEND's suffix
}

// Output is what a completed operation returned.
type Output struct {
	Value string // GET: the value
	Nil   bool   // GET: no such key
	N     int64  // INCR: the new value; APPEND: the new length
	// NotInt: INCR was refused with an error reply that changed nothing
	// (the value is not an integer, or the increment would overflow).
	NotInt bool
}

// Outcome is how one attempt at an operation ended.
type Outcome uint8

const (
	// Done: the server answered and the reply is the output.
	Done Outcome = iota + 1
	// Unknown: nothing settles it (a timeout, a lost connection, an error
	// reply that does not prove a refusal). A write is recorded as
	// maybe-applied; a read is dropped.
	Unknown
	// Refused: the operation certainly had no effect (it was never sent).
	// It is dropped.
	Refused
)

func (o Outcome) String() string {
	switch o {
	case Done:
		return "done"
	case Unknown:
		return "unknown"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("Outcome(%d)", o)
}

// Reply is a Target's account of one attempt.
type Reply struct {
	Outcome Outcome
	Output  Output // with Done
	// Where names the server the attempt went to, for the visualisation
	// and the count of reads per replica.
	Where string
	// Err, if set, is a reply the protocol does not allow for the command
	// (a bug in the server or in the Target). The attempt is recorded as
	// Unknown and the workload reports the first such error.
	Err error
}

// Op is one recorded operation. Times are nanoseconds on the recorder's
// clock.
type Op struct {
	Client int
	Input  Input
	Output Output
	Call   int64
	Return int64
	// Unknown marks a maybe-applied write: Output and Return say nothing.
	Unknown bool
	Where   string
}

// Recorder collects the operations of concurrent clients. It is safe for
// concurrent use.
type Recorder struct {
	start time.Time // a monotonic reading: every stamp is time.Since(start)

	mu      sync.Mutex
	ops     []Op
	dropped int
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Call is an operation in flight, from Begin to End.
type Call struct {
	r      *Recorder
	client int
	in     Input
	call   int64
}

// Begin stamps the invocation of in by client (numbered from 0). Call it
// right before the request leaves.
func (r *Recorder) Begin(client int, in Input) *Call {
	return &Call{r: r, client: client, in: in, call: r.now()}
}

// End stamps the return and records the operation as rep says: a completed
// operation with its output, a maybe-applied write, or nothing at all for a
// refused operation or a read without a reply.
func (c *Call) End(rep Reply) {
	ret := c.r.now()
	op := Op{Client: c.client, Input: c.in, Output: rep.Output, Call: c.call, Return: ret, Where: rep.Where}
	switch {
	case rep.Err != nil || rep.Outcome == Unknown:
		if c.in.Kind == Get {
			c.r.drop()
			return
		}
		op.Unknown, op.Output = true, Output{}
	case rep.Outcome == Done:
	default:
		c.r.drop()
		return
	}
	c.r.mu.Lock()
	c.r.ops = append(c.r.ops, op)
	c.r.mu.Unlock()
}

func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

// Now is the time on the recorder's clock, to mark events (a fault's
// start) among the operations.
func (r *Recorder) Now() int64 { return r.now() }

func (r *Recorder) drop() {
	r.mu.Lock()
	r.dropped++
	r.mu.Unlock()
}

// Len returns how many operations were recorded, maybe-applied writes
// included.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// History returns a copy of the recorded operations and the number of
// attempts dropped (reads without a reply, refused operations).
func (r *Recorder) History() ([]Op, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...), r.dropped
}

// Check checks the history recorded so far (see the package function).
func (r *Recorder) Check(opt Options) (Result, error) {
	h, dropped := r.History()
	res, err := Check(h, opt)
	res.Dropped += dropped
	return res, err
}
