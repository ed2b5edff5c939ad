package telemetry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

// Exposition headers, word for word Flagger's.
const (
	headStatus    = "# HELP flagger_canary_status Last canary analysis result\n# TYPE flagger_canary_status gauge\n"
	headWeight    = "# HELP flagger_canary_weight The virtual service destination weight current value\n# TYPE flagger_canary_weight gauge\n"
	headAnalysis  = "# HELP flagger_canary_metric_analysis Last canary analysis result per metric\n# TYPE flagger_canary_metric_analysis gauge\n"
	headDuration  = "# HELP flagger_canary_duration_seconds Seconds spent performing canary analysis.\n# TYPE flagger_canary_duration_seconds histogram\n"
	headSuccesses = "# HELP flagger_canary_successes_total Total number of canary successes\n# TYPE flagger_canary_successes_total counter\n"
	headFailures  = "# HELP flagger_canary_failures_total Total number of canary failures\n# TYPE flagger_canary_failures_total counter\n"
	headTotal     = "# HELP flagger_canary_total Total number of canary object\n# TYPE flagger_canary_total gauge\n"
	headInfo      = "# HELP flagger_info Flagger version and mesh provider information\n# TYPE flagger_info gauge\n"
)

var allNames = []string{
	"flagger_info", "flagger_canary_total", "flagger_canary_status", "flagger_canary_weight",
	"flagger_canary_metric_analysis", "flagger_canary_duration_seconds",
	"flagger_canary_successes_total", "flagger_canary_failures_total",
}

func newRecorder(t *testing.T) (*Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	return r, reg
}

// newCanary is a canary whose name differs from its target's, so that tests see which one labels
// the series.
func newCanary(ns, name, target string, a *flaggerv1.CanaryAnalysis) *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: flaggerv1.CanarySpec{
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: target},
			Analysis:  a,
		},
	}
}

func progressive() *flaggerv1.CanaryAnalysis {
	return &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, StepWeight: 10, MaxWeight: 50}
}

func blueGreen() *flaggerv1.CanaryAnalysis {
	return &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: 10}
}

func abTesting() *flaggerv1.CanaryAnalysis {
	return &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: 10, Match: []flaggerv1.ABMatch{
		{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}}},
	}}
}

func decision(phase flaggerv1.CanaryPhase, o canary.Outcome) canary.Decision {
	return canary.Decision{Status: flaggerv1.CanaryStatus{Phase: phase}, Outcome: o}
}

func compare(t *testing.T, reg prometheus.Gatherer, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestStatusValueFollowsFlagger(t *testing.T) {
	want := map[flaggerv1.CanaryPhase]float64{
		flaggerv1.CanaryPhaseInitializing:     1,
		flaggerv1.CanaryPhaseInitialized:      1,
		flaggerv1.CanaryPhaseWaiting:          1,
		flaggerv1.CanaryPhaseProgressing:      0,
		flaggerv1.CanaryPhaseWaitingPromotion: 1,
		flaggerv1.CanaryPhasePromoting:        1,
		flaggerv1.CanaryPhaseFinalising:       1,
		flaggerv1.CanaryPhaseSucceeded:        1,
		flaggerv1.CanaryPhaseFailed:           2,
		flaggerv1.CanaryPhaseTerminating:      1,
		flaggerv1.CanaryPhaseTerminated:       1,
	}
	r, reg := newRecorder(t)
	cd := newCanary("test", "podinfo-canary", "podinfo", progressive())
	for phase, v := range want {
		if got := StatusValue(phase); got != v {
			t.Errorf("StatusValue(%s) = %v, want %v", phase, got, v)
		}
		r.Observe(cd, decision(phase, canary.OutcomeNone), "istio")
		if got := testutil.ToFloat64(r.status.WithLabelValues("podinfo", "test")); got != v {
			t.Errorf("after Observe(%s): flagger_canary_status = %v, want %v", phase, got, v)
		}
	}
	// A decision without a phase says nothing about the status: the last value stays.
	r.Observe(cd, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeNone), "istio")
	r.Observe(cd, decision("", canary.OutcomeNone), "istio")
	compare(t, reg, headStatus+`flagger_canary_status{name="podinfo",namespace="test"} 2
`, "flagger_canary_status")
	// Nothing was released: no counter series.
	if n := testutil.CollectAndCount(r.successes) + testutil.CollectAndCount(r.failures); n != 0 {
		t.Errorf("%d outcome series after decisions without outcome", n)
	}
}

