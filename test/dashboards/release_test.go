package dashboards

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/notify"
	"github.com/pennant/pennant/internal/telemetry"
)

// The traffic of a canary release as the meshes report it: the primary takes most requests, all
// answered fast and well; the canary fewer, a quarter of them failing, and slower. The test checks
// the dashboards show each side's own figures.
const (
	primaryRPS, canaryRPS         = 10.0, 4.0
	primarySuccess, canarySuccess = 1.0, 0.75
)

// latencyBuckets are the bounds of the exported duration histograms, in ms. Every primary request
// takes between 10 and 50ms, every canary request between 100 and 250ms.
var latencyBuckets = []float64{10, 50, 100, 250, 500, 1000}

const primaryLatencyMax, canaryLatencyMax = 50.0, 250.0

// side is the telemetry of one workload: its request counter and duration histogram with the
// labels its mesh gives them.
type side struct {
	requests, codeLabel, durationBucket string
	labels                              string // label pairs, without braces
	rps, success, latencyMax            float64
}

// meshExporter serves counters that grow linearly from its start, so that rate() over any window
// gives each side's rps and success share exactly.
type meshExporter struct {
	start time.Time
	sides []side
}

func (e *meshExporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	elapsed := time.Since(e.start).Seconds()
	byMetric := map[string][]string{}
	for _, s := range e.sides {
		total := s.rps * elapsed
		ok, failed := total*s.success, total*(1-s.success)
		byMetric[s.requests] = append(byMetric[s.requests],
			fmt.Sprintf("%s{%s,%s=\"200\"} %g", s.requests, s.labels, s.codeLabel, ok),
			fmt.Sprintf("%s{%s,%s=\"503\"} %g", s.requests, s.labels, s.codeLabel, failed))
		histogram := strings.TrimSuffix(s.durationBucket, "_bucket")
		for _, le := range latencyBuckets {
			count := 0.0
			if le >= s.latencyMax {
				count = total
			}
			byMetric[histogram] = append(byMetric[histogram], fmt.Sprintf("%s{%s,le=\"%g\"} %g", s.durationBucket, s.labels, le, count))
		}
		byMetric[histogram] = append(byMetric[histogram],
			fmt.Sprintf("%s{%s,le=\"+Inf\"} %g", s.durationBucket, s.labels, total),
			fmt.Sprintf("%s_sum{%s} %g", histogram, s.labels, total*s.latencyMax*0.9),
			fmt.Sprintf("%s_count{%s} %g", histogram, s.labels, total))
	}
	names := make([]string, 0, len(byMetric))
	for n := range byMetric {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		kind := "counter"
		if strings.HasSuffix(n, "_milliseconds") || strings.HasSuffix(n, "_time") {
			kind = "histogram"
		}
		fmt.Fprintf(&b, "# TYPE %s %s\n%s\n", n, kind, strings.Join(byMetric[n], "\n"))
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

// pair is the primary and canary telemetry of one canary on one mesh.
func pair(requests, codeLabel, durationBucket, primaryLabels, canaryLabels string) []side {
	return []side{
		{requests, codeLabel, durationBucket, primaryLabels, primaryRPS, primarySuccess, primaryLatencyMax},
		{requests, codeLabel, durationBucket, canaryLabels, canaryRPS, canarySuccess, canaryLatencyMax},
	}
}

// releaseTelemetry is what the meshes report during the releases of canaryUnderTest: backend in
// prod on Istio, on Contour and on App Mesh (one mesh at a time in real life; their series do not
// overlap), and cart in shop behind Gloo.
func releaseTelemetry() []side {
	var sides []side
	sides = append(sides, pair("istio_requests_total", "response_code", "istio_request_duration_milliseconds_bucket",
		`reporter="destination",destination_workload_namespace="prod",destination_workload="backend-primary"`,
		`reporter="destination",destination_workload_namespace="prod",destination_workload="backend"`)...)
	// Istio's source-side reports of the same requests must not count twice.
	sides = append(sides, pair("istio_requests_total", "response_code", "istio_request_duration_milliseconds_bucket",
		`reporter="source",destination_workload_namespace="prod",destination_workload="backend-primary"`,
		`reporter="source",destination_workload_namespace="prod",destination_workload="backend"`)...)
	sides = append(sides, pair("envoy_cluster_upstream_rq", "envoy_response_code", "envoy_cluster_upstream_rq_time_bucket",
		`kubernetes_namespace="projectcontour",envoy_cluster_name="prod_backend-primary_9898"`,
		`kubernetes_namespace="projectcontour",envoy_cluster_name="prod_backend-canary_9898"`)...)
	sides = append(sides, pair("envoy_cluster_upstream_rq", "envoy_response_code", "envoy_cluster_upstream_rq_time_bucket",
		`kubernetes_namespace="gloo-system",envoy_cluster_name="shop-cart-primaryupstream-8080_shop"`,
		`kubernetes_namespace="gloo-system",envoy_cluster_name="shop-cart-canaryupstream-8080_shop"`)...)
	sides = append(sides, pair("envoy_cluster_upstream_rq", "envoy_response_code", "envoy_cluster_upstream_rq_time_bucket",
		`kubernetes_namespace="prod",kubernetes_pod_name="backend-primary-7d9f8b6c5-x2x4z",envoy_cluster_name="cds_ingress_backend-primary"`,
		`kubernetes_namespace="prod",kubernetes_pod_name="backend-5f6d7c8b9-abcde",envoy_cluster_name="cds_ingress_backend"`)...)
	return sides
}

func canaryObject(namespace, name string) *flaggerv1.Canary {
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	cd.Spec.TargetRef.Name = name
	return cd
}

func decision(phase flaggerv1.CanaryPhase, outcome canary.Outcome) canary.Decision {
	return canary.Decision{Status: flaggerv1.CanaryStatus{Phase: phase}, Outcome: outcome}
}

// pennantMetrics serves a real Pennant metrics registry (internal/telemetry) recording what the
// controller records during these releases: backend in prod released once, rolled back once and
// now Progressing at 30%; cart in shop Progressing; frontend in prod Failed. Until stop is called
// it keeps recording analysis steps and failing and dropped notifications, as a busy controller
// does.
type pennantMetrics struct {
	server *httptest.Server
	stop   func()
}

func startPennantMetrics(t *testing.T) *pennantMetrics {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec, err := telemetry.NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	counters, err := telemetry.NewNotificationCounters(reg)
	if err != nil {
		t.Fatal(err)
	}
	backend, cart, frontend := canaryObject("prod", "backend"), canaryObject("shop", "cart"), canaryObject("prod", "frontend")
	rec.SetInfo("test", "istio")
	rec.SetCanaryTotals([]flaggerv1.Canary{*backend, *cart, *frontend})

	rec.Observe(backend, decision(flaggerv1.CanaryPhaseSucceeded, canary.OutcomeCompleted), "istio")
	rec.Observe(backend, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeFailed), "istio")
	rec.Observe(backend, decision(flaggerv1.CanaryPhaseProgressing, canary.OutcomeNone), "istio")
	rec.SetWeight(backend, 70, 30)
	rec.SetAnalysis(backend, "request-success-rate", 75)
	rec.SetAnalysis(backend, "request-duration", 0.248)

	rec.Observe(cart, decision(flaggerv1.CanaryPhaseSucceeded, canary.OutcomeCompleted), "gloo")
	rec.Observe(cart, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeFailed), "gloo")
	rec.Observe(cart, decision(flaggerv1.CanaryPhaseProgressing, canary.OutcomeNone), "gloo")
	rec.SetWeight(cart, 80, 20)
	rec.SetAnalysis(cart, "request-success-rate", 75)

	rec.Observe(frontend, decision(flaggerv1.CanaryPhaseFailed, canary.OutcomeFailed), "istio")
	rec.SetWeight(frontend, 100, 0)

	// The controller's own pace: its canaries as the cache holds them, its steps' lateness and
	// controller-runtime's work queue, on controller-runtime's registry as in the controller.
	scheme := runtime.NewScheme()
	if err := flaggerv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	backend.Status.Phase, cart.Status.Phase, frontend.Status.Phase = flaggerv1.CanaryPhaseProgressing, flaggerv1.CanaryPhaseProgressing, flaggerv1.CanaryPhaseFailed
	cache := fake.NewClientBuilder().WithScheme(scheme).WithObjects(backend, cart, frontend).Build()
	if err := telemetry.RegisterPhaseCollector(reg, cache); err != nil {
		t.Fatal(err)
	}
	// The controller's queue: controller-runtime's priority queue (its default), named after it.
	queue := priorityqueue.New[string]("canary")
	t.Cleanup(queue.ShutDown)
	server := httptest.NewServer(promhttp.HandlerFor(prometheus.Gatherers{reg, ctrlmetrics.Registry}, promhttp.HandlerOpts{}))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				rec.ObserveDuration(backend, 1200*time.Millisecond)
				rec.ObserveDuration(cart, 800*time.Millisecond)
				rec.ObserveStepLateness(40 * time.Millisecond)
				// A reconcile: the canary waits in the queue, a worker takes it and is done.
				queue.Add("prod/backend")
				if item, shutdown := queue.Get(); !shutdown {
					queue.Done(item)
				}
				counters.NotificationFailed(notify.KindAlert)
				counters.NotificationDropped(notify.DropQueueFull)
			}
		}
	}()
	var once sync.Once
	m := &pennantMetrics{server: server, stop: func() {
		once.Do(func() {
			close(done)
			wg.Wait()
			server.Close()
		})
	}}
	t.Cleanup(m.stop)
	return m
}

// newServer serves h on a loopback port until the test ends.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
