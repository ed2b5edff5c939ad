package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var (
	canaryGVK         = schema.GroupVersionKind{Group: "flagger.app", Version: "v1beta1", Kind: "Canary"}
	traefikServiceGVK = schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "TraefikService"}
	httpRouteGVK      = schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}
)

// Router names the routing object a release is followed on.
type Router int

const (
	// Traefik follows the TraefikService <name> (provider traefik).
	Traefik Router = iota
	// GatewayAPI follows the HTTPRoute <name> (provider gatewayapi:v1).
	GatewayAPI
)

// Release follows one canary (named after its target) through releases, with its phase and its
// route's weights recorded as they change.
type Release struct {
	s               *Stack
	Namespace, Name string
	Interval        time.Duration
	Phase, Route    *Timeline
	// Triggered is when the last release was started (Trigger).
	Triggered time.Time
}

// Follow starts recording the canary's phase and its route's weights.
func (s *Stack) Follow(ctx context.Context, namespace, name string, router Router, interval time.Duration) (*Release, error) {
	phase, err := s.Watch(ctx, canaryGVK, namespace, name, func(u *unstructured.Unstructured) string {
		p, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		return p
	})
	if err != nil {
		return nil, err
	}
	gvk, weights := traefikServiceGVK, traefikWeights
	if router == GatewayAPI {
		gvk, weights = httpRouteGVK, httpRouteWeights
	}
	route, err := s.Watch(ctx, gvk, namespace, name, func(u *unstructured.Unstructured) string { return weights(u, name) })
	if err != nil {
		phase.Stop()
		return nil, err
	}
	return &Release{s: s, Namespace: namespace, Name: name, Interval: interval, Phase: phase, Route: route}, nil
}

// Stop ends the recording.
func (r *Release) Stop() {
	r.Phase.Stop()
	r.Route.Stop()
}

// traefikWeights is "<primary>/<canary>" of a TraefikService's weighted round robin (a canary that is
// not listed has weight 0).
func traefikWeights(u *unstructured.Unstructured, name string) string {
	services, _, _ := unstructured.NestedSlice(u.Object, "spec", "weighted", "services")
	return backendWeights(services, name)
}

// httpRouteWeights is "<primary>/<canary>" for each rule of an HTTPRoute, joined by " ".
func httpRouteWeights(u *unstructured.Unstructured, name string) string {
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	var out []string
	for _, rule := range rules {
		refs, _, _ := unstructured.NestedSlice(rule.(map[string]any), "backendRefs")
		out = append(out, backendWeights(refs, name))
	}
	return strings.Join(out, " ")
}

func backendWeights(backends []any, name string) string {
	weight := map[string]int64{}
	for _, b := range backends {
		m, _ := b.(map[string]any)
		n, _, _ := unstructured.NestedString(m, "name")
		w, found, _ := unstructured.NestedInt64(m, "weight")
		if !found {
			w = 1 // the Gateway API's default
		}
		weight[n] = w
	}
	return fmt.Sprintf("%d/%d", weight[name+"-primary"], weight[name+"-canary"])
}

// CanaryWeight is the canary weight of a route value's rule (0: the first).
func CanaryWeight(value string, rule int) (int, bool) {
	rules := strings.Fields(value)
	if rule >= len(rules) {
		return 0, false
	}
	_, canary, ok := strings.Cut(rules[rule], "/")
	w, err := strconv.Atoi(canary)
	return w, ok && err == nil
}

// Trigger starts a release by changing the target Deployment (a new image, an environment variable).
func (r *Release) Trigger(ctx context.Context, edit func(*appsv1.Deployment)) error {
	r.Triggered = time.Now()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d := &appsv1.Deployment{}
		if err := r.s.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, d); err != nil {
			return err
		}
		edit(d)
		return r.s.Client.Update(ctx, d)
	})
}

// MarkTriggered records that a release was started by other means (a ConfigMap change).
func (r *Release) MarkTriggered() { r.Triggered = time.Now() }

// WaitPhase waits for one of the phases, recorded since from, while the stack runs.
func (r *Release) WaitPhase(ctx context.Context, from time.Time, timeout time.Duration, phases ...string) (Change, error) {
	var got Change
	err := poll(ctx, timeout, 50*time.Millisecond, "canary "+r.Namespace+"/"+r.Name+" phase "+strings.Join(phases, " or "), func() (bool, error) {
		if err := r.s.Alive(); err != nil {
			return false, fatal{err}
		}
		c, ok := r.Phase.First(from, Is(phases...))
		got = c
		if !ok {
			return false, fmt.Errorf("phases seen: %s", r.Phase)
		}
		return true, nil
	})
	return got, err
}

