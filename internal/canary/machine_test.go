package canary

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
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
	// results are what every Analyze call reports as the metrics checked.
	results []flaggerv1.CanaryCheckResult
	// pending makes hooks of these types report that they are still running.
	pending map[flaggerv1.HookType]bool

	// calls lists, in order, the hook types that had webhooks to call and "analyze".
	calls []string
	// phases are the phases passed to RunHooks, in the order of calls (hooks only).
	phases   []flaggerv1.CanaryPhase
	analyzed int
}

func (f *fakeChecks) RunHooks(_ context.Context, cd *flaggerv1.Canary, hook flaggerv1.HookType, phase flaggerv1.CanaryPhase) ([]HookResult, error) {
	if f.pending[hook] {
		return nil, ErrPending
	}
	a := cd.GetAnalysis()
	if a == nil {
		return nil, nil
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
	return out, nil
}

func (f *fakeChecks) Analyze(_ context.Context, _ *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	f.analyzed++
	f.calls = append(f.calls, "analyze")
	if f.analyze == nil {
		return f.results, nil
	}
	return f.results, f.analyze(f.analyzed)
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

// waitingStatus is a canary whose release of rev2 waits for its confirm-rollout gate.
func waitingStatus() flaggerv1.CanaryStatus {
	st := status(flaggerv1.CanaryPhaseWaiting, 0, 0, 0)
	st.LastAppliedSpec = "rev1"
	return st
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
		Revision: "rev2",
		Configs:  maps.Clone(cfgA),
		Primary:  Readiness{Ready: true},
		Canary:   Readiness{Ready: true},
		Routes:   Routes{Primary: 100 - st.CanaryWeight, Canary: st.CanaryWeight},
		LastTick: t0.Add(-interval),
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
	if d.TickReset {
		w.obs.LastTick = time.Time{}
	}
	if d.Waited {
		w.obs.LastWait = w.now
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
	d := w.step()
	if d.Status.Phase == flaggerv1.CanaryPhasePromoting && !w.obs.PrimaryPromoted && d.RequeueAfter == continueSoon {
		// The decision to promote is recorded first; the copy to the primary is the pass the
		// controller runs right after (TestPromotionIsRecordedBeforeThePrimaryIsRewritten). A walk
		// shows both as one tick.
		next := w.step()
		next.Actions = append(d.Actions, next.Actions...)
		d = next
	}
	return d
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

// promoteActions is a walk's promotion tick: the recorded decision and the copy of the pass right after.
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

// anyRequeue leaves Decision.RequeueAfter unchecked (a separate test pins it).
const anyRequeue time.Duration = -1

// tcase is one decision: a canary (spec and status), what the controller observed, the scripted
// checks, and everything the decision must say.
type tcase struct {
	name     string
	canary   *flaggerv1.Canary
	obs      func(o *Observation)
	settings func(s *Settings)
	checks   fakeChecks
	now      time.Time

	phase        flaggerv1.CanaryPhase
	weight       int
	iterations   int
	failedChecks int
	actions      []string
	calls        []string
	ticked       bool
	requeue      time.Duration
	outcome      Outcome
	stalled      string
	check        func(t *testing.T, in *flaggerv1.Canary, d Decision)
}

func runCases(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obs := observed(tc.canary.Status)
			if tc.obs != nil {
				tc.obs(&obs)
			}
			s := istio()
			if tc.settings != nil {
				tc.settings(&s)
			}
			now := tc.now
			if now.IsZero() {
				now = t0
			}
			f := tc.checks
			d := next(t, tc.canary, obs, s, now, &f)

			st := d.Status
			if st.Phase != tc.phase || st.CanaryWeight != tc.weight || st.Iterations != tc.iterations || st.FailedChecks != tc.failedChecks {
				t.Errorf("status: phase %q weight %d iterations %d failedChecks %d, want %q %d %d %d",
					st.Phase, st.CanaryWeight, st.Iterations, st.FailedChecks, tc.phase, tc.weight, tc.iterations, tc.failedChecks)
			}
			equalLines(t, "actions", render(d.Actions), tc.actions)
			equalLines(t, "checks called", f.calls, tc.calls)
			if d.Ticked != tc.ticked {
				t.Errorf("Ticked = %v, want %v", d.Ticked, tc.ticked)
			}
			if tc.requeue != anyRequeue && d.RequeueAfter != tc.requeue {
				t.Errorf("RequeueAfter = %v, want %v", d.RequeueAfter, tc.requeue)
			}
			if d.Outcome != tc.outcome {
				t.Errorf("Outcome = %q, want %q", d.Outcome, tc.outcome)
			}
			if d.Stalled != tc.stalled {
				t.Errorf("Stalled = %q, want %q", d.Stalled, tc.stalled)
			}
			if st.ObservedGeneration != tc.canary.Generation {
				t.Errorf("ObservedGeneration = %d, want %d", st.ObservedGeneration, tc.canary.Generation)
			}
			if tc.check != nil {
				tc.check(t, tc.canary, d)
			}
		})
	}
}

// unchangedStatus checks that nothing but the derived conditions and the step time changed.
func unchangedStatus(t *testing.T, in *flaggerv1.Canary, d Decision) {
	t.Helper()
	got, want := withoutConditions(d.Status), withoutConditions(in.Status)
	got.LastStepTime, want.LastStepTime = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status changed:\n got  %+v\n want %+v", got, want)
	}
}

func transitionAt(want time.Time) func(*testing.T, *flaggerv1.Canary, Decision) {
	return func(t *testing.T, _ *flaggerv1.Canary, d Decision) {
		t.Helper()
		if got := d.Status.LastTransitionTime.Time; !got.Equal(want) {
			t.Errorf("LastTransitionTime = %v, want %v", got, want)
		}
	}
}

func allOf(checks ...func(*testing.T, *flaggerv1.Canary, Decision)) func(*testing.T, *flaggerv1.Canary, Decision) {
	return func(t *testing.T, in *flaggerv1.Canary, d Decision) {
		t.Helper()
		for _, c := range checks {
			c(t, in, d)
		}
	}
}

func specs(applied, promoted string) func(*testing.T, *flaggerv1.Canary, Decision) {
	return func(t *testing.T, _ *flaggerv1.Canary, d Decision) {
		t.Helper()
		if d.Status.LastAppliedSpec != applied || d.Status.LastPromotedSpec != promoted {
			t.Errorf("lastAppliedSpec %q lastPromotedSpec %q, want %q %q",
				d.Status.LastAppliedSpec, d.Status.LastPromotedSpec, applied, promoted)
		}
	}
}

func tracked(want map[string]string) func(*testing.T, *flaggerv1.Canary, Decision) {
	return func(t *testing.T, _ *flaggerv1.Canary, d Decision) {
		t.Helper()
		var got map[string]string
		if d.Status.TrackedConfigs != nil {
			got = *d.Status.TrackedConfigs
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("trackedConfigs = %v, want %v", got, want)
		}
	}
}

func condition(typ string, status metav1.ConditionStatus, reason, message string) func(*testing.T, *flaggerv1.Canary, Decision) {
	return func(t *testing.T, _ *flaggerv1.Canary, d Decision) {
		t.Helper()
		c := flaggerv1.FindCanaryCondition(d.Status.Conditions, typ)
		if c == nil {
			t.Errorf("condition %s missing in %+v", typ, d.Status.Conditions)
			return
		}
		if c.Status != status || c.Reason != reason || c.Message != message {
			t.Errorf("condition %s = %s/%s/%q, want %s/%s/%q", typ, c.Status, c.Reason, c.Message, status, reason, message)
		}
	}
}

