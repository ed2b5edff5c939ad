package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/analysis"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/metrics"
)

// Options are the controller settings the simulation runs with.
type Options struct {
	// Provider is the -mesh-provider default for a canary without spec.provider.
	Provider string
	// MinInterval floors analysis.interval, as the controller's -min-analysis-interval (10s).
	MinInterval time.Duration
}

// Result is how the simulated release ended.
type Result struct {
	// Outcome is Succeeded or Failed, or "undecided" when the scenario's duration ran out.
	Outcome string
	// Took is the virtual time from the new revision to the outcome.
	Took time.Duration
}

// The revisions of the simulation: the primary runs the first, the target changes to the second.
const (
	oldRevision = "11111111111111111111111111111111"
	newRevision = "22222222222222222222222222222222"
)

// start is the virtual time the release starts at; the timeline prints offsets from it.
var start = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

// world is the simulated cluster: the clock, the routes the controller set and the traffic.
type world struct {
	scenario          Scenario
	start, now        time.Time
	routes            []routeChange
	target, service   string
	durationInSeconds bool
}

type routeChange struct {
	at     time.Time
	canary int
}

// Run releases a new revision of cd in the scenario and writes the timeline to out.
func Run(ctx context.Context, cd *flaggerv1.Canary, sc Scenario, o Options, out io.Writer) (Result, error) {
	provider := cd.Spec.Provider
	if provider == "" {
		provider = o.Provider
	}
	if err := controller.Validate(cd, provider); err != nil {
		return Result{}, fmt.Errorf("the canary cannot work: %w", err)
	}
	if cd.IsKnativeTarget() {
		return Result{}, errors.New("simulate does not run Knative Service targets")
	}
	for _, m := range cd.GetAnalysis().Metrics {
		if m.TemplateRef != nil || m.Query != "" {
			return Result{}, fmt.Errorf("metric %s: simulate runs the builtin metrics (request-success-rate, request-duration) only", m.Name)
		}
	}
	w := &world{scenario: sc, start: start, now: start, target: cd.Spec.TargetRef.Name, service: cd.Spec.TargetRef.Name,
		durationInSeconds: analysis.DurationInSeconds(provider)}
	if cd.Spec.Service.Name != "" {
		w.service = cd.Spec.Service.Name
	}
	s := newSim(cd, w, provider, o)
	end := start.Add(sc.Duration.Duration)
	if sc.Duration.Duration == 0 {
		end = start.Add(2 * time.Hour)
	}
	for step := 0; step < 100000 && !w.now.After(end); step++ {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		d := canary.Next(ctx, canary.Input{Canary: s.cd, Observed: s.obs, Settings: s.settings, Now: w.now}, s)
		s.apply(d, out)
		switch s.cd.Status.Phase {
		case flaggerv1.CanaryPhaseSucceeded, flaggerv1.CanaryPhaseFailed:
			took := w.now.Sub(start)
			fmt.Fprintf(out, "%-8s outcome: %s after %s\n", offset(took), s.cd.Status.Phase, took.Round(time.Second))
			return Result{Outcome: string(s.cd.Status.Phase), Took: took}, nil
		}
		next := d.RequeueAfter
		if next <= 0 {
			next = time.Second
		}
		w.now = w.now.Add(next)
	}
	fmt.Fprintf(out, "%-8s outcome: undecided after %s (the scenario's duration)\n", offset(w.now.Sub(start)), w.now.Sub(start))
	return Result{Outcome: "undecided", Took: w.now.Sub(start)}, nil
}

// sim holds the canary, what the controller would observe, and the checks.
type sim struct {
	cd       *flaggerv1.Canary
	obs      canary.Observation
	settings canary.Settings
	world    *world
	analyzer *analysis.Analyzer
	printed  map[string]string
}

