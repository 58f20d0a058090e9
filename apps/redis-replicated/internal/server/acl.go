package server

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gomu-rdma/gomu/apps/redis-replicated/internal/store"
	"github.com/gomu-rdma/gomu/internal/resp"
)

// ACLs (Redis 7.0's, without selectors). The users are the store's
// replicated state (store/acl.go): ACL SETUSER and DELUSER propose the
// internal gomu.acl. A connection's user is its own, per replica: it
// starts as the default user and changes with AUTH and HELLO … AUTH.
//
// The dispatch asks one thing of every command: c.user's Unrestricted
// (the default user's "on nopass ~* &* +@all"); only otherwise does it
// check authentication and permissions (aclRefuses). A script call of a
// restricted user is wrapped for the log in gomu.asuser, so that its
// redis.call checks the same user on every replica.

func init() {
	// The store checks key permissions with the server's getkeys logic.
	store.KeyPositions = keyPositions
}

// setDefaultAuth makes the connection the default user's, authenticated
// if that user needs no password (Redis's clientSetDefaultAuth): at its
// creation and on RESET.
func (c *conn) setDefaultAuth() {
	var u *store.ACLUser
	c.s.cfg.Machine.read(func(st *store.Store) { u = st.ACLUser(store.DefaultUserName) })
	c.setUser(u)
	c.authed = u.NoPass() && u.Authenticates(nil)
}

// noteScriptDenial is the Env's ACLDenied: a script's redis.call the
// user may not run, for the ACL LOG (context lua).
func (c *conn) noteScriptDenial(u *store.ACLUser, d store.ACLDenial, args [][]byte, at int) {
	c.s.acl.note(c, d, "lua", aclObject(d, args, at), u.Name())
}

func (c *conn) setUser(u *store.ACLUser) {
	c.user.Store(u)
	c.env.ACL = u
	c.env.ACLDenied = c.noteScriptDenial
}

// aclRefuses is the dispatch's check for a connection whose user is not
// unrestricted: authentication (NOAUTH), a deleted user (the connection
// closes), then the command's permissions (NOPERM, noted in the ACL log).
// A refused command inside MULTI fails the transaction, as in Redis.
func (c *conn) aclRefuses(args [][]byte, noAuth bool) (refused, quit bool) {
	u := c.user.Load()
	if u.Deleted() {
		return true, true
	}
	if !c.authed && !noAuth && c.authRequired() {
		c.refuse("NOAUTH Authentication required.")
		return true, false
	}
	denied, at := u.Check(args)
	if denied == store.ACLOK {
		return false, false
	}
	ctx := "toplevel"
	if c.multi {
		ctx = "multi"
	}
	c.s.acl.note(c, denied, ctx, aclObject(denied, args, at), u.Name())
	switch denied {
	case store.ACLDeniedCommand:
		c.refuse("NOPERM this user has no permissions to run the '" + store.ACLFullName(args) + "' command")
	case store.ACLDeniedKey:
		c.refuse("NOPERM this user has no permissions to access one of the keys used as arguments")
	default:
		c.refuse("NOPERM this user has no permissions to access one of the channels used as arguments")
	}
	return true, false
}

// aclObject is what the ACL log names as refused: the command, or the key
// or channel.
func aclObject(d store.ACLDenial, args [][]byte, at int) string {
	if d == store.ACLDeniedCommand {
		return store.ACLFullName(args)
	}
	return string(args[at])
}

// authRequired: the default user needs a password or is off (Redis's
// authRequired, for a connection that never authenticated).
func (c *conn) authRequired() bool {
	var u *store.ACLUser
	c.s.cfg.Machine.read(func(st *store.Store) { u = st.ACLUser(store.DefaultUserName) })
	return !u.NoPass() || !u.Authenticates(nil)
}

// asUser wraps a script call of a restricted user for the log (see
// store.AsUserCommand); anything else is returned as it is.
func (c *conn) asUser(cmd *store.Command, args [][]byte) [][]byte {
	u := c.user.Load()
	if cmd.Flags&store.Scripted == 0 || u.Unrestricted() {
		return args
	}
	return append([][]byte{[]byte(store.AsUserCommand), []byte(u.Name())}, args...)
}

