package canary

import (
	"errors"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/request"
)

// pendingRequest is a request by alice through kubectl-pennant for revision rev.
func pendingRequest(action request.Action, rev string) *request.Pending {
	return &request.Pending{
		ID:      "id-" + string(action),
		Request: request.Request{Action: action, Revision: rev, Reason: "because"},
		Actor:   "alice (kubectl-pennant)",
	}
}

// decideRequest runs one decision of a canary in status st with the request pending.
func decideRequest(t *testing.T, st flaggerv1.CanaryStatus, p *request.Pending, tweak func(o *Observation)) Decision {
	t.Helper()
	obs := observed(st)
	obs.Request = p
	if tweak != nil {
		tweak(&obs)
	}
	return next(t, newCanary(withStatus(st)), obs, istio(), t0, &fakeChecks{})
}

func wantRequest(t *testing.T, d Decision, result flaggerv1.CanaryRequestResult) {
	t.Helper()
	r := d.Status.LastRequest
	if r == nil || r.Result != result || r.Actor != "alice (kubectl-pennant)" || r.Reason != "because" || r.HandledAt.IsZero() {
		t.Fatalf("lastRequest %+v, want result %s by alice", r, result)
	}
}

func TestPromoteRequestSkipsTheRemainingSteps(t *testing.T) {
	d := decideRequest(t, status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), pendingRequest(request.Promote, "rev2"), nil)
	wantRequest(t, d, flaggerv1.RequestDone)
	if d.Status.Phase != flaggerv1.CanaryPhasePromoting {
		t.Fatalf("phase %s, want Promoting", d.Status.Phase)
	}
	equalLines(t, "actions", render(d.Actions), []string{
		"Event: Promotion of podinfo.test requested by alice (kubectl-pennant): because",
		copyingSpec,
	})
}

func TestPromoteRequestIsRefusedWhileTheCanaryIsNotReady(t *testing.T) {
	d := decideRequest(t, status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), pendingRequest(request.Promote, "rev2"),
		func(o *Observation) { o.Canary = Readiness{Message: canaryWaitMsg}; o.LastTick = t0 })
	wantRequest(t, d, flaggerv1.RequestRefused)
	if d.Status.Phase != flaggerv1.CanaryPhaseProgressing {
		t.Fatalf("phase %s, want Progressing", d.Status.Phase)
	}
	got := render(d.Actions)
	if len(got) == 0 || got[0] != "Warning: Refusing request to promote podinfo.test by alice (kubectl-pennant): because: the canary is not ready: "+canaryWaitMsg {
		t.Fatalf("actions %q", got)
	}
}

func TestAbortRequestRollsBackWithTheActor(t *testing.T) {
	d := decideRequest(t, status(flaggerv1.CanaryPhaseProgressing, 30, 0, 0), pendingRequest(request.Abort, "rev2"), nil)
	wantRequest(t, d, flaggerv1.RequestDone)
	if d.Status.Phase != flaggerv1.CanaryPhaseFailed || d.Outcome != OutcomeFailed {
		t.Fatalf("phase %s outcome %s, want Failed", d.Status.Phase, d.Outcome)
	}
	equalLines(t, "actions", render(d.Actions), []string{
		"SetRoutes 100/0",
		"Warning: Canary failed! podinfo.test: aborted by alice (kubectl-pennant): because",
		"ScaleDown",
		"Alert warn: Canary failed: aborted by alice (kubectl-pennant): because",
		"PostRollout Failed",
	})
	if c := flaggerv1.FindCanaryCondition(d.Status.Conditions, flaggerv1.StalledCondition); c == nil || c.Message != "aborted by alice (kubectl-pennant): because" {
		t.Fatalf("Stalled condition %+v", c)
	}
}

func TestRetryRequestStartsANewAnalysisOfTheFailedRevision(t *testing.T) {
	st := status(flaggerv1.CanaryPhaseFailed, 0, 0, 2)
	d := decideRequest(t, st, pendingRequest(request.Retry, "rev2"), func(o *Observation) { o.Canary = Readiness{} })
	wantRequest(t, d, flaggerv1.RequestDone)
	if d.Status.Phase != flaggerv1.CanaryPhaseProgressing || d.Status.FailedChecks != 0 || d.Status.LastAppliedSpec != "rev2" {
		t.Fatalf("status %+v, want a new analysis of rev2", d.Status)
	}
	equalLines(t, "actions", render(d.Actions), concat(
		[]string{"Event: Retrying podinfo.test revision rev2, requested by alice (kubectl-pennant): because"},
		rolloutActions()))
}

func TestRetryRequestIsRefusedUnlessTheReleaseFailed(t *testing.T) {
	d := decideRequest(t, idleStatus(flaggerv1.CanaryPhaseSucceeded), pendingRequest(request.Retry, "rev1"),
		func(o *Observation) { o.Revision = "rev1" })
	wantRequest(t, d, flaggerv1.RequestRefused)
	if d.Status.Phase != flaggerv1.CanaryPhaseSucceeded {
		t.Fatalf("phase %s", d.Status.Phase)
	}
}

