package server

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gomu-rdma/gomu/internal/redistest"
	"github.com/gomu-rdma/gomu/internal/replicatest"
)

// aclStep is one command of an ACL scenario, sent on connection conn (0:
// the default user's, 1: the one that logs in as the test users).
type aclStep struct {
	conn int
	args []string
}

// aclScenario runs steps on two connections to addr and returns every
// reply, raw, with the ACL LOG's age and client info (which no two servers
// share) blanked out.
func aclScenario(t *testing.T, addr string, steps []aclStep) []string {
	t.Helper()
	conns := [2]*redistest.Conn{redistest.Dial(t, addr), redistest.Dial(t, addr)}
	conns[0].Do("ACL", "LOG", "RESET")
	volatile := regexp.MustCompile(`(age-seconds\r\n\$\d+\r\n[0-9.e-]+|client-info\r\n\$\d+\r\n[^\r]*)\r\n`)
	var out []string
	for _, s := range steps {
		if s.args[0] == "~" { // run, not compared (a reply with ids)
			conns[s.conn].Do(s.args[1:]...)
			out = append(out, "")
			continue
		}
		out = append(out, unordered(volatile.ReplaceAllString(conns[s.conn].Do(s.args...), "X\r\n")))
	}
	return out
}

// singles are the single-command rules that follow a user's categories,
// and categoryList an array of command names: Redis lists both in its
// hash tables' order, so they are compared sorted.
var (
	singles      = regexp.MustCompile(`(?:[+-]@all)(?: [+-]@[a-z]+)*((?: [+-][a-z|0-9_-]+)+)`)
	categoryList = regexp.MustCompile(`^\*\d+\r\n(\$\d+\r\n[a-z|_-]+\r\n)+$`)
)

func unordered(reply string) string {
	reply = singles.ReplaceAllStringFunc(reply, func(m string) string {
		words := strings.Fields(m)
		i := 1
		for i < len(words) && strings.Contains(words[i], "@") {
			i++
		}
		slices.Sort(words[i:])
		return strings.Join(words, " ")
	})
	if categoryList.MatchString(reply) {
		head, rest, _ := strings.Cut(reply, "\r\n")
		parts := strings.SplitAfter(rest, "\r\n")
		var items []string
		for i := 0; i+1 < len(parts); i += 2 {
			items = append(items, parts[i]+parts[i+1])
		}
		slices.Sort(items)
		reply = head + "\r\n" + strings.Join(items, "")
	}
	return reply
}

func steps(conn int, cmds ...string) []aclStep {
	var out []aclStep
	for _, c := range cmds {
		out = append(out, aclStep{conn, strings.Fields(c)})
	}
	return out
}

