package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
	"github.com/gomu-rdma/gomu/internal/testbed"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

// left says what namespaces of the bed named name exist.
func left(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, name+"-") {
			found = append(found, l)
		}
	}
	return strings.Join(found, ", ")
}

func TestUpRunDown(t *testing.T) {
	if !testbed.Root() {
		t.Skip("network namespaces need root (CI runs as root)")
	}
	const name = "gtb4"
	t.Cleanup(func() { testbed.Sweep(name) })
	run := func(args ...string) (string, string, error) {
		return clitest.Run(t, clitest.Cmd{Args: args, Timeout: 30 * time.Second})
	}
	out, errOut, err := run("up", "--name", name, "--hosts", "a,b", "--subnet", "10.213.4.0/24")
	if err != nil || !strings.Contains(out, "10.213.4.3") || left(t, name) == "" {
		t.Fatalf("up: %v %s %s (namespaces: %q)", err, out, errOut, left(t, name))
	}
	if _, errOut, err := run("down", "--name", name); err != nil || left(t, name) != "" {
		t.Fatalf("down: %v %s, left %q", err, errOut, left(t, name))
	}
	// run hands the addresses to its command and takes the bed down
	// even when the command fails.
	out, _, err = run("run", "--name", name, "--hosts", "a", "--subnet", "10.213.4.0/24", "--", "sh", "-c", "echo addr=$TESTBED_A ns=$TESTBED_NS_A; exit 3")
	if err == nil || !strings.Contains(out, "addr=10.213.4.2 ns="+name+"-a") {
		t.Fatalf("run of a failing command: %v\n%s", err, out)
	}
	if l := left(t, name); l != "" {
		t.Fatalf("run left %s", l)
	}
	if _, errOut, err := run("run"); err == nil || !strings.Contains(errOut, "no command") {
		t.Fatalf("run without a command: %v %s", err, errOut)
	}
}
