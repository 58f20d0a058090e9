package store

import "github.com/gomu-rdma/gomu/internal/resp"

// PING and ECHO touch no key, but they live in the command table too: inside
// MULTI they are queued and run with the transaction's other commands, on
// every replica alike. Outside a transaction the server answers them itself.
func init() {
	register(
		&Command{Name: "ping", Arity: -1, Flags: Fast, Group: "connection",
			Summary: "Returns the server's liveliness response.", run: ping},
		&Command{Name: "echo", Arity: 2, Flags: Fast, Group: "connection",
			Summary: "Returns the given string.", run: echo},
	)
}

func ping(_ *Store, _ *Env, dst []byte, args [][]byte) []byte {
	switch len(args) {
	case 1:
		return resp.AppendSimple(dst, "PONG")
	case 2:
		return resp.AppendBulk(dst, args[1])
	default:
		return AppendWrongArity(dst, "ping")
	}
}

func echo(_ *Store, _ *Env, dst []byte, args [][]byte) []byte {
	return resp.AppendBulk(dst, args[1])
}