func TestStaleRequestIsIgnoredAndTheStepRuns(t *testing.T) {
	d := decideRequest(t, status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), pendingRequest(request.Abort, "rev1"), nil)
	wantRequest(t, d, flaggerv1.RequestStale)
	if d.Status.Phase != flaggerv1.CanaryPhaseProgressing || d.Status.CanaryWeight != 15 {
		t.Fatalf("phase %s weight %d, want the next step", d.Status.Phase, d.Status.CanaryWeight)
	}
	got := render(d.Actions)
	if got[0] != "Warning: Ignoring stale request to abort podinfo.test by alice (kubectl-pennant): because: it is for revision rev1, the canary's is rev2" {
		t.Fatalf("actions %q", got)
	}
}

func TestRequestForARevisionTheTargetLeftIsStale(t *testing.T) {
	d := decideRequest(t, status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), pendingRequest(request.Promote, "rev2"),
		func(o *Observation) { o.Revision = "rev3" })
	wantRequest(t, d, flaggerv1.RequestStale)
	if d.Status.Phase != flaggerv1.CanaryPhaseProgressing || d.Status.LastAppliedSpec != "rev3" {
		t.Fatalf("phase %s revision %s, want the analysis of rev3 restarted", d.Status.Phase, d.Status.LastAppliedSpec)
	}
}

func TestInvalidRequestIsIgnored(t *testing.T) {
	p := &request.Pending{ID: "x", Actor: "alice (kubectl-pennant)", Err: errors.New("unknown action")}
	d := decideRequest(t, status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), p, nil)
	if r := d.Status.LastRequest; r == nil || r.Result != flaggerv1.RequestInvalid || r.ID != "x" {
		t.Fatalf("lastRequest %+v", r)
	}
}

func TestSuspendedCanaryRefusesRequests(t *testing.T) {
	cd := newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0)), withSpec(func(s *flaggerv1.CanarySpec) { s.Suspend = true }))
	obs := observed(cd.Status)
	obs.Request = pendingRequest(request.Pause, "rev2")
	d := next(t, cd, obs, istio(), t0, &fakeChecks{})
	wantRequest(t, d, flaggerv1.RequestRefused)
}

// A paused analysis holds its weight however long it is paused, counts no failed check and does
// not fail at the progress deadline; resuming runs the next step one interval later.
func TestPauseHoldsTheAnalysisUntilResumed(t *testing.T) {
	w := newWorld(t, newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))))
	w.checks.analyze = analyzeFails(metricErr)
	w.obs.Request = pendingRequest(request.Pause, "rev2")
	d := w.step()
	wantRequest(t, d, flaggerv1.RequestDone)
	if !Paused(&d.Status) || d.RequeueAfter != 0 {
		t.Fatalf("paused %v requeue %s, want paused and no requeue", Paused(&d.Status), d.RequeueAfter)
	}
	w.obs.Request = nil
	w.obs.Canary = Readiness{Message: canaryWaitMsg} // unready for longer than the deadline
	for range 20 {
		d = w.tick()
		if len(d.Actions) != 0 || d.Status.CanaryWeight != 10 || d.Status.FailedChecks != 0 || d.Status.Phase != flaggerv1.CanaryPhaseProgressing {
			t.Fatalf("paused canary decided %q, status %+v", render(d.Actions), d.Status)
		}
	}
	if w.checks.analyzed != 0 {
		t.Fatalf("%d analyses while paused", w.checks.analyzed)
	}
	w.obs.Canary = Readiness{Ready: true}
	w.checks.analyze = nil
	w.obs.Request = pendingRequest(request.Resume, "rev2")
	d = w.step()
	wantRequest(t, d, flaggerv1.RequestDone)
	if Paused(&d.Status) || !d.Status.LastTransitionTime.Time.Equal(w.now) || d.RequeueAfter != interval {
		t.Fatalf("resumed status %+v requeue %s", d.Status, d.RequeueAfter)
	}
	w.obs.Request = nil
	w.obs.LastTick = d.Status.LastStepTime.Time
	w.now = w.now.Add(interval - time.Second)
	if d = w.step(); d.Status.CanaryWeight != 10 {
		t.Fatalf("stepped %s after the resume", interval-time.Second)
	}
	if d = w.tick(); d.Status.CanaryWeight != 15 {
		t.Fatalf("weight %d one interval after the resume, want 15", d.Status.CanaryWeight)
	}
}

func TestNewRevisionEndsAPause(t *testing.T) {
	w := newWorld(t, newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0))))
	w.obs.Request = pendingRequest(request.Pause, "rev2")
	w.step()
	w.obs.Request = nil
	w.obs.Revision = "rev3"
	d := w.tick()
	if Paused(&d.Status) || d.Status.LastAppliedSpec != "rev3" {
		t.Fatalf("status %+v, want the analysis of rev3 unpaused", d.Status)
	}
}

func TestResumeRequestIsRefusedWhenNotPaused(t *testing.T) {
	d := decideRequest(t, status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0), pendingRequest(request.Resume, "rev2"), nil)
	wantRequest(t, d, flaggerv1.RequestRefused)
}