// authenticate logs the connection in as user with password; false (and
// an ACL log entry) if the pair is wrong or the user is off.
func (c *conn) authenticate(user, password []byte) bool {
	var u *store.ACLUser
	c.s.cfg.Machine.read(func(st *store.Store) { u = st.ACLUser(string(user)) })
	if u == nil || !u.Authenticates(password) {
		ctx := "toplevel"
		if c.multi {
			ctx = "multi"
		}
		c.s.acl.noteAuth(c, ctx, string(user))
		return false
	}
	c.setUser(u)
	c.authed = true
	return true
}

// killDeleted closes this replica's connections whose user was deleted
// (Redis kills them as DELUSER runs; the other replicas' connections close
// at their next command).
func (s *Server) killDeleted(self *conn) {
	for _, o := range s.connsByID() {
		if o.user.Load().Deleted() {
			o.kill(self)
		}
	}
}

// killRevokedSubscribers closes this replica's connections of user that
// are subscribed to a channel or pattern the user may no longer use, as
// Redis does after ACL SETUSER (another replica's stay open, their
// messages still flowing: see doc.go).
func (s *Server) killRevokedSubscribers(self *conn, user string) {
	h := s.cfg.Machine.hub
	for _, o := range s.connsByID() {
		u := o.user.Load()
		if u.Name() != user {
			continue
		}
		var subs [][]byte
		h.mu.Lock()
		if o.sub != nil {
			for ch := range o.sub.channels {
				subs = append(subs, []byte(ch))
			}
			for p := range o.sub.patterns {
				subs = append(subs, append([]byte{0}, p...))
			}
		}
		h.mu.Unlock()
		for _, ch := range subs {
			cmd := [][]byte{[]byte("subscribe"), ch}
			if len(ch) > 0 && ch[0] == 0 {
				cmd = [][]byte{[]byte("psubscribe"), ch[1:]}
			}
			if d, _ := u.Check(cmd); d == store.ACLDeniedChannel {
				o.kill(self)
				break
			}
		}
	}
}

func cmdACL(c *conn, args [][]byte) bool {
	out := c.reply()
	sub := strings.ToLower(string(args[1]))
	if arity, known := aclSubArity[sub]; known && (arity > 0 && len(args) != arity || len(args) < -arity) {
		*out = resp.AppendError(*out, "ERR wrong number of arguments for 'acl|"+sub+"' command")
		return false
	}
	switch {
	case sub == "setuser" && len(args) >= 3, sub == "deluser" && len(args) >= 3:
		res := c.proposeInternal(nil, append([][]byte{[]byte(store.ACLCommand)}, args[1:]...))
		*out = append(*out, res...)
		if sub == "deluser" && len(res) > 0 && res[0] == ':' {
			c.s.killDeleted(c)
			return c.user.Load().Deleted()
		}
		if sub == "setuser" && len(res) > 0 && res[0] == '+' {
			c.s.killRevokedSubscribers(c, string(args[2]))
		}
	case sub == "getuser" && len(args) == 3:
		var u *store.ACLUser
		c.s.cfg.Machine.read(func(st *store.Store) { u = st.ACLUser(string(args[2])) })
		if u == nil {
			*out = c.appendNull(*out)
			return false
		}
		*out = u.AppendACLGetUser(*out, c.proto.Load() == 3)
	case (sub == "list" || sub == "users") && len(args) == 2:
		var lines []string
		c.s.cfg.Machine.read(func(st *store.Store) {
			for _, n := range st.ACLUserNames() {
				if sub == "users" {
					lines = append(lines, n)
				} else {
					lines = append(lines, st.ACLUser(n).ACLDescription())
				}
			}
		})
		*out = resp.AppendArrayLen(*out, len(lines))
		for _, l := range lines {
			*out = resp.AppendBulkString(*out, l)
		}
	case sub == "whoami" && len(args) == 2:
		*out = resp.AppendBulkString(*out, c.user.Load().Name())
	case (sub == "load" || sub == "save"):
		*out = resp.AppendError(*out, "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.")
	case sub == "cat" && len(args) == 2:
		cats := store.ACLCategories()
		*out = resp.AppendArrayLen(*out, len(cats))
		for _, n := range cats {
			*out = resp.AppendBulkString(*out, n)
		}
	case sub == "cat" && len(args) == 3:
		names, ok := store.ACLCategoryCommands(string(args[2]))
		if !ok {
			*out = resp.AppendError(*out, "ERR Unknown category '"+truncated(args[2])+"'")
			return false
		}
		*out = resp.AppendArrayLen(*out, len(names))
		for _, n := range names {
			*out = resp.AppendBulkString(*out, n)
		}
	case sub == "genpass" && (len(args) == 2 || len(args) == 3):
		*out = appendGenPass(*out, args)
	case sub == "log" && (len(args) == 2 || len(args) == 3):
		*out = c.s.acl.appendLog(c, *out, args)
	case sub == "dryrun" && len(args) >= 4:
		*out = c.aclDryRun(*out, args)
	case sub == "help" && len(args) == 2:
		*out = appendHelp(*out, "ACL", aclHelp)
	case aclSubArity[sub] != 0:
		*out = resp.AppendError(*out, "ERR unknown subcommand or wrong number of arguments for '"+truncated(args[1])+"'. Try ACL HELP.")
	default:
		*out = resp.AppendError(*out, "ERR unknown subcommand '"+truncated(args[1])+"'. Try ACL HELP.")
	}
	return false
}