// Outcome waits for the release started by Trigger to end: Succeeded or Failed.
func (r *Release) Outcome(ctx context.Context, timeout time.Duration) (Change, error) {
	return r.WaitPhase(ctx, r.Triggered, timeout, "Succeeded", "Failed")
}

// Step is one weight of a release and the traffic the canary really got while it held.
type Step struct {
	Weight           int
	From, To         time.Time
	Requests, Canary int
}

// Share is the canary's share of the step's requests, in percent.
func (s Step) Share() float64 {
	if s.Requests == 0 {
		return 0
	}
	return 100 * float64(s.Canary) / float64(s.Requests)
}

// Steps are the canary weights the route held between from and to (rule: the route value's rule)
// and the share of the requests answered by a pod that the canary's pods answered while each held,
// leaving out the first settle of each (the proxy's reaction time).
func Steps(route []Change, traffic *Traffic, target string, rule int, from, to time.Time, settle time.Duration) []Step {
	var steps []Step
	for i, c := range route {
		end := to
		if i+1 < len(route) {
			end = route[i+1].At
		}
		if end.Before(from) || !c.At.Before(to) {
			continue
		}
		w, ok := CanaryWeight(c.Value, rule)
		if !ok {
			continue
		}
		st := Step{Weight: w, From: later(c.At, from), To: earlier(end, to)}
		for _, sm := range traffic.Samples(c.At.Add(settle), st.To) {
			if sm.Pod == "" || sm.Sent.Before(st.From) {
				continue // no pod answered: the proxy failed it (counted by Failures)
			}
			st.Requests++
			if IsCanaryPod(target, sm.Pod) {
				st.Canary++
			}
		}
		steps = append(steps, st)
	}
	return steps
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// FormatSteps is a table of the steps: the weight set, the share served, the requests.
func FormatSteps(steps []Step) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %-12s %-14s %-10s %s\n", "weight set", "canary served", "requests", "held")
	for _, s := range steps {
		fmt.Fprintf(&b, "  %-12s %-14s %-10d %s\n", fmt.Sprintf("%d%%", s.Weight), fmt.Sprintf("%.1f%%", s.Share()),
			s.Requests, s.To.Sub(s.From).Round(100*time.Millisecond))
	}
	return b.String()
}

// Failures counts the requests sent in [from, to) that failed, and all of them.
func Failures(traffic *Traffic, from, to time.Time) (failed, total int, samples []Sample) {
	for _, s := range traffic.Samples(from, to) {
		total++
		if s.Failed() {
			failed++
			if len(samples) < 5 {
				samples = append(samples, s)
			}
		}
	}
	return failed, total, samples
}

// Rollback is how fast a bad release was pulled.
type Rollback struct {
	// FirstError is when the first request that the canary answered with a 5xx was sent.
	FirstError time.Time
	// RoutedBack is when the route gave the canary weight 0 again after FirstError.
	RoutedBack time.Time
	// Intervals is RoutedBack - FirstError in analysis intervals.
	Intervals float64
	// CanaryAfter is the number of requests the canary served that were sent after RoutedBack;
	// LastCanaryAfter how long after it the last of them was sent (the proxy's reaction time).
	CanaryAfter     int
	LastCanaryAfter time.Duration
}

// MeasureRollback finds the rollback of the release in the traffic and the route (rule: the route
// value's rule that carries the canary's weight).
func (r *Release) MeasureRollback(traffic *Traffic, rule int) (Rollback, error) {
	var rb Rollback
	for _, s := range traffic.Samples(r.Triggered, time.Time{}) {
		if s.Code >= 500 && IsCanaryPod(r.Name, s.Pod) && (rb.FirstError.IsZero() || s.Sent.Before(rb.FirstError)) {
			rb.FirstError = s.Sent
		}
	}
	if rb.FirstError.IsZero() {
		return rb, fmt.Errorf("the canary answered no request with a 5xx")
	}
	back, ok := r.Route.First(rb.FirstError, func(v string) bool { w, ok := CanaryWeight(v, rule); return ok && w == 0 })
	if !ok {
		return rb, fmt.Errorf("the route never gave the canary weight 0 after its first error (%s)", r.Route)
	}
	rb.RoutedBack = back.At
	rb.Intervals = back.At.Sub(rb.FirstError).Seconds() / r.Interval.Seconds()
	for _, s := range traffic.Samples(back.At, time.Time{}) {
		if IsCanaryPod(r.Name, s.Pod) {
			rb.CanaryAfter++
			rb.LastCanaryAfter = max(rb.LastCanaryAfter, s.Sent.Sub(back.At))
		}
	}
	return rb, nil
}
