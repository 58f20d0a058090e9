package store

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gomu-rdma/gomu/internal/resp"
)

// ACL users, as Redis 7.0's (without selectors): replicated state. ACL
// SETUSER and DELUSER reach every replica as the internal gomu.acl, in log
// order, so every replica has the same users; the snapshot keeps them
// (section 'A', snapshot.go).
//
// A connection holds the *ACLUser it authenticated as. A user's
// permissions are an immutable aclPerms behind an atomic pointer, replaced
// whole by SETUSER: a connection's goroutine reads them without a lock, and
// Unrestricted (one load, one field) is all the hot path asks of the
// all-permissive default user.

// ACLCommand is the internal write command ACL SETUSER and DELUSER
// propose: "gomu.acl setuser name rule ..." and "gomu.acl deluser name ...".
const ACLCommand = "gomu.acl"

// aclCategory is one of Redis 7.0's command categories, as a bit.
type aclCategory uint32

const (
	catKeyspace aclCategory = 1 << iota
	catRead
	catWrite
	catSet
	catSortedset
	catList
	catHash
	catString
	catBitmap
	catHyperloglog
	catGeo
	catStream
	catPubsub
	catAdmin
	catFast
	catSlow
	catBlocking
	catDangerous
	catConnection
	catTransaction
	catScripting
)

// aclCategoryNames are the categories in Redis's order (ACL CAT, and the
// order ACL LIST tries them in).
var aclCategoryNames = []string{"keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
	"bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
	"blocking", "dangerous", "connection", "transaction", "scripting"}

// aclCommandEntry is one row of aclCommandTable (acl_table.go).
type aclCommandEntry struct {
	name   string
	cats   aclCategory
	noAuth bool
}

// The command table's indexes: by full name, each entry's subcommands,
// and whether it is a subcommand. A user's command bitmap is indexed by
// table row; one more bit, aclFutureBit, is set only by +@all (it lets the
// user run commands the table does not know, as Redis's reserved bit).
var (
	aclIndex     = map[string]int{}
	aclChildren  [][]int
	aclIsSub     []bool
	aclFutureBit int
	aclWords     int
)

func init() {
	aclChildren = make([][]int, len(aclCommandTable))
	aclIsSub = make([]bool, len(aclCommandTable))
	for i, e := range aclCommandTable {
		aclIndex[e.name] = i
		if parent, _, ok := strings.Cut(e.name, "|"); ok {
			p := aclIndex[parent] // the table is in name order: the parent came first
			aclChildren[p] = append(aclChildren[p], i)
			aclIsSub[i] = true
		}
	}
	aclFutureBit = len(aclCommandTable)
	aclWords = aclFutureBit/64 + 1
	register(&Command{Name: ACLCommand, Arity: -3, Flags: Write | Internal, Group: "server",
		Summary: "Create, change or delete ACL users (ACL SETUSER, ACL DELUSER)", run: cmdACL})
	register(&Command{Name: AsUserCommand, Arity: -3, Flags: Write | Internal, Group: "server",
		Summary: "Run a script for a user (its redis.call checks the user's permissions)", run: cmdAsUser})
}

// aclCategoryByName is the bit of a category name (any case), 0 if none.
func aclCategoryByName(name string) aclCategory {
	for i, n := range aclCategoryNames {
		if strings.EqualFold(n, name) {
			return 1 << i
		}
	}
	return 0
}

// Key pattern permissions (%R~, %W~; ~ is both).
const (
	aclRead  = 1
	aclWrite = 2
	aclAll   = aclRead | aclWrite
)

type aclKeyPattern struct {
	pattern string
	flags   uint8
}

// User flags beyond on/off and nopass, as Redis prints them.
const (
	sanitizeNone = iota
	sanitizeSkip
	sanitizePayload
)