func noCondition(typ string) func(*testing.T, *flaggerv1.Canary, Decision) {
	return func(t *testing.T, _ *flaggerv1.Canary, d Decision) {
		t.Helper()
		if c := flaggerv1.FindCanaryCondition(d.Status.Conditions, typ); c != nil {
			t.Errorf("unexpected condition %+v", *c)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Initializing

func TestInitializing(t *testing.T) {
	initializing := func(since time.Duration) flaggerv1.CanaryStatus {
		return flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseInitializing, LastTransitionTime: metav1.NewTime(t0.Add(-since))}
	}
	notReady := func(lastWait time.Duration) func(o *Observation) {
		return func(o *Observation) {
			o.Revision = "rev1"
			o.Primary = Readiness{Message: primaryWaitMsg}
			o.LastWait = time.Time{}
			if lastWait > 0 {
				o.LastWait = t0.Add(-lastWait)
			}
		}
	}
	ready := func(o *Observation) { o.Revision = "rev1"; o.LastTick = time.Time{} }
	// Routes observed all on the primary (as a router creates them) are not written again.
	initialized := []string{
		"ScaleDown",
		"Event: Initialization done! podinfo.test",
		"Alert info: New Deployment detected, initialization completed.",
	}
	// Routes found elsewhere (a routing object taken over mid-analysis) are sent to the primary.
	initializedWithRoutes := []string{
		"ScaleDown",
		"SetRoutes 100/0",
		"Event: Initialization done! podinfo.test",
		"Alert info: New Deployment detected, initialization completed.",
	}
	initializedStatus := allOf(
		specs("rev1", "rev1"),
		tracked(cfgA),
		transitionAt(t0),
		condition(flaggerv1.PromotedCondition, metav1.ConditionTrue, "Initialized", "Deployment initialization completed."),
		condition(flaggerv1.ReadyCondition, metav1.ConditionTrue, "Initialized", "Deployment initialization completed."),
		noCondition(flaggerv1.ReconcilingCondition),
		noCondition(flaggerv1.StalledCondition),
	)
	reconciling := allOf(
		condition(flaggerv1.PromotedCondition, metav1.ConditionUnknown, "Initializing", "New Deployment detected, starting initialization."),
		condition(flaggerv1.ReadyCondition, metav1.ConditionUnknown, "Initializing", "New Deployment detected, starting initialization."),
		condition(flaggerv1.ReconcilingCondition, metav1.ConditionTrue, "Initializing", "New Deployment detected, starting initialization."),
	)
	stalledMsg := "primary not ready after 600s: " + primaryWaitMsg

	runCases(t, []tcase{
		{
			name:    "new canary, primary not ready: Initializing and a wait event",
			canary:  newCanary(),
			obs:     notReady(0),
			phase:   flaggerv1.CanaryPhaseInitializing,
			actions: []string{"Warning: " + primaryWaitMsg},
			requeue: anyRequeue, // see TestWaitingIsRateLimitedAndNeverHot
			check:   allOf(transitionAt(t0), reconciling, noCondition(flaggerv1.StalledCondition), specs("", "")),
		},
		{
			name:    "primary not ready, tick not due: no event",
			canary:  newCanary(withStatus(initializing(30 * time.Second))),
			obs:     notReady(30 * time.Second),
			phase:   flaggerv1.CanaryPhaseInitializing,
			requeue: interval,
			check:   allOf(unchangedStatus, transitionAt(t0.Add(-30*time.Second)), reconciling),
		},
		{
			name:    "primary not ready, tick due: wait event",
			canary:  newCanary(withStatus(initializing(2 * time.Minute))),
			obs:     notReady(interval),
			phase:   flaggerv1.CanaryPhaseInitializing,
			actions: []string{"Warning: " + primaryWaitMsg},
			requeue: interval,
			check:   unchangedStatus,
		},
		{
			name:   "primary not ready without a message: no event",
			canary: newCanary(withStatus(initializing(2 * time.Minute))),
			obs: func(o *Observation) {
				notReady(interval)(o)
				o.Primary.Message = ""
			},
			phase:   flaggerv1.CanaryPhaseInitializing,
			requeue: interval,
		},
		{
			name:    "primary not ready near the deadline: requeue at the deadline",
			canary:  newCanary(withStatus(initializing(590 * time.Second))),
			obs:     notReady(30 * time.Second),
			phase:   flaggerv1.CanaryPhaseInitializing,
			requeue: 10 * time.Second,
		},
		{
			name:    "primary not ready past progressDeadlineSeconds: Stalled",
			canary:  newCanary(withStatus(initializing(601 * time.Second))),
			obs:     notReady(interval),
			phase:   flaggerv1.CanaryPhaseInitializing,
			actions: []string{"Warning: " + primaryWaitMsg},
			requeue: anyRequeue, // see TestWaitingIsRateLimitedAndNeverHot
			stalled: stalledMsg,
			check: allOf(unchangedStatus, reconciling,
				condition(flaggerv1.StalledCondition, metav1.ConditionTrue, "ProgressDeadlineExceeded", stalledMsg)),
		},
		{
			name: "custom progressDeadlineSeconds",
			canary: newCanary(withStatus(initializing(61*time.Second)), withSpec(func(s *flaggerv1.CanarySpec) {
				deadline := int32(60)
				s.ProgressDeadlineSeconds = &deadline
			})),
			obs:     notReady(30 * time.Second),
			phase:   flaggerv1.CanaryPhaseInitializing,
			requeue: anyRequeue,
			stalled: "primary not ready after 60s: " + primaryWaitMsg,
		},
		{
			name:   "primary failed: Stalled before the deadline",
			canary: newCanary(withStatus(initializing(30 * time.Second))),
			obs: func(o *Observation) {
				notReady(30 * time.Second)(o)
				o.Primary = Readiness{Failed: true, Message: deadlineMsg}
			},
			phase:   flaggerv1.CanaryPhaseInitializing,
			requeue: interval,
			stalled: "primary not ready after 600s: " + deadlineMsg,
		},
		{
			name:    "primary ready: Initialized",
			canary:  newCanary(withStatus(initializing(30 * time.Second))),
			obs:     ready,
			phase:   flaggerv1.CanaryPhaseInitialized,
			actions: initialized,
			check:   initializedStatus,
		},
		{
			name:    "new canary with a ready primary: Initialized at once",
			canary:  newCanary(),
			obs:     ready,
			phase:   flaggerv1.CanaryPhaseInitialized,
			actions: initialized,
			check:   initializedStatus,
		},
		{
			name:    "routes found on the canary: back to the primary",
			canary:  newCanary(),
			obs:     func(o *Observation) { ready(o); o.Routes = Routes{Primary: 40, Canary: 60} },
			phase:   flaggerv1.CanaryPhaseInitialized,
			actions: initializedWithRoutes,
			check:   initializedStatus,
		},
		{
			name:    "routes found mirrored: mirroring ends",
			canary:  newCanary(),
			obs:     func(o *Observation) { ready(o); o.Routes = Routes{Primary: 100, Mirrored: true} },
			phase:   flaggerv1.CanaryPhaseInitialized,
			actions: initializedWithRoutes,
			check:   initializedStatus,
		},
		{
			name:    "no configs tracked",
			canary:  newCanary(),
			obs:     func(o *Observation) { ready(o); o.Configs = nil },
			phase:   flaggerv1.CanaryPhaseInitialized,
			actions: initialized,
			check:   tracked(nil),
		},
		{
			name: "DaemonSet target",
			canary: newCanary(withSpec(func(s *flaggerv1.CanarySpec) {
				s.TargetRef.Kind = "DaemonSet"
			})),
			obs:   ready,
			phase: flaggerv1.CanaryPhaseInitialized,
			actions: []string{
				"ScaleDown",
				"Event: Initialization done! podinfo.test",
				"Alert info: New DaemonSet detected, initialization completed.",
			},
			check: condition(flaggerv1.PromotedCondition, metav1.ConditionTrue, "Initialized", "DaemonSet initialization completed."),
		},
	})
}

// ---------------------------------------------------------------------------------------------
// Idle: Initialized, Succeeded, Failed

func TestIdle(t *testing.T) {
	failed := status(flaggerv1.CanaryPhaseFailed, 0, 0, 2)
	startRollout := func(applied string, configs map[string]string) func(*testing.T, *flaggerv1.Canary, Decision) {
		return allOf(specs(applied, "rev1"), tracked(configs), transitionAt(t0),
			condition(flaggerv1.PromotedCondition, metav1.ConditionUnknown, "Progressing", "New revision detected, progressing canary analysis."),
			condition(flaggerv1.ReconcilingCondition, metav1.ConditionTrue, "Progressing", "New revision detected, progressing canary analysis."),
			noCondition(flaggerv1.StalledCondition))
	}
	rev := func(r string) func(o *Observation) { return func(o *Observation) { o.Revision = r } }

	runCases(t, []tcase{
		{
			name:   "Initialized, nothing changed",
			canary: newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseInitialized))),
			obs:    rev("rev1"),
			phase:  flaggerv1.CanaryPhaseInitialized,
			check:  unchangedStatus,
		},
		{
			name:   "Succeeded, nothing changed",
			canary: newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))),
			obs:    rev("rev1"),
			phase:  flaggerv1.CanaryPhaseSucceeded,
			check: allOf(unchangedStatus,
				condition(flaggerv1.ReadyCondition, metav1.ConditionTrue, "Succeeded", "Canary analysis completed successfully, promotion finished.")),
		},
		{
			name: "Succeeded, no configs at all",
			canary: newCanary(withStatus(func() flaggerv1.CanaryStatus {
				st := idleStatus(flaggerv1.CanaryPhaseSucceeded)
				st.TrackedConfigs = nil
				return st
			}())),
			obs:   func(o *Observation) { o.Revision = "rev1"; o.Configs = map[string]string{} },
			phase: flaggerv1.CanaryPhaseSucceeded,
			check: unchangedStatus,
		},
		{
			name:    "Initialized, new revision: Progressing and the canary scaled up",
			canary:  newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseInitialized))),
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: rolloutActions(),
			requeue: interval,
			check:   startRollout("rev2", cfgA),
		},
		{
			name:    "Succeeded, new revision",
			canary:  newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))),
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: rolloutActions(),
			requeue: interval,
			check:   startRollout("rev2", cfgA),
		},
		{
			name:    "config checksum change alone starts a rollout",
			canary:  newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))),
			obs:     func(o *Observation) { o.Revision = "rev1"; o.Configs = cfgB },
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: rolloutActions(),
			requeue: interval,
			check:   startRollout("rev1", cfgB),
		},
		{
			name: "a newly referenced config starts a rollout",
			canary: newCanary(withStatus(func() flaggerv1.CanaryStatus {
				st := idleStatus(flaggerv1.CanaryPhaseSucceeded)
				st.TrackedConfigs = nil
				return st
			}())),
			obs:     rev("rev1"),
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: rolloutActions(),
			requeue: interval,
			check:   startRollout("rev1", cfgA),
		},
		{
			name: "revision equal to lastPromotedSpec: no rollout",
			canary: newCanary(withStatus(func() flaggerv1.CanaryStatus {
				st := idleStatus(flaggerv1.CanaryPhaseSucceeded)
				st.LastAppliedSpec = "rev0"
				return st
			}())),
			obs:   rev("rev1"),
			phase: flaggerv1.CanaryPhaseSucceeded,
			check: unchangedStatus,
		},
		{
			name:   "Failed, target reverted to the primary's revision: lastAppliedSpec follows, no rollout",
			canary: newCanary(withStatus(failed)),
			obs:    rev("rev1"),
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 2,
			check: allOf(specs("rev1", "rev1"), transitionAt(failed.LastTransitionTime.Time),
				condition(flaggerv1.ReadyCondition, metav1.ConditionFalse, "Failed", "Canary analysis failed, Deployment scaled to zero."),
				condition(flaggerv1.StalledCondition, metav1.ConditionTrue, "Failed", "Canary analysis failed, Deployment scaled to zero.")),
		},
		{
			name:   "Failed, same failed revision: nothing",
			canary: newCanary(withStatus(failed)),
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 2,
			check: unchangedStatus,
		},
		{
			name:    "Failed, newer revision: rollout with the counters reset",
			canary:  newCanary(withStatus(failed)),
			obs:     rev("rev3"),
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: rolloutActions(),
			requeue: interval,
			check:   startRollout("rev3", cfgA),
		},
	})
}

// A failed revision that was reverted and then applied again is a new rollout.
func TestFailedRevertThenReapply(t *testing.T) {
	w := newWorld(t, newCanary(withStatus(status(flaggerv1.CanaryPhaseFailed, 0, 0, 2))))
	w.obs.Revision = "rev1"
	if d := w.tick(); len(d.Actions) != 0 || d.Status.LastAppliedSpec != "rev1" || d.Status.Phase != flaggerv1.CanaryPhaseFailed {
		t.Fatalf("revert: actions %v, lastAppliedSpec %q, phase %s", render(d.Actions), d.Status.LastAppliedSpec, d.Status.Phase)
	}
	if d := w.tick(); len(d.Actions) != 0 || !reflect.DeepEqual(withoutConditions(d.Status), withoutConditions(w.cd.Status)) {
		t.Fatalf("second pass after revert changed something: %v", render(d.Actions))
	}
	w.obs.Revision = "rev2"
	d := w.tick()
	equalLines(t, "re-apply", render(d.Actions), rolloutActions())
	if d.Status.Phase != flaggerv1.CanaryPhaseProgressing || d.Status.LastAppliedSpec != "rev2" || d.Status.FailedChecks != 0 {
		t.Errorf("re-apply: %+v", withoutConditions(d.Status))
	}
}

// ---------------------------------------------------------------------------------------------
// confirm-rollout

func TestConfirmRollout(t *testing.T) {
	gate := withHooks(hook("approval", flaggerv1.ConfirmRolloutHook))
	closed := fakeChecks{fail: map[string]string{"approval": "403 Forbidden"}}
	waiting := status(flaggerv1.CanaryPhaseWaiting, 0, 0, 0)
	waiting.LastAppliedSpec = "rev1"
	halt := "Warning: Halt podinfo.test advancement waiting for approval approval"
	tickAgo := func(ago time.Duration) func(o *Observation) {
		return func(o *Observation) { o.LastTick = t0.Add(-ago) }
	}

	runCases(t, []tcase{
		{
			name:    "gate closed on a new revision: Waiting and an alert",
			canary:  newCanary(gate, withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))),
			checks:  closed,
			phase:   flaggerv1.CanaryPhaseWaiting,
			actions: []string{halt, "Alert warn: Canary is waiting for approval."},
			calls:   []string{"confirm-rollout"},
			ticked:  true,
			requeue: interval,
			check: allOf(specs("rev1", "rev1"), transitionAt(t0),
				condition(flaggerv1.PromotedCondition, metav1.ConditionUnknown, "Waiting", "Waiting for approval."),
				condition(flaggerv1.ReconcilingCondition, metav1.ConditionTrue, "Waiting", "Waiting for approval.")),
		},
		{
			name:    "gate closed with muteAlert: no alert",
			canary:  newCanary(withHooks(mutedHook("approval", flaggerv1.ConfirmRolloutHook)), withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))),
			checks:  closed,
			phase:   flaggerv1.CanaryPhaseWaiting,
			actions: []string{halt},
			calls:   []string{"confirm-rollout"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:    "gate open on a new revision: Progressing",
			canary:  newCanary(gate, withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))),
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: concat([]string{"Event: Confirm-rollout check approval passed"}, rolloutActions()),
			calls:   []string{"confirm-rollout"},
			requeue: interval,
		},
		{
			name:    "Waiting, tick not due: the gate is not called",
			canary:  newCanary(gate, withStatus(waiting)),
			obs:     tickAgo(30 * time.Second),
			checks:  closed,
			phase:   flaggerv1.CanaryPhaseWaiting,
			requeue: anyRequeue, // see TestWaitingRequeuesUntilTheNextTick
			check:   unchangedStatus,
		},
		{
			name:    "Waiting, tick due, gate still closed: no second alert",
			canary:  newCanary(gate, withStatus(waiting)),
			checks:  closed,
			phase:   flaggerv1.CanaryPhaseWaiting,
			actions: []string{halt},
			calls:   []string{"confirm-rollout"},
			ticked:  true,
			requeue: interval,
			check:   unchangedStatus,
		},
		{
			name:    "Waiting, never ticked in this process: the gate is called",
			canary:  newCanary(gate, withStatus(waiting)),
			obs:     func(o *Observation) { o.LastTick = time.Time{} },
			checks:  closed,
			phase:   flaggerv1.CanaryPhaseWaiting,
			actions: []string{halt},
			calls:   []string{"confirm-rollout"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:    "Waiting, gate opens: Progressing",
			canary:  newCanary(gate, withStatus(waiting)),
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: concat([]string{"Event: Confirm-rollout check approval passed"}, rolloutActions()),
			calls:   []string{"confirm-rollout"},
			ticked:  false,
			requeue: interval,
			check:   allOf(specs("rev2", "rev1"), transitionAt(t0)),
		},
	})
}

// A rollback webhook is asked while the confirm-rollout gate holds the canary in Waiting (Flagger
// lists Waiting among the phases whose rollback hooks run); passing, it fails the release.
func TestRollbackWhileWaiting(t *testing.T) {
	hooks := withHooks(hook("approval", flaggerv1.ConfirmRolloutHook), hook("rb", flaggerv1.RollbackHook))
	closed := map[string]string{"approval": "403 Forbidden"}
	waiting := waitingStatus()
	halt := "Warning: Halt podinfo.test advancement waiting for approval approval"
	manual := concat([]string{
		halt,
		"Warning: Rolling back podinfo.test manual webhook invoked",
		"Alert warn: Rolling back manual webhook invoked",
	}, rollbackActions())

	runCases(t, []tcase{
		{
			name:    "Waiting, gate closed, rollback webhook passes: Failed with the refused revision recorded",
			canary:  newCanary(hooks, withStatus(waiting)),
			obs:     func(o *Observation) { o.Configs = maps.Clone(cfgB) },
			checks:  fakeChecks{fail: closed, rollback: map[string]bool{"rb": true}},
			phase:   flaggerv1.CanaryPhaseFailed,
			actions: manual,
			calls:   []string{"confirm-rollout", "rollback"},
			ticked:  true,
			outcome: OutcomeFailed,
			check: allOf(specs("rev2", "rev1"), tracked(cfgB), transitionAt(t0),
				condition(flaggerv1.PromotedCondition, metav1.ConditionFalse, "Failed", "Canary analysis failed, Deployment scaled to zero.")),
		},
		{
			name:    "Waiting, gate closed, rollback webhook refuses: still Waiting",
			canary:  newCanary(hooks, withStatus(waiting)),
			checks:  fakeChecks{fail: closed},
			phase:   flaggerv1.CanaryPhaseWaiting,
			actions: []string{halt},
			calls:   []string{"confirm-rollout", "rollback"},
			ticked:  true,
			requeue: interval,
			check:   unchangedStatus,
		},
		{
			name:    "Waiting, tick not due: neither the gate nor the rollback webhook is asked",
			canary:  newCanary(hooks, withStatus(waiting)),
			obs:     func(o *Observation) { o.LastTick = t0.Add(-30 * time.Second) },
			checks:  fakeChecks{fail: closed, rollback: map[string]bool{"rb": true}},
			phase:   flaggerv1.CanaryPhaseWaiting,
			requeue: anyRequeue,
			check:   unchangedStatus,
		},
		{
			name:    "gate closed on a new revision: Waiting; rollback webhooks are not asked before",
			canary:  newCanary(hooks, withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))),
			checks:  fakeChecks{fail: closed, rollback: map[string]bool{"rb": true}},
			phase:   flaggerv1.CanaryPhaseWaiting,
			actions: []string{halt, "Alert warn: Canary is waiting for approval."},
			calls:   []string{"confirm-rollout"},
			ticked:  true,
			requeue: interval,
		},
	})
}