func TestObserveCountsOutcomes(t *testing.T) {
	r, reg := newRecorder(t)
	web := newCanary("test", "podinfo-canary", "podinfo", progressive())
	r.Observe(web, decision(flaggerv1.CanaryPhaseProgressing, canary.OutcomeNone), "istio")
	r.Observe(web, decision(flaggerv1.CanaryPhaseSucceeded, canary.OutcomeCompleted), "istio")
	r.Observe(web, decision(flaggerv1.CanaryPhaseProgressing, canary.OutcomeNone), "istio")
	r.Observe(web, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeFailed), "istio")
	r.Observe(web, decision(flaggerv1.CanaryPhaseSucceeded, canary.OutcomeCompleted), "istio")

	ab := newCanary("test", "ab", "abapp", abTesting())
	r.Observe(ab, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeFailed), "istio")

	// The kubernetes provider runs any analysis as blue/green.
	svc := newCanary("prod", "svc", "backend", progressive())
	r.Observe(svc, decision(flaggerv1.CanaryPhaseSucceeded, canary.OutcomeCompleted), "kubernetes")

	bg := newCanary("prod", "bg", "frontend", blueGreen())
	r.Observe(bg, decision(flaggerv1.CanaryPhaseWaitingPromotion, canary.OutcomeNone), "linkerd")

	skip := newCanary("prod", "skip", "worker", progressive())
	skip.Spec.SkipAnalysis = true
	r.Observe(skip, decision(flaggerv1.CanaryPhaseSucceeded, canary.OutcomeSkipped), "istio")
	r.Observe(skip, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeFailed), "istio")

	compare(t, reg, headStatus+`flagger_canary_status{name="abapp",namespace="test"} 2
flagger_canary_status{name="backend",namespace="prod"} 1
flagger_canary_status{name="frontend",namespace="prod"} 1
flagger_canary_status{name="podinfo",namespace="test"} 1
flagger_canary_status{name="worker",namespace="prod"} 2
`+headSuccesses+`flagger_canary_successes_total{analysis_status="completed",deployment_strategy="blue-green",name="backend",namespace="prod"} 1
flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="test"} 2
flagger_canary_successes_total{analysis_status="skipped",deployment_strategy="canary",name="worker",namespace="prod"} 1
`+headFailures+`flagger_canary_failures_total{analysis_status="completed",deployment_strategy="ab-testing",name="abapp",namespace="test"} 1
flagger_canary_failures_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="test"} 1
flagger_canary_failures_total{analysis_status="skipped",deployment_strategy="canary",name="worker",namespace="prod"} 1
`, "flagger_canary_status", "flagger_canary_successes_total", "flagger_canary_failures_total")
}