// TestACLDiff compares ACL SETUSER, GETUSER, LIST, USERS, CAT, DRYRUN,
// WHOAMI, LOG, AUTH and the denied commands' errors byte for byte with a
// real Redis 7.0's.
func TestACLDiff(t *testing.T) {
	cases := []struct {
		name  string
		steps []aclStep
	}{
		{"default", steps(0, "ACL LIST", "ACL USERS", "ACL WHOAMI", "ACL GETUSER default", "ACL GETUSER nobody",
			"AUTH x", "AUTH default x", "AUTH nobody x", "ACL LOG")},
		{"setuser", steps(0, "ACL SETUSER bob", "ACL LIST", "ACL GETUSER bob",
			"ACL SETUSER bob on >123 +@scripting +set ~x* %R~r* %W~w* %RW~b* &ch*", "ACL LIST", "ACL GETUSER bob",
			"ACL SETUSER bob ~x* %W~x* &ch*", "ACL GETUSER bob",
			"ACL SETUSER bob <123 #a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3 >456", "ACL GETUSER bob",
			"ACL SETUSER bob !a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3", "ACL LIST",
			"ACL SETUSER bob nopass allkeys allchannels", "ACL LIST", "ACL SETUSER bob resetpass resetkeys resetchannels", "ACL LIST",
			"ACL SETUSER bob reset", "ACL LIST", "ACL SETUSER bob skip-sanitize-payload", "ACL LIST",
			"ACL SETUSER bob +@all -@dangerous -get", "ACL LIST", "ACL SETUSER bob -@all +@read -@hash", "ACL GETUSER bob",
			"ACL SETUSER bob nocommands +client|id", "ACL LIST", "ACL SETUSER bob allcommands -config", "ACL LIST",
			"ACL SETUSER bob -@all +select|0", "ACL LIST", "ACL SETUSER Bob on", "ACL USERS", "ACL DELUSER Bob nobody", "ACL USERS")},
		{"setuser errors", steps(0, "ACL SETUSER bob on", "ACL SETUSER bob bogus", "ACL SETUSER bob +nosuch", "ACL SETUSER bob -@nosuch",
			"ACL SETUSER bob !123", "ACL SETUSER bob <nope", "ACL SETUSER bob #ABC", "ACL SETUSER bob ~* ~x",
			"ACL SETUSER bob &* &x", "ACL SETUSER bob +config|get|x", "ACL SETUSER bob +debug|", "ACL SETUSER bob %X~x",
			"ACL SETUSER bob on >p ~x nosuch", "ACL LIST", "ACL DELUSER default", "ACL DELUSER bob default", "ACL USERS",
			"ACL SETUSER", "ACL GETUSER", "ACL NOSUCH", "ACL LOAD", "ACL SAVE", "ACL GENPASS 0", "ACL GENPASS x", "ACL CAT nosuch")},
		{"cat", steps(0, "ACL CAT", "ACL CAT hyperloglog", "ACL CAT transaction")},
		{"dryrun", steps(0, "ACL SETUSER bob on +get +publish ~x* &ch*", "ACL DRYRUN bob get x", "ACL DRYRUN bob get y",
			"ACL DRYRUN bob set x 1", "ACL DRYRUN bob publish ch1 m", "ACL DRYRUN bob publish d m", "ACL DRYRUN nobody get x",
			"ACL DRYRUN bob nosuch", "ACL DRYRUN bob get", "ACL DRYRUN bob config get x")},
		{"denied", append(steps(0, "ACL SETUSER bob on >123 +@scripting +set +get +lpush +multi +exec +publish +psubscribe +subscribe ~x* %R~r* &ch*", "SET r1 v"),
			steps(1, "GET x", "AUTH bob 12", "AUTH bob 123", "ACL WHOAMI", "GET x", "SET y 1", "SET x 1", "GET r1", "SET r1 1",
				"HSET x a b", "LPUSH x a", "PUBLISH chx m", "PUBLISH d m", "MULTI", "HSET x 1 2", "SET x 2", "EXEC",
				"MULTI", "SET x 3", "EXEC", "GET x", "EVAL return 1 1 y", "EVAL return 1 1 x",
				"EVAL return(redis.call('get','z')) 0", "EVAL return(redis.call('get','x')) 0", "EVAL return(redis.call('hset','x','a','b')) 0",
				"EVAL return(redis.pcall('hset','x','a','b')) 0", "EVAL return(redis.call('set','x','1')) 0", "EVAL return(redis.call('publish','d','1')) 0",
				"EVAL return(redis.acl_check_cmd('get','q')) 0", "EVAL return(redis.acl_check_cmd('set','xx',1)) 1 xx",
				"EVAL return(redis.acl_check_cmd('hset','xx','f',1)) 1 xx", "EVAL return(redis.acl_check_cmd('nope','xx',1)) 0",
				"SUBSCRIBE d", "SUBSCRIBE ch1 d", "PSUBSCRIBE c*", "PSUBSCRIBE ch*")...)},
		{"log", append(append(steps(0, "ACL SETUSER bob on >123 +get ~x*"), steps(1, "AUTH bob 123", "GET y", "GET y", "SET x 1", "AUTH bob 4")...),
			steps(0, "ACL LOG", "ACL LOG 1", "ACL LOG RESET", "ACL LOG")...)},
		{"hello", append(steps(0, "ACL SETUSER bob on >123 +@all ~* &*", "ACL SETUSER bob2 on >123 +@all ~* &* -acl|whoami"),
			steps(1, "HELLO 3 AUTH bob 12", "HELLO 3 AUTH nobody 12", "HELLO 3 AUTH bob", "~ HELLO 3 AUTH bob 123", "ACL WHOAMI",
				"ACL GETUSER bob2", "ACL GETUSER nobody", "~ HELLO 2 AUTH bob2 123", "ACL WHOAMI", "~ RESET", "ACL WHOAMI")...)},
		{"default password", append(append(steps(0, "ACL SETUSER default >pw"), steps(1, "PING", "AUTH pw", "PING")...),
			steps(0, "PING", "AUTH default pw", "ACL SETUSER default nopass", "AUTH x")...)},
	}
	ours := startStandalone(t).Addr()
	theirs := redistest.Start(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, got := aclScenario(t, theirs, tc.steps), aclScenario(t, ours, tc.steps)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("%v:\n got %q\nwant %q", tc.steps[i].args, got[i], want[i])
				}
			}
			for _, addr := range []string{theirs, ours} {
				c := redistest.Dial(t, addr)
				c.Do("ACL", "SETUSER", "default", "nopass", "on", "~*", "&*", "+@all")
				c.Do("ACL", "DELUSER", "bob")
			}
		})
	}
}

