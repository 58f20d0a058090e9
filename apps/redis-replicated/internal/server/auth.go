package server

import (
	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

// cmdAuth is AUTH [user] password. Inside MULTI it is queued as PING is
// (store.AppendAuth answers it at EXEC, without logging in).
func cmdAuth(c *conn, args [][]byte) bool {
	if c.multi {
		return cmdPingEcho(c, args)
	}
	out := c.reply()
	switch len(args) {
	case 2:
		var def *store.ACLUser
		c.s.cfg.Machine.read(func(st *store.Store) { def = st.ACLUser(store.DefaultUserName) })
		if def.NoPass() {
			*out = resp.AppendError(*out, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
			return false
		}
		if !c.authenticate([]byte(store.DefaultUserName), args[1]) {
			*out = resp.AppendError(*out, errWrongPass)
			return false
		}
	case 3:
		if !c.authenticate(args[1], args[2]) {
			*out = resp.AppendError(*out, errWrongPass)
			return false
		}
	default:
		*out = resp.AppendError(*out, "ERR syntax error")
		return false
	}
	*out = resp.AppendOK(*out)
	return false
}