func newSim(cd *flaggerv1.Canary, w *world, provider string, o Options) *sim {
	cd = cd.DeepCopy()
	if cd.Namespace == "" {
		cd.Namespace = "default"
	}
	cd.Generation = 1
	cd.Status = flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseInitialized, LastAppliedSpec: oldRevision,
		LastPromotedSpec: oldRevision, ObservedGeneration: 1, LastTransitionTime: metav1.NewTime(start.Add(-time.Hour))}
	a := analysis.New(nil, "http://prometheus.simulated", provider)
	a.NewProvider = func(flaggerv1.MetricTemplateProvider, string, map[string][]byte, metrics.Options) (metrics.Provider, error) {
		return prometheus{w: w}, nil
	}
	a.Now = func() time.Time { return w.now }
	if o.MinInterval == 0 {
		o.MinInterval = 10 * time.Second
	}
	w.routes = []routeChange{{at: time.Time{}, canary: 0}}
	return &sim{
		cd:       cd,
		obs:      canary.Observation{Revision: newRevision, Primary: canary.Readiness{Ready: true}, Canary: canary.Readiness{Ready: true}, Routes: canary.Routes{Primary: 100}},
		settings: canary.Settings{Provider: provider, MinInterval: o.MinInterval},
		world:    w,
		analyzer: a,
		printed:  map[string]string{},
	}
}

// apply carries out a decision the way the controller would, in the virtual world, and prints it.
func (s *sim) apply(d canary.Decision, out io.Writer) {
	at := offset(s.world.now.Sub(start))
	for _, a := range d.Actions {
		switch a.Kind {
		case canary.SetRoutes:
			s.obs.Routes = a.Routes
			s.world.routes = append(s.world.routes, routeChange{at: s.world.now, canary: a.Routes.Canary})
			fmt.Fprintf(out, "%-8s weights primary %d%% / canary %d%%\n", at, a.Routes.Primary, a.Routes.Canary)
		case canary.Promote:
			s.obs.PrimaryPromoted = true
		case canary.ScaleDown:
			s.obs.Canary = canary.Readiness{ScaledDown: true, Message: "scaled to zero"}
		case canary.ScaleUp:
			s.obs.Canary = canary.Readiness{Ready: true}
		case canary.Event:
			kind := "event"
			if a.Warning {
				kind = "warning"
			}
			fmt.Fprintf(out, "%-8s %-7s %s\n", at, kind, a.Message)
		case canary.Alert:
			fmt.Fprintf(out, "%-8s alert   %s: %s\n", at, a.Severity, a.Message)
		case canary.PostRollout:
			fmt.Fprintf(out, "%-8s post-rollout webhooks called (%s)\n", at, a.Phase)
		}
	}
	s.cd.Status = d.Status
	if d.Ticked {
		s.obs.LastTick = s.world.now
	}
	if d.TickReset {
		s.obs.LastTick = time.Time{}
	}
	s.obs.LastWait = time.Time{}
	if s.cd.Status.LastPromotedSpec == newRevision {
		s.obs.PrimaryPromoted = true
	}
	for _, c := range s.cd.Status.LastChecks {
		key := string(c.Kind) + "/" + c.Name
		line := checkLine(c)
		if s.printed[key] != line+c.Time.String() {
			s.printed[key] = line + c.Time.String()
			fmt.Fprintf(out, "%-8s check   %s\n", at, line)
		}
	}
}

func checkLine(c flaggerv1.CanaryCheckResult) string {
	line := fmt.Sprintf("%s %s", c.Name, strings.ToLower(string(c.Result)))
	if c.Value != "" {
		line += " at " + c.Value
	}
	if c.Counts != nil && c.Message != "" {
		line += " (" + c.Message + ")"
	}
	return line
}

func offset(d time.Duration) string {
	return "+" + d.Round(time.Second).String()
}

// RunHooks answers the webhooks from the scenario: pass by default, except rollback hooks, which
// answer fail (no rollback asked) unless the scenario says pass.
func (s *sim) RunHooks(_ context.Context, cd *flaggerv1.Canary, hook flaggerv1.HookType, _ flaggerv1.CanaryPhase) ([]canary.HookResult, error) {
	var out []canary.HookResult
	for _, w := range cd.WebhooksOf(hook) {
		answer, ok := s.world.scenario.Webhooks[w.Name]
		if !ok {
			answer = "pass"
			if hook == flaggerv1.RollbackHook {
				answer = "fail"
			}
		}
		r := canary.HookResult{Name: w.Name, MuteAlert: w.MuteAlert}
		if answer == "fail" {
			r.Err = errors.New("the scenario answers 500")
		}
		out = append(out, r)
	}
	return out, nil
}

// Analyze runs the real analysis against the simulated Prometheus.
func (s *sim) Analyze(ctx context.Context, cd *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	return s.analyzer.Check(ctx, cd)
}