// TestACLCluster sets users on the leader of 3 replicas: they log in on a
// follower, ACL LIST agrees everywhere, a follower restarted while a user
// changed catches up by a state transfer that carries the users, and a
// deleted user's follower connection closes.
func TestACLCluster(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	admin := redistest.Dial(t, lead.Srv.Addr())
	if got := admin.Do("ACL", "SETUSER", "alice", "on", ">pa", "+get", "+acl|whoami", "~a*"); got != "+OK\r\n" {
		t.Fatalf("ACL SETUSER on the leader: %q", got)
	}
	f := c.Followers(lead)[0]
	fc := redistest.Dial(t, f.Srv.Addr())
	if !replicatest.WaitFor(func() bool { return fc.Do("AUTH", "alice", "pa") == "+OK\r\n" }) {
		t.Fatalf("alice cannot log in on follower %d", f.ID)
	}
	for cmd, want := range map[string]string{"ACL WHOAMI": bulk("alice"), "GET b": "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n",
		"SET a 1": "-NOPERM this user has no permissions to run the 'set' command\r\n"} {
		if got := fc.Do(strings.Fields(cmd)...); got != want {
			t.Errorf("follower %s = %q, want %q", cmd, got, want)
		}
	}
	f2 := c.Followers(lead)[1]
	c.Crash(f2.ID)
	if got := admin.Do("ACL", "SETUSER", "carol", "on", ">pc", "+@all", "~*"); got != "+OK\r\n" {
		t.Fatalf("ACL SETUSER carol: %q", got)
	}
	// More than the log ring holds, so that the restarted replica needs
	// a state transfer.
	fill := strings.Repeat("x", 512<<10)
	for i := range 3 * testRing / len(fill) {
		if got := admin.Do("SET", fmt.Sprint("fill", i), fill); got != "+OK\r\n" {
			t.Fatalf("SET fill: %q", got)
		}
	}
	if err := c.StartNode(f2.ID); err != nil {
		t.Fatal(err)
	}
	if !replicatest.WaitFor(func() bool { return c.Node(f2.ID).Rep.Stats().Transfers > 0 }) {
		t.Fatalf("restarted replica %d never caught up by state transfer", f2.ID)
	}
	rc := redistest.Dial(t, c.Node(f2.ID).Srv.Addr())
	if !replicatest.WaitFor(func() bool { return rc.Do("AUTH", "carol", "pc") == "+OK\r\n" }) {
		t.Fatalf("carol cannot log in on the restarted replica")
	}
	if got := rc.Do("AUTH", "alice", "pa"); got != "+OK\r\n" {
		t.Fatalf("alice on the restarted replica: %q", got)
	}
	want := admin.Do("ACL", "LIST")
	for _, n := range c.Live() {
		if got := redistest.Dial(t, n.Srv.Addr()).Do("ACL", "LIST"); got != want {
			t.Errorf("replica %d ACL LIST %q, leader's %q", n.ID, got, want)
		}
		if d := digest(t, n.Srv.Addr()); d != digest(t, lead.Srv.Addr()) {
			t.Errorf("replica %d digest differs from the leader's", n.ID)
		}
	}
	if got := admin.Do("ACL", "DELUSER", "alice"); got != ":1\r\n" {
		t.Fatalf("ACL DELUSER alice: %q", got)
	}
	if !replicatest.WaitFor(func() bool {
		_ = fc.Send([]byte("PING\r\n"))
		_, err := fc.Read()
		return err != nil
	}) {
		t.Fatalf("the deleted user's follower connection stays open")
	}
}

