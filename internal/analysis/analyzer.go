// Package analysis runs a canary's metric checks: the builtin request-success-rate and
// request-duration checks (Flagger's PromQL for each mesh and ingress provider), MetricTemplates
// and the deprecated inline queries, with Flagger's thresholds and event texts.
package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/metrics"
	"github.com/pennant/pennant/internal/workload"
)

// DefaultQueryTimeout bounds every query and every online check.
const DefaultQueryTimeout = 10 * time.Second

// ProvidersAvailableMessage is Flagger's event when every metric provider of a canary answers.
const ProvidersAvailableMessage = "all the metrics providers are available!"

// Observer receives the value of each metric check that read one: percentages for the success
// rate, seconds for the request duration, the query's value for templates and inline queries.
type Observer interface {
	SetAnalysis(cd *flaggerv1.Canary, metric string, value float64)
}

// ProviderFactory builds the client of a metrics backend; defaultAddress is used when the spec
// has no address, opts carry the metric's interval and the query timeout. metrics.NewWithOptions
// is the production factory.
type ProviderFactory func(spec flaggerv1.MetricTemplateProvider, defaultAddress string, credentials map[string][]byte, opts metrics.Options) (metrics.Provider, error)

// Analyzer runs the metric checks of a canary. Its zero value is not usable: Reader is required.
type Analyzer struct {
	// Reader reads MetricTemplates and their provider Secrets, with their data (in production a
	// kubecache.Reader: MetricTemplates from the manager's cache, Secrets as kubecache keeps them).
	Reader client.Reader
	// MetricsServer is the Prometheus of the builtin checks and inline queries (-metrics-server);
	// a canary's spec.metricsServer overrides it.
	MetricsServer string
	// MeshProvider is the -mesh-provider flag; a canary's spec.provider overrides it.
	MeshProvider string
	// NewProvider builds metric backends; nil means metrics.NewWithOptions.
	NewProvider ProviderFactory
	// Observer, when set, receives every value read (the telemetry recorder).
	Observer Observer
	// QueryTimeout bounds each query; zero means DefaultQueryTimeout.
	QueryTimeout time.Duration
	// NoCrossNamespaceRefs (-no-cross-namespace-refs) refuses a templateRef to another namespace
	// than the canary's: the check fails with ErrCrossNamespaceRef and no provider is called.
	NoCrossNamespaceRefs bool
	// AllowAmbientCredentials (-enable-ambient-cloud-credentials) lets stackdriver and cloudwatch
	// templates without credentials in their secret use the controller's own cloud identity, and
	// then only toward the vendor's API (metrics.Options.AllowAmbientCredentials). False: such a
	// template's check fails and nothing is sent.
	AllowAmbientCredentials bool
	// Now is the clock of the judged metrics' windows; nil means time.Now.
	Now func() time.Time
	// Kube is the client of the keptn provider, which reads KeptnMetrics and creates, reads and
	// deletes Analyses (metrics.Options.Kube; in production the manager's cached client). Nil: a
	// keptn template's check fails.
	Kube client.Client
}

// ErrCrossNamespaceRef is the error of a templateRef to another namespace under NoCrossNamespaceRefs.
var ErrCrossNamespaceRef = errors.New("cross-namespace references are not allowed")

// New returns an Analyzer reading templates and secrets from reader.
func New(reader client.Reader, metricsServer, meshProvider string) *Analyzer {
	return &Analyzer{
		Reader:        reader,
		MetricsServer: metricsServer,
		MeshProvider:  meshProvider,
		NewProvider:   metrics.NewWithOptions,
		QueryTimeout:  DefaultQueryTimeout,
	}
}

// Analyze runs the canary's metric checks in spec order and returns the first failure, whose
// message is the warning event (e.g. "Halt podinfo.test advancement success rate 69.17% < 99%").
// A metric without data and with noDataPolicy wait yields a *canary.HoldError, returned only when
// no other metric fails; noDataPolicy skip passes the metric for this tick.
func (a *Analyzer) Analyze(ctx context.Context, cd *flaggerv1.Canary) error {
	_, err := a.Check(ctx, cd)
	return err
}