// aclSubArity are the ACL subcommands' arities (Redis's, the
// subcommand's name included).
var aclSubArity = map[string]int{"setuser": -3, "getuser": 3, "deluser": -3, "list": 2, "users": 2, "whoami": 2,
	"cat": -2, "genpass": -2, "log": -2, "dryrun": -4, "load": 2, "save": 2, "help": 2}

// appendNull is a null reply: RESP2's null bulk string, RESP3's null.
func (c *conn) appendNull(b []byte) []byte {
	if c.proto.Load() == 3 {
		return append(b, "_\r\n"...)
	}
	return append(b, "$-1\r\n"...)
}

func appendGenPass(out []byte, args [][]byte) []byte {
	bits := int64(256)
	if len(args) == 3 {
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			return resp.AppendError(out, "ERR value is not an integer or out of range")
		}
		bits = n
	}
	if bits <= 0 || bits > 4096 {
		return resp.AppendError(out, "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096")
	}
	raw := make([]byte, 512)
	_, _ = rand.Read(raw)
	return resp.AppendBulkString(out, hex.EncodeToString(raw)[:(bits+3)/4])
}

// aclDryRun is ACL DRYRUN user command arg ...
func (c *conn) aclDryRun(out []byte, args [][]byte) []byte {
	var u *store.ACLUser
	c.s.cfg.Machine.read(func(st *store.Store) { u = st.ACLUser(string(args[2])) })
	if u == nil {
		return resp.AppendError(out, "ERR User '"+string(args[2])+"' not found")
	}
	cmdArgs := args[3:]
	name := store.ACLFullName(cmdArgs)
	if name == "" {
		return resp.AppendError(out, "ERR Command '"+string(args[3])+"' not found")
	}
	if !arityFits(cmdArgs) {
		return resp.AppendError(out, "ERR wrong number of arguments for '"+name+"' command")
	}
	switch denied, at := u.Check(cmdArgs); denied {
	case store.ACLDeniedCommand:
		return resp.AppendBulkString(out, "This user has no permissions to run the '"+name+"' command")
	case store.ACLDeniedKey:
		return resp.AppendBulkString(out, "This user has no permissions to access the '"+string(cmdArgs[at])+"' key")
	case store.ACLDeniedChannel:
		return resp.AppendBulkString(out, "This user has no permissions to access the '"+string(cmdArgs[at])+"' channel")
	}
	return resp.AppendOK(out)
}

// arityFits checks a command's argument count against this server's
// tables (a command only Redis has is let through).
func arityFits(args [][]byte) bool {
	if h := lookupServerCommand(args[0]); h != nil {
		return h.check(len(args))
	}
	if cmd := store.Lookup(args[0]); cmd != nil {
		return cmd.CheckArity(len(args))
	}
	return true
}

var aclHelp = []string{
	"CAT [<category>]",
	"    List all commands that belong to <category>, or all command categories",
	"    when no category is specified.",
	"DELUSER <username> [<username> ...]",
	"    Delete a list of users.",
	"DRYRUN <username> <command> [<arg> ...]",
	"    Returns whether the user can execute the given command without executing the command.",
	"GETUSER <username>",
	"    Get the user's details.",
	"GENPASS [<bits>]",
	"    Generate a secure 256-bit user password. The optional `bits` argument can",
	"    be used to specify a different size.",
	"LIST",
	"    Show users details in config file format.",
	"LOAD",
	"    Reload users from the ACL file.",
	"LOG [<count> | RESET]",
	"    Show the ACL log entries.",
	"SAVE",
	"    Save the current config to the ACL file.",
	"SETUSER <username> <attribute> [<attribute> ...]",
	"    Create or modify a user with the specified attributes.",
	"USERS",
	"    List all the registered usernames.",
	"WHOAMI",
	"    Return the current connection username.",
}

