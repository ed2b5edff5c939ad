package controller_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// split is the primary/canary weights of one route of a routing object.
type split struct{ primary, canary int }

func (s split) String() string { return fmt.Sprintf("%d/%d", s.primary, s.canary) }

// weightRecorder polls a routing object and keeps every distinct split of its routes it sees.
type weightRecorder struct {
	mu   sync.Mutex
	seen [][]split
	stop chan struct{}
	done chan struct{}
}

// recordWeights polls obj (an unstructured GVK and name) every 50ms until stopped.
func (f *fixture) recordWeights(gvk schema.GroupVersionKind, name string, read func(map[string]any) []split) *weightRecorder {
	w := &weightRecorder{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, u); err == nil {
				got := read(u.Object)
				w.mu.Lock()
				if n := len(w.seen); len(got) > 0 && (n == 0 || !reflect.DeepEqual(w.seen[n-1], got)) {
					w.seen = append(w.seen, got)
				}
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	f.t.Cleanup(w.finish)
	return w
}

func (w *weightRecorder) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

func (w *weightRecorder) sequence() []string {
	w.finish()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.seen))
	for _, routes := range w.seen {
		parts := make([]string, 0, len(routes))
		for _, r := range routes {
			parts = append(parts, r.String())
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

// destinations reads name/weight pairs from a list of destination maps; key finds the name.
func destinations(list []any, name func(map[string]any) string) split {
	var s split
	for _, d := range list {
		m, _ := d.(map[string]any)
		weight, _, _ := unstructured.NestedInt64(m, "weight")
		switch n := name(m); {
		case strings.Contains(n, "-primary"):
			s.primary = int(weight)
		case strings.Contains(n, "-canary"):
			s.canary = int(weight)
		}
	}
	return s
}

var virtualServiceGVK = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}

// istioSplits reads each HTTP route's weights from a VirtualService.
func istioSplits(obj map[string]any) []split {
	routes, _, _ := unstructured.NestedSlice(obj, "spec", "http")
	var out []split
	for _, r := range routes {
		dests, _, _ := unstructured.NestedSlice(r.(map[string]any), "route")
		out = append(out, destinations(dests, func(m map[string]any) string {
			host, _, _ := unstructured.NestedString(m, "destination", "host")
			return host
		}))
	}
	return out
}

var routeTableGVK = schema.GroupVersionKind{Group: "gateway.solo.io", Version: "v1", Kind: "RouteTable"}

// glooSplits reads each route's weighted upstreams from a Gloo RouteTable.
func glooSplits(obj map[string]any) []split {
	routes, _, _ := unstructured.NestedSlice(obj, "spec", "routes")
	var out []split
	for _, r := range routes {
		dests, _, _ := unstructured.NestedSlice(r.(map[string]any), "routeAction", "multi", "destinations")
		out = append(out, destinations(dests, func(m map[string]any) string {
			name, _, _ := unstructured.NestedString(m, "destination", "upstream", "name")
			return name
		}))
	}
	return out
}

// weightedCanary is seed 001/003's canary: stepWeight 5 up to 50, with the builtin checks.
func weightedCanary(provider string, prom *promAPI) *flaggerv1.Canary {
	cd := analysedCanary(prom, 0, 2)
	cd.Spec.Provider = provider
	cd.Spec.Analysis.Iterations = 0
	cd.Spec.Analysis.StepWeight = 5
	cd.Spec.Analysis.MaxWeight = 50
	return cd
}

func expectedCanaryWalk() []string {
	walk := []string{"100/0"}
	for w := 5; w <= 50; w += 5 {
		walk = append(walk, fmt.Sprintf("%d/%d", 100-w, w))
	}
	return append(walk, "100/0")
}

func TestIstioCanaryReleaseSeed001(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	f.create(podinfoDeployment("podinfo", 1), weightedCanary("istio", prom))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	rec := f.recordWeights(virtualServiceGVK, "podinfo", istioSplits)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.1.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	time.Sleep(200 * time.Millisecond)
	if got, want := rec.sequence(), expectedCanaryWalk(); !reflect.DeepEqual(got, want) {
		t.Errorf("VirtualService weights went %v, want %v", got, want)
	}
	// The events of the steps are aggregated by the event recorder ("combined from similar events"),
	// as with Flagger; the weights above are the per-step record.
	f.waitEvent("Advance "+f.key("podinfo")+" canary weight 5", 5*time.Second)
	for _, e := range f.events() {
		if strings.HasPrefix(e, "Warning") && !strings.Contains(e, "Waiting for") {
			t.Errorf("unexpected warning during a healthy release: %q", e)
		}
	}
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		dr := &unstructured.Unstructured{}
		dr.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"})
		f.get(name, dr)
		if host, _, _ := unstructured.NestedString(dr.Object, "spec", "host"); host != name {
			t.Errorf("DestinationRule %s host = %q", name, host)
		}
	}
}