// Waiting -> Failed through the driver: the failed revision does not start again, a newer one does.
func TestRollbackWhileWaitingWalk(t *testing.T) {
	w := newWorld(t, newCanary(withHooks(hook("approval", flaggerv1.ConfirmRolloutHook), hook("rb", flaggerv1.RollbackHook)),
		withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))))
	w.checks.failHook("approval", "403 Forbidden")
	halt := "Warning: Halt podinfo.test advancement waiting for approval approval"
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseWaiting, actions: []string{halt, "Alert warn: Canary is waiting for approval."}},
		{phase: flaggerv1.CanaryPhaseWaiting, actions: []string{halt}},
	})
	w.checks.rollback = map[string]bool{"rb": true}
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseFailed, actions: concat([]string{
			halt,
			"Warning: Rolling back podinfo.test manual webhook invoked",
			"Alert warn: Rolling back manual webhook invoked",
		}, rollbackActions())},
		{phase: flaggerv1.CanaryPhaseFailed},
		{phase: flaggerv1.CanaryPhaseFailed},
	})
	w.obs.Revision = "rev3"
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseWaiting, actions: []string{halt, "Alert warn: Canary is waiting for approval."}},
	})
}

// Waiting -> Progressing through the driver, with the gate opening on the third check.
func TestConfirmRolloutWalk(t *testing.T) {
	w := newWorld(t, newCanary(withHooks(hook("approval", flaggerv1.ConfirmRolloutHook)),
		withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))))
	w.checks.failHook("approval", "403 Forbidden")
	halt := "Warning: Halt podinfo.test advancement waiting for approval approval"
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseWaiting, actions: []string{halt, "Alert warn: Canary is waiting for approval."}},
		{phase: flaggerv1.CanaryPhaseWaiting, actions: []string{halt}},
	})
	w.checks.passHook("approval")
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, actions: concat([]string{"Event: Confirm-rollout check approval passed"}, rolloutActions())},
	})
}

// ---------------------------------------------------------------------------------------------
// Progressing: readiness of the canary

func TestProgressingCanaryReadiness(t *testing.T) {
	// Unready since before the last step's time: the last step ran with a ready canary, so the
	// deadline counts from the last transition here.
	notReady := func(o *Observation) { o.Canary = Readiness{Message: canaryWaitMsg}; o.LastTick = time.Time{} }
	failedCanary := func(o *Observation) { o.Canary = Readiness{Failed: true, Message: deadlineMsg} }
	since := func(st flaggerv1.CanaryStatus, d time.Duration) flaggerv1.CanaryStatus {
		st.LastTransitionTime = metav1.NewTime(t0.Add(-d))
		return st
	}
	rollbackOnDeadline := func(msg string) []string {
		return concat([]string{
			"Warning: Rolling back podinfo.test progress deadline exceeded " + msg,
			"Alert error: Progress deadline exceeded " + msg,
		}, rollbackActions())
	}
	hooks := withHooks(hook("rb", flaggerv1.RollbackHook), hook("pre", flaggerv1.PreRolloutHook), hook("load", flaggerv1.RolloutHook))
	failedConditions := allOf(
		condition(flaggerv1.PromotedCondition, metav1.ConditionFalse, "Failed", "Canary analysis failed, Deployment scaled to zero."),
		condition(flaggerv1.ReadyCondition, metav1.ConditionFalse, "Failed", "Canary analysis failed, Deployment scaled to zero."),
		noCondition(flaggerv1.ReconcilingCondition),
		condition(flaggerv1.StalledCondition, metav1.ConditionTrue, "Failed", "Canary analysis failed, Deployment scaled to zero."),
		specs("rev2", "rev1"),
	)

	runCases(t, []tcase{
		{
			name:    "canary not ready, tick due: wait event, no checks",
			canary:  newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))),
			obs:     notReady,
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: []string{"Warning: " + canaryWaitMsg},
			requeue: interval,
			check:   unchangedStatus,
		},
		{
			name:    "canary scaled up less than an interval ago: quiet wait, looked at again when the interval is over",
			canary:  newCanary(hooks, withStatus(since(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0), 20*time.Second))),
			obs:     notReady,
			phase:   flaggerv1.CanaryPhaseProgressing,
			requeue: interval - 20*time.Second,
			check:   unchangedStatus,
		},
		{
			name:    "canary still rolling out an interval after its scale-up: wait event",
			canary:  newCanary(hooks, withStatus(since(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0), interval))),
			obs:     notReady,
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: []string{"Warning: " + canaryWaitMsg},
			requeue: interval,
			check:   unchangedStatus,
		},
		{
			name:   "canary not ready, tick not due: nothing",
			canary: newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))),
			obs: func(o *Observation) {
				notReady(o)
				o.LastWait = t0.Add(-10 * time.Second)
			},
			phase: flaggerv1.CanaryPhaseProgressing, weight: 10,
			requeue: interval,
			check:   unchangedStatus,
		},
		{
			name:   "canary not ready near the deadline: requeue at the deadline",
			canary: newCanary(withStatus(since(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), 590*time.Second))),
			obs:    notReady,
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 10,
			actions: []string{"Warning: " + canaryWaitMsg},
			requeue: 10 * time.Second,
		},
		{
			name:    "canary failed: rollback",
			canary:  newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))),
			obs:     failedCanary,
			phase:   flaggerv1.CanaryPhaseFailed,
			actions: rollbackOnDeadline(deadlineMsg),
			outcome: OutcomeFailed,
			check:   allOf(failedConditions, transitionAt(t0)),
		},
		{
			name:   "canary not ready past progressDeadlineSeconds: rollback",
			canary: newCanary(withStatus(since(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 1), 601*time.Second))),
			obs:    notReady,
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 1,
			actions: rollbackOnDeadline(canaryWaitMsg),
			outcome: OutcomeFailed,
			check:   failedConditions,
		},
		{
			name:    "WaitingPromotion, canary failed: rollback",
			canary:  newCanary(withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 0))),
			obs:     failedCanary,
			phase:   flaggerv1.CanaryPhaseFailed,
			actions: rollbackOnDeadline(deadlineMsg),
			outcome: OutcomeFailed,
		},
		{
			name:    "A/B canary failed: iterations reset",
			canary:  newCanary(withAnalysis(iterationsOnly(10)), withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Match = abMatch }), withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 4, 0))),
			obs:     failedCanary,
			phase:   flaggerv1.CanaryPhaseFailed,
			actions: rollbackOnDeadline(deadlineMsg),
			outcome: OutcomeFailed,
		},
	})
}

// ---------------------------------------------------------------------------------------------
// Progressing: analysis ticks

func TestProgressingAnalysis(t *testing.T) {
	hooks := withHooks(
		hook("rb", flaggerv1.RollbackHook),
		hook("pre", flaggerv1.PreRolloutHook),
		hook("load", flaggerv1.RolloutHook),
	)
	progressing := func(weight, failedChecks int) *flaggerv1.Canary {
		return newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseProgressing, weight, 0, failedChecks)))
	}
	thresholdRollback := func(n int) []string {
		return concat([]string{
			fmt.Sprintf("Warning: Rolling back podinfo.test failed checks threshold reached %d", n),
			fmt.Sprintf("Alert error: Failed checks threshold reached %d", n),
		}, rollbackActions())
	}
	preFailed := "Warning: Halt podinfo.test advancement pre-rollout check pre failed " + hookErr
	rolloutFailed := "Warning: Halt podinfo.test advancement external check load failed " + hookErr
	manual := concat([]string{
		"Warning: Rolling back podinfo.test manual webhook invoked",
		"Alert warn: Rolling back manual webhook invoked",
	}, rollbackActions())

	runCases(t, []tcase{
		{
			name:   "tick not due: nothing but RequeueAfter",
			canary: progressing(10, 0),
			obs:    func(o *Observation) { o.LastTick = t0.Add(-20 * time.Second) },
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 10,
			calls:   []string{"rollback"},
			requeue: 40 * time.Second,
			check:   unchangedStatus,
		},
		{
			name:   "first tick: pre-rollout hooks, then the first step",
			canary: progressing(0, 0),
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 5,
			actions: concat([]string{startingAnalysis, "Event: Pre-rollout check pre passed"}, advanceWeight(5)),
			calls:   []string{"rollback", "pre-rollout"},
			ticked:  true,
			requeue: interval,
			check:   transitionAt(t0),
		},
		{
			name:   "first tick with a failing pre-rollout hook: failedChecks 1",
			canary: progressing(0, 0),
			checks: fakeChecks{fail: map[string]string{"pre": hookErr}},
			phase:  flaggerv1.CanaryPhaseProgressing, failedChecks: 1,
			actions: []string{startingAnalysis, preFailed},
			calls:   []string{"rollback", "pre-rollout"},
			ticked:  true,
			requeue: interval,
			check:   transitionAt(t0),
		},
		{
			name:   "pre-rollout failing again: failed checks threshold reached",
			canary: progressing(0, 1),
			checks: fakeChecks{fail: map[string]string{"pre": hookErr}},
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 2,
			actions: concat([]string{startingAnalysis, preFailed}, thresholdRollback(2)),
			calls:   []string{"rollback", "pre-rollout"},
			ticked:  true,
			outcome: OutcomeFailed,
		},
		{
			name:   "later tick: rollout hooks, then metrics, then the next step",
			canary: progressing(5, 0),
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 10,
			actions: advanceWeight(10),
			calls:   []string{"rollback", "rollout", "analyze"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:   "failing rollout hook: failedChecks, no metrics",
			canary: progressing(5, 0),
			checks: fakeChecks{fail: map[string]string{"load": hookErr}},
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 5, failedChecks: 1,
			actions: []string{rolloutFailed},
			calls:   []string{"rollback", "rollout"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:   "failing metric check: failedChecks",
			canary: progressing(5, 0),
			checks: fakeChecks{analyze: analyzeFails(metricErr)},
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 5, failedChecks: 1,
			actions: []string{"Warning: " + metricErr},
			calls:   []string{"rollback", "rollout", "analyze"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:   "failing metric check reaching the threshold: rollback",
			canary: progressing(25, 1),
			checks: fakeChecks{analyze: analyzeFails(metricErr)},
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 2,
			actions: concat([]string{"Warning: " + metricErr}, thresholdRollback(2)),
			calls:   []string{"rollback", "rollout", "analyze"},
			ticked:  true,
			outcome: OutcomeFailed,
		},
		{
			name:   "default threshold is 1",
			canary: newCanary(withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Threshold = 0 }), withStatus(status(flaggerv1.CanaryPhaseProgressing, 5, 0, 0))),
			checks: fakeChecks{analyze: analyzeFails(metricErr)},
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 1,
			actions: concat([]string{"Warning: " + metricErr}, thresholdRollback(1)),
			calls:   []string{"analyze"},
			ticked:  true,
			outcome: OutcomeFailed,
		},
		{
			name:   "threshold lowered under failedChecks: rollback without a tick",
			canary: progressing(25, 2),
			obs:    func(o *Observation) { o.LastTick = t0.Add(-time.Second) },
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 2,
			actions: thresholdRollback(2),
			calls:   []string{"rollback"},
			outcome: OutcomeFailed,
		},
		{
			name:    "rollback webhook passing: manual rollback, even between ticks",
			canary:  progressing(25, 0),
			obs:     func(o *Observation) { o.LastTick = t0.Add(-time.Second) },
			checks:  fakeChecks{rollback: map[string]bool{"rb": true}},
			phase:   flaggerv1.CanaryPhaseFailed,
			actions: manual,
			calls:   []string{"rollback"},
			outcome: OutcomeFailed,
		},
		{
			name:    "rollback webhook passing in WaitingPromotion",
			canary:  newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 0))),
			checks:  fakeChecks{rollback: map[string]bool{"rb": true}},
			phase:   flaggerv1.CanaryPhaseFailed,
			actions: manual,
			calls:   []string{"rollback"},
			outcome: OutcomeFailed,
		},
		{
			name: "untyped webhooks are rollout hooks",
			canary: newCanary(withHooks(hook("untyped", "")),
				withStatus(status(flaggerv1.CanaryPhaseProgressing, 5, 0, 0))),
			checks: fakeChecks{fail: map[string]string{"untyped": hookErr}},
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 5, failedChecks: 1,
			actions: []string{"Warning: Halt podinfo.test advancement external check untyped failed " + hookErr},
			calls:   []string{"rollout"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:     "interval floored at MinInterval",
			canary:   newCanary(withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Interval = "5s" }), withStatus(status(flaggerv1.CanaryPhaseProgressing, 5, 0, 0))),
			obs:      func(o *Observation) { o.LastTick = t0.Add(-7 * time.Second) },
			settings: func(s *Settings) { s.MinInterval = 10 * time.Second },
			phase:    flaggerv1.CanaryPhaseProgressing, weight: 5,
			requeue: 3 * time.Second,
		},
		{
			name:   "unparsable interval is 60s",
			canary: newCanary(withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Interval = "soon" }), withStatus(status(flaggerv1.CanaryPhaseProgressing, 5, 0, 0))),
			obs:    func(o *Observation) { o.LastTick = t0.Add(-45 * time.Second) },
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 5,
			requeue: 15 * time.Second,
		},
	})
}

