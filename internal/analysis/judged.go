package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/judge"
	"github.com/pennant/pennant/internal/metrics"
)

// countQueries are the PromQL of one version's requests and successful requests over a window,
// derived from a provider's builtin success-rate query (Flagger's `sum(rate(ok)) / sum(rate(all))
// * 100`): each side becomes its own query, with increase() for rate().
type countQueries struct{ ok, all string }

// successCounts splits the success-rate query; ok is false for a query of another shape.
func successCounts(q builtinQueries) (countQueries, bool) {
	num, den, found := strings.Cut(q.successRate, " / ")
	if !found || q.skipperNames {
		// Skipper's route names are template variables of the whole query.
		return countQueries{}, false
	}
	den = strings.TrimSuffix(strings.TrimSpace(den), "* 100")
	increase := strings.NewReplacer("rate(", "increase(")
	return countQueries{ok: increase.Replace(num), all: increase.Replace(den)}, true
}

// primaryQuery is a canary's query turned to the primary: selectors of the generated "-canary"
// objects (Services, upstreams, routes) select the "-primary" ones; NGINX's canary ingress
// (canary!="") becomes the main one (canary=""); the others select the target's workload, whose
// model target becomes "<target>-primary".
func primaryQuery(query string, m Model) (string, Model) {
	switch {
	case strings.Contains(query, `canary!=""`):
		return strings.ReplaceAll(query, `canary!=""`, `canary=""`), m
	case strings.Contains(query, "-canary"):
		return strings.ReplaceAll(query, "-canary", "-primary"), m
	}
	m.Target += "-primary"
	return query, m
}

