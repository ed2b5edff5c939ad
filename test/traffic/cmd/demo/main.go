// Command demo is `make demo`: Pennant releasing podinfo through a real proxy under real load, as
// the seeds' tutorials show it. A good canary release through Traefik (weights stepping 10% → 50%,
// promotion), a bad one rolled back on its 500s, one driven from kubectl pennant (paused at 20%,
// resumed, promoted) and an A/B release by header on the Gateway API, each with the share of
// requests each version really served. hack/demo.sh builds everything and runs
// it inside hack/netns.sh's network namespace, on a local control plane.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/pennant/pennant/test/traffic/harness"
)

func main() {
	var o harness.Options
	// A flag set of its own: controller-runtime registers -kubeconfig on the default one.
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	fs.StringVar(&o.Dir, "dir", "bin/demo-logs", "directory for the logs of Traefik, the pods, Prometheus and pennant")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "the local control plane's kubeconfig")
	fs.StringVar(&o.Root, "root", ".", "the repository's root")
	fs.StringVar(&o.GatewayAPICRDs, "gateway-api-crds", "", "the Gateway API's standard CRD directory")
	fs.StringVar(&o.Pennant, "pennant", "bin/pennant", "the pennant binary")
	fs.StringVar(&o.Pods, "pods", "bin/pods", "the pods binary (test/traffic/cmd/pods)")
	fs.StringVar(&o.Traefik, "traefik", "", "the Traefik binary (hack/traefik.sh build)")
	fs.StringVar(&o.Prometheus, "prometheus", "prometheus", "the Prometheus binary")
	fs.StringVar(&plugin, "plugin", "bin/kubectl-pennant", "the kubectl-pennant binary")
	_ = fs.Parse(os.Args[1:])
	o.Logf = func(format string, args ...any) { say(format, args...) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "\ninterrupted: everything the demo started is stopped")
			os.Exit(130)
		}
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\nlogs: %s\n", err, o.Dir)
		os.Exit(1)
	}
}

var (
	started = time.Now()
	// plugin is the kubectl-pennant binary.
	plugin string
)

func say(format string, args ...any) {
	fmt.Printf("\n\033[1m[demo %ds] %s\033[0m\n", int(time.Since(started).Seconds()), fmt.Sprintf(format, args...))
}

func run(ctx context.Context, o harness.Options) error {
	stack, err := harness.Up(ctx, o)
	if err != nil {
		return err
	}
	defer stack.Down()

	say("kubectl -n test apply -f examples/demo/podinfo.yaml -f examples/demo/traefik/ingressroute.yaml -f examples/demo/traefik/canary.yaml")
	app, err := stack.DeployApp(ctx, harness.AppSpec{
		Namespace: "test", Manifests: []string{"examples/demo/traefik/ingressroute.yaml", "examples/demo/traefik/canary.yaml"},
		Router: harness.Traefik, Host: "app.example.com", Rate: 200, Interval: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer app.Stop()
	say("canary/podinfo is Initialized; 200 requests per second go to http://app.example.com through Traefik (%s)", stack.Web)

	say("A good release: kubectl -n test set image deployment/podinfo podinfod=ghcr.io/stefanprodan/podinfo:6.0.1")
	if err := releaseAndShow(ctx, app, harness.ReleaseOptions{Title: "podinfo 6.0.1", Edit: image("6.0.1")}); err != nil {
		return err
	}

	say("A bad release: podinfo 6.0.2 answers 30%% of its requests with a 500 (ERROR_RATE=0.3)")
	if err := releaseAndShow(ctx, app, harness.ReleaseOptions{Title: "podinfo 6.0.2", Edit: func(d *appsv1.Deployment) {
		image("6.0.2")(d)
		c := &d.Spec.Template.Spec.Containers[0]
		c.Env = append(c.Env, corev1.EnvVar{Name: "ERROR_RATE", Value: "0.3"})
	}}); err != nil {
		return err
	}

	say("A release driven from kubectl pennant: podinfo 6.0.3, paused at 20%%, resumed, then promoted")
	if err := pluginRelease(ctx, app, plugin, o.Kubeconfig); err != nil {
		return err
	}

	say("An A/B release on the Gateway API: kubectl -n ab apply -f examples/demo/podinfo.yaml -f examples/demo/gateway/canary-ab.yaml")
	return abRelease(ctx, stack)
}

func image(tag string) func(*appsv1.Deployment) {
	return func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:" + tag
	}
}

// releaseAndShow runs a release, printing the canary's phase and weight as they change, then what
// `kubectl describe canary` shows and what the traffic measured.
func releaseAndShow(ctx context.Context, app *harness.App, o harness.ReleaseOptions) error {
	watching, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); follow(app, watching) }()
	rep, err := app.Run(ctx, o)
	close(watching)
	<-done
	if err != nil && ctx.Err() != nil {
		return err // interrupted
	}
	if err != nil {
		return fmt.Errorf("%w\nTraefik's view of the release: %s\nTraefik's view and the routing objects now: %s",
			err, strings.ReplaceAll(app.View.String(), " → ", "\n  → "), app.Snapshot(context.WithoutCancel(ctx)))
	}
	fmt.Printf("\nkubectl -n %s describe canary podinfo (events):\n%s\n%s", app.Namespace, rep.Events, rep)
	return nil
}

// follow prints each new phase and route weight of the canary until stop.
func follow(app *harness.App, stop <-chan struct{}) {
	printed := map[*harness.Timeline]int{app.Phase: len(app.Phase.Changes()), app.Route: len(app.Route.Changes())}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for tl, what := range map[*harness.Timeline]string{app.Phase: "phase", app.Route: "primary/canary weights"} {
			changes := tl.Changes()
			for _, c := range changes[printed[tl]:] {
				fmt.Printf("  %s  canary/%s %s: %s\n", c.At.Format("15:04:05"), app.Name, what, c.Value)
			}
			printed[tl] = len(changes)
		}
	}
}

func abRelease(ctx context.Context, stack *harness.Stack) error {
	app, err := stack.DeployApp(ctx, harness.AppSpec{
		Namespace: "ab", Manifests: []string{"examples/demo/gateway/canary-ab.yaml"},
		Router: harness.GatewayAPI, Host: "ab.example.com", Rate: 100, Interval: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer app.Stop()
	insiders, err := stack.StartTraffic(ctx, harness.TrafficSpec{Host: "ab.example.com", Header: http.Header{"X-Canary": {"insider"}}, Rate: 50})
	if err != nil {
		return err
	}
	defer insiders.Stop()
	say("100 requests per second to http://ab.example.com, and 50 more with the header x-canary: insider; releasing 6.0.1")
	if err := releaseAndShow(ctx, app, harness.ReleaseOptions{Title: "podinfo 6.0.1 for insiders", Edit: image("6.0.1"), NoSplit: true}); err != nil {
		return err
	}
	end := time.Now()
	header := harness.Steps(app.Route.Changes(), insiders, app.Name, 0, app.Triggered, end, time.Second)
	others := harness.Steps(app.Route.Changes(), app.Traffic, app.Name, 0, app.Triggered, end, time.Second)
	fmt.Printf("requests with x-canary: insider, by the canary weight of the header's rule:\n%s", harness.FormatSteps(header))
	fmt.Printf("requests without it, by the same:\n%s", harness.FormatSteps(others))
	say("Done: everything the demo started is stopped")
	return nil
}