// Hooks are told the phase the canary is in.
func TestHooksGetThePhase(t *testing.T) {
	cd := newCanary(withHooks(hook("rb", flaggerv1.RollbackHook), hook("load", flaggerv1.RolloutHook),
		hook("promote", flaggerv1.ConfirmPromotionHook)),
		withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 0)))
	f := &fakeChecks{}
	next(t, cd, observed(cd.Status), istio(), t0, f)
	want := []flaggerv1.CanaryPhase{flaggerv1.CanaryPhaseWaitingPromotion, flaggerv1.CanaryPhaseWaitingPromotion, flaggerv1.CanaryPhaseWaitingPromotion}
	if !reflect.DeepEqual(f.phases, want) {
		t.Errorf("phases %v, want %v (calls %v)", f.phases, want, f.calls)
	}
}

// ---------------------------------------------------------------------------------------------
// Weighted canary

// TestWeightedWalk drives a full release of a weighted canary: new revision, ten steps of 5% up
// to maxWeight 50, promotion, traffic back to the primary, scale down.
func TestWeightedWalk(t *testing.T) {
	w := newWorld(t, newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseInitialized))))
	steps := []stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, actions: rolloutActions()},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 5, actions: concat([]string{startingAnalysis}, advanceWeight(5))},
	}
	for weight := 10; weight <= 50; weight += 5 {
		steps = append(steps, stepWant{phase: flaggerv1.CanaryPhaseProgressing, weight: weight, actions: advanceWeight(weight)})
	}
	steps = append(steps,
		stepWant{phase: flaggerv1.CanaryPhasePromoting, weight: 50, actions: promoteActions()},
		// TestPromotingRoutesAllTrafficToPrimaryEvent pins the exact list.
		stepWant{phase: flaggerv1.CanaryPhaseFinalising, actions: []string{"SetRoutes 100/0"}, inOrder: true},
		stepWant{phase: flaggerv1.CanaryPhaseSucceeded, actions: finaliseActions()},
		stepWant{phase: flaggerv1.CanaryPhaseSucceeded},
	)
	ds := w.walk(steps)

	if w.checks.analyzed != 10 {
		t.Errorf("Analyze ran %d times, want 10 (9 steps after the first, and the promotion tick)", w.checks.analyzed)
	}
	final := ds[len(ds)-2]
	if final.Outcome != OutcomeCompleted {
		t.Errorf("Outcome = %q, want completed", final.Outcome)
	}
	if st := final.Status; st.LastAppliedSpec != "rev2" || st.LastPromotedSpec != "rev2" {
		t.Errorf("specs %q/%q, want rev2/rev2", st.LastAppliedSpec, st.LastPromotedSpec)
	}
	for i, d := range ds[:len(ds)-2] {
		if d.Outcome != OutcomeNone {
			t.Errorf("tick %d: Outcome %q before the end", i+1, d.Outcome)
		}
	}
	if w.obs.Routes != (Routes{Primary: 100}) {
		t.Errorf("routes after the release: %+v", w.obs.Routes)
	}
}

func TestWeightedLadders(t *testing.T) {
	cases := []struct {
		name    string
		mod     func(a *flaggerv1.CanaryAnalysis)
		weights []int
	}{
		{"stepWeight 5 maxWeight 50", func(a *flaggerv1.CanaryAnalysis) {}, []int{5, 10, 15, 20, 25, 30, 35, 40, 45, 50}},
		{"stepWeight 10 without maxWeight goes to 100", func(a *flaggerv1.CanaryAnalysis) { a.StepWeight = 10; a.MaxWeight = 0 },
			[]int{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}},
		{"stepWeight 20 maxWeight 50 overshoots to 60 like Flagger", func(a *flaggerv1.CanaryAnalysis) { a.StepWeight = 20 }, []int{20, 40, 60}},
		{"stepWeight 30 caps at 100", func(a *flaggerv1.CanaryAnalysis) { a.StepWeight = 30; a.MaxWeight = 0 }, []int{30, 60, 90, 100}},
		{"maxWeight above 100 is 100", func(a *flaggerv1.CanaryAnalysis) { a.StepWeight = 50; a.MaxWeight = 150 }, []int{50, 100}},
		{"stepWeights ladder, maxWeight is the last step", func(a *flaggerv1.CanaryAnalysis) { a.StepWeight = 0; a.StepWeights = []int{1, 2, 10, 80} },
			[]int{1, 2, 10, 80}},
		{"stepWeights overflowing 100", func(a *flaggerv1.CanaryAnalysis) {
			a.StepWeight = 0
			a.MaxWeight = 0
			a.StepWeights = []int{20, 60, 120}
		},
			[]int{20, 60, 100}},
		{"stepWeights with a first step above 100", func(a *flaggerv1.CanaryAnalysis) { a.StepWeight = 0; a.StepWeights = []int{150} },
			[]int{100}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, newCanary(withAnalysis(tc.mod), withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))))
			var steps []stepWant
			for i, weight := range tc.weights {
				a := advanceWeight(weight)
				if i == 0 {
					a = concat([]string{startingAnalysis}, a)
				}
				steps = append(steps, stepWant{phase: flaggerv1.CanaryPhaseProgressing, weight: weight, actions: a})
			}
			last := tc.weights[len(tc.weights)-1]
			steps = append(steps, stepWant{phase: flaggerv1.CanaryPhasePromoting, weight: last, actions: promoteActions()})
			w.walk(steps)
		})
	}
}

func TestConfirmTrafficIncrease(t *testing.T) {
	gate := withHooks(hook("gate", flaggerv1.ConfirmTrafficIncreaseHook))
	closed := fakeChecks{fail: map[string]string{"gate": "403 Forbidden"}}
	halt := "Warning: Halt podinfo.test advancement waiting for traffic increase approval gate"
	alert := "Alert warn: Canary traffic increase is waiting for approval."

	runCases(t, []tcase{
		{
			name:   "gate closed: halt without failed checks",
			canary: newCanary(gate, withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 1))),
			checks: closed,
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 10, failedChecks: 1,
			actions: []string{halt, alert},
			calls:   []string{"analyze", "confirm-traffic-increase"},
			ticked:  true,
			requeue: interval,
			check:   allOf(unchangedStatus, transitionAt(t0.Add(-2*time.Minute))),
		},
		{
			name:   "gate closed, muted",
			canary: newCanary(withHooks(mutedHook("gate", flaggerv1.ConfirmTrafficIncreaseHook)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))),
			checks: closed,
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 10,
			actions: []string{halt},
			calls:   []string{"analyze", "confirm-traffic-increase"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:    "gate closed on the first step",
			canary:  newCanary(gate, withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))),
			checks:  closed,
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: []string{startingAnalysis, halt, alert},
			calls:   []string{"confirm-traffic-increase"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:   "gate open: next step",
			canary: newCanary(gate, withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))),
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 15,
			actions: advanceWeight(15),
			calls:   []string{"analyze", "confirm-traffic-increase"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:   "at maxWeight the gate is not asked",
			canary: newCanary(gate, withStatus(status(flaggerv1.CanaryPhaseProgressing, 50, 0, 0))),
			checks: closed,
			phase:  flaggerv1.CanaryPhasePromoting, weight: 50,
			actions: []string{copyingSpec},
			calls:   []string{"analyze"},
			ticked:  true,
			requeue: continueSoon,
		},
	})
}

// Mirroring: the first step mirrors at weight 0 (no traffic increase to confirm), the next one is
// weighted; the metrics run from the mirrored step on.
func TestMirrorWalk(t *testing.T) {
	cd := newCanary(
		withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Mirror = true; a.StepWeight = 10; a.MaxWeight = 30 }),
		withHooks(hook("gate", flaggerv1.ConfirmTrafficIncreaseHook)),
		withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0)))
	w := newWorld(t, cd)
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, actions: []string{startingAnalysis, "SetRoutes 100/0 mirrored", "Event: Advance podinfo.test canary weight 0"}},
	})
	equalLines(t, "checks on the mirror step", w.checks.calls, nil)
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 10, actions: advanceWeight(10)},
	})
	equalLines(t, "checks on the first weighted step", w.checks.calls, []string{"analyze"})
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 20, actions: advanceWeight(20)},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 30, actions: advanceWeight(30)},
		{phase: flaggerv1.CanaryPhasePromoting, weight: 30, actions: promoteActions()},
	})
	equalLines(t, "checks", w.checks.calls, []string{
		"analyze", "analyze", "confirm-traffic-increase", "analyze", "confirm-traffic-increase", "analyze",
	})
}

// A failing metric on the mirrored step counts.
func TestMirrorStepRunsMetrics(t *testing.T) {
	cd := newCanary(withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Mirror = true; a.StepWeight = 10 }),
		withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0)))
	obs := observed(cd.Status)
	obs.Routes = Routes{Primary: 100, Mirrored: true}
	f := &fakeChecks{analyze: analyzeFails(metricErr)}
	d := next(t, cd, obs, istio(), t0, f)
	equalLines(t, "actions", render(d.Actions), []string{"Warning: " + metricErr})
	if d.Status.FailedChecks != 1 || d.Status.CanaryWeight != 0 {
		t.Errorf("status %+v", withoutConditions(d.Status))
	}
}

// A release that fails its metrics is rolled back; the failed revision stays put and a newer one
// starts over.
func TestRollbackWalk(t *testing.T) {
	w := newWorld(t, newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))))
	w.checks.analyze = func(n int) error {
		if n >= 2 {
			return fmt.Errorf("%s", metricErr)
		}
		return nil
	}
	ds := w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 5, actions: concat([]string{startingAnalysis}, advanceWeight(5))},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 10, actions: advanceWeight(10)},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 10, actions: []string{"Warning: " + metricErr}},
		{phase: flaggerv1.CanaryPhaseFailed, actions: concat([]string{
			"Warning: " + metricErr,
			"Warning: Rolling back podinfo.test failed checks threshold reached 2",
			"Alert error: Failed checks threshold reached 2",
		}, rollbackActions())},
		{phase: flaggerv1.CanaryPhaseFailed},
		{phase: flaggerv1.CanaryPhaseFailed},
	})
	if ds[3].Outcome != OutcomeFailed || ds[2].Status.FailedChecks != 1 || ds[3].Status.FailedChecks != 2 {
		t.Errorf("outcome %q, failedChecks %d then %d", ds[3].Outcome, ds[2].Status.FailedChecks, ds[3].Status.FailedChecks)
	}
	if w.obs.Routes != (Routes{Primary: 100}) || w.obs.Canary.Ready {
		t.Errorf("after the rollback: routes %+v, canary %+v", w.obs.Routes, w.obs.Canary)
	}
	w.checks.analyze = nil
	w.obs.Revision = "rev3"
	ds = w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, actions: rolloutActions()},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 5, actions: concat([]string{startingAnalysis}, advanceWeight(5))},
	})
	if ds[0].Status.FailedChecks != 0 || ds[0].Status.LastAppliedSpec != "rev3" {
		t.Errorf("new rollout: %+v", withoutConditions(ds[0].Status))
	}
}

// ---------------------------------------------------------------------------------------------
// confirm-promotion

func TestConfirmPromotionWalk(t *testing.T) {
	w := newWorld(t, newCanary(withHooks(hook("promote", flaggerv1.ConfirmPromotionHook)),
		withStatus(status(flaggerv1.CanaryPhaseProgressing, 45, 0, 0))))
	w.checks.failHook("promote", "403 Forbidden")
	halt := "Warning: Halt podinfo.test advancement waiting for promotion approval promote"
	ds := w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 50, actions: advanceWeight(50)},
		{phase: flaggerv1.CanaryPhaseWaitingPromotion, weight: 50, actions: []string{halt, "Alert warn: Canary promotion is waiting for approval."}},
		{phase: flaggerv1.CanaryPhaseWaitingPromotion, weight: 50, actions: []string{halt}},
	})
	if got, want := ds[2].Status.LastTransitionTime.Time, ds[1].Status.LastTransitionTime.Time; !got.Equal(want) {
		t.Errorf("LastTransitionTime moved while waiting: %v -> %v", want, got)
	}
	cond := flaggerv1.FindCanaryCondition(ds[1].Status.Conditions, flaggerv1.PromotedCondition)
	if cond == nil || cond.Status != metav1.ConditionUnknown || cond.Message != "Waiting for approval." {
		t.Errorf("Promoted condition in WaitingPromotion: %+v", cond)
	}

	// Metrics still run while waiting and their failures count.
	w.checks.analyze = func(n int) error {
		if n == 4 {
			return fmt.Errorf("%s", metricErr)
		}
		return nil
	}
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseWaitingPromotion, weight: 50, actions: []string{"Warning: " + metricErr}},
	})
	if w.cd.Status.FailedChecks != 1 {
		t.Fatalf("failedChecks = %d, want 1", w.cd.Status.FailedChecks)
	}
	w.checks.passHook("promote")
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhasePromoting, weight: 50, actions: concat([]string{"Event: Confirm-promotion check promote passed"}, promoteActions())},
	})
	equalLines(t, "checks", w.checks.calls, []string{
		"analyze", "analyze", "confirm-promotion", "analyze", "confirm-promotion", "analyze", "analyze", "confirm-promotion",
	})
}