// aclPerms is one state of a user: never changed once published.
type aclPerms struct {
	enabled   bool
	nopass    bool
	sanitize  uint8
	passwords []string // SHA-256 hex, in the order added

	allKeys     bool
	keys        []aclKeyPattern
	allChannels bool
	channels    []string
	// allCommands is Redis's ALLCOMMANDS flag (any command, no bit
	// test); allowed the bitmap, by table row.
	allCommands bool
	allowed     []uint64
	// firstArgs are the first arguments allowed of an otherwise denied
	// command without subcommands (+select|0), by table row.
	firstArgs map[int][]string

	// free: every command, key and channel. open: free, on and without
	// a password, so that no connection of the user needs a check (the
	// only thing the hot path looks at). deleted: the user was deleted
	// (its connections close).
	free    bool
	open    bool
	deleted bool
}

func newPerms() *aclPerms {
	return &aclPerms{allowed: make([]uint64, aclWords)}
}

func (p *aclPerms) clone() *aclPerms {
	n := *p
	n.passwords = slices.Clone(p.passwords)
	n.keys = slices.Clone(p.keys)
	n.channels = slices.Clone(p.channels)
	n.allowed = slices.Clone(p.allowed)
	if p.firstArgs != nil {
		n.firstArgs = make(map[int][]string, len(p.firstArgs))
		for k, v := range p.firstArgs {
			n.firstArgs[k] = slices.Clone(v)
		}
	}
	return &n
}

func (p *aclPerms) bit(i int) bool { return p.allowed[i/64]&(1<<(i%64)) != 0 }

func (p *aclPerms) setBit(i int, on bool) {
	if on {
		p.allowed[i/64] |= 1 << (i % 64)
	} else {
		p.allowed[i/64] &^= 1 << (i % 64)
		p.allCommands = false
	}
}

// changePerm allows or denies a command and, for a container, all its
// subcommands (Redis's ACLChangeSelectorPerm).
func (p *aclPerms) changePerm(i int, allow bool) {
	p.setBit(i, allow)
	delete(p.firstArgs, i)
	for _, c := range aclChildren[i] {
		p.setBit(c, allow)
	}
}

func (p *aclPerms) setCategory(cat aclCategory, allow bool) {
	for i, e := range aclCommandTable {
		if e.cats&cat != 0 {
			p.changePerm(i, allow)
		}
	}
}

func (p *aclPerms) setAll(allow bool) {
	var fill uint64
	if allow {
		fill = ^uint64(0)
	}
	for i := range p.allowed {
		p.allowed[i] = fill
	}
	p.allCommands = allow
	p.firstArgs = nil
}

// Errors of a rule, as Redis words them after "Error in ACL SETUSER
// modifier '<rule>': ".
const (
	aclErrUnknown  = "Unknown command or category name in ACL"
	aclErrSyntax   = "Syntax error"
	aclErrKeys     = "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
	aclErrChannels = "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels"
	aclErrNoPass   = "The password you are trying to remove from the user does not exist"
	aclErrHash     = "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
	aclErrFirstArg = "Allowing first-arg of a subcommand is not supported"
	// Selectors are not supported here (documented in doc.go).
	aclErrSelectors = "selectors are not supported by this server (gomu)"
)

// apply changes p by one rule; it returns the error text, "" if none.
func (p *aclPerms) apply(op string) string {
	lower := strings.ToLower(op)
	switch {
	case op == "":
		return ""
	case lower == "on":
		p.enabled = true
	case lower == "off":
		p.enabled = false
	case lower == "skip-sanitize-payload":
		p.sanitize = sanitizeSkip
	case lower == "sanitize-payload":
		p.sanitize = sanitizePayload
	case lower == "nopass":
		p.nopass, p.passwords = true, nil
	case lower == "resetpass":
		p.nopass, p.passwords = false, nil
	case op[0] == '>' || op[0] == '#':
		hash, ok := passwordHash(op)
		if !ok {
			return aclErrHash
		}
		if !slices.Contains(p.passwords, hash) {
			p.passwords = append(p.passwords, hash)
		}
		p.nopass = false
	case op[0] == '<' || op[0] == '!':
		hash, ok := passwordHash(op)
		if !ok {
			return aclErrHash
		}
		i := slices.Index(p.passwords, hash)
		if i < 0 {
			return aclErrNoPass
		}
		p.passwords = slices.Delete(p.passwords, i, i+1)
	case op[0] == '(' || lower == "clearselectors":
		if lower == "clearselectors" {
			return ""
		}
		return aclErrSelectors
	case lower == "reset":
		for _, r := range []string{"resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "-@all"} {
			p.apply(r)
		}
	default:
		return p.applySelector(op, lower)
	}
	return ""
}

