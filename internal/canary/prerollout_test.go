package canary

import (
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// The pre-rollout webhooks run once per revision: their pass is recorded in
// status.preRolloutPassedSpec and a restart (a fresh Input with the persisted status and fresh
// checks, whose results in memory are lost) does not call them again.

const (
	prePassed       = "Event: Pre-rollout check pre passed"
	trafficHalt     = "Warning: Halt podinfo.test advancement waiting for traffic increase approval approve"
	trafficHaltMsg  = "Alert warn: Canary traffic increase is waiting for approval."
	preFailedOnce   = "Warning: Halt podinfo.test advancement pre-rollout check pre failed " + hookErr
	preRolloutCalls = "pre-rollout"
)

func preRolloutCanary(weight int, passed string, more ...flaggerv1.CanaryWebhook) *flaggerv1.Canary {
	st := status(flaggerv1.CanaryPhaseProgressing, weight, 0, 0)
	st.PreRolloutPassedSpec = passed
	return newCanary(withHooks(append([]flaggerv1.CanaryWebhook{hook("pre", flaggerv1.PreRolloutHook)}, more...)...), withStatus(st))
}

// restart stands for a new controller process: the checks' memory is gone, the status stays.
func (w *world) restart(checks *fakeChecks) { w.checks = checks }

func wantPassRecorded(t *testing.T, st flaggerv1.CanaryStatus, want string) {
	t.Helper()
	if st.PreRolloutPassedSpec != want {
		t.Errorf("preRolloutPassedSpec = %q, want %q", st.PreRolloutPassedSpec, want)
	}
}

func TestPreRolloutPassIsRecordedForTheRevision(t *testing.T) {
	w := newWorld(t, preRolloutCanary(0, ""))
	ds := w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 5, actions: concat([]string{startingAnalysis, prePassed}, advanceWeight(5))},
	})
	wantPassRecorded(t, ds[0].Status, "rev2")
}

// A closed confirm-traffic-increase gate repeats the first step: the pre-rollout webhooks, which
// passed, are not called again, neither on the next step nor after a restart.
func TestPreRolloutNotRepeatedBehindAClosedTrafficGate(t *testing.T) {
	w := newWorld(t, preRolloutCanary(0, "", hook("approve", flaggerv1.ConfirmTrafficIncreaseHook)))
	w.checks.failHook("approve", "403 Forbidden")
	ds := w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, actions: []string{startingAnalysis, prePassed, trafficHalt, trafficHaltMsg}},
		{phase: flaggerv1.CanaryPhaseProgressing, actions: []string{trafficHalt, trafficHaltMsg}},
	})
	wantPassRecorded(t, ds[0].Status, "rev2")
	equalLines(t, "calls before the restart", w.checks.calls, []string{preRolloutCalls, "confirm-traffic-increase", "confirm-traffic-increase"})

	w.restart(&fakeChecks{})
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 5, actions: advanceWeight(5)},
	})
	equalLines(t, "calls after the restart", w.checks.calls, []string{"confirm-traffic-increase"})
}

// A pass followed by a check still running (the traffic gate) is recorded at once, with its
// events: a restart before the gate answers does not call the pre-rollout webhooks again.
func TestPreRolloutPassRecordedWhileTheNextCheckIsPending(t *testing.T) {
	cd := preRolloutCanary(0, "", hook("approve", flaggerv1.ConfirmTrafficIncreaseHook))
	f := &fakeChecks{pending: map[flaggerv1.HookType]bool{flaggerv1.ConfirmTrafficIncreaseHook: true}}
	obs := observed(cd.Status)
	d := next(t, cd, obs, istio(), t0, f)
	equalLines(t, "pending decision actions", render(d.Actions), []string{startingAnalysis, prePassed})
	wantPassRecorded(t, d.Status, "rev2")
	if d.Ticked || d.RequeueAfter != pendingRetry {
		t.Errorf("pending decision ticked %v, requeue %v; want no tick and the pending retry", d.Ticked, d.RequeueAfter)
	}
	want := cd.Status.DeepCopy()
	want.PreRolloutPassedSpec = "rev2"
	if d.Status.CanaryWeight != 0 || d.Status.FailedChecks != 0 || !d.Status.LastTransitionTime.Equal(&want.LastTransitionTime) {
		t.Errorf("pending decision changed more than the record: %+v", d.Status)
	}

	restarted := cd.DeepCopy()
	restarted.Status = d.Status
	f2 := &fakeChecks{}
	d2 := next(t, restarted, obs, istio(), t0, f2)
	equalLines(t, "actions after the restart", render(d2.Actions), advanceWeight(5))
	equalLines(t, "calls after the restart", f2.calls, []string{"confirm-traffic-increase"})
}

// Failed pre-rollout webhooks are retried on the next steps as failed checks, as in Flagger:
// nothing is recorded until they pass.
func TestFailedPreRolloutIsRetriedEachStep(t *testing.T) {
	w := newWorld(t, preRolloutCanary(0, ""))
	w.cd.Spec.Analysis.Threshold = 3
	w.checks.failHook("pre", hookErr)
	ds := w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, actions: []string{startingAnalysis, preFailedOnce}},
	})
	wantPassRecorded(t, ds[0].Status, "")
	w.restart(&fakeChecks{})
	w.walk([]stepWant{
		{phase: flaggerv1.CanaryPhaseProgressing, weight: 5, actions: concat([]string{startingAnalysis, prePassed}, advanceWeight(5))},
	})
	equalLines(t, "calls after the restart", w.checks.calls, []string{preRolloutCalls})
}

// A new revision, or a change of the tracked configs, starts an analysis whose pre-rollout
// webhooks run again; so does a record of another revision (one left by another controller).
func TestPreRolloutRunsAgainForANewAnalysis(t *testing.T) {
	cases := []struct {
		name   string
		canary *flaggerv1.Canary
		change func(o *Observation)
	}{
		{"new revision mid-analysis", preRolloutCanary(20, "rev2"), func(o *Observation) { o.Revision = "rev3" }},
		{"tracked config changed", preRolloutCanary(20, "rev2"), func(o *Observation) { o.Configs = cfgB }},
		{"record of another revision", preRolloutCanary(0, "rev1"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, tc.canary)
			w.obs.Routes = Routes{Primary: 100 - tc.canary.Status.CanaryWeight, Canary: tc.canary.Status.CanaryWeight}
			if tc.change != nil {
				tc.change(&w.obs)
				d := w.tick()
				wantPassRecorded(t, d.Status, "")
			}
			d := w.tick()
			if d.Status.CanaryWeight != 5 || !containsInOrder(render(d.Actions), []string{startingAnalysis, prePassed}) {
				t.Errorf("first step: weight %d, actions %v; want the pre-rollout webhooks, then weight 5", d.Status.CanaryWeight, render(d.Actions))
			}
			equalLines(t, "calls", w.checks.calls, []string{preRolloutCalls})
			wantPassRecorded(t, d.Status, d.Status.LastAppliedSpec)
		})
	}
}