func TestConfirmPromotion(t *testing.T) {
	gate := withHooks(hook("promote", flaggerv1.ConfirmPromotionHook))
	closed := fakeChecks{fail: map[string]string{"promote": "403 Forbidden"}}
	halt := "Warning: Halt podinfo.test advancement waiting for promotion approval promote"
	ab := func(a *flaggerv1.CanaryAnalysis) { iterationsOnly(10)(a); a.Match = abMatch }

	runCases(t, []tcase{
		{
			name:   "muted gate: no alert",
			canary: newCanary(withHooks(mutedHook("promote", flaggerv1.ConfirmPromotionHook)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 50, 0, 0))),
			checks: closed,
			phase:  flaggerv1.CanaryPhaseWaitingPromotion, weight: 50,
			actions: []string{halt},
			calls:   []string{"analyze", "confirm-promotion"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:   "failing metrics in WaitingPromotion reach the threshold: rollback",
			canary: newCanary(gate, withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 1))),
			checks: fakeChecks{fail: closed.fail, analyze: analyzeFails(metricErr)},
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 2,
			actions: concat([]string{"Warning: " + metricErr, "Warning: Rolling back podinfo.test failed checks threshold reached 2", "Alert error: Failed checks threshold reached 2"}, rollbackActions()),
			calls:   []string{"analyze"},
			ticked:  true,
			outcome: OutcomeFailed,
		},
		{
			name:   "A/B: iterations kept in WaitingPromotion",
			canary: newCanary(gate, withAnalysis(ab), withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 10, 0))),
			checks: closed,
			phase:  flaggerv1.CanaryPhaseWaitingPromotion, iterations: 10,
			actions: []string{halt, "Alert warn: Canary promotion is waiting for approval."},
			calls:   []string{"analyze", "confirm-promotion"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:   "A/B: gate opens in WaitingPromotion",
			canary: newCanary(gate, withAnalysis(ab), withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 0, 10, 0))),
			phase:  flaggerv1.CanaryPhasePromoting, iterations: 10,
			actions: concat([]string{"Event: Confirm-promotion check promote passed"}, []string{copyingSpec}),
			calls:   []string{"analyze", "confirm-promotion"},
			ticked:  true,
			requeue: continueSoon,
		},
		{
			name:   "tick not due in WaitingPromotion",
			canary: newCanary(gate, withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 0))),
			obs:    func(o *Observation) { o.LastTick = t0.Add(-50 * time.Second) },
			checks: closed,
			phase:  flaggerv1.CanaryPhaseWaitingPromotion, weight: 50,
			requeue: 10 * time.Second,
			check:   unchangedStatus,
		},
	})
}

// ---------------------------------------------------------------------------------------------
// A/B testing

func TestABTestingWalk(t *testing.T) {
	w := newWorld(t, newCanary(
		withAnalysis(iterationsOnly(10)),
		withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Match = abMatch }),
		withHooks(hook("load", flaggerv1.RolloutHook)),
		withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))))
	steps := []stepWant{{phase: flaggerv1.CanaryPhaseProgressing, actions: rolloutActions()}}
	for i := 1; i <= 10; i++ {
		a := []string{"SetRoutes 0/100", advanceIteration(i, 10)}
		if i == 1 {
			a = concat([]string{startingAnalysis}, a)
		}
		steps = append(steps, stepWant{phase: flaggerv1.CanaryPhaseProgressing, iterations: i, actions: a})
	}
	steps = append(steps,
		stepWant{phase: flaggerv1.CanaryPhasePromoting, iterations: 10, actions: promoteActions()},
		stepWant{phase: flaggerv1.CanaryPhaseFinalising, actions: []string{"SetRoutes 100/0"}, inOrder: true},
		stepWant{phase: flaggerv1.CanaryPhaseSucceeded, actions: finaliseActions()},
	)
	w.walk(steps)
	if w.checks.analyzed != 10 {
		t.Errorf("Analyze ran %d times, want 10", w.checks.analyzed)
	}
}

// ---------------------------------------------------------------------------------------------
// Blue/green

func TestBlueGreenWalks(t *testing.T) {
	routeAll := []string{"Event: Routing all traffic to canary", "SetRoutes 0/100"}
	stopMirror := []string{"Event: Stop traffic mirroring and route all traffic to canary", "SetRoutes 0/100"}
	k8sWarning := "Warning: Kubernetes provider supports blue/green only: running 10 iterations for podinfo.test"

	iterationSteps := func(n int, first ...string) []stepWant {
		var steps []stepWant
		for i := 1; i <= n; i++ {
			a := []string{advanceIteration(i, n)}
			if i == 1 {
				a = concat([]string{startingAnalysis}, first, a)
			}
			steps = append(steps, stepWant{phase: flaggerv1.CanaryPhaseProgressing, iterations: i, actions: a})
		}
		return steps
	}
	promotion := func(iterations int) []stepWant {
		return []stepWant{
			{phase: flaggerv1.CanaryPhasePromoting, iterations: iterations, actions: promoteActions()},
			{phase: flaggerv1.CanaryPhaseFinalising, actions: []string{"SetRoutes 100/0"}, inOrder: true},
			{phase: flaggerv1.CanaryPhaseSucceeded, actions: finaliseActions()},
		}
	}
	cases := []struct {
		name     string
		provider string
		mod      func(a *flaggerv1.CanaryAnalysis)
		steps    []stepWant
	}{
		{
			name:     "istio: iterations, route all traffic to the canary, promote",
			provider: "istio",
			mod:      iterationsOnly(3),
			steps: concat2(iterationSteps(3),
				[]stepWant{{phase: flaggerv1.CanaryPhaseProgressing, iterations: 4, actions: routeAll, inOrder: true}},
				promotion(4)),
		},
		{
			name:     "istio with mirroring",
			provider: "istio",
			mod:      func(a *flaggerv1.CanaryAnalysis) { iterationsOnly(3)(a); a.Mirror = true },
			steps: concat2(iterationSteps(3, "SetRoutes 100/0 mirrored"),
				[]stepWant{{phase: flaggerv1.CanaryPhaseProgressing, iterations: 4, actions: stopMirror, inOrder: true}},
				promotion(4)),
		},
		{
			name:     "kubernetes: weighted spec forced to 10 iterations, match ignored, no route-to-canary step",
			provider: "kubernetes",
			mod:      func(a *flaggerv1.CanaryAnalysis) { a.Match = abMatch },
			steps:    concat2(iterationSteps(10, k8sWarning), promotion(10)),
		},
		{
			name:     "kubernetes: iterations, match and mirror ignored",
			provider: "kubernetes",
			mod:      func(a *flaggerv1.CanaryAnalysis) { iterationsOnly(3)(a); a.Match = abMatch; a.Mirror = true },
			steps:    concat2(iterationSteps(3), promotion(3)),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, newCanary(withAnalysis(tc.mod), withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))))
			w.settings.Provider = tc.provider
			w.walk(tc.steps)
		})
	}
}

func concat2(parts ...[]stepWant) []stepWant {
	var out []stepWant
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// The provider comes from Settings (spec.provider or the controller default), and the Kubernetes
// warning is given once, on the first iteration.
func TestKubernetesWarningOnce(t *testing.T) {
	cd := newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 1, 0)))
	d := next(t, cd, observed(cd.Status), Settings{Provider: ProviderKubernetes}, t0, &fakeChecks{})
	equalLines(t, "actions", render(d.Actions), []string{advanceIteration(2, 10)})
}

// ---------------------------------------------------------------------------------------------
// New revision during the analysis

func TestNewRevisionRestartsAnalysis(t *testing.T) {
	hooks := withHooks(hook("rb", flaggerv1.RollbackHook), hook("load", flaggerv1.RolloutHook))
	restart := []string{"SetRoutes 100/0", restartEvent}
	rev3 := func(o *Observation) { o.Revision = "rev3" }
	check := allOf(specs("rev3", "rev1"), tracked(cfgA),
		condition(flaggerv1.PromotedCondition, metav1.ConditionUnknown, "Progressing", "New revision detected, progressing canary analysis."))

	runCases(t, []tcase{
		{
			name:    "Progressing",
			canary:  newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseProgressing, 20, 0, 1))),
			obs:     rev3,
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: restart,
			requeue: continueSoon,
			check:   allOf(check, transitionAt(t0)),
		},
		{
			name:    "WaitingPromotion",
			canary:  newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 1))),
			obs:     rev3,
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: restart,
			requeue: continueSoon,
			check:   check,
		},
		{
			name:    "A/B in WaitingPromotion: iterations reset",
			canary:  newCanary(hooks, withAnalysis(iterationsOnly(10)), withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Match = abMatch }), withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 0, 10, 0))),
			obs:     rev3,
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: restart,
			requeue: continueSoon,
			check:   check,
		},
		{
			name:    "new revision while the canary is not ready",
			canary:  newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseProgressing, 20, 0, 0))),
			obs:     func(o *Observation) { rev3(o); o.Canary = Readiness{Failed: true, Message: deadlineMsg} },
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: restart,
			requeue: continueSoon,
			check:   check,
		},
		{
			name:    "config change during the analysis",
			canary:  newCanary(hooks, withStatus(status(flaggerv1.CanaryPhaseProgressing, 20, 0, 0))),
			obs:     func(o *Observation) { o.Configs = cfgB },
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: restart,
			requeue: continueSoon,
			check:   allOf(specs("rev2", "rev1"), tracked(cfgB)),
		},
	})
}

// After a restart the analysis starts over with the pre-rollout step.
func TestNewRevisionRestartWalk(t *testing.T) {
	w := newWorld(t, newCanary(withHooks(hook("pre", flaggerv1.PreRolloutHook)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 20, 0, 1))))
	w.obs.Routes = Routes{Primary: 80, Canary: 20}
	w.obs.Revision = "rev3"
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, actions: []string{"SetRoutes 100/0", restartEvent}},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 5, actions: concat([]string{startingAnalysis, "Event: Pre-rollout check pre passed"}, advanceWeight(5))},
	})
}

// ---------------------------------------------------------------------------------------------
// Promoting and Finalising

func TestPromoting(t *testing.T) {
	promoting := func(weight int, since time.Duration) flaggerv1.CanaryStatus {
		st := status(flaggerv1.CanaryPhasePromoting, weight, 0, 0)
		st.LastTransitionTime = metav1.NewTime(t0.Add(-since))
		return st
	}
	stepped := withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.StepWeightPromotion = 20 })
	failed := []string{
		"Warning: Promotion failed! podinfo-primary.test not ready: " + deadlineMsg,
		"Alert error: Promotion failed, primary not ready",
		"SetRoutes 0/100",
		"PostRollout Failed",
	}

	runCases(t, []tcase{
		{
			name:   "primary not promoted yet (cache lag or a crash before the copy): copy again, idempotent, and wait",
			canary: newCanary(withStatus(promoting(50, 30*time.Second))),
			obs:    func(o *Observation) { o.PrimaryPromoted = false },
			phase:  flaggerv1.CanaryPhasePromoting, weight: 50,
			actions: []string{"Promote"},
			requeue: interval - 30*time.Second, // the rest of the rollout's quiet interval
			check: allOf(unchangedStatus,
				condition(flaggerv1.PromotedCondition, metav1.ConditionUnknown, "Promoting", "Canary analysis completed, starting primary rolling update.")),
		},
		{
			name:   "primary rolling out within an interval of the promotion: quiet wait, looked at again when the interval is over",
			canary: newCanary(withStatus(promoting(50, 30*time.Second))),
			obs:    func(o *Observation) { o.Primary = Readiness{Message: primaryWaitMsg} },
			phase:  flaggerv1.CanaryPhasePromoting, weight: 50,
			requeue: interval - 30*time.Second,
		},
		{
			name:   "primary still rolling out an interval after the promotion: wait event",
			canary: newCanary(withStatus(promoting(50, interval+time.Second))),
			obs:    func(o *Observation) { o.Primary = Readiness{Message: primaryWaitMsg} },
			phase:  flaggerv1.CanaryPhasePromoting, weight: 50,
			actions: []string{"Warning: " + primaryWaitMsg},
			requeue: interval,
		},
		{
			name:    "primary ready: all traffic to the primary, Finalising",
			canary:  newCanary(withStatus(promoting(50, 30*time.Second))),
			phase:   flaggerv1.CanaryPhaseFinalising,
			actions: []string{"Event: Routing all traffic to primary", "SetRoutes 100/0"},
			requeue: continueSoon,
			check: allOf(transitionAt(t0),
				condition(flaggerv1.PromotedCondition, metav1.ConditionUnknown, "Finalising", "Canary analysis completed, routing all traffic to primary.")),
		},
		{
			name:   "primary failed: traffic stays on the canary, Failed",
			canary: newCanary(withStatus(promoting(50, 30*time.Second))),
			obs:    func(o *Observation) { o.Primary = Readiness{Failed: true, Message: deadlineMsg} },
			phase:  flaggerv1.CanaryPhaseFailed, weight: 100,
			actions: failed,
			outcome: OutcomeFailed,
			check:   allOf(specs("rev2", "rev1"), condition(flaggerv1.ReadyCondition, metav1.ConditionFalse, "Failed", "Canary analysis failed, Deployment scaled to zero.")),
		},
		{
			name:   "primary failed before the cache saw the promotion",
			canary: newCanary(withStatus(promoting(50, 30*time.Second))),
			obs: func(o *Observation) {
				o.PrimaryPromoted = false
				o.Primary = Readiness{Failed: true, Message: deadlineMsg}
			},
			phase: flaggerv1.CanaryPhaseFailed, weight: 100,
			actions: failed,
			outcome: OutcomeFailed,
		},
		{
			name:   "primary not ready past the deadline: Failed",
			canary: newCanary(withStatus(promoting(50, 601*time.Second))),
			obs:    func(o *Observation) { o.Primary = Readiness{Message: deadlineMsg} },
			phase:  flaggerv1.CanaryPhaseFailed, weight: 100,
			actions: failed,
			outcome: OutcomeFailed,
		},
		{
			name:   "stepWeightPromotion: primary weight up one step",
			canary: newCanary(stepped, withStatus(promoting(50, 30*time.Second))),
			phase:  flaggerv1.CanaryPhasePromoting, weight: 30,
			actions: []string{"SetRoutes 70/30", "Event: Advance podinfo.test primary weight 70"},
			ticked:  true,
			requeue: interval,
		},
		{
			name:   "stepWeightPromotion, tick not due",
			canary: newCanary(stepped, withStatus(promoting(30, 30*time.Second))),
			obs:    func(o *Observation) { o.LastTick = t0.Add(-25 * time.Second) },
			phase:  flaggerv1.CanaryPhasePromoting, weight: 30,
			requeue: 35 * time.Second,
			check:   unchangedStatus,
		},
		{
			name:    "stepWeightPromotion, last step: Finalising",
			canary:  newCanary(stepped, withStatus(promoting(10, 30*time.Second))),
			phase:   flaggerv1.CanaryPhaseFinalising,
			actions: []string{"SetRoutes 100/0", "Event: Advance podinfo.test primary weight 100"},
			ticked:  true,
			requeue: continueSoon,
		},
		{
			name:     "stepWeightPromotion with the kubernetes provider: one step",
			canary:   newCanary(stepped, withStatus(promoting(0, 30*time.Second))),
			settings: func(s *Settings) { s.Provider = ProviderKubernetes },
			phase:    flaggerv1.CanaryPhaseFinalising,
			actions:  []string{"SetRoutes 100/0"},
			requeue:  continueSoon,
		},
		{
			name:     "stepWeightPromotion with the kubernetes provider, weight left in the status: one step",
			canary:   newCanary(stepped, withStatus(promoting(40, 30*time.Second))),
			settings: func(s *Settings) { s.Provider = ProviderKubernetes },
			phase:    flaggerv1.CanaryPhaseFinalising,
			actions:  []string{"SetRoutes 100/0"},
			requeue:  continueSoon,
		},
		{
			name:    "stepWeightPromotion for A/B (no canary weight): one step",
			canary:  newCanary(stepped, withAnalysis(iterationsOnly(5)), withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.Match = abMatch }), withStatus(promoting(0, 30*time.Second))),
			phase:   flaggerv1.CanaryPhaseFinalising,
			actions: []string{"Event: Routing all traffic to primary", "SetRoutes 100/0"},
			requeue: continueSoon,
		},
	})
}

