// Command pods makes the pods of a local control plane (kwok marks them Ready; nothing runs them)
// answer real traffic. Run it inside hack/netns.sh, where the pod network 10.244.0.0/16 is local.
//
//	pods serve -listen IP:PORT[,IP:PORT...]
//	    the podinfo-like demo app (test/traffic/podinfo), configured from its environment:
//	    POD_NAME, POD_NAMESPACE, POD_IP, PODINFO_VERSION (or VERSION), PODINFO_UI_MESSAGE,
//	    ERROR_RATE, LATENCY, LATENCY_JITTER, SHUTDOWN_DELAY, SHUTDOWN_TIMEOUT, FAULT_SEED.
//	pods supervise -kubeconfig F -selector LABELSELECTOR [-namespace NS] [-binary PATH] [-log-dir DIR]
//	    runs `BINARY serve` for every running pod matching the selector, on the pod's IP and TCP
//	    container ports with the pod's environment, until SIGTERM or SIGINT (test/traffic/supervisor).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/pennant/pennant/test/traffic/podinfo"
	"github.com/pennant/pennant/test/traffic/supervisor"
)

const usage = `usage:
  pods serve -listen IP:PORT[,IP:PORT...]
  pods supervise -kubeconfig FILE -selector LABELSELECTOR [-namespace NS] [-binary PATH] [-log-dir DIR]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run is main without the process: it returns the exit code (2 for a usage or configuration error).
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, args[1:], getenv, stderr)
	case "supervise":
		err = supervise(ctx, args[1:], getenv, stderr)
	default:
		err = usageError{fmt.Errorf("unknown command %q", args[0])}
	}
	var ue usageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "pods %s: %v\n%s", args[0], err, usage)
		return 2
	}
	fmt.Fprintf(stderr, "pods %s: %v\n", args[0], err)
	return 1
}

// usageError is an error of the command line or the environment, not of the run.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "", "comma-separated IP:PORT addresses to serve on (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	addrs := splitList(*listen)
	if len(addrs) == 0 || fs.NArg() > 0 {
		return usageError{errors.New("-listen IP:PORT[,IP:PORT...] is required and nothing else")}
	}
	cfg, err := podinfo.ConfigFromEnv(getenv)
	if err != nil {
		return usageError{fmt.Errorf("invalid environment: %w", err)}
	}
	var listeners []net.Listener
	if getenv(podinfo.ListenFDsEnv) != "" {
		listeners, err = podinfo.Inherited(len(addrs)) // bound by the supervisor
	} else {
		listeners, err = podinfo.Listen(addrs)
	}
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "podinfo: "+format+"\n", a...) }
	logf("%s version %s serving on %s (error rate %g, latency %v+%v)", cfg.PodName, cfg.Version,
		strings.Join(addrs, ","), cfg.ErrorRate, cfg.Latency, cfg.LatencyJitter)
	err = podinfo.Serve(ctx, cfg, listeners, logf)
	if err == nil {
		logf("stopped")
	}
	return err
}

func supervise(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("supervise", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kubeconfig := fs.String("kubeconfig", getenv("KUBECONFIG"), "kubeconfig file (default $KUBECONFIG)")
	selector := fs.String("selector", "", "label selector of the pods to run (required)")
	namespace := fs.String("namespace", "", "namespace of the pods (default: all)")
	binary := fs.String("binary", "", "executable to run as `BINARY serve` (default: this one)")
	logDir := fs.String("log-dir", "", "directory for one <namespace>_<pod>.log per pod (default: prefixed lines on stderr)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *selector == "" || fs.NArg() > 0 {
		return usageError{errors.New("-kubeconfig (or $KUBECONFIG) and -selector are required")}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	return supervisor.Run(ctx, cfg, supervisor.Options{
		Selector: *selector, Namespace: *namespace, Binary: *binary, LogDir: *logDir, Log: stderr,
	})
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
