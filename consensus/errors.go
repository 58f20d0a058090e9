package consensus

import (
	"errors"
	"fmt"
)

// ErrNotLeader is returned by Propose on a replica that is not the leader,
// or that lost its majority or its permissions. Leader is the replica this
// one believes leads, 0 when it knows none. Test with errors.As, or with
// errors.Is(err, ErrNotLeaderSentinel).
type ErrNotLeader struct{ Leader int }

func (e ErrNotLeader) Error() string {
	if e.Leader == 0 {
		return "consensus: not the leader (no leader known)"
	}
	return fmt.Sprintf("consensus: not the leader (leader is %d)", e.Leader)
}

// Is makes errors.Is(err, ErrNotLeaderSentinel) hold for every ErrNotLeader.
func (e ErrNotLeader) Is(target error) bool { return target == ErrNotLeaderSentinel }

var (
	// ErrNotLeaderSentinel matches any ErrNotLeader with errors.Is.
	ErrNotLeaderSentinel = errors.New("consensus: not the leader")
	// ErrClosed is returned by calls on a closed replica.
	ErrClosed = errors.New("consensus: replica closed")
	// ErrPaused is returned by Propose while the replica is paused.
	ErrPaused = errors.New("consensus: replica paused")
	// ErrTooLarge is returned for a command longer than Config.MaxCommand.
	ErrTooLarge = errors.New("consensus: command larger than the command limit")
	// ErrCatchingUp is returned by ReadBarrier on a replica that is
	// catching up (see Replica.CatchingUp): its state misses committed
	// entries, so nothing may be read from it; the leader's may.
	ErrCatchingUp = errors.New("consensus: replica catching up")
	// ErrBusy is returned when MaxWaiters Propose calls are already waiting.
	ErrBusy = errors.New("consensus: too many concurrent proposals")
)
