// Command kubectl-pennant is Pennant's kubectl plugin (`kubectl pennant …`): it shows, waits for,
// explains and lints canaries. The commands' logic is in internal/cli; this file wires them to
// cobra with kubectl's flags (-n, --context, --kubeconfig, …).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/pennant/pennant/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}).ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

// exitCode is 0 without error, the code an *cli.ExitError carries (wait, lint), else 1; the
// message goes to stderr.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	var exit *cli.ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	return 1
}
