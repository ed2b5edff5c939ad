package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/testenv"
)

// istioWorkload is the Istio telemetry of one workload in namespace test, as an Envoy sidecar
// would export it: requests per second, the share of them answered 200 (the others 500), and
// every request's latency in the histogram bucket (latencyLow, latencyHigh] ms.
type istioWorkload struct {
	name                    string
	rps, success            float64
	latencyLow, latencyHigh float64
}

// latencyBuckets are the bounds of the exported histogram, in ms; the workloads' latencies fall
// on bucket boundaries.
var latencyBuckets = []float64{10, 50, 100, 250, 500, 1000, 1234, 2500}

// istioExporter serves the counters of its workloads, growing linearly from its start, so that
// rate() over any window gives rps and the success share exactly.
type istioExporter struct {
	start     time.Time
	workloads []istioWorkload
}

func (e *istioExporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	elapsed := time.Since(e.start).Seconds()
	var b strings.Builder
	b.WriteString("# TYPE istio_requests_total counter\n")
	for _, wl := range e.workloads {
		total := wl.rps * elapsed
		labels := fmt.Sprintf(`reporter="destination",destination_workload_namespace="test",destination_workload=%q`, wl.name)
		fmt.Fprintf(&b, "istio_requests_total{%s,response_code=\"200\"} %g\n", labels, total*wl.success)
		fmt.Fprintf(&b, "istio_requests_total{%s,response_code=\"500\"} %g\n", labels, total*(1-wl.success))
	}
	b.WriteString("# TYPE istio_request_duration_milliseconds histogram\n")
	for _, wl := range e.workloads {
		total := wl.rps * elapsed
		labels := fmt.Sprintf(`reporter="destination",destination_workload_namespace="test",destination_workload=%q`, wl.name)
		for _, le := range latencyBuckets {
			count := 0.0
			if le >= wl.latencyHigh {
				count = total
			}
			fmt.Fprintf(&b, "istio_request_duration_milliseconds_bucket{%s,le=\"%g\"} %g\n", labels, le, count)
		}
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_bucket{%s,le=\"+Inf\"} %g\n", labels, total)
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_sum{%s} %g\n", labels, total*(wl.latencyLow+wl.latencyHigh)/2)
		fmt.Fprintf(&b, "istio_request_duration_milliseconds_count{%s} %g\n", labels, total)
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write([]byte(b.String()))
}

// startPrometheus runs a real Prometheus scraping target every second (testenv.StartPrometheus).
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	return testenv.StartPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: istio
    static_configs:
      - targets: [%q]
`, target))
}

// promQuery runs an instant query with the plain HTTP API (independent of the code under test)
// and returns the value of its first sample, or false when there is none.
func promQuery(base, query string) (float64, bool, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, false, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, false, err
	}
	if body.Status != "success" {
		return 0, false, errors.New(body.Error)
	}
	if len(body.Data.Result) == 0 {
		return 0, false, nil
	}
	s, _ := body.Data.Result[0].Value[1].(string)
	var v float64
	_, err = fmt.Sscan(s, &v)
	return v, err == nil, err
}

// waitForData waits until the target is up and query has a value (two scrapes at least).
func waitForData(t *testing.T, base, query string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		up, okUp, _ := promQuery(base, `up{job="istio"}`)
		v, ok, err := promQuery(base, query)
		if okUp && up == 1 && ok && v > 0 && !math.IsNaN(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no data for %s after %v (up=%v %v, value=%v %v, err=%v)", query, timeout, up, okUp, v, ok, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRealPrometheus runs the checks through real PromQL: Debian's Prometheus scrapes Istio
// telemetry served by the test, and the analyzer reads it with the production provider
// (metrics.New).
func TestRealPrometheus(t *testing.T) {
	exporter := httptest.NewServer(&istioExporter{start: time.Now(), workloads: []istioWorkload{
		{name: "podinfo", rps: 20, success: 0.95, latencyLow: 1000, latencyHigh: 1234}, // p99 1231.66ms
		{name: "frontend", rps: 20, success: 1, latencyLow: 10, latencyHigh: 50},       // p99 49.6ms
	}})
	t.Cleanup(exporter.Close)
	base := startPrometheus(t, strings.TrimPrefix(exporter.URL, "http://"))
	waitForData(t, base, `sum(rate(istio_request_duration_milliseconds_count{destination_workload="frontend"}[10s]))`, 30*time.Second)

	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := flaggerv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	templates := []client.Object{
		// No address: the template uses the canary's metrics server, as -metrics-server would be.
		&flaggerv1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "latency", Namespace: "istio-system"},
			Spec: flaggerv1.MetricTemplateSpec{
				Provider: flaggerv1.MetricTemplateProvider{Type: "prometheus"},
				Query: `histogram_quantile(0.99,
  sum(
    rate(
      istio_request_duration_milliseconds_bucket{
        reporter="{{ variables.reporter }}",
        destination_workload_namespace="{{ namespace }}",
        destination_workload=~"{{ target }}"
      }[{{ interval }}]
    )
  ) by (le)
)`,
			},
		},
		&flaggerv1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "by-code", Namespace: "test"},
			Spec: flaggerv1.MetricTemplateSpec{
				Provider: flaggerv1.MetricTemplateProvider{Type: "prometheus", Address: base},
				Query:    `sum by (response_code) (rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}]))`,
			},
		},
		&flaggerv1.MetricTemplate{
			ObjectMeta: metav1.ObjectMeta{Name: "raw-counter", Namespace: "test"},
			Spec: flaggerv1.MetricTemplateSpec{
				Provider: flaggerv1.MetricTemplateProvider{Type: "prometheus", Address: base},
				Query:    `istio_requests_total{destination_workload="{{ target }}",response_code="200"}[{{ interval }}]`,
			},
		},
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(templates...).Build()
	newA := func() (*Analyzer, *fakeObserver) {
		a := New(reader, base, "istio") // the production provider factory, metrics.New
		o := &fakeObserver{}
		a.Observer = o
		return a, o
	}
	canaryFor := func(target string, metrics ...flaggerv1.CanaryMetric) *flaggerv1.Canary {
		cd := newCanary(metrics...)
		cd.Name = target
		cd.Spec.TargetRef.Name = target
		return cd
	}
	successRate := flaggerv1.CanaryMetric{Name: RequestSuccessRate, Interval: "10s", ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(99)}}
	duration := flaggerv1.CanaryMetric{Name: RequestDuration, Interval: "10s", ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(500)}}
	latency := flaggerv1.CanaryMetric{Name: "latency", Interval: "10s",
		TemplateRef:       &flaggerv1.CrossNamespaceRef{Name: "latency", Namespace: "istio-system"},
		TemplateVariables: map[string]string{"reporter": "destination"},
		ThresholdRange:    &flaggerv1.CanaryThresholdRange{Max: f(500)}}
	ctx := context.Background()

	t.Run("success rate 95% fails min 99", func(t *testing.T) {
		a, o := newA()
		wantError(t, a.Analyze(ctx, canaryFor("podinfo", successRate)), "Halt podinfo.test advancement success rate 95.00% < 99%")
		if len(o.values) != 1 || math.Abs(o.values[0].value-95) > 1e-6 {
			t.Errorf("observed %v", o.values)
		}
	})
	t.Run("success rate 100% passes", func(t *testing.T) {
		a, o := newA()
		if err := a.Analyze(ctx, canaryFor("frontend", successRate)); err != nil {
			t.Fatal(err)
		}
		if len(o.values) != 1 || math.Abs(o.values[0].value-100) > 1e-6 {
			t.Errorf("observed %v", o.values)
		}
	})
	t.Run("p99 latency 1.231s fails max 500ms", func(t *testing.T) {
		a, o := newA()
		wantError(t, a.Analyze(ctx, canaryFor("podinfo", duration)), "Halt podinfo.test advancement request duration 1.231s > 500ms")
		if len(o.values) != 1 || o.values[0] != (recorded{RequestDuration, 1.231}) {
			t.Errorf("observed %v, want 1.231s", o.values)
		}
	})
	t.Run("p99 latency 49ms passes", func(t *testing.T) {
		a, o := newA()
		if err := a.Analyze(ctx, canaryFor("frontend", successRate, duration)); err != nil {
			t.Fatal(err)
		}
		if len(o.values) != 2 || o.values[1] != (recorded{RequestDuration, 0.049}) {
			t.Errorf("observed %v", o.values)
		}
	})
	t.Run("metric template with variables", func(t *testing.T) {
		a, o := newA()
		wantError(t, a.Analyze(ctx, canaryFor("podinfo", latency)), "Halt podinfo.test advancement latency 1231.66 > 500")
		if err := a.Analyze(ctx, canaryFor("frontend", latency)); err != nil {
			t.Fatal(err)
		}
		if len(o.values) != 2 || math.Abs(o.values[1].value-49.6) > 1e-6 {
			t.Errorf("observed %v", o.values)
		}
	})
	t.Run("inline query", func(t *testing.T) {
		a, _ := newA()
		errorRate := flaggerv1.CanaryMetric{Name: "error-rate", Threshold: 1,
			Query: `sum(rate(istio_requests_total{destination_workload="podinfo",response_code=~"5.."}[10s])) / sum(rate(istio_requests_total{destination_workload="podinfo"}[10s])) * 100`}
		wantError(t, a.Analyze(ctx, canaryFor("podinfo", errorRate)), "Halt podinfo.test advancement error-rate 5.00 > 1")
	})
	t.Run("several series fail the check", func(t *testing.T) {
		a, _ := newA()
		m := flaggerv1.CanaryMetric{Name: "by-code", Interval: "10s", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "by-code"}, Threshold: 100}
		err := a.Analyze(ctx, canaryFor("podinfo", m))
		t.Log(err)
		wantErrorContaining(t, err, "Metric query failed for by-code: ", "multiple values returned", "2 series")
	})
	t.Run("a range vector fails the check", func(t *testing.T) {
		a, _ := newA()
		m := flaggerv1.CanaryMetric{Name: "raw-counter", Interval: "10s", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "raw-counter"}, Threshold: 1e9}
		err := a.Analyze(ctx, canaryFor("podinfo", m))
		t.Log(err)
		wantErrorContaining(t, err, "Metric query failed for raw-counter: ", "multiple values returned", "range vector")
	})
	t.Run("no traffic", func(t *testing.T) {
		a, _ := newA()
		err := a.Analyze(ctx, canaryFor("absent", successRate))
		t.Log(err)
		wantErrorContaining(t, err,
			"Halt advancement no values found for istio metric request-success-rate probably absent.test is not receiving traffic: ", "no values found")
		wait := successRate
		wait.NoDataPolicy = flaggerv1.NoDataWait
		var hold *canary.HoldError
		if err := a.Analyze(ctx, canaryFor("absent", wait)); !errors.As(err, &hold) {
			t.Errorf("noDataPolicy wait: %v, want a hold", err)
		}
		skip := successRate
		skip.NoDataPolicy = flaggerv1.NoDataSkip
		if err := a.Analyze(ctx, canaryFor("absent", skip)); err != nil {
			t.Errorf("noDataPolicy skip: %v", err)
		}
	})
	t.Run("providers available", func(t *testing.T) {
		a, _ := newA()
		if err := a.CheckProviderAvailability(ctx, canaryFor("podinfo", successRate, latency)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unreachable prometheus fails the check", func(t *testing.T) {
		a, _ := newA()
		cd := canaryFor("podinfo", successRate)
		cd.Spec.MetricsServer = "http://" + testenv.FreeLoopbackAddr(t) // nothing listens there
		err := a.Analyze(ctx, cd)
		t.Log(err)
		wantErrorContaining(t, err, "Prometheus query failed: running query failed: ", "connection refused")
		err = a.CheckProviderAvailability(ctx, cd)
		t.Log(err)
		wantErrorContaining(t, err, "prometheus "+cd.Spec.MetricsServer+" not available: ", "connection refused")
	})
}
