package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomu-rdma/gomu/internal/clitest"
)

func TestMain(m *testing.M) { clitest.Main(m, main) }

const deadline = 20 * time.Second

func runTool(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return clitest.Run(t, clitest.Cmd{Args: args, Stdin: stdin, Timeout: deadline})
}

// reader opens a real fifo for reading, as a replica does (read-write, so
// that it never sees end-of-file), and returns it with its path.
func reader(t *testing.T) (string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo-1")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, f
}

// drain reads what is in the fifo now.
func drain(t *testing.T, f *os.File, want int) string {
	t.Helper()
	f.SetReadDeadline(time.Now().Add(deadline))
	buf := make([]byte, 0, want)
	for len(buf) < want {
		var b [64]byte
		n, err := f.Read(b[:])
		if err != nil {
			t.Fatalf("read fifo after %q: %v", buf, err)
		}
		buf = append(buf, b[:n]...)
	}
	return string(buf)
}

func TestForwards(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		want        string // bytes the replica reads
		out, errOut string // substrings of the tool's output
	}{
		{"send p", "", []string{"--send", "p"}, "p", "", ""},
		{"send a sequence", "", []string{"--send", "pcp"}, "pcp", "", ""},
		{"typed", "p\nc\n", nil, "pc", "sent p (pause)\nsent c (continue)\n", ""},
		{"typed with noise", "p x c\n", nil, "pc", "sent c (continue)", `ignored 'x'`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path, f := reader(t)
			out, errOut, err := runTool(t, tc.stdin, append(tc.args, path)...)
			if err != nil {
				t.Fatalf("fifo failed: %v\n%s%s", err, out, errOut)
			}
			if got := drain(t, f, len(tc.want)); got != tc.want {
				t.Fatalf("replica read %q, want %q", got, tc.want)
			}
			if !strings.Contains(out, tc.out) || !strings.Contains(errOut, tc.errOut) {
				t.Fatalf("stdout %q, stderr %q; want them to contain %q and %q", out, errOut, tc.out, tc.errOut)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unread := filepath.Join(dir, "unread")
	if err := syscall.Mkfifo(unread, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no path", nil, "want 1 argument"},
		{"two paths", []string{"a", "b"}, "want 1 argument"},
		{"missing", []string{filepath.Join(dir, "none")}, "no such file"},
		{"regular file", []string{regular}, regular + " is not a fifo"},
		{"directory", []string{dir}, "is not a fifo"},
		{"no reader", []string{"--send", "p", unread}, "no replica is reading " + unread},
		{"no reader, interactive", []string{unread}, "no replica is reading"},
		{"bad send", []string{"--send", "x", unread}, `--send "x"`},
		{"empty send", []string{"--send", "", unread}, `--send ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runTool(t, "p\n", tc.args...)
			if err == nil {
				t.Fatalf("exited 0, want failure\nstdout:\n%s", out)
			}
			if !strings.Contains(errOut+out, tc.want) {
				t.Fatalf("output does not say %q:\nstdout:\n%s\nstderr:\n%s", tc.want, out, errOut)
			}
		})
	}
}