func TestStepWeightPromotionWalk(t *testing.T) {
	w := newWorld(t, newCanary(withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.StepWeightPromotion = 20 }),
		withStatus(status(flaggerv1.CanaryPhaseProgressing, 50, 0, 0))))
	w.obs.LastTick = t0
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhasePromoting, weight: 50, actions: promoteActions()},
		{phase: flaggerv1.CanaryPhasePromoting, weight: 30, actions: []string{"SetRoutes 70/30", "Event: Advance podinfo.test primary weight 70"}},
		{phase: flaggerv1.CanaryPhasePromoting, weight: 10, actions: []string{"SetRoutes 90/10", "Event: Advance podinfo.test primary weight 90"}},
		{phase: flaggerv1.CanaryPhaseFinalising, actions: []string{"SetRoutes 100/0", "Event: Advance podinfo.test primary weight 100"}},
		{phase: flaggerv1.CanaryPhaseSucceeded, actions: finaliseActions()},
	})
}

// A primary that is not ready during the stepped shift holds the weights.
func TestStepWeightPromotionWaitsForPrimary(t *testing.T) {
	cd := newCanary(withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.StepWeightPromotion = 20 }),
		withStatus(status(flaggerv1.CanaryPhasePromoting, 30, 0, 0)))
	obs := observed(cd.Status)
	obs.Primary = Readiness{Message: primaryWaitMsg}
	d := next(t, cd, obs, istio(), t0, &fakeChecks{})
	equalLines(t, "actions", render(d.Actions), []string{"Warning: " + primaryWaitMsg})
	if d.Status.CanaryWeight != 30 || d.Status.Phase != flaggerv1.CanaryPhasePromoting {
		t.Errorf("status %+v", withoutConditions(d.Status))
	}
}

func TestFinalising(t *testing.T) {
	runCases(t, []tcase{{
		name:   "Finalising: scale down, Succeeded",
		canary: newCanary(withHooks(hook("rb", flaggerv1.RollbackHook)), withStatus(status(flaggerv1.CanaryPhaseFinalising, 0, 0, 1))),
		phase:  flaggerv1.CanaryPhaseSucceeded, failedChecks: 1,
		actions: finaliseActions(),
		outcome: OutcomeCompleted,
		check: allOf(specs("rev2", "rev2"), transitionAt(t0),
			condition(flaggerv1.PromotedCondition, metav1.ConditionTrue, "Succeeded", "Canary analysis completed successfully, promotion finished."),
			condition(flaggerv1.ReadyCondition, metav1.ConditionTrue, "Succeeded", "Canary analysis completed successfully, promotion finished."),
			noCondition(flaggerv1.ReconcilingCondition), noCondition(flaggerv1.StalledCondition)),
	}})
}

// ---------------------------------------------------------------------------------------------
// skipAnalysis

func TestSkipAnalysis(t *testing.T) {
	skip := withSpec(func(s *flaggerv1.CanarySpec) { s.SkipAnalysis = true })
	hooks := withHooks(hook("rb", flaggerv1.RollbackHook), hook("load", flaggerv1.RolloutHook))
	skipped := []string{
		"Warning: Skipping analysis for podinfo.test",
		"SetRoutes 100/0",
		copyingSpec,
		"Promote",
		"ScaleDown",
		"PostRollout Succeeded",
		"Event: Promotion completed! Canary analysis was skipped for podinfo.test",
		"Alert info: Canary analysis was skipped, promotion finished.",
	}
	late := status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0)
	late.LastTransitionTime = metav1.NewTime(t0.Add(-601 * time.Second))

	runCases(t, []tcase{
		{
			name:    "canary ready: promoted at once",
			canary:  newCanary(skip, hooks, withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))),
			phase:   flaggerv1.CanaryPhaseSucceeded,
			actions: skipped,
			outcome: OutcomeSkipped,
			check:   allOf(specs("rev2", "rev2"), condition(flaggerv1.PromotedCondition, metav1.ConditionTrue, "Succeeded", "Canary analysis completed successfully, promotion finished.")),
		},
		{
			name:    "no analysis at all: skipped",
			canary:  newCanary(withSpec(func(s *flaggerv1.CanarySpec) { s.Analysis = nil }), withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))),
			phase:   flaggerv1.CanaryPhaseSucceeded,
			actions: skipped,
			outcome: OutcomeSkipped,
		},
		{
			name:    "WaitingPromotion with skipAnalysis set meanwhile",
			canary:  newCanary(skip, withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 0))),
			phase:   flaggerv1.CanaryPhaseSucceeded,
			actions: skipped,
			outcome: OutcomeSkipped,
		},
		{
			name:    "canary not ready: wait",
			canary:  newCanary(skip, withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))),
			obs:     func(o *Observation) { o.Canary = Readiness{Message: canaryWaitMsg} },
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: []string{"Warning: " + canaryWaitMsg},
			requeue: interval,
		},
		{
			name:   "canary never ready: rollback at the deadline",
			canary: newCanary(skip, withStatus(late)),
			obs:    func(o *Observation) { o.Canary = Readiness{Message: canaryWaitMsg}; o.LastTick = time.Time{} },
			phase:  flaggerv1.CanaryPhaseFailed,
			actions: concat([]string{
				"Warning: Rolling back podinfo.test progress deadline exceeded " + canaryWaitMsg,
				"Alert error: Progress deadline exceeded " + canaryWaitMsg,
			}, rollbackActions()),
			outcome: OutcomeFailed,
		},
	})
}

func TestSkipAnalysisWalk(t *testing.T) {
	w := newWorld(t, newCanary(withSpec(func(s *flaggerv1.CanarySpec) { s.SkipAnalysis = true }),
		withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))))
	w.canaryComesUp = false
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, actions: rolloutActions()},
		{phase: flaggerv1.CanaryPhaseProgressing, actions: []string{"Warning: " + canaryWaitMsg}},
	})
	w.obs.Canary = Readiness{Ready: true}
	ds := w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseSucceeded, actions: []string{
			"Warning: Skipping analysis for podinfo.test", "SetRoutes 100/0", copyingSpec, "Promote", "ScaleDown",
			"PostRollout Succeeded", "Event: Promotion completed! Canary analysis was skipped for podinfo.test",
			"Alert info: Canary analysis was skipped, promotion finished.",
		}},
		{phase: flaggerv1.CanaryPhaseSucceeded},
	})
	if ds[0].Outcome != OutcomeSkipped || ds[0].Status.LastPromotedSpec != "rev2" {
		t.Errorf("outcome %q lastPromotedSpec %q", ds[0].Outcome, ds[0].Status.LastPromotedSpec)
	}
}

// ---------------------------------------------------------------------------------------------
// suspend

func TestSuspend(t *testing.T) {
	suspend := withSpec(func(s *flaggerv1.CanarySpec) { s.Suspend = true })
	hooks := withHooks(hook("rb", flaggerv1.RollbackHook), hook("approval", flaggerv1.ConfirmRolloutHook), hook("load", flaggerv1.RolloutHook))
	cases := []struct {
		name string
		st   flaggerv1.CanaryStatus
		obs  func(o *Observation)
	}{
		{"new canary", flaggerv1.CanaryStatus{}, func(o *Observation) { o.LastTick = time.Time{} }},
		{"Initializing with a ready primary", flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseInitializing}, nil},
		{"Initialized with a new revision", idleStatus(flaggerv1.CanaryPhaseInitialized), nil},
		{"Failed with a new revision", status(flaggerv1.CanaryPhaseFailed, 0, 0, 2), func(o *Observation) { o.Revision = "rev3" }},
		{"Waiting, tick due", status(flaggerv1.CanaryPhaseWaiting, 0, 0, 0), nil},
		{"Progressing, tick due", status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), nil},
		{"Progressing, canary failed", status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), func(o *Observation) { o.Canary = Readiness{Failed: true} }},
		{"Progressing, new revision", status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), func(o *Observation) { o.Revision = "rev3" }},
		{"WaitingPromotion", status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 0), nil},
		{"Promoting", status(flaggerv1.CanaryPhasePromoting, 50, 0, 0), nil},
		{"Finalising", status(flaggerv1.CanaryPhaseFinalising, 0, 0, 0), nil},
	}
	var tcs []tcase
	for _, c := range cases {
		// The first decision of a suspended spec generation says so, once, with Flagger's words.
		tcs = append(tcs, tcase{
			name:   c.name + ", suspended in this generation",
			canary: newCanary(suspend, hooks, withStatus(c.st)),
			obs:    c.obs,
			checks: fakeChecks{rollback: map[string]bool{"rb": true}},
			phase:  c.st.Phase, weight: c.st.CanaryWeight, failedChecks: c.st.FailedChecks,
			actions: []string{"Event: skipping canary run as object is suspended"},
			check:   unchangedStatus,
		})
		// The next ones, which find the generation observed, decide and say nothing.
		observed := c.st
		observed.ObservedGeneration = 3
		tcs = append(tcs, tcase{
			name:   c.name + ", suspension already observed",
			canary: newCanary(suspend, hooks, withStatus(observed)),
			obs:    c.obs,
			checks: fakeChecks{rollback: map[string]bool{"rb": true}},
			phase:  c.st.Phase, weight: c.st.CanaryWeight, failedChecks: c.st.FailedChecks,
			check: unchangedStatus,
		})
	}
	runCases(t, tcs)
}

// Suspending is announced once: the decision's status records the generation it saw, and the
// decisions that follow from it stay quiet until the spec changes again.
func TestSuspendIsAnnouncedOncePerGeneration(t *testing.T) {
	w := newWorld(t, newCanary(withSpec(func(s *flaggerv1.CanarySpec) { s.Suspend = true }),
		withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))))
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 10, actions: []string{"Event: skipping canary run as object is suspended"}},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 10},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 10},
	})
	w.cd.Generation++ // another change to the spec while suspended
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 10, actions: []string{"Event: skipping canary run as object is suspended"}},
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 10},
	})
}

// ---------------------------------------------------------------------------------------------
// Status bookkeeping: lastTransitionTime, observedGeneration, no mutation of the input