// passwordHash is the hash a >pass, <pass (hashed) or #hash, !hash (checked)
// rule names.
func passwordHash(op string) (string, bool) {
	if op[0] == '>' || op[0] == '<' {
		sum := sha256.Sum256([]byte(op[1:]))
		return hex.EncodeToString(sum[:]), true
	}
	h := op[1:]
	if len(h) != 64 {
		return "", false
	}
	for _, c := range []byte(h) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return h, true
}

// applySelector is the rules of keys, channels and commands.
func (p *aclPerms) applySelector(op, lower string) string {
	switch {
	case lower == "allkeys" || lower == "~*":
		p.allKeys, p.keys = true, nil
	case lower == "resetkeys":
		p.allKeys, p.keys = false, nil
	case lower == "allchannels" || lower == "&*":
		p.allChannels, p.channels = true, nil
	case lower == "resetchannels":
		p.allChannels, p.channels = false, nil
	case lower == "allcommands" || lower == "+@all":
		p.setAll(true)
	case lower == "nocommands" || lower == "-@all":
		p.setAll(false)
	case op[0] == '~' || op[0] == '%':
		return p.addKeyPattern(op)
	case op[0] == '&':
		if p.allChannels {
			return aclErrChannels
		}
		if hasSpaces(op[1:]) {
			return aclErrSyntax
		}
		if !slices.Contains(p.channels, op[1:]) {
			p.channels = append(p.channels, op[1:])
		}
	case len(op) > 1 && (op[0] == '+' || op[0] == '-') && op[1] == '@':
		cat := aclCategoryByName(op[2:])
		if cat == 0 {
			return aclErrUnknown
		}
		p.setCategory(cat, op[0] == '+')
	case op[0] == '+':
		return p.allowCommand(lower[1:])
	case op[0] == '-':
		i, ok := aclIndex[lower[1:]]
		if !ok {
			return aclErrUnknown
		}
		p.changePerm(i, false)
	default:
		return aclErrSyntax
	}
	return ""
}

func (p *aclPerms) addKeyPattern(op string) string {
	if p.allKeys {
		return aclErrKeys
	}
	flags, rest := uint8(aclAll), op[1:]
	if op[0] == '%' {
		flags = 0
		i := 1
		for ; i < len(op); i++ {
			c := op[i] | 0x20
			if c == 'r' && flags&aclRead == 0 {
				flags |= aclRead
			} else if c == 'w' && flags&aclWrite == 0 {
				flags |= aclWrite
			} else if op[i] == '~' {
				i++
				break
			} else {
				return aclErrSyntax
			}
		}
		rest = op[i:]
	}
	if hasSpaces(rest) {
		return aclErrSyntax
	}
	for i := range p.keys {
		if p.keys[i].pattern == rest {
			p.keys[i].flags |= flags
			return ""
		}
	}
	p.keys = append(p.keys, aclKeyPattern{pattern: rest, flags: flags})
	return ""
}

