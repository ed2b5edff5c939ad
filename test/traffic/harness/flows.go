package harness

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// App is a demo application set up for releases: its namespace, canary and the load through the proxy.
type App struct {
	*Release
	Traffic *Traffic
	Host    string
	// View is Traefik's own view of the app's routing (TraefikView), for explaining a failure.
	View *Timeline
}

// AppSpec says how to deploy the demo app: the manifests (relative to the repository root) after
// examples/demo/podinfo.yaml, the router the release is followed on, the Host of its traffic and the
// analysis interval of its canary.
type AppSpec struct {
	Namespace string
	Manifests []string
	// Replace rewrites the manifests' text: apps in several namespaces need hosts of their own
	// (Traefik routes one host to one of the routes that claim it).
	Replace  map[string]string
	Router   Router
	Host     string
	Header   http.Header
	Rate     int
	Interval time.Duration
}

// DeployApp deploys podinfo and its canary, waits for the canary to be initialized, starts the load
// and waits until the primary answers it.
func (s *Stack) DeployApp(ctx context.Context, spec AppSpec) (*App, error) {
	if err := s.CreateNamespace(ctx, spec.Namespace); err != nil {
		return nil, err
	}
	rel, err := s.Follow(ctx, spec.Namespace, "podinfo", spec.Router, spec.Interval)
	if err != nil {
		return nil, err
	}
	began := time.Now()
	for _, m := range append([]string{"examples/demo/podinfo.yaml"}, spec.Manifests...) {
		if _, err := s.ApplyFile(ctx, filepath.Join(s.opts.Root, m), spec.Namespace, spec.Replace, nil); err != nil {
			rel.Stop()
			return nil, err
		}
	}
	if _, err := rel.WaitPhase(ctx, began, 2*time.Minute, "Initialized"); err != nil {
		rel.Stop()
		return nil, err
	}
	tr, err := s.StartTraffic(ctx, TrafficSpec{Host: spec.Host, Header: spec.Header, Rate: spec.Rate})
	if err != nil {
		rel.Stop()
		return nil, err
	}
	app := &App{Release: rel, Traffic: tr, Host: spec.Host, View: s.TraefikView(ctx, spec.Namespace, "podinfo")}
	if err := app.waitServed(ctx, time.Minute); err != nil {
		app.Stop()
		return nil, err
	}
	return app, nil
}

// waitServed waits until a whole second of requests succeeded.
func (a *App) waitServed(ctx context.Context, timeout time.Duration) error {
	began := time.Now()
	return poll(ctx, timeout, 200*time.Millisecond, "podinfo answering through Traefik", func() (bool, error) {
		now := time.Now()
		if now.Sub(began) < time.Second {
			return false, nil
		}
		failed, total, samples := Failures(a.Traffic, now.Add(-time.Second), now)
		if total == 0 || failed > 0 {
			return false, fmt.Errorf("%d of %d requests failed in the last second, e.g. %+v", failed, total, samples)
		}
		return true, nil
	})
}

// Stop ends the load and the recording.
func (a *App) Stop() {
	a.Traffic.Stop()
	a.Release.Stop()
	a.View.Stop()
}

// Report is what one release did to the traffic.
type Report struct {
	Title   string
	Outcome string
	Took    time.Duration
	// Steps are the canary weights and the share the canary really served.
	Steps []Step
	// Failed of Total requests failed (no response or 5xx) from the trigger until Settle after the
	// outcome; FailedSamples shows some.
	Failed, Total int
	FailedSamples []Sample
	// Rollback, for a failed release.
	Rollback *Rollback
	// Served is the version every pod answered with at the end.
	Served map[string]int
	Events string

	triggered time.Time
}

// ReleaseOptions say how a release is started and measured.
type ReleaseOptions struct {
	Title string
	// Trigger starts the release (default: the Deployment edit Edit).
	Trigger func(context.Context) error
	Edit    func(*appsv1.Deployment)
	// Rule is the route rule whose canary weight is the traffic split (0: the first).
	Rule int
	// NoSplit: the release splits no traffic by weight (A/B by header): no Steps in the report.
	NoSplit bool
	// Timeout bounds the release.
	Timeout time.Duration
}

// settle is how long after a route change the proxy may still route by the previous one (Traefik's
// providersThrottleDuration is 200ms), and how long after the outcome the traffic is watched.
const settle = time.Second

// Run runs one release under the load and measures it.
func (a *App) Run(ctx context.Context, o ReleaseOptions) (Report, error) {
	rep := Report{Title: o.Title}
	trigger := o.Trigger
	if trigger == nil {
		trigger = func(ctx context.Context) error { return a.Trigger(ctx, o.Edit) }
	} else {
		inner := trigger
		trigger = func(ctx context.Context) error { a.MarkTriggered(); return inner(ctx) }
	}
	if err := trigger(ctx); err != nil {
		return rep, err
	}
	rep.triggered = a.Triggered
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	outcome, err := a.Outcome(ctx, o.Timeout)
	if err != nil {
		return rep, err
	}
	rep.Outcome, rep.Took = outcome.Value, outcome.At.Sub(a.Triggered)
	select { // the traffic after the outcome: the finalisation's route change and the scale-down
	case <-time.After(3 * settle):
	case <-ctx.Done():
		return rep, ctx.Err()
	}
	end := time.Now()
	if !o.NoSplit {
		rep.Steps = Steps(a.Route.Changes(), a.Traffic, a.Name, o.Rule, a.Triggered, outcome.At, settle)
	}
	rep.Failed, rep.Total, rep.FailedSamples = Failures(a.Traffic, a.Triggered, end)
	if outcome.Value == "Failed" {
		rb, err := a.MeasureRollback(a.Traffic, o.Rule)
		if err != nil {
			return rep, err
		}
		rep.Rollback = &rb
	}
	rep.Served = map[string]int{}
	for _, s := range a.Traffic.Samples(end.Add(-settle), end) {
		rep.Served[s.Version]++
	}
	rep.Events, err = a.s.Events(ctx, a.Namespace, a.Name, a.Triggered)
	return rep, err
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s after %s\n", r.Title, r.Outcome, r.Took.Round(100*time.Millisecond))
	if len(r.Steps) > 0 {
		b.WriteString("traffic the canary really served at each weight Pennant set (first second of each step left out):\n")
		b.WriteString(FormatSteps(r.Steps))
	}
	fmt.Fprintf(&b, "requests failed or dropped during the release: %d of %d\n", r.Failed, r.Total)
	for _, s := range r.FailedSamples {
		fmt.Fprintf(&b, "  e.g. +%s: %d %s %s\n", s.Sent.Sub(r.triggered).Round(time.Millisecond), s.Code, s.Pod, s.Err)
	}
	if rb := r.Rollback; rb != nil {
		fmt.Fprintf(&b, "first 500 of the canary → traffic back on the primary: %s (%.1f analysis intervals)\n",
			rb.RoutedBack.Sub(rb.FirstError).Round(100*time.Millisecond), rb.Intervals)
		fmt.Fprintf(&b, "requests served by the canary after the route was written: %d (the last sent %s after it)\n",
			rb.CanaryAfter, rb.LastCanaryAfter.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "versions serving at the end: %v\n", r.Served)
	return b.String()
}

// Snapshot writes Traefik's view and the app's routing objects to a file (see Stack.Snapshot).
func (a *App) Snapshot(ctx context.Context) string { return a.s.Snapshot(ctx, a.Namespace) }
