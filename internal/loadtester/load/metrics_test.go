package load

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
)

func TestMetricsCountTheRunByCanary(t *testing.T) {
	var n atomic.Int64
	tg := newTarget(t, false, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 8 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s, err := ParseHey("hey -n 10 -c 2 " + tg.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	s.Canary = types.NamespacedName{Namespace: "test", Name: "podinfo"}
	if _, err := Run(t.Context(), s, m); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.URL, s.Requests = "http://"+l.Addr().String()+"/", 3
	_ = l.Close()
	if _, err := Run(t.Context(), s, m); err != nil {
		t.Fatal(err)
	}

	want := `
# HELP pennant_loadtester_request_errors_total Requests of the built-in hey engine that got no response, by canary and error kind.
# TYPE pennant_loadtester_request_errors_total counter
pennant_loadtester_request_errors_total{kind="connection refused",name="podinfo",namespace="test"} 3
# HELP pennant_loadtester_requests_total Requests of the built-in hey engine that ended, by canary and status class ("error": no response).
# TYPE pennant_loadtester_requests_total counter
pennant_loadtester_requests_total{code="2xx",name="podinfo",namespace="test"} 8
pennant_loadtester_requests_total{code="5xx",name="podinfo",namespace="test"} 2
pennant_loadtester_requests_total{code="error",name="podinfo",namespace="test"} 3
# HELP pennant_loadtester_runs_in_progress Load runs of the built-in hey engine going on, by canary.
# TYPE pennant_loadtester_runs_in_progress gauge
pennant_loadtester_runs_in_progress{name="podinfo",namespace="test"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pennant_loadtester_requests_total",
		"pennant_loadtester_request_errors_total", "pennant_loadtester_runs_in_progress"); err != nil {
		t.Error(err)
	}
	if got := histogramCount(t, reg, "pennant_loadtester_request_duration_seconds"); got != 10 {
		t.Errorf("the latency histogram has %d samples, want the 10 responses", got)
	}
}

func TestMetricsShowARunInProgress(t *testing.T) {
	tg := newTarget(t, false, nil)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	s, err := ParseHey("hey -z 400ms -q 10 -c 1 " + tg.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	s.Canary = types.NamespacedName{Namespace: "test", Name: "podinfo"}
	done := make(chan struct{})
	go func() { defer close(done); _, _ = Run(t.Context(), s, m) }()
	gauge := m.running.WithLabelValues("test", "podinfo")
	deadline := time.Now().Add(300 * time.Millisecond)
	for testutil.ToFloat64(gauge) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if v := testutil.ToFloat64(gauge); v != 1 {
		t.Errorf("runs_in_progress during the run = %v, want 1", v)
	}
	<-done
	if v := testutil.ToFloat64(gauge); v != 0 {
		t.Errorf("runs_in_progress after the run = %v, want 0", v)
	}
}

func TestMetricsBoundTheCanaryLabels(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for i := range maxCanaries {
		c := types.NamespacedName{Namespace: "ns", Name: fmt.Sprint(i)}
		if got := m.canary(c); got != c {
			t.Fatalf("canary %d labelled %v", i, got)
		}
	}
	if got := m.canary(types.NamespacedName{Namespace: "ns", Name: "one-too-many"}); got != overflowCanary {
		t.Errorf("canary beyond %d labelled %v, want %v", maxCanaries, got, overflowCanary)
	}
	if c := (types.NamespacedName{Namespace: "ns", Name: "3"}); m.canary(c) != c {
		t.Errorf("a known canary keeps its labels")
	}
}

func TestNewMetricsTwiceOnOneRegistryShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.requests.WithLabelValues("ns", "n", "2xx").Inc()
	if v := testutil.ToFloat64(b.requests.WithLabelValues("ns", "n", "2xx")); v != 1 {
		t.Errorf("the second Metrics sees %v, want the first one's series", v)
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}
