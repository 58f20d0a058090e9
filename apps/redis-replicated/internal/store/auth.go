package store

import "github.com/gomu-rdma/gomu/internal/resp"

// AUTH runs here only inside a transaction (the server answers it outside
// one, with AppendAuth too), as PING and ECHO do.
func init() {
	register(&Command{Name: "auth", Arity: -2, Flags: Fast, Group: "connection",
		Summary: "Authenticates the connection.", run: auth})
}

func auth(_ *Store, _ *Env, dst []byte, args [][]byte) []byte { return AppendAuth(dst, args) }

// AppendAuth is AUTH's reply on a server without passwords, as Redis's
// with its default user (no password, every command): AUTH <password> is
// an error, AUTH default <anything> succeeds, no other user exists.
func AppendAuth(dst []byte, args [][]byte) []byte {
	switch {
	case len(args) == 2:
		return resp.AppendError(dst, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	case len(args) == 3 && string(args[1]) == "default":
		return resp.AppendOK(dst)
	case len(args) == 3:
		return resp.AppendError(dst, "WRONGPASS invalid username-password pair or user is disabled.")
	default:
		return resp.AppendError(dst, "ERR syntax error")
	}
}