// bucketSelector finds the histogram selector of a duration query: the metric_bucket{...}.
var bucketSelector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*_bucket)\{(.*?)\}\[`)

// latencyCounts are the count queries of the requests faster than boundMs and of all requests,
// from a provider's histogram (its builtin duration query); ok is false for providers whose
// duration is a mean without a histogram (NGINX, Skipper).
func latencyCounts(q builtinQueries, boundMs float64) (countQueries, bool) {
	if !strings.Contains(q.duration, "histogram_quantile") {
		return countQueries{}, false
	}
	m := bucketSelector.FindStringSubmatch(q.duration)
	if m == nil {
		return countQueries{}, false
	}
	bound := boundMs
	if q.durationInSeconds || strings.Contains(q.duration, "_seconds_bucket") {
		bound = boundMs / 1000
	}
	// The histogram's own bound: exporters write 0.5 or 500, some 500.0.
	// A regular expression inside a PromQL string: its backslashes are escaped once more.
	le := strings.ReplaceAll(regexp.QuoteMeta(strconv.FormatFloat(bound, 'f', -1, 64)), `\`, `\\`)
	labels := strings.TrimSuffix(strings.TrimSpace(m[2]), ",")
	query := func(matcher string) string {
		return fmt.Sprintf(" sum( increase( %s{ %s, %s }[{{ interval }}] ) )", m[1], labels, matcher)
	}
	return countQueries{ok: query(`le=~"` + le + `(\\.0+)?"`), all: query(`le="+Inf"`)}, true
}

// judgedCounts are the count queries of a judged metric for a provider, and what its bad requests
// are called.
func judgedCounts(m flaggerv1.CanaryMetric, provider string) (countQueries, string, error) {
	q := queriesFor(provider)
	if q.name == "knative" || q.skipperNames {
		return countQueries{}, "", fmt.Errorf("the %s provider's metrics do not tell the primary from the canary", q.name)
	}
	switch m.Name {
	case RequestSuccessRate:
		cq, ok := successCounts(q)
		if !ok {
			return cq, "", fmt.Errorf("the %s provider's metrics do not tell the primary from the canary", q.name)
		}
		return cq, "error rate", nil
	case RequestDuration:
		bound := latencyBound(m)
		cq, ok := latencyCounts(q, bound)
		if !ok {
			return cq, "", fmt.Errorf("the %s provider's request duration is a mean, not a histogram", q.name)
		}
		return cq, fmt.Sprintf("share slower than %vms", bound), nil
	}
	return countQueries{}, "", fmt.Errorf("only %s and %s can be judged, not %s", RequestSuccessRate, RequestDuration, m.Name)
}

// latencyBound is a judged request-duration's bound in milliseconds: its maximum.
func latencyBound(m flaggerv1.CanaryMetric) float64 {
	if r := m.ThresholdRange; r != nil {
		if r.Max != nil {
			return *r.Max
		}
		return 0
	}
	return m.Threshold
}

// JudgeSupported says why a canary's provider cannot judge metric m ("" when it can): the
// versions must be told apart by the builtin queries.
func JudgeSupported(m flaggerv1.CanaryMetric, provider string) string {
	if _, _, err := judgedCounts(m, provider); err != nil {
		return err.Error()
	}
	return ""
}

// JudgeSettings are the judge's settings of a metric, checked.
func JudgeSettings(m flaggerv1.CanaryMetric) (judge.Settings, error) {
	j := m.Judge
	s := judge.Settings{
		Tolerance: j.Tolerance / 100, RelativeTolerance: j.RelativeTolerance / 100,
		Alpha: j.FalseRollbackRate / 100, MinSample: float64(j.MinSample),
	}
	switch m.Name {
	case RequestSuccessRate:
		// The metric's own threshold says when a version is unhealthy: a success rate below it.
		switch {
		case m.ThresholdRange != nil && m.ThresholdRange.Min != nil:
			s.Healthy = 1 - *m.ThresholdRange.Min/100
		case m.ThresholdRange == nil && m.Threshold > 0:
			s.Healthy = 1 - m.Threshold/100
		}
	case RequestDuration:
		// The bound is the p99 the threshold asks for: more than 1 % slower is unhealthy.
		if latencyBound(m) <= 0 {
			return s, fmt.Errorf("a judged %s needs a maximum (threshold or thresholdRange.max, in ms): the bound of the slow requests", m.Name)
		}
		s.Healthy = 0.01
	default:
		return s, fmt.Errorf("only %s and %s can be judged, not %s", RequestSuccessRate, RequestDuration, m.Name)
	}
	if m.TemplateRef != nil || m.Query != "" {
		return s, fmt.Errorf("a judged %s uses the builtin queries: it takes no templateRef or query", m.Name)
	}
	return s, s.Validate()
}

// checkJudged judges a builtin metric: the requests (and the failed or slow ones) of both versions
// since the last step, added to those of the earlier steps (status.lastChecks), compared by
// judge.Judge. A step without canary requests is no data: the metric's noDataPolicy decides, as for
// the thresholds, so that a canary is never promoted on requests nobody measured.
func (r *run) checkJudged(ctx context.Context, m flaggerv1.CanaryMetric) error {
	settings, err := JudgeSettings(m)
	if err != nil {
		return fmt.Errorf("Metric %s judge error: %v", m.Name, err)
	}
	cq, what, err := judgedCounts(m, r.provider)
	if err != nil {
		return fmt.Errorf("Metric %s judge error: %v", m.Name, err)
	}
	model, err := r.model(ctx, m)
	if err != nil {
		return err
	}
	model.Interval = fmt.Sprintf("%ds", int(r.window(m).Seconds()))
	canaryCounts, err := r.counts(ctx, cq, model)
	if err != nil {
		return err
	}
	if canaryCounts.Total <= 0 {
		return r.noData(ctx, m, fmt.Sprintf("Halt advancement no values found for %s metric %s probably %s.%s is not receiving traffic",
			r.provider, m.Name, r.cd.Spec.TargetRef.Name, r.cd.Namespace))
	}
	okQ, pm := primaryQuery(cq.ok, model)
	allQ, _ := primaryQuery(cq.all, model)
	primaryCounts, err := r.counts(ctx, countQueries{ok: okQ, all: allQ}, pm)
	if err != nil {
		return err
	}
	total := r.earlierCounts(m.Name)
	total.CanaryRequests += canaryCounts.Total
	total.CanaryErrors += canaryCounts.Bad
	total.PrimaryRequests += primaryCounts.Total
	total.PrimaryErrors += primaryCounts.Bad
	v := judge.Judge(judge.Counts{Total: total.CanaryRequests, Bad: total.CanaryErrors},
		judge.Counts{Total: total.PrimaryRequests, Bad: total.PrimaryErrors}, primaryCounts, settings)
	r.judged[m.Name] = judgedResult{counts: total, explanation: v.Explain(what)}
	if m.Name == RequestSuccessRate {
		r.observe(m.Name, 100*(1-v.Canary.Rate()), fmt.Sprintf("%.2f%% vs %.2f%%", 100*(1-v.Canary.Rate()), 100*(1-v.Primary.Rate())))
	} else {
		// Not a duration: the share of slow requests is for the status, not the duration gauge.
		r.values[m.Name] = fmt.Sprintf("%.2f%% vs %.2f%% slow", 100*v.Canary.Rate(), 100*v.Primary.Rate())
	}
	msg := fmt.Sprintf("Halt %s advancement %s", r.cd.Key(), v.Explain(what))
	switch v.Decision {
	case judge.Fail:
		return &canary.RollbackError{Message: msg}
	case judge.Hold:
		return &canary.HoldError{Message: msg}
	}
	log.FromContext(ctx).Info("metric judged", "canary", r.cd.Key(), "metric", m.Name, "verdict", v.Explain(what))
	return nil
}

// judgedResult is what a judged metric adds to its check result.
type judgedResult struct {
	counts      flaggerv1.CanaryCheckCounts
	explanation string
}

// window is the time since the last analysis step, the share of traffic this step judges (the
// steps' windows do not overlap, so no request is counted twice); the metric's interval before
// the first step.
func (r *run) window(m flaggerv1.CanaryMetric) time.Duration {
	if last := r.cd.Status.LastStepTime; last != nil {
		if d := r.a.now().Sub(last.Time).Round(time.Second); d >= time.Second {
			return d
		}
		return time.Second
	}
	d, err := time.ParseDuration(m.GetMetricInterval())
	if err != nil || d < time.Second {
		return time.Minute
	}
	return d
}

// counts reads a version's requests and failed requests over the model's window. A version without
// series in the window served no requests.
func (r *run) counts(ctx context.Context, cq countQueries, model Model) (judge.Counts, error) {
	p, err := r.prometheus()
	if err != nil {
		return judge.Counts{}, err
	}
	read := func(name, query string) (float64, error) {
		text, err := Render(name, query, model)
		if err != nil {
			return 0, fmt.Errorf("Metric %s query render error: %v", name, err)
		}
		v, err := r.query(ctx, p, text)
		if errors.Is(err, metrics.ErrNoValuesFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("Prometheus query failed: %v", err)
		}
		return math.Max(v, 0), nil
	}
	ok, err := read(RequestSuccessRate, cq.ok)
	if err != nil {
		return judge.Counts{}, err
	}
	all, err := read(RequestSuccessRate, cq.all)
	if err != nil {
		return judge.Counts{}, err
	}
	return judge.Counts{Total: all, Bad: math.Max(all-ok, 0)}, nil
}

// earlierCounts are the counts the status keeps for a judged metric from the analysis' earlier steps.
func (r *run) earlierCounts(metric string) flaggerv1.CanaryCheckCounts {
	if c := flaggerv1.FindCheckResult(r.cd.Status.LastChecks, flaggerv1.MetricCheck, metric); c != nil && c.Counts != nil {
		return *c.Counts
	}
	return flaggerv1.CanaryCheckCounts{}
}

func (a *Analyzer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
