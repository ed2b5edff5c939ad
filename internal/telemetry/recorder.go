// Package telemetry exports Flagger's Prometheus metrics (subsystem "flagger") with the names, types,
// labels and help texts of Flagger 1.44, so that existing dashboards and alert rules such as
// `flagger_canary_status > 1` keep working. In production the Recorder registers on
// controller-runtime's metrics.Registry, which the manager's metrics server serves on /metrics.
package telemetry

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

// subsystem prefixes every metric name, as Flagger's NewRecorder("flagger", ...) does.
const subsystem = "flagger"

// Values of the analysis_status label of the successes and failures counters.
const (
	AnalysisStatusCompleted = "completed"
	AnalysisStatusSkipped   = "skipped"
)

// Values of flagger_canary_status.
const (
	statusRunning   = 0
	statusSucceeded = 1
	statusFailed    = 2
)

// Recorder records canary analysis as Prometheus metrics. Every per-canary series is labelled by the
// canary's spec.targetRef.name (as Flagger does), not by the Canary's own name; the Recorder remembers
// which target each canary wrote so that Forget, which only gets the canary's namespace and name, can
// delete its series. It is safe for concurrent use.
type Recorder struct {
	info      *prometheus.GaugeVec
	total     *prometheus.GaugeVec
	status    *prometheus.GaugeVec
	weight    *prometheus.GaugeVec
	analysis  *prometheus.GaugeVec
	duration  *prometheus.HistogramVec
	successes *prometheus.CounterVec
	failures  *prometheus.CounterVec
	// lateness is Pennant's own: one series for the whole controller, so that its cost does not
	// grow with the canaries.
	lateness prometheus.Histogram

	mu sync.Mutex
	// targets maps a canary to the target name its series carry.
	targets map[types.NamespacedName]string
	// totals are the namespaces that have a flagger_canary_total series.
	totals map[string]struct{}
}

// NewRecorder creates the metrics and registers them on reg (controller-runtime's metrics.Registry in
// production, a fresh prometheus.NewRegistry() in tests).
func NewRecorder(reg prometheus.Registerer) (*Recorder, error) {
	r := &Recorder{
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem,
			Name:      "info",
			Help:      "Flagger version and mesh provider information",
		}, []string{"version", "mesh_provider"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: subsystem,
			Name:      "canary_duration_seconds",
			Help:      "Seconds spent performing canary analysis.",
			Buckets:   prometheus.DefBuckets,
		}, []string{"name", "namespace"}),
		total: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem,
			Name:      "canary_total",
			Help:      "Total number of canary object",
		}, []string{"namespace"}),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem,
			Name:      "canary_status",
			Help:      "Last canary analysis result",
		}, []string{"name", "namespace"}),
		weight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem,
			Name:      "canary_weight",
			Help:      "The virtual service destination weight current value",
		}, []string{"workload", "namespace"}),
		analysis: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: subsystem,
			Name:      "canary_metric_analysis",
			Help:      "Last canary analysis result per metric",
		}, []string{"name", "namespace", "metric"}),
		successes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem,
			Name:      "canary_successes_total",
			Help:      "Total number of canary successes",
		}, []string{"name", "namespace", "deployment_strategy", "analysis_status"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: subsystem,
			Name:      "canary_failures_total",
			Help:      "Total number of canary failures",
		}, []string{"name", "namespace", "deployment_strategy", "analysis_status"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pennant_analysis_step_lateness_seconds",
			Help:    "How long after it was due each analysis step began.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}),
		targets: map[types.NamespacedName]string{},
		totals:  map[string]struct{}{},
	}
	var errs []error
	for _, c := range r.collectors() {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Recorder) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.info, r.duration, r.total, r.status, r.weight, r.analysis, r.successes, r.failures, r.lateness}
}

// SetInfo sets flagger_info{version, mesh_provider} to 1; a later call replaces the series.
func (r *Recorder) SetInfo(version, meshProvider string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.info.Reset()
	r.info.WithLabelValues(version, meshProvider).Set(1)
}

// SetCanaryTotal sets the number of canaries in a namespace.
func (r *Recorder) SetCanaryTotal(namespace string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total.WithLabelValues(namespace).Set(float64(n))
	r.totals[namespace] = struct{}{}
}