// Check is Analyze that also returns each metric checked with its value and result (the metrics
// after a failure are not checked, as in Flagger); the results' Time is left to the caller.
func (a *Analyzer) Check(ctx context.Context, cd *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	spec := cd.GetAnalysis()
	if spec == nil || len(spec.Metrics) == 0 {
		return nil, nil
	}
	r := a.newRun(cd)
	var held error
	results := make([]flaggerv1.CanaryCheckResult, 0, len(spec.Metrics))
	for _, m := range spec.Metrics {
		err := r.check(ctx, m)
		results = append(results, r.result(m.Name, err))
		if err == nil {
			continue
		}
		var hold *canary.HoldError
		if errors.As(err, &hold) {
			if held == nil {
				held = err
			}
			continue
		}
		return results, err
	}
	return results, held
}

// result is the check result of a metric from its check's error and the value observed.
func (r *run) result(metric string, err error) flaggerv1.CanaryCheckResult {
	value, read := r.values[metric]
	res := flaggerv1.CanaryCheckResult{Kind: flaggerv1.MetricCheck, Name: metric, Value: value, Result: flaggerv1.CheckPassed}
	var hold *canary.HoldError
	switch {
	case errors.As(err, &hold):
		res.Result, res.Message = flaggerv1.CheckNoData, hold.Message
	case err != nil:
		res.Result, res.Message = flaggerv1.CheckFailed, err.Error()
	case !read:
		res.Result, res.Message = flaggerv1.CheckNoData, "no value: skipped (noDataPolicy skip)"
	}
	if j, ok := r.judged[metric]; ok {
		counts := j.counts
		res.Counts, res.Message = &counts, j.explanation
		if res.Result == flaggerv1.CheckNoData {
			res.Result = flaggerv1.CheckHeld
		}
	}
	return res
}

// CheckProviderAvailability checks that the builtin Prometheus and the provider of each of the
// canary's MetricTemplates answer (Flagger's checkMetricProviderAvailability, run while a canary
// initializes). It returns nil when all do; the caller then reports ProvidersAvailableMessage.
func (a *Analyzer) CheckProviderAvailability(ctx context.Context, cd *flaggerv1.Canary) error {
	spec := cd.GetAnalysis()
	if spec == nil {
		return nil
	}
	r := a.newRun(cd)
	builtinChecked := false
	for _, m := range spec.Metrics {
		switch {
		case m.TemplateRef != nil:
			t, p, err := r.templateProvider(ctx, m)
			if err != nil {
				return err
			}
			if err := a.online(ctx, p); err != nil {
				return fmt.Errorf("%s in metric template %s.%s not available: %v", t.Spec.Provider.Type, t.Name, t.Namespace, err)
			}
		case m.Query != "" || isBuiltin(m.Name):
			if builtinChecked {
				continue
			}
			builtinChecked = true
			p, err := r.prometheus()
			if err != nil {
				return err
			}
			if err := a.online(ctx, p); err != nil {
				return fmt.Errorf("prometheus %s not available: %v", metrics.RedactAddress(r.server), err)
			}
		}
	}
	return nil
}

func isBuiltin(name string) bool { return name == RequestSuccessRate || name == RequestDuration }

func (a *Analyzer) factory() ProviderFactory {
	if a.NewProvider != nil {
		return a.NewProvider
	}
	return metrics.NewWithOptions
}

func (a *Analyzer) timeout() time.Duration {
	if a.QueryTimeout > 0 {
		return a.QueryTimeout
	}
	return DefaultQueryTimeout
}

// online runs a provider's online check within the query timeout.
func (a *Analyzer) online(ctx context.Context, p metrics.Provider) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout())
	defer cancel()
	ok, err := p.IsOnline(ctx)
	if err != nil {
		return a.explain(ctx, err)
	}
	if !ok {
		return errors.New("the online check failed")
	}
	return nil
}

// run is one analysis of one canary: the builtin Prometheus client is built once for all metrics.
type run struct {
	a        *Analyzer
	cd       *flaggerv1.Canary
	server   string
	provider string
	builtin  metrics.Provider
	// revision is the Knative Service target's latest revision, read once per run.
	revision string
	// values are the values read, by metric name, as their checks compare them.
	values map[string]string
	// judged are the results of the judged metrics, by name.
	judged map[string]judgedResult
}

func (a *Analyzer) newRun(cd *flaggerv1.Canary) *run {
	server := a.MetricsServer
	if cd.Spec.MetricsServer != "" {
		server = cd.Spec.MetricsServer
	}
	return &run{a: a, cd: cd, server: server, provider: a.metricsProvider(cd), values: map[string]string{}, judged: map[string]judgedResult{}}
}

