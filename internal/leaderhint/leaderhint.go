// Package leaderhint is how gomu's servers name the leader in an error
// reply, and how clients read it back: a replica that cannot serve a
// request (a write on a follower, a read on a replica catching up) appends
//
//	leader=<id> addr=<host:port>
//
// to its error (READONLY and TRYAGAIN for Redis), naming the replica it sees
// leading and that replica's client address, so that a client moves there.
// One format for every app and client, written and parsed here only.
package leaderhint

import (
	"fmt"
	"strconv"
	"strings"
)

// Format returns the hint naming leader id at client address addr.
func Format(id int, addr string) string {
	return fmt.Sprintf("leader=%d addr=%s", id, addr)
}

// Parse finds the hint in an error message: the leader's id (0 when the
// message names none, or "leader=none") and its address ("" when absent).
func Parse(msg string) (id int, addr string) {
	for _, w := range strings.Fields(msg) {
		if v, ok := strings.CutPrefix(w, "leader="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				id = n
			}
		} else if v, ok := strings.CutPrefix(w, "addr="); ok {
			addr = v
		}
	}
	return id, addr
}