func TestWeightAnalysisAndDuration(t *testing.T) {
	r, reg := newRecorder(t)
	cd := newCanary("test", "podinfo-canary", "podinfo", progressive())
	r.SetWeight(cd, 100, 0)
	r.SetWeight(cd, 90, 10)
	r.SetAnalysis(cd, "request-success-rate", 99.5)
	r.SetAnalysis(cd, "request-duration", 0.5)
	r.ObserveDuration(cd, 250*time.Millisecond)
	r.ObserveDuration(cd, 2*time.Second)

	compare(t, reg, headWeight+`flagger_canary_weight{namespace="test",workload="podinfo"} 10
flagger_canary_weight{namespace="test",workload="podinfo-primary"} 90
`+headAnalysis+`flagger_canary_metric_analysis{metric="request-duration",name="podinfo",namespace="test"} 0.5
flagger_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="test"} 99.5
`+headDuration+`flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="0.005"} 0
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="0.01"} 0
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="0.025"} 0
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="0.05"} 0
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="0.1"} 0
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="0.25"} 1
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="0.5"} 1
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="1"} 1
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="2.5"} 2
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="5"} 2
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="10"} 2
flagger_canary_duration_seconds_bucket{name="podinfo",namespace="test",le="+Inf"} 2
flagger_canary_duration_seconds_sum{name="podinfo",namespace="test"} 2.25
flagger_canary_duration_seconds_count{name="podinfo",namespace="test"} 2
`, "flagger_canary_weight", "flagger_canary_metric_analysis", "flagger_canary_duration_seconds")
}

func TestInfoAndTotals(t *testing.T) {
	r, reg := newRecorder(t)
	r.SetInfo("1.44.0", "istio")
	r.SetInfo("0.1.0", "kubernetes") // replaces, never two info series
	r.SetCanaryTotals([]flaggerv1.Canary{
		*newCanary("test", "a", "a", nil), *newCanary("test", "b", "b", nil), *newCanary("prod", "c", "c", nil),
	})
	compare(t, reg, headInfo+`flagger_info{mesh_provider="kubernetes",version="0.1.0"} 1
`+headTotal+`flagger_canary_total{namespace="prod"} 1
flagger_canary_total{namespace="test"} 2
`, "flagger_info", "flagger_canary_total")

	// prod lost its canary: its series goes; an explicit zero stays.
	r.SetCanaryTotals([]flaggerv1.Canary{*newCanary("test", "a", "a", nil)})
	r.SetCanaryTotal("staging", 0)
	compare(t, reg, headTotal+`flagger_canary_total{namespace="staging"} 0
flagger_canary_total{namespace="test"} 1
`, "flagger_canary_total")
}

func TestRefreshCanaryTotalsFromCache(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := flaggerv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		newCanary("test", "a", "a", progressive()), newCanary("test", "b", "b", progressive()),
		newCanary("prod", "c", "c", progressive()),
	).Build()
	r, reg := newRecorder(t)
	if err := r.RefreshCanaryTotals(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	compare(t, reg, headTotal+`flagger_canary_total{namespace="prod"} 1
flagger_canary_total{namespace="test"} 2
`, "flagger_canary_total")
}

// populate writes every per-canary series of cd.
func populate(r *Recorder, cd *flaggerv1.Canary) {
	r.Observe(cd, decision(flaggerv1.CanaryPhaseSucceeded, canary.OutcomeCompleted), "istio")
	r.Observe(cd, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeFailed), "istio")
	r.SetWeight(cd, 100, 0)
	r.SetAnalysis(cd, "request-success-rate", 100)
	r.ObserveDuration(cd, time.Second)
}

