// Command loadtester is Pennant's load tester, a replacement for Flagger's flagger-loadtester: it
// takes the same webhook payloads and flags, runs hey load tests and gRPC health checks built in,
// keeps manual gates in the cluster, and runs other commands only when allowed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// The image links curl, sh and watch to the binary (see curl.go and shell.go).
	if tool, ok := tools[invokedAs(os.Args[0])]; ok {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		code := tool(ctx, os.Args[1:])
		stop()
		os.Exit(code)
	}
	opts, err := parseFlags(flag.NewFlagSet(os.Args[0], flag.ContinueOnError), os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if opts.showVersion {
		fmt.Println(version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// tools are the programs the binary is when started under their names.
var tools = map[string]func(context.Context, []string) int{
	"curl": func(ctx context.Context, args []string) int { return runCurl(ctx, args, os.Stdout, os.Stderr) },
	"sh": func(ctx context.Context, args []string) int {
		return runShell(ctx, args, os.Stdin, os.Stdout, os.Stderr)
	},
	"watch": func(ctx context.Context, args []string) int { return runWatch(ctx, args, os.Stdout, os.Stderr) },
}