func TestLastTransitionTime(t *testing.T) {
	before := t0.Add(-2 * time.Minute)
	cases := []struct {
		name    string
		cd      *flaggerv1.Canary
		obs     func(o *Observation)
		checks  fakeChecks
		changed bool
	}{
		{"tick not due", newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))),
			func(o *Observation) { o.LastTick = t0.Add(-time.Second) }, fakeChecks{}, false},
		{"canary not ready", newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))),
			func(o *Observation) { o.Canary = Readiness{Message: canaryWaitMsg} }, fakeChecks{}, false},
		{"weight advanced", newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))), nil, fakeChecks{}, true},
		{"iteration advanced", newCanary(withAnalysis(iterationsOnly(5)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 2, 0))), nil, fakeChecks{}, true},
		{"failed check", newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))), nil,
			fakeChecks{analyze: analyzeFails(metricErr)}, true},
		{"traffic increase halted", newCanary(withHooks(hook("gate", flaggerv1.ConfirmTrafficIncreaseHook)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))), nil,
			fakeChecks{fail: map[string]string{"gate": "403"}}, false},
		{"promotion gate still closed", newCanary(withHooks(hook("promote", flaggerv1.ConfirmPromotionHook)), withStatus(status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 0))), nil,
			fakeChecks{fail: map[string]string{"promote": "403"}}, false},
		{"phase change", newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 50, 0, 0))), nil, fakeChecks{}, true},
		{"Failed, target reverted (only lastAppliedSpec changes)", newCanary(withStatus(status(flaggerv1.CanaryPhaseFailed, 0, 0, 0))),
			func(o *Observation) { o.Revision = "rev1" }, fakeChecks{}, false},
		{"idle", newCanary(withStatus(status(flaggerv1.CanaryPhaseSucceeded, 0, 0, 0))), nil, fakeChecks{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obs := observed(tc.cd.Status)
			if tc.obs != nil {
				tc.obs(&obs)
			}
			f := tc.checks
			d := next(t, tc.cd, obs, istio(), t0, &f)
			want := before
			if tc.changed {
				want = t0
			}
			if got := d.Status.LastTransitionTime.Time; !got.Equal(want) {
				t.Errorf("LastTransitionTime = %v, want %v (actions %v)", got, want, render(d.Actions))
			}
			// Conditions keep their own transition time while their status holds.
			for _, c := range d.Status.Conditions {
				if c.ObservedGeneration != tc.cd.Generation {
					t.Errorf("condition %s observedGeneration %d", c.Type, c.ObservedGeneration)
				}
			}
		})
	}
}

// Conditions only move their lastTransitionTime when their status changes.
func TestConditionTransitionTimesAcrossTicks(t *testing.T) {
	w := newWorld(t, newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))))
	d1 := w.tick()
	d2 := w.tick()
	c1 := flaggerv1.FindCanaryCondition(d1.Status.Conditions, flaggerv1.PromotedCondition)
	c2 := flaggerv1.FindCanaryCondition(d2.Status.Conditions, flaggerv1.PromotedCondition)
	if c1 == nil || c2 == nil || !c1.LastTransitionTime.Equal(&c2.LastTransitionTime) {
		t.Errorf("Promoted condition moved while Unknown: %+v -> %+v", c1, c2)
	}
	if !d2.Status.LastTransitionTime.Time.Equal(w.now) {
		t.Errorf("status lastTransitionTime %v, want %v (weight changed)", d2.Status.LastTransitionTime, w.now)
	}
}

func TestObservedGeneration(t *testing.T) {
	cd := newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded)))
	cd.Generation = 42
	obs := observed(cd.Status)
	obs.Revision = "rev1"
	d := next(t, cd, obs, istio(), t0, &fakeChecks{})
	if d.Status.ObservedGeneration != 42 {
		t.Errorf("observedGeneration %d, want 42", d.Status.ObservedGeneration)
	}
	for _, c := range d.Status.Conditions {
		if c.ObservedGeneration != 42 {
			t.Errorf("condition %s observedGeneration %d, want 42", c.Type, c.ObservedGeneration)
		}
	}
}

// The decision shares no memory with the input: changing it leaves the canary alone.
func TestDecisionDoesNotAliasInput(t *testing.T) {
	scenarios := []struct {
		name string
		st   flaggerv1.CanaryStatus
		obs  func(o *Observation)
	}{
		{"idle", idleStatus(flaggerv1.CanaryPhaseSucceeded), func(o *Observation) { o.Revision = "rev1" }},
		{"rollout", idleStatus(flaggerv1.CanaryPhaseSucceeded), nil},
		{"tick", status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), nil},
		{"restart", status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), func(o *Observation) { o.Configs = cfgB }},
		{"initialize", flaggerv1.CanaryStatus{}, nil},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			cd := newCanary(withStatus(sc.st))
			// Give the input conditions so that aliasing of the slice would show.
			SetConditions(&cd.Status, cd, "", "", t0.Add(-time.Hour))
			obs := observed(cd.Status)
			if sc.obs != nil {
				sc.obs(&obs)
			}
			snapshot := cd.DeepCopy()
			obsConfigs := maps.Clone(obs.Configs)
			d := Next(t.Context(), Input{Canary: cd, Observed: obs, Settings: istio(), Now: t0}, &fakeChecks{})
			if !reflect.DeepEqual(snapshot, cd) {
				t.Fatalf("Next mutated the canary")
			}
			if d.Status.TrackedConfigs != nil {
				(*d.Status.TrackedConfigs)["configmap/x"] = "mutated"
			}
			for i := range d.Status.Conditions {
				d.Status.Conditions[i].Message = "mutated"
			}
			if !reflect.DeepEqual(snapshot, cd) {
				t.Errorf("the decision's status aliases the input canary")
			}
			if !maps.Equal(obsConfigs, obs.Configs) {
				t.Errorf("the decision's status aliases the observed configs")
			}
		})
	}
}

// ---------------------------------------------------------------------------------------------
// Regressions: behaviour the first version of the machine got wrong.

// Wait events must be rate limited to one per interval, and a canary stalled past its deadline must
// not be requeued every second.
func TestWaitingIsRateLimitedAndNeverHot(t *testing.T) {

	t.Run("events", func(t *testing.T) {
		w := newWorld(t, newCanary())
		w.obs.Revision = "rev1"
		w.obs.Primary = Readiness{Message: primaryWaitMsg}
		events := 0
		for i := 0; i < 10; i++ { // ten reconciles within one interval (watch events, short requeues)
			d := w.step()
			events += len(d.Actions)
			w.now = w.now.Add(5 * time.Second)
		}
		if events != 1 {
			t.Errorf("%d wait events in 50s, want 1 per interval", events)
		}
	})
	t.Run("first pass", func(t *testing.T) {
		cd := newCanary()
		obs := observed(cd.Status)
		obs.Primary = Readiness{Message: primaryWaitMsg}
		d := next(t, cd, obs, istio(), t0, &fakeChecks{})
		if d.RequeueAfter != interval {
			t.Errorf("RequeueAfter = %v on the first pass, want %v", d.RequeueAfter, interval)
		}
	})
	t.Run("stalled", func(t *testing.T) {
		cd := newCanary(withStatus(flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseInitializing,
			LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))}))
		obs := observed(cd.Status)
		obs.Primary = Readiness{Message: primaryWaitMsg}
		d := next(t, cd, obs, istio(), t0, &fakeChecks{})
		if d.RequeueAfter < interval {
			t.Errorf("RequeueAfter = %v for a stalled canary, want at least %v", d.RequeueAfter, interval)
		}
	})
}

// A Waiting canary between ticks must ask to be called at the next tick.
func TestWaitingRequeuesUntilTheNextTick(t *testing.T) {
	cd := newCanary(withHooks(hook("approval", flaggerv1.ConfirmRolloutHook)), withStatus(status(flaggerv1.CanaryPhaseWaiting, 0, 0, 0)))
	obs := observed(cd.Status)
	obs.LastTick = t0.Add(-20 * time.Second)
	d := next(t, cd, obs, istio(), t0, &fakeChecks{fail: map[string]string{"approval": "403"}})
	if d.RequeueAfter != 40*time.Second {
		t.Errorf("RequeueAfter = %v, want 40s (the next tick)", d.RequeueAfter)
	}
}

// Calling the confirm-rollout gate is a tick: entering Waiting does not make the next reconcile,
// seconds later, call the gate again.
func TestGateCheckOnEnteringWaitingIsATick(t *testing.T) {
	w := newWorld(t, newCanary(withHooks(hook("approval", flaggerv1.ConfirmRolloutHook)), withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))))
	w.checks.failHook("approval", "403")
	if d := w.step(); d.Status.Phase != flaggerv1.CanaryPhaseWaiting {
		t.Fatalf("phase %s, want Waiting", d.Status.Phase)
	}
	w.now = w.now.Add(2 * time.Second)
	d := w.step()
	if len(w.checks.calls) != 1 || len(d.Actions) != 0 {
		t.Errorf("gate called %d times within 2s; second pass actions %v", len(w.checks.calls), render(d.Actions))
	}
}

// A new revision restarts the progress deadline.
func TestNewRevisionRestartsProgressDeadline(t *testing.T) {
	st := status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0)
	st.LastTransitionTime = metav1.NewTime(t0.Add(-500 * time.Second))
	w := newWorld(t, newCanary(withStatus(st)))
	w.obs.Canary = Readiness{Message: canaryWaitMsg}
	w.obs.Revision = "rev3"
	d := w.step()
	if !d.Status.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("lastTransitionTime %v after the restart, want %v", d.Status.LastTransitionTime, t0)
	}
	w.now = t0.Add(200 * time.Second)
	d = w.step()
	if d.Status.Phase != flaggerv1.CanaryPhaseProgressing {
		t.Errorf("rev3 rolled back 200s after it was applied: %v", render(d.Actions))
	}
}

// A canary that waited long for an approval is not rolled back as soon as it is briefly unready.
func TestDeadlineAfterLongApprovalWait(t *testing.T) {
	for _, st := range []flaggerv1.CanaryStatus{
		status(flaggerv1.CanaryPhaseWaitingPromotion, 50, 0, 0),
		status(flaggerv1.CanaryPhaseProgressing, 20, 0, 0),
	} {
		st.LastTransitionTime = metav1.NewTime(t0.Add(-2 * time.Hour))
		cd := newCanary(withStatus(st))
		obs := observed(st)
		obs.Canary = Readiness{Message: canaryWaitMsg}
		obs.LastTick = t0.Add(-time.Second) // it was ready at the last step, a moment ago
		d := next(t, cd, obs, istio(), t0, &fakeChecks{})
		if d.Status.Phase != st.Phase {
			t.Errorf("%s: canary unready for an instant after a 2h hold: %v", st.Phase, render(d.Actions))
		}
	}
}

// The analysis halts while the primary is not ready (Flagger's IsPrimaryReady, reference §1.2 step 15).
func TestAnalysisHaltsWhilePrimaryNotReady(t *testing.T) {
	cd := newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0)))
	obs := observed(cd.Status)
	obs.Primary = Readiness{Message: primaryWaitMsg}
	f := &fakeChecks{}
	d := next(t, cd, obs, istio(), t0, f)
	for _, a := range d.Actions {
		if a.Kind == SetRoutes {
			t.Errorf("routes changed while the primary is not ready: %v", render(d.Actions))
		}
	}
	if d.Status.CanaryWeight != 10 || f.analyzed != 0 {
		t.Errorf("analysis ran while the primary is not ready: weight %d, Analyze calls %d", d.Status.CanaryWeight, f.analyzed)
	}
}

// The blue/green step that routes all traffic to the canary is not an iteration.
func TestBlueGreenRouteAllStepEvents(t *testing.T) {
	cd := newCanary(withAnalysis(iterationsOnly(3)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 3, 0)))
	d := next(t, cd, observed(cd.Status), istio(), t0, &fakeChecks{})
	equalLines(t, "actions", render(d.Actions), []string{"Event: Routing all traffic to canary", "SetRoutes 0/100",
		"Event: Advance podinfo.test canary iteration 4/3"})
	if d.Status.Iterations != 4 {
		t.Errorf("iterations %d, want 4", d.Status.Iterations)
	}
}

// stepWeightPromotion also applies to blue/green, whose traffic is all on the canary.
func TestBlueGreenStepWeightPromotion(t *testing.T) {
	cd := newCanary(withAnalysis(iterationsOnly(3)), withAnalysis(func(a *flaggerv1.CanaryAnalysis) { a.StepWeightPromotion = 25 }),
		withStatus(status(flaggerv1.CanaryPhasePromoting, 0, 4, 0)))
	obs := observed(cd.Status)
	obs.Routes = Routes{Canary: 100}
	d := next(t, cd, obs, istio(), t0, &fakeChecks{})
	equalLines(t, "actions", render(d.Actions), []string{"SetRoutes 25/75", "Event: Advance podinfo.test primary weight 25"})
	if d.Status.Phase != flaggerv1.CanaryPhasePromoting {
		t.Errorf("phase %s, want Promoting", d.Status.Phase)
	}
}

// Flagger announces the switch back to the primary.
func TestPromotingRoutesAllTrafficToPrimaryEvent(t *testing.T) {
	cd := newCanary(withStatus(status(flaggerv1.CanaryPhasePromoting, 50, 0, 0)))
	d := next(t, cd, observed(cd.Status), istio(), t0, &fakeChecks{})
	equalLines(t, "actions", render(d.Actions), []string{"Event: Routing all traffic to primary", "SetRoutes 100/0"})
}

// muteAlert silences the alert of the hook that holds the gate, as in Flagger.
func TestMuteAlertFollowsTheFailingHook(t *testing.T) {
	cd := newCanary(withHooks(mutedHook("approval", flaggerv1.ConfirmRolloutHook), hook("tests", flaggerv1.ConfirmRolloutHook)),
		withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded)))
	d := next(t, cd, observed(cd.Status), istio(), t0, &fakeChecks{fail: map[string]string{"approval": "403"}})
	for _, a := range d.Actions {
		if a.Kind == Alert {
			t.Errorf("alert for a muted gate: %v", render(d.Actions))
		}
	}
}