func TestForgetRemovesEverySeriesOfTheCanary(t *testing.T) {
	r, reg := newRecorder(t)
	r.SetInfo("0.1.0", "istio")
	r.SetCanaryTotal("test", 2)
	gone := newCanary("test", "podinfo-canary", "podinfo", progressive())
	kept := newCanary("test", "other", "other", progressive())
	// Same canary name in another namespace, same target name too.
	elsewhere := newCanary("prod", "podinfo-canary", "podinfo", progressive())
	for _, cd := range []*flaggerv1.Canary{gone, kept, elsewhere} {
		populate(r, cd)
	}

	r.Forget("test", "unknown") // never recorded: nothing happens
	r.Forget("test", "podinfo") // the target's name is not the canary's
	if got, want := testutil.CollectAndCount(r.status), 3; got != want {
		t.Fatalf("%d status series before forgetting, want %d", got, want)
	}

	r.Forget("test", "podinfo-canary")
	compare(t, reg, headInfo+`flagger_info{mesh_provider="istio",version="0.1.0"} 1
`+headTotal+`flagger_canary_total{namespace="test"} 2
`+headStatus+`flagger_canary_status{name="other",namespace="test"} 2
flagger_canary_status{name="podinfo",namespace="prod"} 2
`+headWeight+`flagger_canary_weight{namespace="prod",workload="podinfo"} 0
flagger_canary_weight{namespace="prod",workload="podinfo-primary"} 100
flagger_canary_weight{namespace="test",workload="other"} 0
flagger_canary_weight{namespace="test",workload="other-primary"} 100
`+headAnalysis+`flagger_canary_metric_analysis{metric="request-success-rate",name="other",namespace="test"} 100
flagger_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="prod"} 100
`+headSuccesses+`flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",name="other",namespace="test"} 1
flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="prod"} 1
`+headFailures+`flagger_canary_failures_total{analysis_status="completed",deployment_strategy="canary",name="other",namespace="test"} 1
flagger_canary_failures_total{analysis_status="completed",deployment_strategy="canary",name="podinfo",namespace="prod"} 1
`, "flagger_info", "flagger_canary_total", "flagger_canary_status", "flagger_canary_weight",
		"flagger_canary_metric_analysis", "flagger_canary_successes_total", "flagger_canary_failures_total")
	if got, want := testutil.CollectAndCount(r.duration), 2; got != want {
		t.Errorf("%d duration series after Forget, want %d", got, want)
	}

	r.Forget("test", "other")
	r.Forget("prod", "podinfo-canary")
	r.Forget("prod", "podinfo-canary") // twice: a deleted canary is reconciled again
	for _, c := range []prometheus.Collector{r.status, r.weight, r.analysis, r.duration, r.successes, r.failures} {
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%d series left after forgetting every canary", n)
		}
	}
	if n := testutil.CollectAndCount(r.info) + testutil.CollectAndCount(r.total); n != 2 {
		t.Errorf("Forget touched flagger_info or flagger_canary_total: %d series, want 2", n)
	}
}

func TestForgetKeepsATargetAnotherCanaryRecords(t *testing.T) {
	r, _ := newRecorder(t)
	a := newCanary("test", "a", "podinfo", progressive())
	b := newCanary("test", "b", "podinfo", progressive())
	populate(r, a)
	populate(r, b)
	r.Forget("test", "a")
	if n := testutil.CollectAndCount(r.status); n != 1 {
		t.Fatalf("%d status series after forgetting one of two canaries of a target, want 1", n)
	}
	r.Forget("test", "b")
	if n := testutil.CollectAndCount(r.status) + testutil.CollectAndCount(r.weight); n != 0 {
		t.Fatalf("%d series left after forgetting both canaries", n)
	}
}

func TestRetargetDropsTheOldTargetSeries(t *testing.T) {
	r, reg := newRecorder(t)
	cd := newCanary("test", "web", "web-v1", progressive())
	populate(r, cd)
	cd.Spec.TargetRef.Name = "web-v2"
	r.Observe(cd, decision(flaggerv1.CanaryPhaseInitialized, canary.OutcomeNone), "istio")
	compare(t, reg, headStatus+`flagger_canary_status{name="web-v2",namespace="test"} 1
`, allNames...)
	r.Forget("test", "web")
	compare(t, reg, "", allNames...)
}

func TestNewRecorderRejectsASecondRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewRecorder(reg); err != nil {
		t.Fatal(err)
	}
	_, err := NewRecorder(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second NewRecorder on one registry: err = %v, want AlreadyRegisteredError", err)
	}
}

func TestNilCanaryIsIgnored(t *testing.T) {
	r, reg := newRecorder(t)
	r.Observe(nil, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeFailed), "istio")
	r.SetWeight(nil, 1, 2)
	r.SetAnalysis(nil, "m", 1)
	r.ObserveDuration(nil, time.Second)
	compare(t, reg, "", allNames...)
}
