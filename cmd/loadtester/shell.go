package main

// Flagger's users open a shell in the load tester's pod and send test traffic by hand (`kubectl -n
// test exec -it flagger-loadtester-xxx sh`, then `watch curl http://podinfo-canary:9898/status/500`).
// The image has no shell package: started as sh, the load tester is a POSIX shell (mvdan.cc/sh's
// interpreter, in Go), and started as watch, it runs a command again every interval, as procps'
// watch does. Both run other programs from PATH, such as the load tester's own curl.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// invokedAs is the name the binary was started under (curl, sh, watch, ...).
func invokedAs(argv0 string) string {
	return filepath.Base(argv0)
}

// runShell is `sh [-c command [name [args...]]]` or `sh script`: with no command it reads commands
// from stdin (interactively when stdin is a terminal). It returns the shell's exit status.
func runShell(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var src io.Reader = stdin
	name := "sh"
	var params []string
	switch {
	case len(args) >= 2 && args[0] == "-c":
		src, params = strings.NewReader(args[1]), args[2:]
		if len(params) > 0 {
			name, params = params[0], params[1:]
		}
	case len(args) >= 1 && args[0] == "-c":
		fmt.Fprintln(stderr, "sh: -c: option requires an argument")
		return 2
	case len(args) >= 1 && !strings.HasPrefix(args[0], "-"):
		f, err := os.Open(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "sh: %v\n", err)
			return 127
		}
		defer f.Close()
		src, name, params = f, args[0], args[1:]
	case len(args) >= 1:
		fmt.Fprintf(stderr, "sh: %s: unsupported option (sh [-c command [name [args...]]] | sh [script [args...]])\n", args[0])
		return 2
	}
	r, err := interp.New(interp.StdIO(stdin, stdout, stderr), interp.Params(append([]string{"--"}, params...)...))
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 2
	}
	_ = name // $0 is not settable through interp's options; scripts rarely read it
	if f, ok := src.(*os.File); ok && src == stdin && isTerminal(f) {
		return interactive(ctx, r, f, stdout, stderr)
	}
	prog, err := syntax.NewParser().Parse(src, name)
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 2
	}
	return exitStatus(r.Run(ctx, prog), stderr)
}

// interactive reads and runs one statement at a time, with a prompt, until exit or end of input.
func interactive(ctx context.Context, r *interp.Runner, in io.Reader, stdout, stderr io.Writer) int {
	status := 0
	fmt.Fprint(stdout, "$ ")
	err := syntax.NewParser().Interactive(in, func(stmts []*syntax.Stmt) bool {
		for _, st := range stmts {
			status = exitStatus(r.Run(ctx, st), stderr)
			if r.Exited() {
				return false
			}
		}
		fmt.Fprint(stdout, "$ ")
		return true
	})
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
	}
	return status
}

func exitStatus(err error, stderr io.Writer) int {
	var status interp.ExitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &status):
		return int(status)
	default:
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 1
	}
}

// isTerminal reports whether f is a character device (a terminal, as with kubectl exec -it).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// runWatch is `watch [-n seconds] command...`: the command runs through the shell every interval
// until the context ends (Ctrl-C), the screen cleared before each run when stdout is a terminal.
func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	interval := fs.Float64("n", 2, "seconds between runs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 || *interval < 0.1 {
		fmt.Fprintln(stderr, "usage: watch [-n seconds (at least 0.1)] command...")
		return 2
	}
	command := strings.Join(fs.Args(), " ")
	clear := false
	if f, ok := stdout.(*os.File); ok && isTerminal(f) {
		clear = true
	}
	tick := time.NewTicker(time.Duration(*interval * float64(time.Second)))
	defer tick.Stop()
	for {
		if clear {
			fmt.Fprint(stdout, "\033[H\033[2J")
		}
		fmt.Fprintf(stdout, "Every %.1fs: %s\n\n", *interval, command)
		runShell(ctx, []string{"-c", command}, strings.NewReader(""), stdout, stderr)
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
	}
}
