package podinfo

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Response headers set on every answer, so that a load client can attribute each response to a pod
// and a version without parsing its body.
const (
	HeaderPodName = "X-Pod-Name"
	HeaderVersion = "X-Version"
	// HeaderFault is set on an answer changed by an injected fault (value "error").
	HeaderFault = "X-Fault"
)

// MetricRequestDuration is podinfo's request histogram, with labels method, path (the route pattern,
// e.g. /status/{code}) and status (the numeric code). Pennant's builtin request-success-rate and
// request-duration checks query its _count and _bucket series.
const MetricRequestDuration = "http_request_duration_seconds"

// maxDelay bounds /delay/{seconds} so that a typo cannot hold a connection for hours.
const maxDelay = 5 * time.Minute

// Index is GET /'s answer, with podinfo's field names.
type Index struct {
	Hostname     string `json:"hostname"`
	Version      string `json:"version"`
	Revision     string `json:"revision"`
	Color        string `json:"color"`
	Logo         string `json:"logo"`
	Message      string `json:"message"`
	GOOS         string `json:"goos"`
	GOARCH       string `json:"goarch"`
	Runtime      string `json:"runtime"`
	NumGoroutine string `json:"num_goroutine"`
	NumCPU       string `json:"num_cpu"`
}

type app struct {
	cfg      Config
	duration *prometheus.HistogramVec
	registry *prometheus.Registry

	randMu sync.Mutex
	rand   *rand.Rand
}

// Handler serves the application described by cfg. Each Handler has its own metrics registry.
func Handler(cfg Config) http.Handler {
	a := &app{cfg: cfg, rand: cfg.Rand, registry: prometheus.NewRegistry()}
	if a.rand == nil {
		a.rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	a.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    MetricRequestDuration,
		Help:    "Seconds spent serving HTTP requests.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "path", "status"})
	a.registry.MustRegister(a.duration, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	mux := http.NewServeMux()
	// Application routes: instrumented and subject to faults.
	a.application(mux, "GET /{$}", a.index)
	a.application(mux, "GET /version", a.version)
	a.application(mux, "/status/{code}", a.status)
	a.application(mux, "/delay/{seconds}", a.delay)
	a.application(mux, "/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	})
	// Infrastructure routes: neither instrumented nor faulty, so that probes and Prometheus scrapes
	// neither fail by design nor dilute the request success rate that a canary analysis measures.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderPodName, cfg.PodName)
		w.Header().Set(HeaderVersion, cfg.Version)
		mux.ServeHTTP(w, r)
	})
}

// application registers an application route: it gets the configured latency and error rate and
// is observed in the request histogram under its pattern (a bounded label, unlike the raw path).
func (a *app) application(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	path := pattern[strings.Index(pattern, "/"):] // "GET /version" -> "/version"
	path = strings.TrimSuffix(path, "{$}")
	if pattern == "/" {
		path = "other" // unknown paths: one label value, however many paths clients try
	}
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		fail, extra := a.roll()
		if sleep(r.Context(), a.cfg.Latency+extra) {
			if fail {
				rec.Header().Set(HeaderFault, "error")
				writeJSON(rec, http.StatusInternalServerError, map[string]string{"error": "injected fault (ERROR_RATE)"})
			} else {
				h(rec, r)
			}
		} else {
			rec.status = 499 // the client went away during the injected latency (nginx's code)
		}
		a.duration.WithLabelValues(methodLabel(r.Method), path, strconv.Itoa(rec.status)).
			Observe(time.Since(start).Seconds())
	})
}

// roll decides whether a request fails and how much jitter it gets.
func (a *app) roll() (fail bool, jitter time.Duration) {
	a.randMu.Lock()
	defer a.randMu.Unlock()
	fail = a.cfg.ErrorRate > 0 && a.rand.Float64() < a.cfg.ErrorRate
	if a.cfg.LatencyJitter > 0 {
		jitter = time.Duration(a.rand.Int64N(int64(a.cfg.LatencyJitter)))
	}
	return fail, jitter
}

func (a *app) index(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Index{
		Hostname:     a.cfg.PodName,
		Version:      a.cfg.Version,
		Color:        "#34577c",
		Message:      a.cfg.Message,
		GOOS:         runtime.GOOS,
		GOARCH:       runtime.GOARCH,
		Runtime:      runtime.Version(),
		NumGoroutine: strconv.Itoa(runtime.NumGoroutine()),
		NumCPU:       strconv.Itoa(runtime.NumCPU()),
	})
}

func (a *app) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": a.cfg.Version, "commit": ""})
}

func (a *app) status(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.PathValue("code"))
	if err != nil || code < 200 || code > 599 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "status code must be from 200 to 599"})
		return
	}
	writeJSON(w, code, map[string]int{"status": code})
}

func (a *app) delay(w http.ResponseWriter, r *http.Request) {
	seconds, err := strconv.ParseFloat(r.PathValue("seconds"), 64)
	d := time.Duration(seconds * float64(time.Second))
	if err != nil || seconds < 0 || d > maxDelay {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "delay must be from 0 to 300 seconds"})
		return
	}
	if !sleep(r.Context(), d) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]float64{"delay": seconds})
}

func (a *app) readyz(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-a.cfg.Draining:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "OK"})
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// methodLabel keeps the method label bounded: a client may send any token as method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.written {
		s.status, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.written = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
