// Command fifo pauses and resumes a gomu replica through its pause fifo, as
// Mu's fifo tool does: each replica watches a fifo (default /tmp/fifo-<id>)
// where 'p' pauses it (it stops its heartbeat and serves nothing, like a
// hung process, so the others fail over) and 'c' lets it continue.
//
//	fifo <path>             # forward p and c typed on stdin, until end of input
//	fifo --send p <path>    # send p (or c, or a sequence such as pc) and exit
//
// Interactively every p or c typed is forwarded at once and acknowledged on
// stdout ("sent p (pause)"); whitespace is skipped and any other character
// is reported and ignored. The tool fails at once, with no hang, when the
// path is not a fifo or no replica has it open for reading.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:      "fifo",
		Usage:     "pause (p) and continue (c) a replica through its fifo",
		ArgsUsage: "<path>",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "send", Usage: "send these characters (p, c) and exit instead of reading stdin"},
		},
		Action: run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "fifo:", err)
		os.Exit(1)
	}
}

func run(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("want 1 argument, the fifo's path; got %d", c.NArg())
	}
	path := c.Args().First()
	send := c.String("send")
	if c.IsSet("send") {
		if send == "" || strings.Trim(send, "pc") != "" {
			return fmt.Errorf("--send %q: want p (pause), c (continue) or a sequence of them", send)
		}
	}
	f, err := openFifo(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if c.IsSet("send") {
		if _, err := f.WriteString(send); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	return forward(f, os.Stdin, os.Stdout, os.Stderr)
}

// openFifo opens path for writing without blocking: a fifo with no reader
// would otherwise block the open until one comes.
func openFifo(path string) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("fifo: %w", err)
	}
	if fi.Mode()&os.ModeNamedPipe == 0 {
		return nil, fmt.Errorf("%s is not a fifo (a replica creates its fifo at start, default /tmp/fifo-<id>)", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ENXIO) {
		return nil, fmt.Errorf("no replica is reading %s", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open fifo: %w", err)
	}
	return f, nil
}

var meaning = map[byte]string{'p': "pause", 'c': "continue"}

// forward copies every p and c read from in to f, one write each.
func forward(f io.Writer, in io.Reader, out, errOut io.Writer) error {
	r := bufio.NewReader(in)
	for {
		b, err := r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		switch b {
		case 'p', 'c':
			if _, err := f.Write([]byte{b}); err != nil {
				if errors.Is(err, syscall.EPIPE) {
					return errors.New("the replica stopped reading its fifo (exited?)")
				}
				return fmt.Errorf("write fifo: %w", err)
			}
			fmt.Fprintf(out, "sent %c (%s)\n", b, meaning[b])
		case ' ', '\t', '\r', '\n':
		default:
			fmt.Fprintf(errOut, "ignored %q: type p to pause, c to continue\n", b)
		}
	}
}
