package analysis

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

// envoyRevision is the telemetry of one Knative revision as the Knative ingress's Envoy exports it:
// its cluster is named <namespace>/<revision>.
type envoyRevision struct {
	cluster                 string
	rps, success            float64
	latencyLow, latencyHigh float64
}

// envoyExporter serves the revisions' Envoy counters, growing linearly from its start.
type envoyExporter struct {
	start     time.Time
	revisions []envoyRevision
}

func (e *envoyExporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	elapsed := time.Since(e.start).Seconds()
	var b strings.Builder
	b.WriteString("# TYPE envoy_cluster_upstream_rq counter\n")
	for _, r := range e.revisions {
		total := r.rps * elapsed
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq{envoy_cluster_name=%q,envoy_response_code=\"200\"} %g\n", r.cluster, total*r.success)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq{envoy_cluster_name=%q,envoy_response_code=\"503\"} %g\n", r.cluster, total*(1-r.success))
	}
	b.WriteString("# TYPE envoy_cluster_upstream_rq_time histogram\n")
	for _, r := range e.revisions {
		total := r.rps * elapsed
		for _, le := range latencyBuckets {
			count := 0.0
			if le >= r.latencyHigh {
				count = total
			}
			fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=%q,le=\"%g\"} %g\n", r.cluster, le, count)
		}
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=%q,le=\"+Inf\"} %g\n", r.cluster, total)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=%q} %g\n", r.cluster, total*(r.latencyLow+r.latencyHigh)/2)
		fmt.Fprintf(&b, "envoy_cluster_upstream_rq_time_count{envoy_cluster_name=%q} %g\n", r.cluster, total)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

var knativeServiceGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// createKnativeService creates the Knative Service podinfo and, unless latest is empty, writes the
// status Knative would write once the revision latest is created and ready.
func createKnativeService(t *testing.T, c client.Client, ns, latest string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(knativeServiceGVK)
	u.SetNamespace(ns)
	u.SetName("podinfo")
	u.Object["spec"] = map[string]any{"template": map[string]any{"spec": map[string]any{
		"containers": []any{map[string]any{"image": "ghcr.io/stefanprodan/podinfo:6.9.0"}},
	}}}
	if err := c.Create(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	if latest != "" {
		setKnativeLatest(t, c, ns, latest)
	}
}

// setKnativeLatest stands in for Knative: revision latest is created and ready.
func setKnativeLatest(t *testing.T, c client.Client, ns, latest string) {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(knativeServiceGVK)
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "podinfo"}, u); err != nil {
		t.Fatal(err)
	}
	for field, value := range map[string]string{"latestCreatedRevisionName": latest, "latestReadyRevisionName": latest} {
		if err := unstructured.SetNestedField(u.Object, value, "status", field); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Status().Update(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func knativeCanary(ns string, metrics ...flaggerv1.CanaryMetric) *flaggerv1.Canary {
	cd := newCanary(metrics...)
	cd.Namespace = ns
	cd.Spec.Provider = "knative"
	cd.Spec.TargetRef = flaggerv1.LocalObjectReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "podinfo"}
	return cd
}

// TestKnativeBuiltinQueriesSelectLatestRevision runs Flagger's builtin Knative queries through a
// real Prometheus: they select the Envoy cluster <namespace>/<revision>, and {{ route }} is the
// latest revision of the canary's Knative Service, read from its status on the API server (the
// real Knative CRD). Only the revisions have series: a query rendered with the target's name finds
// no values.
func TestKnativeBuiltinQueriesSelectLatestRevision(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	exporter := httptest.NewServer(&envoyExporter{start: time.Now(), revisions: []envoyRevision{
		{cluster: ns + "/podinfo-00001", rps: 20, success: 1, latencyLow: 10, latencyHigh: 50},     // p99 49.6ms
		{cluster: ns + "/podinfo-00002", rps: 20, success: 0.9, latencyLow: 250, latencyHigh: 500}, // p99 497.5ms
	}})
	t.Cleanup(exporter.Close)
	base := startPrometheus(t, strings.TrimPrefix(exporter.URL, "http://"))
	waitForData(t, base, fmt.Sprintf(`sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name="%s/podinfo-00002"}[10s]))`, ns), 30*time.Second)

	createKnativeService(t, env.Client, ns, "podinfo-00002")
	routeTemplate := &flaggerv1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "revision-rps", Namespace: ns},
		Spec: flaggerv1.MetricTemplateSpec{
			Provider: flaggerv1.MetricTemplateProvider{Type: "prometheus"},
			Query:    `sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name="{{ namespace }}/{{ route }}"}[{{ interval }}]))`,
		},
	}
	if err := env.Client.Create(context.Background(), routeTemplate); err != nil {
		t.Fatal(err)
	}
	newA := func() (*Analyzer, *fakeObserver) {
		a := New(env.Client, base, "istio") // the canary's provider, knative, selects the queries
		o := &fakeObserver{}
		a.Observer = o
		return a, o
	}
	successRate := flaggerv1.CanaryMetric{Name: RequestSuccessRate, Interval: "10s", ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(99)}}
	duration := flaggerv1.CanaryMetric{Name: RequestDuration, Interval: "10s", ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(100)}}
	rps := flaggerv1.CanaryMetric{Name: "revision-rps", Interval: "10s", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "revision-rps"},
		ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(1)}}
	ctx := context.Background()
	key := "podinfo." + ns

	t.Run("the latest revision's success rate and duration", func(t *testing.T) {
		a, o := newA()
		wantError(t, a.Analyze(ctx, knativeCanary(ns, successRate)), "Halt "+key+" advancement success rate 90.00% < 99%")
		wantError(t, a.Analyze(ctx, knativeCanary(ns, duration)), "Halt "+key+" advancement request duration 497ms > 100ms")
		if len(o.values) != 2 || o.values[1] != (recorded{RequestDuration, 0.497}) {
			t.Errorf("observed %v, want 90%% and 0.497s", o.values)
		}
	})
	t.Run("a template's route is the latest revision too", func(t *testing.T) {
		a, o := newA()
		if err := a.Analyze(ctx, knativeCanary(ns, rps)); err != nil {
			t.Fatal(err)
		}
		// The rate of a few seconds of samples is not exactly 20/s: the template found the series.
		if len(o.values) != 1 || o.values[0].value <= 0 {
			t.Errorf("observed %v, want the revision's request rate", o.values)
		}
	})
	t.Run("a new latest revision is read from the status", func(t *testing.T) {
		setKnativeLatest(t, env.Client, ns, "podinfo-00001")
		t.Cleanup(func() { setKnativeLatest(t, env.Client, ns, "podinfo-00002") })
		a, o := newA()
		if err := a.Analyze(ctx, knativeCanary(ns, successRate, duration)); err != nil {
			t.Fatal(err)
		}
		if len(o.values) != 2 || o.values[0].value != 100 || o.values[1] != (recorded{RequestDuration, 0.049}) {
			t.Errorf("observed %v, want 100%% and 0.049s", o.values)
		}
	})
	t.Run("a missing Knative Service fails the check", func(t *testing.T) {
		a, _ := newA()
		cd := knativeCanary(ns, successRate)
		cd.Spec.TargetRef.Name = "absent"
		err := a.Analyze(ctx, cd)
		t.Log(err)
		wantErrorContaining(t, err, "Error fetching Knative service "+ns+"/absent ", "not found")
	})
}

// TestKnativeServiceWithoutRevision: a Knative Service that has no revision yet gives an error
// that says so, and no query is sent.
func TestKnativeServiceWithoutRevision(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	createKnativeService(t, env.Client, ns, "")
	a := New(env.Client, "http://"+testenv.FreeLoopbackAddr(t), "knative") // nothing listens there
	successRate := flaggerv1.CanaryMetric{Name: RequestSuccessRate, Interval: "10s", ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(99)}}
	err := a.Analyze(context.Background(), knativeCanary(ns, successRate))
	t.Log(err)
	wantErrorContaining(t, err, "Error fetching Knative service "+ns+"/podinfo ", "has no revision yet")
}
