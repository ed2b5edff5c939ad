package analysis

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

// TestKeptnTemplate runs a keptn MetricTemplate through the analyzer on a real API server with
// Keptn's CRDs: the query renders the canary's names, and the analyzer's Kubernetes client reads
// the KeptnMetric whose status the test writes as Keptn's metrics operator would.
func TestKeptnTemplate(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	ctx := context.Background()
	metric := &unstructured.Unstructured{}
	metric.SetGroupVersionKind(schema.GroupVersionKind{Group: "metrics.keptn.sh", Version: "v1beta1", Kind: "KeptnMetric"})
	metric.SetNamespace(ns)
	metric.SetName("podinfo-latency")
	metric.Object["spec"] = map[string]any{
		"provider": map[string]any{"name": "prometheus"}, "fetchIntervalSeconds": int64(10),
		"query": `histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket{app="podinfo"}[1m])) by (le))`,
	}
	if err := env.Client.Create(ctx, metric); err != nil {
		t.Fatal(err)
	}
	metric.Object["status"] = map[string]any{"value": "0.734", "lastUpdated": time.Now().UTC().Format(time.RFC3339)}
	if err := env.Client.Status().Update(ctx, metric); err != nil {
		t.Fatal(err)
	}
	template := &flaggerv1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "keptn-latency", Namespace: ns},
		Spec: flaggerv1.MetricTemplateSpec{
			Provider: flaggerv1.MetricTemplateProvider{Type: "keptn"},
			Query:    "keptnmetric/{{ namespace }}/{{ target }}-latency",
		},
	}
	if err := env.Client.Create(ctx, template); err != nil {
		t.Fatal(err)
	}
	latency := flaggerv1.CanaryMetric{Name: "latency", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "keptn-latency"},
		ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(0.5)}}
	cd := newCanary(latency)
	cd.Namespace = ns

	a := New(env.Client, prom, "istio")
	a.Kube = env.Client
	wantError(t, a.Analyze(ctx, cd), "Halt podinfo."+ns+" advancement latency 0.73 > 0.5")
	if err := a.CheckProviderAvailability(ctx, cd); err != nil {
		t.Fatal(err)
	}

	a.Kube = nil
	err := a.Analyze(ctx, cd)
	t.Log(err)
	wantErrorContaining(t, err, "Metric template keptn-latency."+ns+" provider keptn error: keptn: no Kubernetes client")
}