// A check still running in the background leaves the canary exactly as it was: no actions, no
// status change, a fallback requeue.
func TestPendingChecksDecideNothing(t *testing.T) {
	cases := []struct {
		name   string
		canary *flaggerv1.Canary
		checks *fakeChecks
	}{
		{"confirm-rollout pending", newCanary(withHooks(hook("approval", flaggerv1.ConfirmRolloutHook)), withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded))),
			&fakeChecks{pending: map[flaggerv1.HookType]bool{flaggerv1.ConfirmRolloutHook: true}}},
		{"pre-rollout pending on the first step", newCanary(withHooks(hook("smoke", flaggerv1.PreRolloutHook)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 0, 0, 0))),
			&fakeChecks{pending: map[flaggerv1.HookType]bool{flaggerv1.PreRolloutHook: true}}},
		{"rollback hook pending", newCanary(withHooks(hook("abort", flaggerv1.RollbackHook)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))),
			&fakeChecks{pending: map[flaggerv1.HookType]bool{flaggerv1.RollbackHook: true}}},
		{"rollback hook pending in Waiting", newCanary(withHooks(hook("approval", flaggerv1.ConfirmRolloutHook), hook("abort", flaggerv1.RollbackHook)), withStatus(waitingStatus())),
			&fakeChecks{fail: map[string]string{"approval": "403 Forbidden"}, pending: map[flaggerv1.HookType]bool{flaggerv1.RollbackHook: true}}},
		{"analysis pending", newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))),
			&fakeChecks{analyze: func(int) error { return ErrPending }}},
		{"confirm-promotion pending", newCanary(withHooks(hook("approve", flaggerv1.ConfirmPromotionHook)), withStatus(status(flaggerv1.CanaryPhaseProgressing, 50, 0, 0))),
			&fakeChecks{pending: map[flaggerv1.HookType]bool{flaggerv1.ConfirmPromotionHook: true}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obs := observed(tc.canary.Status)
			obs.Revision = "rev2"
			if tc.canary.Status.Phase == flaggerv1.CanaryPhaseProgressing {
				obs.Revision = tc.canary.Status.LastAppliedSpec
			}
			d := next(t, tc.canary, obs, istio(), t0, tc.checks)
			if len(d.Actions) != 0 || d.Ticked || d.Outcome != OutcomeNone {
				t.Errorf("pending check produced %v (ticked %v)", render(d.Actions), d.Ticked)
			}
			if !reflect.DeepEqual(d.Status, tc.canary.Status) {
				t.Errorf("status changed while a check is pending:\n got %+v\nwant %+v", d.Status, tc.canary.Status)
			}
			if d.RequeueAfter <= 0 {
				t.Error("no fallback requeue while a check is pending")
			}
		})
	}
}

// noDataPolicy wait holds the analysis: a warning, no failed check, no step; past the progress
// deadline the hold counts as a failed check.
func TestHeldAnalysis(t *testing.T) {
	hold := func(int) error {
		return &HoldError{Message: "Halt podinfo.test advancement: no data yet for request-success-rate"}
	}
	st := status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0)
	st.LastTransitionTime = metav1.NewTime(t0.Add(-30 * time.Second))
	cd := newCanary(withStatus(st))
	d := next(t, cd, observed(st), istio(), t0, &fakeChecks{analyze: hold})
	equalLines(t, "actions", render(d.Actions), []string{"Warning: Halt podinfo.test advancement: no data yet for request-success-rate"})
	if d.Status.FailedChecks != 0 || d.Status.CanaryWeight != 10 || !d.Ticked {
		t.Errorf("held tick: failedChecks %d weight %d ticked %v, want 0, 10, true", d.Status.FailedChecks, d.Status.CanaryWeight, d.Ticked)
	}

	st.LastTransitionTime = metav1.NewTime(t0.Add(-time.Hour))
	cd = newCanary(withStatus(st))
	d = next(t, cd, observed(st), istio(), t0, &fakeChecks{analyze: hold})
	if d.Status.FailedChecks != 1 {
		t.Errorf("a hold past the progress deadline must count as a failed check, failedChecks = %d", d.Status.FailedChecks)
	}
}

// A canary whose status Flagger wrote (its revision hashes differ) is taken over without a release
// when the primary already runs the target, and a failed one stays failed.
func TestAdoptingFlaggerStatus(t *testing.T) {
	flaggerStatus := func(phase flaggerv1.CanaryPhase) flaggerv1.CanaryStatus {
		st := idleStatus(phase)
		st.LastAppliedSpec, st.LastPromotedSpec = "5f8c6d9b7", "5f8c6d9b7"
		return st
	}
	cases := []struct {
		name        string
		phase       flaggerv1.CanaryPhase
		runs        bool
		wantPhase   flaggerv1.CanaryPhase
		wantApplied string
		wantPromo   string
	}{
		{"succeeded, primary runs the target", flaggerv1.CanaryPhaseSucceeded, true, flaggerv1.CanaryPhaseSucceeded, "rev2", "rev2"},
		{"succeeded, target changed meanwhile", flaggerv1.CanaryPhaseSucceeded, false, flaggerv1.CanaryPhaseProgressing, "rev2", "5f8c6d9b7"},
		{"failed, target is the failed attempt", flaggerv1.CanaryPhaseFailed, false, flaggerv1.CanaryPhaseFailed, "rev2", "5f8c6d9b7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cd := newCanary(withStatus(flaggerStatus(tc.phase)))
			obs := observed(cd.Status)
			obs.Revision = "rev2"
			obs.ForeignStatus, obs.PrimaryRunsTarget = true, tc.runs
			d := next(t, cd, obs, istio(), t0, &fakeChecks{})
			if d.Status.Phase != tc.wantPhase || d.Status.LastAppliedSpec != tc.wantApplied || d.Status.LastPromotedSpec != tc.wantPromo {
				t.Errorf("phase %s applied %q promoted %q, want %s %q %q", d.Status.Phase, d.Status.LastAppliedSpec,
					d.Status.LastPromotedSpec, tc.wantPhase, tc.wantApplied, tc.wantPromo)
			}
		})
	}
	if !IsRevision("0123456789abcdef0123456789abcdef") || IsRevision("5f8c6d9b7") || IsRevision("") {
		t.Error("IsRevision must tell Pennant's 32-hex revisions from Flagger's")
	}
}

// The decision to promote is written before the primary is touched: the pass that enters
// Promoting asks for no Promote, so a crash before its status write leaves the primary on the
// last promoted revision, and a crash after it resumes the promotion.
func TestPromotionIsRecordedBeforeThePrimaryIsRewritten(t *testing.T) {
	w := newWorld(t, newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 50, 0, 0))))
	w.now = w.now.Add(interval)
	d := w.step()
	if d.Status.Phase != flaggerv1.CanaryPhasePromoting {
		t.Fatalf("phase %s, want Promoting: %v", d.Status.Phase, render(d.Actions))
	}
	for _, a := range d.Actions {
		if a.Kind == Promote {
			t.Fatalf("the pass entering Promoting rewrites the primary before its status is written: %v", render(d.Actions))
		}
	}
	if d.RequeueAfter != continueSoon {
		t.Errorf("RequeueAfter = %v, want %v", d.RequeueAfter, continueSoon)
	}
	// Restarted from the recorded status (the world keeps it): the next pass copies the target.
	d = w.step()
	if got := render(d.Actions); len(got) == 0 || got[0] != "Promote" {
		t.Errorf("the pass after Promoting was recorded: %v, want Promote first", got)
	}
}

// The pace of the analysis comes from status.lastStepTime: a pass right after a restart (the
// step time read back from the status) runs no step before the interval is over.
func TestStepTimeIsRecordedInTheStatus(t *testing.T) {
	w := newWorld(t, newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))))
	w.now = w.now.Add(interval)
	d := w.step()
	if !d.Ticked || d.Status.LastStepTime == nil || !d.Status.LastStepTime.Time.Equal(w.now) {
		t.Fatalf("step: ticked %v, lastStepTime %v; want the step's time %v", d.Ticked, d.Status.LastStepTime, w.now)
	}
	cd := newCanary(withStatus(d.Status))
	obs := observed(d.Status)
	obs.LastTick = d.Status.LastStepTime.Time // what the controller reads back after a restart
	again := next(t, cd, obs, istio(), w.now.Add(time.Second), &fakeChecks{})
	if again.Ticked || again.Status.CanaryWeight != d.Status.CanaryWeight {
		t.Errorf("a step ran 1s after the previous one: weight %d -> %d", d.Status.CanaryWeight, again.Status.CanaryWeight)
	}
}

// After a failed promotion users are on the canary. Once the primary is ready again they go back
// to it; a new revision never starts its analysis with the canary holding the traffic.
func TestFailedPromotionTrafficGoesBackToThePrimary(t *testing.T) {
	failed := idleStatus(flaggerv1.CanaryPhaseFailed)
	failed.LastPromotedSpec = "rev1"
	onCanary := func(o *Observation) { o.Routes = Routes{Canary: 100} }

	// Same revision, primary ready again: traffic back to the primary.
	obs := observed(failed)
	obs.Revision = "rev1"
	onCanary(&obs)
	d := next(t, newCanary(withStatus(failed)), obs, istio(), t0, &fakeChecks{})
	equalLines(t, "primary ready again", render(d.Actions), []string{"Event: Routing all traffic to primary", "SetRoutes 100/0"})

	// New revision, primary still not ready: the release waits, nothing scales up.
	obs = observed(failed)
	onCanary(&obs)
	obs.Primary = Readiness{Message: primaryWaitMsg}
	d = next(t, newCanary(withStatus(failed)), obs, istio(), t0, &fakeChecks{})
	for _, a := range d.Actions {
		if a.Kind == ScaleUp || a.Kind == SetRoutes {
			t.Errorf("new revision with the primary not ready: %v", render(d.Actions))
		}
	}
	if d.Status.Phase != flaggerv1.CanaryPhaseFailed {
		t.Errorf("phase %s, want Failed until the primary is ready", d.Status.Phase)
	}

	// New revision, primary ready: routes reset before the canary scales up.
	obs = observed(failed)
	onCanary(&obs)
	d = next(t, newCanary(withStatus(failed)), obs, istio(), t0, &fakeChecks{})
	if got := render(d.Actions); len(got) < 2 || got[0] != "SetRoutes 100/0" || got[1] != "ScaleUp" {
		t.Errorf("new revision after a failed promotion: %v, want SetRoutes 100/0 then ScaleUp", got)
	}
}

// A problem in the middle of an analysis sends the traffic back to a ready primary and fails the
// release; with the primary not ready, or outside an analysis, nothing is decided.
func TestAbortSendsTrafficBackToAReadyPrimary(t *testing.T) {
	st := status(flaggerv1.CanaryPhaseProgressing, 50, 0, 0)
	cd := newCanary(withStatus(st))
	in := Input{Canary: cd, Observed: observed(st), Settings: istio(), Now: t0}
	in.Observed.TargetGone = true
	d, ok := Abort(in, "Deployment podinfo.test not found")
	if !ok || d.Status.Phase != flaggerv1.CanaryPhaseFailed || d.Status.CanaryWeight != 0 || d.Outcome != OutcomeFailed {
		t.Fatalf("abort at 50%%: ok %v, status %+v, outcome %q", ok, withoutConditions(d.Status), d.Outcome)
	}
	if got := render(d.Actions); got[0] != "SetRoutes 100/0" {
		t.Errorf("actions %v, want SetRoutes 100/0 first", got)
	}
	for _, a := range d.Actions {
		if a.Kind == ScaleDown || a.Kind == ScaleUp || a.Kind == Promote {
			t.Errorf("abort touches a target that is gone: %v", render(d.Actions))
		}
	}
	// A target that is still there (the spec made invalid, a reference gone) is scaled down after
	// the traffic left it.
	in.Observed.TargetGone = false
	d, _ = Abort(in, "invalid spec")
	if got := render(d.Actions); len(got) < 3 || got[0] != "SetRoutes 100/0" || !slices.Contains(got, "ScaleDown") {
		t.Errorf("actions %v, want SetRoutes 100/0 first, then ScaleDown", got)
	}
	in.Observed.Primary = Readiness{Message: primaryWaitMsg}
	if _, ok := Abort(in, "gone"); ok {
		t.Error("abort routed to a primary that is not ready")
	}
	idle := newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded)))
	if _, ok := Abort(Input{Canary: idle, Observed: observed(idle.Status), Settings: istio(), Now: t0}, "gone"); ok {
		t.Error("abort outside an analysis")
	}
}

// A canary parked at zero during an analysis (a rollback whose status write a crash lost, an
// autoscaler at 0) is scaled up again, not waited for until the progress deadline; no traffic
// moves and no check runs until it is ready.
func TestScaledDownCanaryInAnalysisIsScaledUpAgain(t *testing.T) {
	cd := newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 50, 0, 1)))
	obs := observed(cd.Status)
	obs.Routes = Routes{Primary: 100}
	obs.Canary = Readiness{ScaledDown: true, Message: canaryWaitMsg}
	f := &fakeChecks{}
	d := next(t, cd, obs, istio(), t0, f)
	got := render(d.Actions)
	if len(got) == 0 || got[0] != "ScaleUp" {
		t.Fatalf("actions %v, want ScaleUp first", got)
	}
	for _, a := range d.Actions {
		if a.Kind == SetRoutes || a.Kind == ScaleDown {
			t.Errorf("a scaled-down canary moved traffic or was rolled back: %v", got)
		}
	}
	if d.Status.Phase != flaggerv1.CanaryPhaseProgressing || d.Status.FailedChecks != 1 || f.analyzed != 0 {
		t.Errorf("status %+v, Analyze calls %d; want the analysis held as it was", withoutConditions(d.Status), f.analyzed)
	}
	// Not ready for another reason: only waited for.
	obs.Canary = Readiness{Message: canaryWaitMsg}
	for _, a := range next(t, cd, obs, istio(), t0, f).Actions {
		if a.Kind == ScaleUp {
			t.Errorf("a canary that is only starting was scaled up again")
		}
	}
}
