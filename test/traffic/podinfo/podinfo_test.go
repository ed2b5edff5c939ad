package podinfo

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestConfigFromEnvReadsEveryVariable(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{
		"POD_NAME": "podinfo-abc", "POD_NAMESPACE": "test", "POD_IP": "10.244.0.7",
		"PODINFO_VERSION": "6.0.1", "VERSION": "ignored", "ERROR_RATE": "0.25", "LATENCY": "20ms",
		"LATENCY_JITTER": "5ms", "SHUTDOWN_DELAY": "1s", "SHUTDOWN_TIMEOUT": "2s", "FAULT_SEED": "42",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PodName != "podinfo-abc" || cfg.Namespace != "test" || cfg.PodIP != "10.244.0.7" || cfg.Version != "6.0.1" ||
		cfg.ErrorRate != 0.25 || cfg.Latency != 20*time.Millisecond || cfg.LatencyJitter != 5*time.Millisecond ||
		cfg.ShutdownDelay != time.Second || cfg.ShutdownTimeout != 2*time.Second || cfg.Rand == nil {
		t.Fatalf("config %+v", cfg)
	}
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(map[string]string{"HOSTNAME": "host", "VERSION": "1.2.3"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PodName != "host" || cfg.Version != "1.2.3" || cfg.ErrorRate != 0 || cfg.Latency != 0 ||
		cfg.ShutdownDelay != DefaultShutdownDelay || cfg.ShutdownTimeout != DefaultShutdownTimeout {
		t.Fatalf("config %+v", cfg)
	}
}

func TestConfigFromEnvRejectsInvalidValuesByName(t *testing.T) {
	for name, value := range map[string]string{
		"ERROR_RATE": "1.5", "LATENCY": "fast", "LATENCY_JITTER": "-1s", "SHUTDOWN_DELAY": "3", "FAULT_SEED": "x",
	} {
		_, err := ConfigFromEnv(envOf(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name+"=") {
			t.Errorf("%s=%s: error %v, want one naming %s", name, value, err, name)
		}
	}
	if _, err := ConfigFromEnv(envOf(map[string]string{"ERROR_RATE": "NaN"})); err == nil {
		t.Error("ERROR_RATE=NaN accepted")
	}
}

func TestIndexAnswersPodNameAndVersionInBodyAndHeaders(t *testing.T) {
	h := Handler(Config{PodName: "podinfo-1", Version: "6.0.1", Message: "hi"})
	rec := get(t, h, "/")
	var idx Index
	if err := json.Unmarshal(rec.Body.Bytes(), &idx); err != nil || rec.Code != 200 {
		t.Fatalf("GET /: %d %s (%v)", rec.Code, rec.Body, err)
	}
	if idx.Hostname != "podinfo-1" || idx.Version != "6.0.1" || idx.Message != "hi" {
		t.Fatalf("index %+v", idx)
	}
	for _, path := range []string{"/", "/healthz", "/status/503", "/nope"} {
		rec := get(t, h, path)
		if rec.Header().Get(HeaderPodName) != "podinfo-1" || rec.Header().Get(HeaderVersion) != "6.0.1" {
			t.Errorf("%s: headers %v", path, rec.Header())
		}
	}
	if rec := get(t, h, "/nope"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", rec.Code)
	}
	if rec := get(t, h, "/version"); !strings.Contains(rec.Body.String(), `"version":"6.0.1"`) {
		t.Errorf("GET /version: %s", rec.Body)
	}
}

func TestStatusAnswersTheRequestedCode(t *testing.T) {
	h := Handler(Config{})
	for path, want := range map[string]int{
		"/status/200": 200, "/status/404": 404, "/status/503": 503, "/status/99": 400, "/status/x": 400,
		"/healthz": 200, "/readyz": 200,
	} {
		if rec := get(t, h, path); rec.Code != want {
			t.Errorf("GET %s: %d, want %d", path, rec.Code, want)
		}
	}
}

func TestDelaySleeps(t *testing.T) {
	h := Handler(Config{})
	start := time.Now()
	rec := get(t, h, "/delay/0.1")
	if rec.Code != 200 || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("GET /delay/0.1: %d after %v", rec.Code, time.Since(start))
	}
	if rec := get(t, h, "/delay/100000"); rec.Code != 400 {
		t.Errorf("GET /delay/100000: %d", rec.Code)
	}
}

func TestErrorRateFailsThatFractionOfApplicationRequestsOnly(t *testing.T) {
	const n, rate = 4000, 0.3
	h := Handler(Config{ErrorRate: rate, Rand: rand.New(rand.NewPCG(1, 2))})
	failed := 0
	for range n {
		rec := get(t, h, "/")
		switch rec.Code {
		case 500:
			failed++
			if rec.Header().Get(HeaderFault) != "error" {
				t.Fatalf("injected 500 without %s", HeaderFault)
			}
		case 200:
		default:
			t.Fatalf("GET /: %d", rec.Code)
		}
	}
	if got := float64(failed) / n; got < rate-0.03 || got > rate+0.03 {
		t.Fatalf("%d of %d failed (%.3f), want %.2f±0.03", failed, n, got, rate)
	}

	always := Handler(Config{ErrorRate: 1, Rand: rand.New(rand.NewPCG(1, 2))})
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if rec := get(t, always, path); rec.Code != 200 {
			t.Errorf("ERROR_RATE=1: GET %s answered %d, want 200 (not an application request)", path, rec.Code)
		}
	}
	if rec := get(t, always, "/status/200"); rec.Code != 500 {
		t.Errorf("ERROR_RATE=1: GET /status/200 answered %d", rec.Code)
	}
}

func TestSameSeedFailsTheSameRequests(t *testing.T) {
	pattern := func() string {
		h := Handler(Config{ErrorRate: 0.5, Rand: rand.New(rand.NewPCG(7, 7))})
		var b strings.Builder
		for range 64 {
			if get(t, h, "/").Code == 500 {
				b.WriteByte('x')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	if a, b := pattern(), pattern(); a != b {
		t.Fatalf("seeded runs differ:\n%s\n%s", a, b)
	}
}

func TestLatencyIsAddedToApplicationRequestsOnly(t *testing.T) {
	h := Handler(Config{Latency: 80 * time.Millisecond, LatencyJitter: 20 * time.Millisecond, Rand: rand.New(rand.NewPCG(1, 1))})
	start := time.Now()
	get(t, h, "/")
	if took := time.Since(start); took < 80*time.Millisecond {
		t.Errorf("GET / took %v, want at least 80ms", took)
	}
	start = time.Now()
	get(t, h, "/healthz")
	if took := time.Since(start); took > 40*time.Millisecond {
		t.Errorf("GET /healthz took %v, want no injected latency", took)
	}
}

func TestMetricsHavePodinfosNameAndBoundedLabels(t *testing.T) {
	h := Handler(Config{Latency: 0})
	get(t, h, "/")
	get(t, h, "/status/503")
	get(t, h, "/status/201")
	get(t, h, "/some/random/path")
	rec := get(t, h, "/metrics")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	fam := families[MetricRequestDuration]
	if fam == nil || fam.GetType().String() != "HISTOGRAM" {
		t.Fatalf("no histogram %s in /metrics:\n%s", MetricRequestDuration, rec.Body)
	}
	got := map[string]uint64{}
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if len(labels) != 3 {
			t.Errorf("labels %v, want method, path, status", labels)
		}
		got[labels["method"]+" "+labels["path"]+" "+labels["status"]] = m.GetHistogram().GetSampleCount()
	}
	want := map[string]uint64{"GET / 200": 1, "GET /status/{code} 503": 1, "GET /status/{code} 201": 1, "GET other 404": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("series %q: count %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want exactly %v (/metrics itself is not observed)", got, want)
	}
}

func TestServeKeepsAnsweringDuringShutdownDelayWithReadyz503(t *testing.T) {
	ls, err := Listen([]string{"127.0.0.1:0", "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{ls[0].Addr().String(), ls[1].Addr().String()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := Config{PodName: "p", ShutdownDelay: 700 * time.Millisecond, ShutdownTimeout: 2 * time.Second}
	go func() { done <- Serve(ctx, cfg, ls, t.Logf) }()

	client := &http.Client{Timeout: 5 * time.Second}
	code := func(addr, path string) int {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return -1
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, addr := range addrs {
		if c := code(addr, "/readyz"); c != 200 {
			t.Fatalf("%s/readyz before shutdown: %d", addr, c)
		}
	}
	cancel()
	began := time.Now()
	time.Sleep(100 * time.Millisecond)
	// A slow request begun during the delay still completes after the listeners close.
	slow := make(chan int, 1)
	go func() { slow <- code(addrs[0], "/delay/0.9") }()
	for _, addr := range addrs {
		if c := code(addr, "/readyz"); c != 503 {
			t.Errorf("%s/readyz during the shutdown delay: %d, want 503", addr, c)
		}
		if c := code(addr, "/"); c != 200 {
			t.Errorf("%s/ during the shutdown delay: %d, want 200", addr, c)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if took := time.Since(began); took < 700*time.Millisecond {
		t.Errorf("Serve returned %v after the context ended, want the 700ms delay first", took)
	}
	if c := <-slow; c != 200 {
		t.Errorf("request in flight at shutdown: %d, want 200", c)
	}
	for _, addr := range addrs {
		if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			t.Errorf("%s still accepts connections after Serve returned", addr)
		}
	}
}
