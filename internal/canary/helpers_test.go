package canary

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// The fake clock: every test builds its times from t0; nothing reads the wall clock or sleeps.
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// interval is the analysis interval of the fixture canary ("1m").
const interval = time.Minute

const (
	primaryWaitMsg = "Waiting for podinfo-primary.test rollout to finish: 0 of 1 updated replicas are available"
	canaryWaitMsg  = "Waiting for podinfo.test rollout to finish: 1 of 2 updated replicas are available"
	deadlineMsg    = "deployment \"podinfo\" exceeded its progress deadline"
	hookErr        = "500 Internal Server Error"
	metricErr      = "Halt podinfo.test advancement success rate 69.17% < 99%"
)

var (
	cfgA = map[string]string{"configmap/podinfo-config": "aaaaaaaaaaaaaaaa", "secret/podinfo-secret": "bbbbbbbbbbbbbbbb"}
	cfgB = map[string]string{"configmap/podinfo-config": "cccccccccccccccc", "secret/podinfo-secret": "bbbbbbbbbbbbbbbb"}
)

// ---------------------------------------------------------------------------------------------
// Fake Checks

// fakeChecks answers gates, webhooks and metric analysis from a script. Hooks are answered per
// webhook of the canary's spec (type "" counts as rollout), so the results carry the real names and
// muteAlert flags: a hook passes unless its name is in fail; a rollback hook asks for a rollback
// (answers ≤202) only when its name is in rollback.
type fakeChecks struct {
	fail     map[string]string
	rollback map[string]bool
	// analyze answers the n-th Analyze call (from 1); nil passes every call.
	analyze func(n int) error

	// calls lists, in order, the hook types that had webhooks to call and "analyze".
	calls []string
	// phases are the phases passed to RunHooks, in the order of calls (hooks only).
	phases   []flaggerv1.CanaryPhase
	analyzed int
}

func (f *fakeChecks) RunHooks(_ context.Context, cd *flaggerv1.Canary, hook flaggerv1.HookType, phase flaggerv1.CanaryPhase) []HookResult {
	a := cd.GetAnalysis()
	if a == nil {
		return nil
	}
	var out []HookResult
	for _, w := range a.Webhooks {
		typ := w.Type
		if typ == "" {
			typ = flaggerv1.RolloutHook
		}
		if typ != hook {
			continue
		}
		r := HookResult{Name: w.Name, MuteAlert: w.MuteAlert}
		if hook == flaggerv1.RollbackHook {
			if !f.rollback[w.Name] {
				r.Err = errors.New("404 Not Found")
			}
		} else if msg, ok := f.fail[w.Name]; ok {
			r.Err = errors.New(msg)
		}
		out = append(out, r)
	}
	if len(out) > 0 {
		f.calls = append(f.calls, string(hook))
		f.phases = append(f.phases, phase)
	}
	return out
}

func (f *fakeChecks) Analyze(_ context.Context, _ *flaggerv1.Canary) error {
	f.analyzed++
	f.calls = append(f.calls, "analyze")
	if f.analyze == nil {
		return nil
	}
	return f.analyze(f.analyzed)
}

func (f *fakeChecks) failHook(name, msg string) {
	if f.fail == nil {
		f.fail = map[string]string{}
	}
	f.fail[name] = msg
}

func (f *fakeChecks) passHook(name string) { delete(f.fail, name) }

func analyzeFails(err string) func(int) error {
	return func(int) error { return errors.New(err) }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

// newCanary is podinfo.test: a Deployment canary with interval 1m, threshold 2, stepWeight 5 and
// maxWeight 50, no webhooks.
func newCanary(opts ...func(*flaggerv1.Canary)) *flaggerv1.Canary {
	cd := &flaggerv1.Canary{
		TypeMeta:   metav1.TypeMeta{APIVersion: "flagger.app/v1beta1", Kind: "Canary"},
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", Generation: 3},
		Spec: flaggerv1.CanarySpec{
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1.CanaryService{Port: 9898},
			Analysis:  &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 2, StepWeight: 5, MaxWeight: 50},
		},
	}
	for _, o := range opts {
		o(cd)
	}
	return cd
}

func withAnalysis(f func(a *flaggerv1.CanaryAnalysis)) func(*flaggerv1.Canary) {
	return func(cd *flaggerv1.Canary) { f(cd.Spec.Analysis) }
}

func withHooks(hooks ...flaggerv1.CanaryWebhook) func(*flaggerv1.Canary) {
	return func(cd *flaggerv1.Canary) {
		cd.Spec.Analysis.Webhooks = append(cd.Spec.Analysis.Webhooks, hooks...)
	}
}

func withStatus(st flaggerv1.CanaryStatus) func(*flaggerv1.Canary) {
	return func(cd *flaggerv1.Canary) { cd.Status = st }
}

