// Command heyengine runs one hey command line in the load tester's built-in engine and prints its
// report: the benchmark runs it as a child process, like hey, so that each is measured alone
// (test/bench/loadengine_test.go).
//
//	heyengine 'hey -z 10s -c 50 http://127.0.0.1:8080/'
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/pennant/pennant/internal/loadtester/load"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: heyengine 'hey [flags] URL'")
		os.Exit(2)
	}
	spec, err := load.ParseHey(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	report, err := load.Run(ctx, spec, nil)
	fmt.Print(report)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