func TestIstioABTestingSeed001(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	cd := analysedCanary(prom, 3, 2)
	cd.Spec.Provider = "istio"
	cd.Spec.Analysis.Match = []flaggerv1.ABMatch{
		{Headers: map[string]flaggerv1.StringMatch{"user-agent": {Regex: ".*Firefox.*"}}},
		{Headers: map[string]flaggerv1.StringMatch{"cookie": {Regex: "^(.*?;)?(type=insider)(;.*)?$"}}},
	}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	rec := f.recordWeights(virtualServiceGVK, "podinfo", istioSplits)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.1.1")
	f.waitEvent("Advance "+f.key("podinfo")+" canary iteration 1/3", phaseTimeout)
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	f.get("podinfo", vs)
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if len(routes) != 2 {
		t.Fatalf("A/B VirtualService has %d http routes, want the matched route and the default one", len(routes))
	}
	matches, _, _ := unstructured.NestedSlice(routes[0].(map[string]any), "match")
	wantRegex := []string{".*Firefox.*", "^(.*?;)?(type=insider)(;.*)?$"}
	if len(matches) != 2 {
		t.Fatalf("matched route has %d matches, want 2: %v", len(matches), matches)
	}
	for i, h := range []string{"user-agent", "cookie"} {
		got, _, _ := unstructured.NestedString(matches[i].(map[string]any), "headers", h, "regex")
		if got != wantRegex[i] {
			t.Errorf("match %d header %s regex = %q, want %q", i, h, got, wantRegex[i])
		}
	}
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	time.Sleep(200 * time.Millisecond)
	got := rec.sequence()
	if want := []string{"100/0 100/0", "0/100 100/0", "100/0 100/0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("A/B routes went %v, want %v (matched route first, default route second)", got, want)
	}
}

func TestGlooCanaryReleaseSeed003(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	f.create(podinfoDeployment("podinfo", 1), weightedCanary("gloo", prom))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	for _, name := range []string{f.ns + "-podinfo-primaryupstream-9898", f.ns + "-podinfo-canaryupstream-9898"} {
		up := &unstructured.Unstructured{}
		up.SetGroupVersionKind(schema.GroupVersionKind{Group: "gloo.solo.io", Version: "v1", Kind: "Upstream"})
		f.get(name, up)
	}
	rec := f.recordWeights(routeTableGVK, "podinfo", glooSplits)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.3")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	time.Sleep(200 * time.Millisecond)
	if got, want := rec.sequence(), expectedCanaryWalk(); !reflect.DeepEqual(got, want) {
		t.Errorf("RouteTable weights went %v, want %v", got, want)
	}
	f.waitEvent("Promotion completed! Scaling down "+f.key("podinfo"), 5*time.Second)
}

func TestGlooABTestingSeed003(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	cd := analysedCanary(prom, 4, 5)
	cd.Spec.Provider = "gloo"
	cd.Spec.Analysis.Match = []flaggerv1.ABMatch{{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}}}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	rec := f.recordWeights(routeTableGVK, "podinfo", glooSplits)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.4")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	time.Sleep(200 * time.Millisecond)
	if got, want := rec.sequence(), []string{"100/0 100/0", "0/100 100/0", "100/0 100/0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("A/B RouteTable routes went %v, want %v (matched route first, default route second)", got, want)
	}
	// Later events of this run are aggregated by the event recorder ("combined from similar
	// events"), as with Flagger; the machine's unit tests pin their texts.
	f.waitEvent("Advance "+f.key("podinfo")+" canary iteration 4/4", 5*time.Second)
}

func TestGlooMetricTemplateRollbackSeed003(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	prom.answers.Store("status!=", 6.2) // the 404s percentage query of seed 003
	tmpl := &flaggerv1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "not-found-percentage"},
		Spec: flaggerv1.MetricTemplateSpec{
			Provider: flaggerv1.MetricTemplateProvider{Type: "prometheus", Address: prom.srv.URL},
			Query: `100 - sum(rate(http_request_duration_seconds_count{kubernetes_namespace="{{ namespace }}",` +
				`kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",status!="404"}[{{ interval }}]))`,
		},
	}
	cd := weightedCanary("gloo", prom)
	cd.Spec.Analysis.Threshold = 3
	max5 := 5.0
	cd.Spec.Analysis.Metrics = append(cd.Spec.Analysis.Metrics, flaggerv1.CanaryMetric{
		Name: "404s percentage", Interval: "1m", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "not-found-percentage"},
		ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: &max5},
	})
	f.create(tmpl, podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.3")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	f.waitEvent("Halt "+f.key("podinfo")+" advancement 404s percentage 6.20 > 5", 5*time.Second)
	f.waitEvent("Rolling back "+f.key("podinfo")+" failed checks threshold reached 3", 5*time.Second)
	rt := &unstructured.Unstructured{}
	rt.SetGroupVersionKind(routeTableGVK)
	f.get("podinfo", rt)
	if got := glooSplits(rt.Object); len(got) != 1 || got[0] != (split{100, 0}) {
		t.Errorf("RouteTable after the rollback = %v, want all traffic on the primary", got)
	}
}

// A target deleted in the middle of an analysis: all traffic goes back to the (ready) primary and
// the release fails with the reason, instead of a split frozen towards a Deployment that is gone.
func TestTargetDeletedDuringAnalysisSendsTrafficToThePrimary(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	f.create(podinfoDeployment("podinfo", 1), weightedCanary("istio", prom))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.1.1")
	testenvEventually(f, func() (bool, string) {
		cd := f.canary("podinfo")
		return cd.Status.CanaryWeight >= 10, fmt.Sprintf("phase %s weight %d", cd.Status.Phase, cd.Status.CanaryWeight)
	})
	target := &appsv1.Deployment{}
	f.get("podinfo", target)
	if err := f.c.Delete(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	if cd.Status.CanaryWeight != 0 {
		t.Errorf("canaryWeight %d after the abort, want 0", cd.Status.CanaryWeight)
	}
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	f.get("podinfo", vs)
	if got := istioSplits(vs.Object); len(got) == 0 || got[0] != (split{primary: 100}) {
		t.Errorf("VirtualService routes %v after the target was deleted, want 100/0", got)
	}
	f.waitEvent("Canary failed! "+f.key("podinfo")+": Deployment podinfo."+f.ns+" not found", 10*time.Second)
}