func withSpec(f func(s *flaggerv1.CanarySpec)) func(*flaggerv1.Canary) {
	return func(cd *flaggerv1.Canary) { f(&cd.Spec) }
}

// iterationsOnly turns the analysis into iterations n without weights (blue/green, or A/B with match).
func iterationsOnly(n int) func(a *flaggerv1.CanaryAnalysis) {
	return func(a *flaggerv1.CanaryAnalysis) {
		a.Iterations = n
		a.StepWeight = 0
		a.MaxWeight = 0
	}
}

var abMatch = []flaggerv1.ABMatch{{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}}}}

func hook(name string, typ flaggerv1.HookType) flaggerv1.CanaryWebhook {
	return flaggerv1.CanaryWebhook{Name: name, Type: typ, URL: "http://flagger-loadtester.test/" + name}
}

func mutedHook(name string, typ flaggerv1.HookType) flaggerv1.CanaryWebhook {
	w := hook(name, typ)
	w.MuteAlert = true
	return w
}

// status is the status of a release of rev2 over a primary that runs rev1, in phase p since
// two minutes.
func status(p flaggerv1.CanaryPhase, weight, iterations, failedChecks int) flaggerv1.CanaryStatus {
	return flaggerv1.CanaryStatus{
		Phase:              p,
		CanaryWeight:       weight,
		Iterations:         iterations,
		FailedChecks:       failedChecks,
		LastAppliedSpec:    "rev2",
		LastPromotedSpec:   "rev1",
		TrackedConfigs:     cfgPtr(cfgA),
		LastTransitionTime: metav1.NewTime(t0.Add(-2 * time.Minute)),
	}
}

// idleStatus is a canary at rest on rev1 (Initialized, Succeeded).
func idleStatus(p flaggerv1.CanaryPhase) flaggerv1.CanaryStatus {
	st := status(p, 0, 0, 0)
	st.LastAppliedSpec = "rev1"
	st.LastTransitionTime = metav1.NewTime(t0.Add(-time.Hour))
	return st
}

func cfgPtr(c map[string]string) *map[string]string {
	cp := maps.Clone(c)
	return &cp
}

// observed is what the controller sees during the analysis of rev2: both workloads ready, all
// traffic routed by the weights of the status, and an analysis tick due (last one an interval ago).
func observed(st flaggerv1.CanaryStatus) Observation {
	return Observation{
		Revision:  "rev2",
		Configs:   maps.Clone(cfgA),
		Primary:   Readiness{Ready: true},
		Canary:    Readiness{Ready: true},
		Routes:    Routes{Primary: 100 - st.CanaryWeight, Canary: st.CanaryWeight},
		LastTick:  t0.Add(-interval),
		PrimaryPromoted: st.Phase == flaggerv1.CanaryPhasePromoting ||
			st.Phase == flaggerv1.CanaryPhaseFinalising,
	}
}

func istio() Settings { return Settings{Provider: "istio", MinInterval: 10 * time.Second} }

// ---------------------------------------------------------------------------------------------
// Rendering and assertions