// metricsProvider is the provider whose builtin queries apply, chosen as Flagger chooses it:
// the canary's spec.provider, else -mesh-provider; but Linkerd's metrics when the canary names a
// provider (an ingress, say) while Linkerd is the mesh.
func (a *Analyzer) metricsProvider(cd *flaggerv1.Canary) string {
	provider := a.MeshProvider
	if cd.Spec.Provider != "" {
		provider = cd.Spec.Provider
		if strings.Contains(a.MeshProvider, "linkerd") {
			provider = "linkerd"
		}
	}
	if provider == "" {
		provider = "istio"
	}
	return provider
}

// prometheus returns the client of the builtin checks and inline queries.
func (r *run) prometheus() (metrics.Provider, error) {
	if r.builtin != nil {
		return r.builtin, nil
	}
	if r.server == "" {
		return nil, errors.New("Error building Prometheus client: no address (set -metrics-server or spec.metricsServer)")
	}
	p, err := r.a.factory()(flaggerv1.MetricTemplateProvider{Type: "prometheus", Address: r.server}, r.server, nil,
		metrics.Options{Timeout: r.a.timeout()})
	if err != nil {
		return nil, fmt.Errorf("Error building Prometheus client for %s %v", metrics.RedactAddress(r.server), err)
	}
	r.builtin = p
	return p, nil
}

// check runs one metric. A templateRef wins over a query, and both over a builtin name.
func (r *run) check(ctx context.Context, m flaggerv1.CanaryMetric) error {
	switch {
	case m.Judge != nil:
		return r.checkJudged(ctx, m)
	case m.TemplateRef != nil:
		return r.checkTemplate(ctx, m)
	case m.Query != "":
		return r.checkQuery(ctx, m)
	case m.Name == RequestSuccessRate:
		return r.checkSuccessRate(ctx, m)
	case m.Name == RequestDuration:
		return r.checkDuration(ctx, m)
	default:
		return fmt.Errorf("Metric query failed for %s: no usable metric: %s is not a builtin check (%s, %s) and has neither a templateRef nor a query",
			m.Name, m.Name, RequestSuccessRate, RequestDuration)
	}
}

// observe records a metric's value: value for the telemetry recorder, text as the check compares it.
func (r *run) observe(metric string, value float64, text string) {
	r.values[metric] = text
	if r.a.Observer != nil {
		r.a.Observer.SetAnalysis(r.cd, metric, value)
	}
}

// query runs a query within the timeout and explains the errors that need it.
func (r *run) query(ctx context.Context, p metrics.Provider, query string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, r.a.timeout())
	defer cancel()
	v, err := p.RunQuery(ctx, query)
	if err != nil {
		return 0, r.a.explain(ctx, err)
	}
	return finiteOrNoData(v)
}

// finiteOrNoData is the one guard every provider's result passes through: NaN and ±Inf compare
// false (NaN) or beyond any threshold (Inf) and would pass checks by accident, so they are "no
// data" (metrics.ErrNoValuesFound), and the metric's noDataPolicy decides.
func finiteOrNoData(v float64) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("non-finite value %v: %w", v, metrics.ErrNoValuesFound)
	}
	return v, nil
}

// explain says when a query timed out; the providers' errors say the rest (several series or a
// range vector: metrics.ErrMultipleValuesReturned with the series named).
func (a *Analyzer) explain(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s: %w", a.timeout(), err)
	}
	return err
}

// noData applies the metric's noDataPolicy to a query without values.
func (r *run) noData(ctx context.Context, m flaggerv1.CanaryMetric, msg string) error {
	switch m.NoDataPolicy {
	case flaggerv1.NoDataSkip:
		log.FromContext(ctx).Info("metric check skipped: no data and noDataPolicy skip", "canary", r.cd.Key(), "metric", m.Name, "reason", msg)
		return nil
	case flaggerv1.NoDataWait:
		return &canary.HoldError{Message: msg + " (noDataPolicy wait: the analysis is held until data arrives)"}
	default:
		return errors.New(msg)
	}
}

// model is the template model of one of the canary's metrics. For a Knative Service target,
// {{ route }} is the Service's latest created revision, read through the Reader (the manager's
// cache) once per run: Flagger's Knative queries select the revision's Envoy cluster
// <namespace>/<revision>, so the target's name would match nothing.
func (r *run) model(ctx context.Context, m flaggerv1.CanaryMetric) (Model, error) {
	model := NewModel(r.cd, m)
	if !r.cd.IsKnativeTarget() {
		return model, nil
	}
	if r.revision == "" {
		revision, err := workload.KnativeLatestRevision(ctx, r.a.Reader, r.cd)
		if err != nil {
			return Model{}, fmt.Errorf("Error fetching Knative service %s/%s %v", r.cd.Namespace, r.cd.Spec.TargetRef.Name, err)
		}
		r.revision = revision
	}
	model.Route = r.revision
	return model, nil
}

