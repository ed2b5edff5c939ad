package load

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// Metrics are the engine's Prometheus series, live while runs go on:
//
//	pennant_loadtester_requests_total{namespace, name, code}           requests that ended, by result
//	pennant_loadtester_request_errors_total{namespace, name, kind}     requests without a response, by kind
//	pennant_loadtester_request_duration_seconds{namespace, name}       latency of the responses (histogram)
//	pennant_loadtester_runs_in_progress{namespace, name}               load runs going on
//
// The label set is kept small on purpose:
//   - namespace, name: the canary the load is for (Spec.Canary, taken by the caller from the webhook
//     payload; empty when there is none). Payloads are not trusted, so at most maxCanaries distinct
//     canaries get series of their own; later ones share namespace="" name="_other".
//   - code: the status class, 1xx to 5xx, "other" for a code outside 100-599, or "error" for a request
//     that got no response; the exact codes are in the run's Report.
//   - kind: the fixed error kinds (timeout, connection refused, connection reset, connection closed, dns,
//     tls, aborted, other); the messages are in the Report.
//
// No URL, host, method or status code label: those come from the command line and would make the
// series as many as the commands.
type Metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	running  *prometheus.GaugeVec

	mu       sync.Mutex
	canaries map[types.NamespacedName]bool
}

// maxCanaries bounds the label values a Metrics hands out.
const maxCanaries = 500

// overflowCanary labels the runs of canaries beyond maxCanaries.
var overflowCanary = types.NamespacedName{Name: "_other"}

// NewMetrics creates the engine's series on reg. Registering twice on one registry reuses the series
// already there, so that two servers in one process (tests) do not panic.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"namespace", "name"}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pennant_loadtester_requests_total",
			Help: "Requests of the built-in hey engine that ended, by canary and status class (\"error\": no response).",
		}, append(labels, "code")),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pennant_loadtester_request_errors_total",
			Help: "Requests of the built-in hey engine that got no response, by canary and error kind.",
		}, append(labels, "kind")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pennant_loadtester_request_duration_seconds",
			Help:    "Latency of the built-in hey engine's responses, by canary.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, labels),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pennant_loadtester_runs_in_progress",
			Help: "Load runs of the built-in hey engine going on, by canary.",
		}, labels),
		canaries: map[types.NamespacedName]bool{},
	}
	m.requests = register(reg, m.requests)
	m.errors = register(reg, m.errors)
	m.duration = register(reg, m.duration)
	m.running = register(reg, m.running)
	return m
}

// register registers c, or returns the equal collector registered before. Any other failure is a
// programming error (two different metrics of one name) found at start-up.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}

// canary returns the labels a run's series carry, bounded by maxCanaries.
func (m *Metrics) canary(c types.NamespacedName) types.NamespacedName {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.canaries[c] {
		return c
	}
	if len(m.canaries) >= maxCanaries {
		return overflowCanary
	}
	m.canaries[c] = true
	return c
}

// codeClasses are the values of the code label; index 0 is a request without a response.
var codeClasses = [...]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx", "other"}

func codeClass(code int) int {
	if code < 100 || code > 599 {
		return len(codeClasses) - 1
	}
	return code / 100
}

// runMetrics are one run's series, resolved once per worker so that a request costs a few atomic adds.
type runMetrics struct {
	m       *Metrics
	labels  []string
	classes [len(codeClasses)]prometheus.Counter
	errors  [numErrorKinds]prometheus.Counter
	latency prometheus.Observer
}

// start marks a run of canary c as going on and returns the function that marks its end.
func (m *Metrics) start(c types.NamespacedName) (labels []string, done func()) {
	if m == nil {
		return nil, func() {}
	}
	c = m.canary(c)
	labels = []string{c.Namespace, c.Name}
	g := m.running.WithLabelValues(labels...)
	g.Inc()
	return labels, g.Dec
}

// forWorker returns a worker's own view of the run's series (nil without metrics).
func (m *Metrics) forWorker(labels []string) *runMetrics {
	if m == nil {
		return nil
	}
	return &runMetrics{m: m, labels: labels, latency: m.duration.WithLabelValues(labels...)}
}

func (r *runMetrics) response(code int, seconds float64) {
	if r == nil {
		return
	}
	r.class(codeClass(code)).Inc()
	r.latency.Observe(seconds)
}

func (r *runMetrics) failure(kind errorKind) {
	if r == nil {
		return
	}
	r.class(0).Inc()
	if r.errors[kind] == nil {
		r.errors[kind] = r.m.errors.WithLabelValues(r.labels[0], r.labels[1], kind.String())
	}
	r.errors[kind].Inc()
}

func (r *runMetrics) class(i int) prometheus.Counter {
	if r.classes[i] == nil {
		r.classes[i] = r.m.requests.WithLabelValues(r.labels[0], r.labels[1], codeClasses[i])
	}
	return r.classes[i]
}