// render prints actions one per line so that expectations read like Flagger's event log:
// "SetRoutes 95/5", "Event: ...", "Warning: ...", "Alert warn: ...", "PostRollout Failed".
func render(actions []Action) []string {
	out := []string{}
	for _, a := range actions {
		switch a.Kind {
		case SetRoutes:
			s := fmt.Sprintf("SetRoutes %d/%d", a.Routes.Primary, a.Routes.Canary)
			if a.Routes.Mirrored {
				s += " mirrored"
			}
			out = append(out, s)
		case Event:
			if a.Warning {
				out = append(out, "Warning: "+a.Message)
			} else {
				out = append(out, "Event: "+a.Message)
			}
		case Alert:
			out = append(out, fmt.Sprintf("Alert %s: %s", a.Severity, a.Message))
		case PostRollout:
			out = append(out, "PostRollout "+string(a.Phase))
		default:
			out = append(out, string(a.Kind))
		}
	}
	return out
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if got == nil {
		got = []string{}
	}
	if want == nil {
		want = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got:\n\t%s\n want:\n\t%s", what, strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// containsInOrder reports whether want is a subsequence of got.
func containsInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func rollbackActions() []string {
	return []string{
		"SetRoutes 100/0",
		"Warning: Canary failed! Scaling down podinfo.test",
		"ScaleDown",
		"PostRollout Failed",
	}
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// next runs the machine once and fails the test if it mutated its input.
func next(t *testing.T, cd *flaggerv1.Canary, obs Observation, s Settings, now time.Time, f *fakeChecks) Decision {
	t.Helper()
	in := Input{Canary: cd.DeepCopy(), Observed: obs, Settings: s, Now: now}
	before := in.Canary.DeepCopy()
	d := Next(context.Background(), in, f)
	if !reflect.DeepEqual(before, in.Canary) {
		t.Fatalf("Next mutated its input canary:\n before %+v\n after  %+v", before.Status, in.Canary.Status)
	}
	return d
}

// withoutConditions drops what SetConditions derives, to compare the rest of two statuses.
func withoutConditions(st flaggerv1.CanaryStatus) flaggerv1.CanaryStatus {
	st.Conditions = nil
	st.ObservedGeneration = 0
	return st
}

// ---------------------------------------------------------------------------------------------
// The driver: a small simulated world that feeds each decision back to the machine.

// world holds a canary and what the controller would observe. step runs the machine at now and
// applies the decision as the controller would: the status is written back, Now becomes LastTick
// when the decision ticked, SetRoutes changes the observed routes, ScaleUp makes the canary ready
// (when canaryComesUp), ScaleDown scales it away, and Promote makes the primary run the new
// revision (PrimaryPromoted; its readiness stays what the test says).
type world struct {
	t             *testing.T
	cd            *flaggerv1.Canary
	obs           Observation
	settings      Settings
	now           time.Time
	checks        *fakeChecks
	canaryComesUp bool
}

func newWorld(t *testing.T, cd *flaggerv1.Canary) *world {
	obs := observed(cd.Status)
	obs.LastTick = time.Time{}
	return &world{t: t, cd: cd, obs: obs, settings: istio(), now: t0, checks: &fakeChecks{}, canaryComesUp: true}
}

func (w *world) step() Decision {
	w.t.Helper()
	d := next(w.t, w.cd, w.obs, w.settings, w.now, w.checks)
	w.cd.Status = d.Status
	if d.Ticked {
		w.obs.LastTick = w.now
	}
	for _, a := range d.Actions {
		switch a.Kind {
		case SetRoutes:
			w.obs.Routes = a.Routes
		case ScaleUp:
			w.obs.Canary = Readiness{Ready: true}
			if !w.canaryComesUp {
				w.obs.Canary = Readiness{Message: canaryWaitMsg}
			}
			w.obs.PrimaryPromoted = false
		case ScaleDown:
			w.obs.Canary = Readiness{}
		case Promote:
			w.obs.PrimaryPromoted = true
		}
	}
	return d
}

// tick advances the fake clock by one analysis interval and runs the machine.
func (w *world) tick() Decision {
	w.t.Helper()
	w.now = w.now.Add(interval)
	return w.step()
}

// stepWant is what one tick of a walk must produce.
type stepWant struct {
	phase      flaggerv1.CanaryPhase
	weight     int
	iterations int
	actions    []string
	// inOrder only requires actions to appear in that order among the decision's actions (used
	// where a separate test pins the exact list).
	inOrder bool
}

// walk runs one tick per expected step and checks each.
func (w *world) walk(steps []stepWant) []Decision {
	w.t.Helper()
	var ds []Decision
	for i, s := range steps {
		d := w.tick()
		ds = append(ds, d)
		got := render(d.Actions)
		st := d.Status
		if st.Phase != s.phase || st.CanaryWeight != s.weight || st.Iterations != s.iterations {
			w.t.Errorf("tick %d: phase %s weight %d iterations %d, want %s %d %d",
				i+1, st.Phase, st.CanaryWeight, st.Iterations, s.phase, s.weight, s.iterations)
		}
		if s.inOrder {
			if !containsInOrder(got, s.actions) {
				w.t.Errorf("tick %d: actions\n\t%s\n do not contain in order\n\t%s", i+1,
					strings.Join(got, "\n\t"), strings.Join(s.actions, "\n\t"))
			}
		} else {
			equalLines(w.t, fmt.Sprintf("tick %d (%s) actions", i+1, s.phase), got, s.actions)
		}
		if w.t.Failed() {
			w.t.FailNow()
		}
	}
	return ds
}

func advanceWeight(w int) []string {
	return []string{fmt.Sprintf("SetRoutes %d/%d", 100-w, w), fmt.Sprintf("Event: Advance podinfo.test canary weight %d", w)}
}

func advanceIteration(i, n int) string {
	return fmt.Sprintf("Event: Advance podinfo.test canary iteration %d/%d", i, n)
}

const (
	startingAnalysis = "Event: Starting canary analysis for podinfo.test"
	copyingSpec      = "Event: Copying podinfo.test template spec to podinfo-primary.test"
	newRevisionEvent = "Event: New revision detected! Scaling up podinfo.test"
	newRevisionAlert = "Alert info: New revision detected, progressing canary analysis."
	restartEvent     = "Event: New revision detected! Restarting analysis for podinfo.test"
)

func promoteActions() []string { return []string{copyingSpec, "Promote"} }

func rolloutActions() []string { return []string{"ScaleUp", newRevisionEvent, newRevisionAlert} }

func finaliseActions() []string {
	return []string{
		"ScaleDown",
		"PostRollout Succeeded",
		"Event: Promotion completed! Scaling down podinfo.test",
		"Alert info: Canary analysis completed successfully, promotion finished.",
	}
}