// builtinQuery runs a builtin check's query; ok is false when it gave no value, err then tells
// why (nil when the metric is skipped for want of data).
func (r *run) builtinQuery(ctx context.Context, m flaggerv1.CanaryMetric) (q builtinQueries, val float64, ok bool, err error) {
	q = queriesFor(r.provider)
	model, err := r.model(ctx, m)
	if err != nil {
		return q, 0, false, err
	}
	query, err := q.render(m.Name, model)
	if err != nil {
		return q, 0, false, fmt.Errorf("Metric %s query render error: %v", m.Name, err)
	}
	p, err := r.prometheus()
	if err != nil {
		return q, 0, false, err
	}
	val, err = r.query(ctx, p, query)
	if err != nil {
		err = fmt.Errorf("running query failed: %w", err)
		if errors.Is(err, metrics.ErrNoValuesFound) {
			return q, 0, false, r.noData(ctx, m, fmt.Sprintf("Halt advancement no values found for %s metric %s probably %s.%s is not receiving traffic: %v",
				r.provider, m.Name, r.cd.Spec.TargetRef.Name, r.cd.Namespace, err))
		}
		return q, 0, false, fmt.Errorf("Prometheus query failed: %v", err)
	}
	return q, val, true, nil
}

func (r *run) checkSuccessRate(ctx context.Context, m flaggerv1.CanaryMetric) error {
	_, val, ok, err := r.builtinQuery(ctx, m)
	if !ok {
		return err
	}
	r.observe(m.Name, val, fmt.Sprintf("%.2f%%", val))
	key := r.cd.Key()
	if tr := m.ThresholdRange; tr != nil {
		if tr.Min != nil && val < *tr.Min {
			return fmt.Errorf("Halt %s advancement success rate %.2f%% < %v%%", key, val, *tr.Min)
		}
		if tr.Max != nil && val > *tr.Max {
			return fmt.Errorf("Halt %s advancement success rate %.2f%% > %v%%", key, val, *tr.Max)
		}
	} else if m.Threshold > val {
		return fmt.Errorf("Halt %s advancement success rate %.2f%% < %v%%", key, val, m.Threshold)
	}
	return nil
}

func (r *run) checkDuration(ctx context.Context, m flaggerv1.CanaryMetric) error {
	q, val, ok, err := r.builtinQuery(ctx, m)
	if !ok {
		return err
	}
	d := q.durationOf(val)
	r.observe(m.Name, d.Seconds(), d.String())
	key := r.cd.Key()
	ms := func(v float64) time.Duration { return time.Duration(v) * time.Millisecond }
	if tr := m.ThresholdRange; tr != nil {
		if tr.Min != nil && d < ms(*tr.Min) {
			return fmt.Errorf("Halt %s advancement request duration %v < %v", key, d, ms(*tr.Min))
		}
		if tr.Max != nil && d > ms(*tr.Max) {
			return fmt.Errorf("Halt %s advancement request duration %v > %v", key, d, ms(*tr.Max))
		}
	} else if d > ms(m.Threshold) {
		return fmt.Errorf("Halt %s advancement request duration %v > %v", key, d, ms(m.Threshold))
	}
	return nil
}

// checkQuery runs a deprecated inline PromQL query against the builtin Prometheus.
func (r *run) checkQuery(ctx context.Context, m flaggerv1.CanaryMetric) error {
	p, err := r.prometheus()
	if err != nil {
		return err
	}
	val, err := r.query(ctx, p, m.Query)
	if err != nil {
		if errors.Is(err, metrics.ErrNoValuesFound) {
			return r.noData(ctx, m, fmt.Sprintf("Halt advancement no values found for metric: %s: %v", m.Name, err))
		}
		return fmt.Errorf("Prometheus query failed for %s: %v", m.Name, err)
	}
	return r.compare(m, val)
}

// onlyNamespace is the namespace a provider that reads Kubernetes objects (keptn) is held to:
// the canary's under -no-cross-namespace-refs, else none.
func (r *run) onlyNamespace() string {
	if r.a.NoCrossNamespaceRefs {
		return r.cd.Namespace
	}
	return ""
}