// allowCommand is +cmd, +cmd|sub and +cmd|firstarg.
func (p *aclPerms) allowCommand(name string) string {
	base, sub, hasSub := cutLast(name, "|")
	if !hasSub {
		i, ok := aclIndex[name]
		if !ok {
			return aclErrUnknown
		}
		p.changePerm(i, true)
		return ""
	}
	i, ok := aclIndex[base]
	switch {
	case !ok:
		return aclErrUnknown
	case aclIsSub[i]:
		return aclErrFirstArg
	case sub == "":
		return aclErrSyntax
	case len(aclChildren[i]) > 0:
		j, ok := aclIndex[name]
		if !ok {
			return aclErrUnknown
		}
		p.changePerm(j, true)
	default:
		if p.firstArgs == nil {
			p.firstArgs = map[int][]string{}
		}
		if !slices.Contains(p.firstArgs[i], sub) {
			p.firstArgs[i] = append(p.firstArgs[i], sub)
		}
	}
	return ""
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// hasSpaces is Redis's ACLStringHasSpaces: a space or a NUL.
func hasSpaces(s string) bool { return strings.ContainsAny(s, " \x00") }

// settle computes the derived fields once the rules are applied.
func (p *aclPerms) settle() *aclPerms {
	p.free = p.allCommands && p.allKeys && p.allChannels && !p.deleted
	p.open = p.free && p.enabled && p.nopass
	return p
}

// ACLUser is one user; connections hold it.
type ACLUser struct {
	name  string
	perms atomic.Pointer[aclPerms]
}

func newUser(name string, p *aclPerms) *ACLUser {
	u := &ACLUser{name: name}
	u.perms.Store(p.settle())
	return u
}

// Name is the user's name.
func (u *ACLUser) Name() string { return u.name }

// Unrestricted reports whether the user may run every command on every
// key and channel, and is on and without a password (so that even a
// connection that never logged in needs no check): the dispatch's one
// check on the hot path.
func (u *ACLUser) Unrestricted() bool { return u.perms.Load().open }

// Deleted reports whether the user was deleted since a connection
// authenticated as it.
func (u *ACLUser) Deleted() bool { return u.perms.Load().deleted }

// NoPass reports whether the user needs no password.
func (u *ACLUser) NoPass() bool { return u.perms.Load().nopass }

// Authenticates reports whether password logs in as u: on, and nopass or
// one of its passwords.
func (u *ACLUser) Authenticates(password []byte) bool {
	p := u.perms.Load()
	if !p.enabled || p.deleted {
		return false
	}
	if p.nopass {
		return true
	}
	sum := sha256.Sum256(password)
	return slices.Contains(p.passwords, hex.EncodeToString(sum[:]))
}

// ACLDenial is why a user may not run a command.
type ACLDenial int

const (
	ACLOK ACLDenial = iota
	ACLDeniedCommand
	ACLDeniedKey
	ACLDeniedChannel
)

// aclLookup is the table row of the command args name (its subcommand's,
// for a container with a known one), or -1.
func aclLookup(args [][]byte) int {
	var buf [64]byte
	name := lowerInto(buf[:0], args[0])
	if len(name) == 0 && len(args[0]) > 0 {
		return -1
	}
	i, ok := aclIndex[string(name)]
	if !ok {
		return -1
	}
	if len(aclChildren[i]) > 0 && len(args) > 1 {
		full := append(append(name, '|'), lowerInto(buf[len(name)+1:len(name)+1], args[1])...)
		if j, ok := aclIndex[string(full)]; ok {
			return j
		}
	}
	return i
}

// ACLFullName is the name Redis's errors give the command args: "get",
// "config|set"; "" if the table has no such command.
func ACLFullName(args [][]byte) string {
	if i := aclLookup(args); i >= 0 {
		return aclCommandTable[i].name
	}
	return ""
}

// Check reports whether the user may run args and, when not, why and the
// index of the key or channel refused (a nil user may run anything). Commands the table does not know
// are left to the caller's unknown-command error.
func (u *ACLUser) Check(args [][]byte) (ACLDenial, int) {
	if u == nil {
		return ACLOK, 0
	}
	p := u.perms.Load()
	if p.free {
		return ACLOK, 0
	}
	i := aclLookup(args)
	if i < 0 {
		return ACLOK, 0
	}
	if !p.allCommands && !aclCommandTable[i].noAuth && !p.bit(i) && !p.firstArgAllowed(i, args) {
		return ACLDeniedCommand, 0
	}
	if !p.allKeys {
		if d, at := p.checkKeys(args); d != ACLOK {
			return d, at
		}
	}
	if !p.allChannels {
		return p.checkChannels(args)
	}
	return ACLOK, 0
}

func (p *aclPerms) firstArgAllowed(i int, args [][]byte) bool {
	at := 1
	if aclIsSub[i] {
		at = 2
	}
	if len(args) <= at {
		return false
	}
	for _, a := range p.firstArgs[i] {
		if strings.EqualFold(a, string(args[at])) {
			return true
		}
	}
	return false
}

// KeyPositions finds a data command's key arguments; the server sets it
// (its getkeys logic) at init, before any command runs. It must be a pure
// function of its arguments.
var KeyPositions func(c *Command, args [][]byte) ([]int, bool)

func (p *aclPerms) checkKeys(args [][]byte) (ACLDenial, int) {
	c := Lookup(args[0])
	if c == nil || KeyPositions == nil || (c.FirstKey == 0 && c.Flags&MovableKeys == 0) {
		return ACLOK, 0
	}
	pos, ok := KeyPositions(c, args)
	if !ok {
		return ACLOK, 0
	}
	need := uint8(aclRead)
	switch {
	case c.Flags&Scripted != 0:
		need = aclAll
	case c.Flags&Write != 0:
		need = aclWrite
	}
	for _, at := range pos {
		if !p.keyAllowed(args[at], need) {
			return ACLDeniedKey, at
		}
	}
	return ACLOK, 0
}

func (p *aclPerms) keyAllowed(key []byte, need uint8) bool {
	for _, k := range p.keys {
		if k.flags&need == need && globMatch([]byte(k.pattern), key) {
			return true
		}
	}
	return false
}

// checkChannels checks PUBLISH's channel and the channels and patterns
// subscribed to (a pattern must be in the list literally, as in Redis).
func (p *aclPerms) checkChannels(args [][]byte) (ACLDenial, int) {
	var buf [16]byte
	first, last, pattern := 0, 0, false
	switch string(lowerInto(buf[:0], args[0])) {
	case "publish", "spublish":
		first, last = 1, 1
	case "subscribe", "ssubscribe":
		first, last = 1, len(args)-1
	case "psubscribe":
		first, last, pattern = 1, len(args)-1, true
	default:
		return ACLOK, 0
	}
	for at := first; at <= last && at < len(args); at++ {
		if !p.channelAllowed(args[at], pattern) {
			return ACLDeniedChannel, at
		}
	}
	return ACLOK, 0
}

func (p *aclPerms) channelAllowed(ch []byte, pattern bool) bool {
	for _, c := range p.channels {
		if pattern && c == string(ch) || !pattern && globMatch([]byte(c), ch) {
			return true
		}
	}
	return false
}

// aclState is the store's users, by name.
type aclState struct {
	users map[string]*ACLUser
}

// DefaultUserName is the user every connection starts as.
const DefaultUserName = "default"

func newACLState() *aclState {
	p := newPerms()
	for _, r := range []string{"on", "nopass", "~*", "&*", "+@all"} {
		p.apply(r)
	}
	return &aclState{users: map[string]*ACLUser{DefaultUserName: newUser(DefaultUserName, p)}}
}

// isDefault reports whether the users are just the default one, unchanged
// (the snapshot then has no ACL section).
func (a *aclState) isDefault() bool {
	u := a.users[DefaultUserName]
	if len(a.users) != 1 || u == nil {
		return false
	}
	// "on nopass ~* &* +@all", without building the description (the
	// Digest asks often): allCommands means no bit was cleared since +@all.
	p := u.perms.Load()
	return p.open && p.allCommands && p.bit(aclFutureBit) && p.sanitize == sanitizeNone && len(p.passwords) == 0
}

// ACLUser returns the user named name, nil if there is none. Read under
// the server's read lock (or the write lock).
func (s *Store) ACLUser(name string) *ACLUser { return s.acl.users[name] }

// ACLUserNames are the users' names in byte order.
func (s *Store) ACLUserNames() []string {
	names := make([]string, 0, len(s.acl.users))
	for n := range s.acl.users {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// cmdACL is the internal gomu.acl: SETUSER (all rules or none, as Redis)
// and DELUSER, on every replica in log order.
func cmdACL(s *Store, _ *Env, dst []byte, args [][]byte) []byte {
	switch strings.ToLower(string(args[1])) {
	case "setuser":
		return s.setUser(dst, string(args[2]), args[3:])
	case "deluser":
		return s.delUsers(dst, args[2:])
	}
	return resp.AppendError(dst, "ERR gomu.acl: unknown operation")
}

func (s *Store) setUser(dst []byte, name string, rules [][]byte) []byte {
	if hasSpaces(name) {
		return resp.AppendError(dst, "ERR Usernames can't contain spaces or null characters")
	}
	u := s.acl.users[name]
	p := newPerms()
	if u != nil {
		p = u.perms.Load().clone()
	}
	for _, r := range rules {
		if strings.HasPrefix(string(r), "(") {
			return resp.AppendError(dst, "ERR Error in ACL SETUSER modifier '"+string(r)+"': "+aclErrSelectors)
		}
		if msg := p.apply(string(r)); msg != "" {
			return resp.AppendError(dst, "ERR Error in ACL SETUSER modifier '"+string(r)+"': "+msg)
		}
	}
	if u == nil {
		s.acl.users[name] = newUser(name, p)
	} else {
		u.perms.Store(p.settle())
	}
	return resp.AppendOK(dst)
}

func (s *Store) delUsers(dst []byte, names [][]byte) []byte {
	for _, n := range names {
		if string(n) == DefaultUserName {
			return resp.AppendError(dst, "ERR The 'default' user cannot be removed")
		}
	}
	deleted := 0
	for _, n := range names {
		if u := s.acl.users[string(n)]; u != nil {
			delete(s.acl.users, string(n))
			u.markDeleted()
			deleted++
		}
	}
	return resp.AppendInt(dst, int64(deleted))
}

func (u *ACLUser) markDeleted() {
	p := u.perms.Load().clone()
	p.deleted = true
	u.perms.Store(p.settle())
}

// AsUserCommand wraps a script call of a restricted user for the log:
// "gomu.asuser name command args...": the script's redis.call and
// redis.acl_check_cmd check that user's permissions, as they stand at
// that point of the log, on every replica alike.
const AsUserCommand = "gomu.asuser"

func cmdAsUser(s *Store, e *Env, dst []byte, args [][]byte) []byte {
	inner := args[2:]
	c := Lookup(inner[0])
	if c == nil || c.Flags&Internal != 0 {
		return AppendUnknownCommand(dst, inner)
	}
	if !c.CheckArity(len(inner)) {
		return AppendWrongArity(dst, c.Name)
	}
	saved := e.ACL
	e.ACL = s.acl.users[string(args[1])]
	if e.ACL == nil { // deleted meanwhile: as Redis, whose client was closed
		e.ACL = newUser(string(args[1]), newPerms())
	}
	dst = c.run(s, e, dst, inner)
	e.ACL = saved
	return dst
}

// describe is the user's rules as ACL LIST prints them (after "user
// <name> ").
func (u *ACLUser) describe() string {
	p := u.perms.Load()
	var b strings.Builder
	for _, f := range p.flagNames() {
		b.WriteString(f)
		b.WriteByte(' ')
	}
	for _, h := range p.passwords {
		b.WriteString("#" + h + " ")
	}
	if p.allKeys {
		b.WriteString("~* ")
	} else {
		for _, k := range p.keys {
			b.WriteString(k.String() + " ")
		}
	}
	if p.allChannels {
		b.WriteString("&* ")
	} else {
		b.WriteString("resetchannels ")
		for _, c := range p.channels {
			b.WriteString("&" + c + " ")
		}
	}
	b.WriteString(p.describeCommands())
	return b.String()
}

func (k aclKeyPattern) String() string {
	switch k.flags {
	case aclRead:
		return "%R~" + k.pattern
	case aclWrite:
		return "%W~" + k.pattern
	}
	return "~" + k.pattern
}

func (p *aclPerms) flagNames() []string {
	var out []string
	if p.enabled {
		out = append(out, "on")
	} else {
		out = append(out, "off")
	}
	if p.nopass {
		out = append(out, "nopass")
	}
	switch p.sanitize {
	case sanitizeSkip:
		out = append(out, "skip-sanitize-payload")
	case sanitizePayload:
		out = append(out, "sanitize-payload")
	}
	return out
}

// describeCommands is Redis 7.0's ACLDescribeSelectorCommandRules: +@all
// or -@all, then the categories that fit the bitmap best, then the single
// commands still different (in name order: Redis's follow its hash
// table's order).
func (p *aclPerms) describeCommands() string {
	fake := newPerms()
	additive := !p.bit(aclFutureBit)
	var b strings.Builder
	if additive {
		b.WriteString("-@all ")
	} else {
		b.WriteString("+@all ")
		fake.setAll(true)
	}
	temp := &aclPerms{allowed: slices.Clone(p.allowed)}
	applied := make([]bool, len(aclCategoryNames))
	for {
		best, mindiff, maxsame := -1, int(^uint(0)>>1), 0
		for j := range aclCategoryNames {
			if applied[j] {
				continue
			}
			on, off := temp.countCategory(1 << j)
			diff, same := on, off
			if additive {
				diff, same = off, on
			}
			if same > diff && (diff < mindiff || diff == mindiff && same > maxsame) {
				best, mindiff, maxsame = j, diff, same
			}
		}
		if best < 0 {
			break
		}
		fake.setCategory(1<<best, additive)
		temp.setCategory(1<<best, !additive)
		if additive {
			b.WriteString("+@")
		} else {
			b.WriteString("-@")
		}
		b.WriteString(aclCategoryNames[best] + " ")
		applied[best] = true
	}
	for i, e := range aclCommandTable {
		user, have := p.bit(i), fake.bit(i)
		if user != have {
			if user {
				b.WriteString("+" + e.name + " ")
			} else {
				b.WriteString("-" + e.name + " ")
			}
			fake.changePerm(i, user)
		}
		if !user {
			for _, a := range p.firstArgs[i] {
				b.WriteString("+" + e.name + "|" + a + " ")
			}
		}
	}
	return strings.TrimSuffix(b.String(), " ")
}

func (p *aclPerms) countCategory(cat aclCategory) (on, off int) {
	for i, e := range aclCommandTable {
		if e.cats&cat != 0 {
			if p.bit(i) {
				on++
			} else {
				off++
			}
		}
	}
	return on, off
}

// ACLDescription is one ACL LIST line: "user <name> <rules>".
func (u *ACLUser) ACLDescription() string { return "user " + u.name + " " + u.describe() }

// AppendACLGetUser appends ACL GETUSER's reply for u (a map: RESP3's, or
// RESP2's flat array when resp3 is false).
func (u *ACLUser) AppendACLGetUser(dst []byte, resp3 bool) []byte {
	p := u.perms.Load()
	if resp3 {
		dst = append(dst, "%6\r\n"...)
	} else {
		dst = resp.AppendArrayLen(dst, 12)
	}
	flags := p.flagNames()
	dst = resp.AppendBulkString(dst, "flags")
	if resp3 {
		dst = append(dst, '~')
		dst = strconv.AppendInt(dst, int64(len(flags)), 10)
		dst = append(dst, "\r\n"...)
	} else {
		dst = resp.AppendArrayLen(dst, len(flags))
	}
	for _, f := range flags {
		dst = resp.AppendBulkString(dst, f)
	}
	dst = resp.AppendBulkString(dst, "passwords")
	dst = resp.AppendArrayLen(dst, len(p.passwords))
	for _, h := range p.passwords {
		dst = resp.AppendBulkString(dst, h)
	}
	dst = resp.AppendBulkString(dst, "commands")
	dst = resp.AppendBulkString(dst, p.describeCommands())
	dst = resp.AppendBulkString(dst, "keys")
	if p.allKeys {
		dst = resp.AppendBulkString(dst, "~*")
	} else {
		parts := make([]string, len(p.keys))
		for i, k := range p.keys {
			parts[i] = k.String()
		}
		dst = resp.AppendBulkString(dst, strings.Join(parts, " "))
	}
	dst = resp.AppendBulkString(dst, "channels")
	if p.allChannels {
		dst = resp.AppendBulkString(dst, "&*")
	} else {
		parts := make([]string, len(p.channels))
		for i, c := range p.channels {
			parts[i] = "&" + c
		}
		dst = resp.AppendBulkString(dst, strings.Join(parts, " "))
	}
	dst = resp.AppendBulkString(dst, "selectors")
	return resp.AppendArrayLen(dst, 0)
}

// ACLCategories are the category names, in Redis's order (ACL CAT).
func ACLCategories() []string { return aclCategoryNames }

// ACLCategoryCommands lists the commands (and subcommands) of category
// name, in name order; ok is false for an unknown category.
func ACLCategoryCommands(name string) ([]string, bool) {
	cat := aclCategoryByName(name)
	if cat == 0 {
		return nil, false
	}
	var out []string
	for _, e := range aclCommandTable {
		if e.cats&cat != 0 {
			out = append(out, e.name)
		}
	}
	return out, true
}

// ACLCommandKnown reports whether args names a command of Redis's table
// (for ACL DRYRUN), with its full name and arity check left to the caller.
func ACLCommandKnown(args [][]byte) bool { return aclLookup(args) >= 0 }

// aclSectionMarker opens the snapshot's optional ACL section.
const aclSectionMarker = 'A'

func (a *aclState) encodeTo(w *bufio.Writer) {
	var tmp [binary.MaxVarintLen64]byte
	str := func(b string) { w.Write(binary.AppendUvarint(tmp[:0], uint64(len(b)))); w.WriteString(b) }
	names := make([]string, 0, len(a.users))
	for n := range a.users {
		names = append(names, n)
	}
	slices.Sort(names)
	w.Write(binary.AppendUvarint(tmp[:0], uint64(len(names))))
	for _, n := range names {
		str(n)
		str(a.users[n].describe())
	}
}

// decodeACL reads the ACL section: each user's rules applied to a new
// user, which must give back the same description (and the default user
// must be there), or the snapshot is corrupt.
func decodeACL(d *snapReader) *aclState {
	a := &aclState{users: map[string]*ACLUser{}}
	n := d.count()
	for i := 0; i < n && d.err == nil; i++ {
		name, rules := string(d.bytes()), string(d.bytes())
		if d.err != nil {
			break
		}
		p := newPerms()
		for _, r := range strings.Fields(rules) {
			if msg := p.apply(r); msg != "" {
				d.fail("user %q: rule %q: %s", name, r, msg)
				return a
			}
		}
		u := newUser(name, p)
		if u.describe() != rules || a.users[name] != nil {
			d.fail("user %q: rules %q", name, rules)
			return a
		}
		a.users[name] = u
	}
	if d.err == nil && a.users[DefaultUserName] == nil {
		d.fail("no default user")
	}
	return a
}

// adopt keeps the user objects of old (the connections' users) for the
// users a's state also has, with a's permissions, and marks the others
// deleted: a restored snapshot changes users as SETUSER and DELUSER do.
func (a *aclState) adopt(old *aclState) {
	if old == nil {
		return
	}
	for name, u := range old.users {
		if nu := a.users[name]; nu != nil {
			u.perms.Store(nu.perms.Load())
			a.users[name] = u
		} else {
			u.markDeleted()
		}
	}
}

// AdoptACLUsers makes s, a store just restored from a snapshot to replace
// old, keep old's user objects as adopt does.
func (s *Store) AdoptACLUsers(old *Store) { s.acl.adopt(old.acl) }

// scriptDenied checks a script's command against the script's user
// (e.ACL, not nil): when refused it tells e.ACLDenied, sets *d and
// returns true.
func scriptDenied(e *Env, args [][]byte, d *ACLDenial) bool {
	if e.ACL.Unrestricted() {
		return false
	}
	denied, at := e.ACL.Check(args)
	if denied == ACLOK {
		return false
	}
	if e.ACLDenied != nil {
		e.ACLDenied(e.ACL, denied, args, at)
	}
	*d = denied
	return true
}

// aclScriptError is redis.call's error for a command the script's user
// may not run (Redis's scriptVerifyACL).
func aclScriptError(d ACLDenial) string {
	switch d {
	case ACLDeniedCommand:
		return "ERR The user executing the script can't run this command or subcommand"
	case ACLDeniedKey:
		return "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments"
	}
	return "ERR The user executing the script can't publish to the channel mentioned in the command"
}