// aclLog is this replica's ACL LOG (as each Redis node keeps its own):
// the refusals its connections met, newest first, at most aclLogMax.
type aclLog struct {
	mu      sync.Mutex
	entries []*aclLogEntry
	// max is acllog-max-len less Redis's default (so that the zero
	// value is the default).
	max int64
}

const aclLogMax = 128 // Redis's acllog-max-len default

func (l *aclLog) maxLen() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max + aclLogMax
}

func (l *aclLog) setMaxLen(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max = n - aclLogMax
	if int64(len(l.entries)) > n {
		l.entries = l.entries[:n]
	}
}

type aclLogEntry struct {
	count                         int64
	reason, context, object, user string
	at                            time.Time
	clientInfo                    string
}

func (l *aclLog) note(c *conn, d store.ACLDenial, ctx, object, user string) {
	reason := [...]string{store.ACLDeniedCommand: "command", store.ACLDeniedKey: "key", store.ACLDeniedChannel: "channel"}[d]
	l.add(c, &aclLogEntry{count: 1, reason: reason, context: ctx, object: object, user: user})
}

func (l *aclLog) noteAuth(c *conn, ctx, user string) {
	l.add(c, &aclLogEntry{count: 1, reason: "auth", context: ctx, object: "AUTH", user: user})
}

// add records e, or counts it on a like entry among the 10 newest (the
// one Redis updates and moves to the front).
func (l *aclLog) add(c *conn, e *aclLogEntry) {
	line := c.appendClientLine(nil, c, strings.ToLower(e.object))
	e.clientInfo = strings.TrimSuffix(string(line), "\n")
	e.at = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < len(l.entries) && i < 10; i++ {
		o := l.entries[i]
		if o.reason == e.reason && o.context == e.context && o.object == e.object && o.user == e.user {
			o.count++
			o.at, o.clientInfo = e.at, e.clientInfo
			copy(l.entries[1:i+1], l.entries[:i])
			l.entries[0] = o
			return
		}
	}
	l.entries = append([]*aclLogEntry{e}, l.entries...)
	if n := l.max + aclLogMax; int64(len(l.entries)) > n {
		l.entries = l.entries[:n]
	}
}

// appendLog answers ACL LOG [count | RESET].
func (l *aclLog) appendLog(c *conn, out []byte, args [][]byte) []byte {
	count := int64(10)
	if len(args) == 3 {
		if lowerEq(args[2], "reset") {
			l.mu.Lock()
			l.entries = nil
			l.mu.Unlock()
			return resp.AppendOK(out)
		}
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			return resp.AppendError(out, "ERR value is not an integer or out of range")
		}
		count = max(n, 0)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	count = min(count, int64(len(l.entries)))
	out = resp.AppendArrayLen(out, int(count))
	now := time.Now()
	for _, e := range l.entries[:count] {
		out = c.appendMapLen(out, 7)
		out = resp.AppendBulkString(out, "count")
		out = resp.AppendInt(out, e.count)
		for _, kv := range [][2]string{{"reason", e.reason}, {"context", e.context}, {"object", e.object}, {"username", e.user}} {
			out = resp.AppendBulkString(out, kv[0])
			out = resp.AppendBulkString(out, kv[1])
		}
		out = resp.AppendBulkString(out, "age-seconds")
		age := strconv.FormatFloat(float64(now.Sub(e.at).Milliseconds())/1000, 'g', 17, 64)
		if c.proto.Load() == 3 {
			out = append(append(append(out, ','), age...), "\r\n"...)
		} else {
			out = resp.AppendBulkString(out, age)
		}
		out = resp.AppendBulkString(out, "client-info")
		out = resp.AppendBulkString(out, e.clientInfo)
	}
	return out
}

// appendHelp is Redis's addReplyHelp: status lines, a header, the lines,
// and HELP's own.
func appendHelp(out []byte, cmd string, lines []string) []byte {
	out = resp.AppendArrayLen(out, len(lines)+3)
	out = resp.AppendSimple(out, cmd+" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		out = resp.AppendSimple(out, l)
	}
	out = resp.AppendSimple(out, "HELP")
	return resp.AppendSimple(out, "    Prints this help.")
}