// TestACLClientList: CLIENT LIST names each connection's user.
func TestACLClientList(t *testing.T) {
	c := redistest.Dial(t, startStandalone(t).Addr())
	c.Do("ACL", "SETUSER", "dan", "on", "nopass", "+@all", "~*", "&*")
	if got := c.Do("CLIENT", "INFO"); !strings.Contains(got, " user=default ") {
		t.Fatalf("CLIENT INFO before AUTH: %q", got)
	}
	c.Do("AUTH", "dan", "x")
	if got := c.Do("CLIENT", "INFO"); !strings.Contains(got, " user=dan ") {
		t.Fatalf("CLIENT INFO after AUTH: %q", got)
	}
}

// TestACLScriptsReplicated: a restricted user's writing script reaches the
// log as gomu.asuser, so its redis.call is checked against that user on
// every replica alike: the allowed write lands everywhere, the refused one
// nowhere, and the digests agree. DEBUG RELOAD keeps the users.
func TestACLScriptsReplicated(t *testing.T) {
	c := startCluster(t, 3)
	lead := c.WaitLeader()
	admin := redistest.Dial(t, lead.Srv.Addr())
	admin.Do("ACL", "SETUSER", "sam", "on", ">ps", "+@scripting", "+set", "+get", "~a*")
	sc := redistest.Dial(t, lead.Srv.Addr())
	sc.Do("AUTH", "sam", "ps")
	for _, tc := range []struct{ script, want string }{
		{"redis.call('set','a1','v') return redis.acl_check_cmd('set','b','v')", "$-1\r\n"},
		{"return redis.call('set','b1','v')", "-ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: "},
		{"redis.call('set','a2','v') return redis.call('incr','a2')", "-ERR The user executing the script can't run this command or subcommand script: "},
	} {
		if got := sc.Do("EVAL", tc.script, "0"); !strings.HasPrefix(got, tc.want) {
			t.Errorf("EVAL %s = %q, want %q…", tc.script, got, tc.want)
		}
	}
	for _, n := range c.Live() {
		nc := redistest.Dial(t, n.Srv.Addr())
		if !replicatest.WaitFor(func() bool { return nc.Do("GET", "a2") == bulk("v") }) {
			t.Fatalf("replica %d (leader %d) lacks a2: GET a1 %q, GET a2 %q", n.ID, lead.ID, nc.Do("GET", "a1"), nc.Do("GET", "a2"))
		}
		if got := nc.Do("EXISTS", "a1", "b1"); got != ":1\r\n" {
			t.Errorf("replica %d EXISTS a1 b1 = %q", n.ID, got)
		}
		if d := digest(t, n.Srv.Addr()); d != digest(t, lead.Srv.Addr()) {
			t.Errorf("replica %d digest differs from the leader's", n.ID)
		}
	}
	if got := admin.Do("DEBUG", "RELOAD"); got != "+OK\r\n" {
		t.Fatalf("DEBUG RELOAD: %q", got)
	}
	if got := sc.Do("ACL", "WHOAMI"); got != "-NOPERM this user has no permissions to run the 'acl|whoami' command\r\n" {
		t.Errorf("after DEBUG RELOAD, sam's connection: %q", got)
	}
	if got := redistest.Dial(t, lead.Srv.Addr()).Do("AUTH", "sam", "ps"); got != "+OK\r\n" {
		t.Errorf("AUTH sam after DEBUG RELOAD: %q", got)
	}
}
