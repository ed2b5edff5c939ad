package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
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

// JudgeSupported says why a canary's provider cannot judge its request-success-rate ("" when it
// can): the versions must be told apart by the builtin queries.
func JudgeSupported(provider string) string {
	q := queriesFor(provider)
	if _, ok := successCounts(q); !ok || q.name == "knative" {
		return fmt.Sprintf("the %s provider's metrics do not tell the primary from the canary", q.name)
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
	// The metric's own threshold says when a version is unhealthy: a success rate below it.
	switch {
	case m.ThresholdRange != nil && m.ThresholdRange.Min != nil:
		s.Healthy = 1 - *m.ThresholdRange.Min/100
	case m.ThresholdRange == nil && m.Threshold > 0:
		s.Healthy = 1 - m.Threshold/100
	}
	if m.Name != RequestSuccessRate {
		return s, fmt.Errorf("only %s can be judged, not %s", RequestSuccessRate, m.Name)
	}
	if m.TemplateRef != nil || m.Query != "" {
		return s, fmt.Errorf("a judged %s uses the builtin queries: it takes no templateRef or query", m.Name)
	}
	return s, s.Validate()
}

// checkJudged judges a request-success-rate metric: the requests of both versions since the last
// step, added to those of the earlier steps (status.lastChecks), compared by judge.Judge.
func (r *run) checkJudged(ctx context.Context, m flaggerv1.CanaryMetric) error {
	settings, err := JudgeSettings(m)
	if err != nil {
		return fmt.Errorf("Metric %s judge error: %v", m.Name, err)
	}
	if why := JudgeSupported(r.provider); why != "" {
		return fmt.Errorf("Metric %s judge error: %s", m.Name, why)
	}
	cq, _ := successCounts(queriesFor(r.provider))
	model, err := r.model(ctx, m)
	if err != nil {
		return err
	}
	model.Interval = fmt.Sprintf("%ds", int(r.window(m).Seconds()))
	canaryCounts, err := r.counts(ctx, cq, model)
	if err != nil {
		return err
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
	r.judged[m.Name] = judgedResult{counts: total, explanation: v.Explain("error rate")}
	r.observe(m.Name, 100*(1-v.Canary.Rate()), fmt.Sprintf("%.2f%% vs %.2f%%", 100*(1-v.Canary.Rate()), 100*(1-v.Primary.Rate())))
	msg := fmt.Sprintf("Halt %s advancement %s", r.cd.Key(), v.Explain("error rate"))
	switch v.Decision {
	case judge.Fail:
		return &canary.RollbackError{Message: msg}
	case judge.Hold:
		return &canary.HoldError{Message: msg}
	}
	log.FromContext(ctx).Info("metric judged", "canary", r.cd.Key(), "metric", m.Name, "verdict", v.Explain("error rate"))
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
	for _, c := range r.cd.Status.LastChecks {
		if c.Kind == flaggerv1.MetricCheck && c.Name == metric && c.Counts != nil {
			return *c.Counts
		}
	}
	return flaggerv1.CanaryCheckCounts{}
}

func (a *Analyzer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
