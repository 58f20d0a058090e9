package server

import (
	"strconv"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// appendGetKeys answers COMMAND GETKEYS command arg ...: the key
// arguments of a data command, found as Redis 7.0 finds them (fixed
// positions, SORT's STORE, the numkeys of the commands that take one).
func appendGetKeys(dst []byte, args [][]byte) []byte {
	cmd := store.Lookup(args[0])
	if lowerEq(args[0], "migrate") {
		return appendMigrateKeys(dst, args)
	}
	if cmd == nil || cmd.Flags&store.Internal != 0 {
		if lookupServerCommand(args[0]) != nil {
			return resp.AppendError(dst, "ERR The command has no key arguments")
		}
		return resp.AppendError(dst, "ERR Invalid command specified")
	}
	if cmd.FirstKey == 0 && cmd.Flags&store.MovableKeys == 0 {
		return resp.AppendError(dst, "ERR The command has no key arguments")
	}
	if !cmd.CheckArity(len(args)) {
		return resp.AppendError(dst, "ERR Invalid number of arguments specified for command")
	}
	pos, ok := keyPositions(cmd, args)
	if !ok || len(pos) == 0 && cmd.Flags&store.Scripted == 0 { // a script may take no keys
		return resp.AppendError(dst, "ERR Invalid arguments specified for command")
	}
	dst = resp.AppendArrayLen(dst, len(pos))
	for _, p := range pos {
		dst = resp.AppendBulk(dst, args[p])
	}
	return dst
}

// keyPositions lists the indexes of cmd's key arguments in args.
func keyPositions(cmd *store.Command, args [][]byte) ([]int, bool) {
	switch cmd.Name {
	case "sort", "sort_ro":
		return sortKeyPositions(args), true
	case "zunionstore", "zinterstore", "zdiffstore":
		return numkeysPositions(args, 2, []int{1})
	case "zunion", "zinter", "zdiff", "zintercard", "sintercard", "lmpop", "zmpop":
		return numkeysPositions(args, 1, nil)
	case "georadius":
		return geoRadiusKeyPositions(args, 6), true
	case "georadiusbymember":
		return geoRadiusKeyPositions(args, 5), true
	case "eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro":
		if string(args[2]) == "0" {
			return nil, true // a script may take no keys
		}
		return numkeysPositions(args, 2, nil)
	}
	last := cmd.LastKey
	if last < 0 {
		last += len(args)
	}
	step := max(cmd.Step, 1)
	var pos []int
	for i := cmd.FirstKey; i > 0 && i <= last && i < len(args); i += step {
		pos = append(pos, i)
	}
	return pos, true
}

// geoRadiusKeyPositions is GEORADIUS[BYMEMBER]'s key, then what follows
// its first STORE and its first STOREDIST, as Redis 7.0's key specs find
// them: keywords searched from the options (start) on, the last argument
// never taken for one.
func geoRadiusKeyPositions(args [][]byte, start int) []int {
	pos := []int{1}
	for _, kw := range []string{"store", "storedist"} {
		for i := start; i < len(args)-1; i++ {
			if lowerEq(args[i], kw) {
				pos = append(pos, i+1)
				break
			}
		}
	}
	return pos
}

// sortKeyPositions is SORT's key and, after the last STORE, its
// destination, skipping the arguments of LIMIT, GET and BY as Redis does.
func sortKeyPositions(args [][]byte) []int {
	pos := []int{1}
	store := 0
	skips := map[string]int{"limit": 2, "get": 1, "by": 1}
	for i := 2; i < len(args); i++ {
		lower := string(lowerInto(nil, args[i]))
		if n, ok := skips[lower]; ok {
			i += n
			continue
		}
		if lower == "store" && i+1 < len(args) {
			store = i + 1
		}
	}
	if store > 0 {
		pos = append(pos, store)
	}
	return pos
}

// numkeysPositions reads the count at args[at] and returns fixed, then
// the count keys after it.
func numkeysPositions(args [][]byte, at int, fixed []int) ([]int, bool) {
	n, err := strconv.Atoi(string(args[at]))
	if err != nil || n < 1 || at+n >= len(args) {
		return nil, false
	}
	pos := append([]int(nil), fixed...)
	for i := at + 1; i <= at+n; i++ {
		pos = append(pos, i)
	}
	return pos, true
}