// SetCanaryTotals counts the canaries per namespace and sets flagger_canary_total from the counts. A
// namespace that no longer has canaries loses its series (Flagger keeps its last value).
func (r *Recorder) SetCanaryTotals(canaries []flaggerv1.Canary) {
	counts := map[string]int{}
	for i := range canaries {
		counts[canaries[i].Namespace]++
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for ns := range r.totals {
		if _, ok := counts[ns]; !ok {
			r.total.DeleteLabelValues(ns)
			delete(r.totals, ns)
		}
	}
	for ns, n := range counts {
		r.total.WithLabelValues(ns).Set(float64(n))
		r.totals[ns] = struct{}{}
	}
}

// RefreshCanaryTotals lists the canaries from c (the manager's cached client) and calls
// SetCanaryTotals with them.
func (r *Recorder) RefreshCanaryTotals(ctx context.Context, c client.Reader) error {
	list := &flaggerv1.CanaryList{}
	if err := c.List(ctx, list); err != nil {
		return err
	}
	r.SetCanaryTotals(list.Items)
	return nil
}

// Observe records a decision: the status gauge from the next phase, and on a finished release the
// successes (analysis_status completed or skipped) or failures counter, labelled with the deployment
// strategy the canary runs with provider.
func (r *Recorder) Observe(cd *flaggerv1.Canary, d canary.Decision, provider string) {
	if cd == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	target := r.track(cd)
	if d.Status.Phase != "" {
		r.status.WithLabelValues(target, cd.Namespace).Set(StatusValue(d.Status.Phase))
	}
	strategy := canary.Strategy(cd.GetAnalysis(), provider)
	switch d.Outcome {
	case canary.OutcomeCompleted:
		r.successes.WithLabelValues(target, cd.Namespace, strategy, AnalysisStatusCompleted).Inc()
	case canary.OutcomeSkipped:
		r.successes.WithLabelValues(target, cd.Namespace, strategy, AnalysisStatusSkipped).Inc()
	case canary.OutcomeFailed:
		status := AnalysisStatusCompleted
		if cd.SkipAnalysis() {
			// The canary failed to become ready before a skipped analysis could promote it.
			status = AnalysisStatusSkipped
		}
		r.failures.WithLabelValues(target, cd.Namespace, strategy, status).Inc()
	}
}

// StatusValue is flagger_canary_status for a phase, Flagger's mapping: 0 Progressing, 2 Failed and 1
// every other phase (Initializing, Initialized, Waiting, WaitingPromotion, Promoting, Finalising,
// Succeeded, Terminating, Terminated).
func StatusValue(phase flaggerv1.CanaryPhase) float64 {
	switch phase {
	case flaggerv1.CanaryPhaseProgressing:
		return statusRunning
	case flaggerv1.CanaryPhaseFailed:
		return statusFailed
	default:
		return statusSucceeded
	}
}

// SetWeight sets flagger_canary_weight for <target>-primary and <target>.
func (r *Recorder) SetWeight(cd *flaggerv1.Canary, primary, canary int) {
	if cd == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	target := r.track(cd)
	r.weight.WithLabelValues(target+"-primary", cd.Namespace).Set(float64(primary))
	r.weight.WithLabelValues(target, cd.Namespace).Set(float64(canary))
}

// SetAnalysis sets the last value of a metric check (the metric's name in spec.analysis.metrics).
// Durations must be given in seconds, as Flagger records them.
func (r *Recorder) SetAnalysis(cd *flaggerv1.Canary, metric string, value float64) {
	if cd == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.analysis.WithLabelValues(r.track(cd), cd.Namespace, metric).Set(value)
}

// ObserveDuration records the time one analysis tick took.
func (r *Recorder) ObserveDuration(cd *flaggerv1.Canary, d time.Duration) {
	if cd == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.duration.WithLabelValues(r.track(cd), cd.Namespace).Observe(d.Seconds())
}

// ObserveStepLateness records that an analysis step began d after it was due (a step early, after
// a clock step back, counts as on time).
func (r *Recorder) ObserveStepLateness(d time.Duration) { r.lateness.Observe(max(d, 0).Seconds()) }

// Forget deletes every series of a deleted canary: status, weights, metric analysis, duration and the
// successes and failures counters. Series of a target that another canary of the namespace still
// records are kept. flagger_canary_total is left to SetCanaryTotal(s).
func (r *Recorder) Forget(namespace, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := types.NamespacedName{Namespace: namespace, Name: name}
	target, ok := r.targets[key]
	if !ok {
		return
	}
	delete(r.targets, key)
	r.release(namespace, target)
}

// track remembers the target a canary records under and returns it; when the canary's targetRef
// changed, the old target's series are deleted. The caller holds r.mu.
func (r *Recorder) track(cd *flaggerv1.Canary) string {
	key := types.NamespacedName{Namespace: cd.Namespace, Name: cd.Name}
	target := cd.Spec.TargetRef.Name
	old, ok := r.targets[key]
	r.targets[key] = target
	if ok && old != target {
		r.release(cd.Namespace, old)
	}
	return target
}

// release deletes the series of a target unless a canary still records under it. The caller holds
// r.mu.
func (r *Recorder) release(namespace, target string) {
	for k, t := range r.targets {
		if k.Namespace == namespace && t == target {
			return
		}
	}
	series := prometheus.Labels{"name": target, "namespace": namespace}
	r.status.Delete(series)
	r.duration.Delete(series)
	r.analysis.DeletePartialMatch(series)
	r.successes.DeletePartialMatch(series)
	r.failures.DeletePartialMatch(series)
	r.weight.DeleteLabelValues(target+"-primary", namespace)
	r.weight.DeleteLabelValues(target, namespace)
}