// templateProvider reads a metric's MetricTemplate and its Secret and builds its provider.
func (r *run) templateProvider(ctx context.Context, m flaggerv1.CanaryMetric) (*flaggerv1.MetricTemplate, metrics.Provider, error) {
	ref := types.NamespacedName{Namespace: r.cd.Namespace, Name: m.TemplateRef.Name}
	if m.TemplateRef.Namespace != "" {
		ref.Namespace = m.TemplateRef.Namespace
	}
	crossNamespace := ref.Namespace != r.cd.Namespace
	if crossNamespace && r.a.NoCrossNamespaceRefs {
		return nil, nil, fmt.Errorf("Metric template %s.%s error: %w (canary namespace %s)", ref.Name, ref.Namespace, ErrCrossNamespaceRef, r.cd.Namespace)
	}
	var t flaggerv1.MetricTemplate
	if err := r.a.Reader.Get(ctx, ref, &t); err != nil {
		return nil, nil, fmt.Errorf("Metric template %s.%s error: %v", ref.Name, ref.Namespace, err)
	}
	var credentials map[string][]byte
	if s := t.Spec.Provider.SecretRef; s != nil {
		var secret corev1.Secret
		if err := r.a.Reader.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: s.Name}, &secret); err != nil {
			return nil, nil, fmt.Errorf("Metric template %s.%s secret %s error: %v", ref.Name, ref.Namespace, s.Name, err)
		}
		credentials = secret.Data
	}
	// Backends that query a time window (Datadog, New Relic, ...) take it from the metric's interval.
	interval, _ := time.ParseDuration(m.GetMetricInterval())
	p, err := r.a.factory()(t.Spec.Provider, r.templateDefaultAddress(crossNamespace, credentials), credentials,
		metrics.Options{Timeout: r.a.timeout(), Interval: interval, AllowAmbientCredentials: r.a.AllowAmbientCredentials, Kube: r.a.Kube,
			OnlyNamespace: r.onlyNamespace()})
	if err != nil {
		return nil, nil, fmt.Errorf("Metric template %s.%s provider %s error: %v", ref.Name, ref.Namespace, t.Spec.Provider.Type, err)
	}
	return &t, p, nil
}

// templateDefaultAddress is the address of a template without its own: the canary's
// spec.metricsServer (else -metrics-server), except for a template of another namespace that
// carries credentials. Its Secret belongs to that namespace's owner, and a canary's author must
// not be able to point it at a server of their own and collect the token: such a template keeps
// the operator's -metrics-server (the override is ignored rather than refused, so that Flagger
// canaries that set metricsServer for their builtin checks still work).
func (r *run) templateDefaultAddress(crossNamespace bool, credentials map[string][]byte) string {
	if crossNamespace && len(credentials) > 0 {
		return r.a.MetricsServer
	}
	return r.server
}

func (r *run) checkTemplate(ctx context.Context, m flaggerv1.CanaryMetric) error {
	t, p, err := r.templateProvider(ctx, m)
	if err != nil {
		return err
	}
	model, err := r.model(ctx, m)
	if err != nil {
		return err
	}
	model.EscapePromQL = t.Spec.Provider.Type == "prometheus" || t.Spec.Provider.Type == ""
	query, err := Render(t.Name, t.Spec.Query, model)
	if err != nil {
		return fmt.Errorf("Metric template %s.%s query render error: %v", t.Name, t.Namespace, err)
	}
	val, err := r.query(ctx, p, query)
	if err != nil {
		if errors.Is(err, metrics.ErrNoValuesFound) {
			return r.noData(ctx, m, fmt.Sprintf("Halt advancement no values found for custom metric: %s: %v", m.Name, err))
		}
		return fmt.Errorf("Metric query failed for %s: %v", m.Name, err)
	}
	return r.compare(m, val)
}

// compare checks a template's or inline query's value: thresholdRange, else threshold as a maximum.
func (r *run) compare(m flaggerv1.CanaryMetric, val float64) error {
	r.observe(m.Name, val, strconv.FormatFloat(val, 'g', 6, 64))
	key := r.cd.Key()
	if tr := m.ThresholdRange; tr != nil {
		if tr.Min != nil && val < *tr.Min {
			return fmt.Errorf("Halt %s advancement %s %.2f < %v", key, m.Name, val, *tr.Min)
		}
		if tr.Max != nil && val > *tr.Max {
			return fmt.Errorf("Halt %s advancement %s %.2f > %v", key, m.Name, val, *tr.Max)
		}
	} else if val > m.Threshold {
		return fmt.Errorf("Halt %s advancement %s %.2f > %v", key, m.Name, val, m.Threshold)
	}
	return nil
}
