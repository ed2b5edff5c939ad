package controller_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/request"
)

// request writes a manual request on the canary as kubectl pennant does: the annotation, by
// server-side apply with the field manager kubectl-pennant, naming alice. It returns the request's ID.
func (f *fixture) request(name string, action request.Action, revision, reason string) string {
	f.t.Helper()
	value, err := request.Encode(request.Request{Action: action, Revision: revision, Reason: reason, User: "alice",
		RequestedAt: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		f.t.Fatal(err)
	}
	dc, err := dynamic.NewForConfig(f.env.Config)
	if err != nil {
		f.t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("flagger.app/v1beta1")
	u.SetKind("Canary")
	u.SetName(name)
	u.SetAnnotations(map[string]string{request.Annotation: value})
	gvr := schema.GroupVersionResource{Group: "flagger.app", Version: "v1beta1", Resource: "canaries"}
	if _, err := dc.Resource(gvr).Namespace(f.ns).Apply(context.Background(), name, u,
		metav1.ApplyOptions{FieldManager: request.FieldManager, Force: true}); err != nil {
		f.t.Fatalf("writing the %s request: %v", action, err)
	}
	return request.ID(value)
}

// waitRequest waits until the canary's status records the request as handled and returns the record.
func (f *fixture) waitRequest(name, id string) *flaggerv1.CanaryRequestStatus {
	f.t.Helper()
	var last *flaggerv1.CanaryRequestStatus
	testenvEventually(f, func() (bool, string) {
		last = f.canary(name).Status.LastRequest
		return last != nil && last.ID == id, fmt.Sprintf("lastRequest %+v, want id %s", last, id)
	})
	return last
}

// advancedWeights are the canary weights the analysis advanced to, in the order of their events.
func (f *fixture) advancedWeights() []int {
	var out []int
	prefix := "Normal Advance " + f.key("podinfo") + " canary weight "
	for _, e := range f.events() {
		if w, ok := strings.CutPrefix(e, prefix); ok {
			n, _ := strconv.Atoi(w)
			out = append(out, n)
		}
	}
	return out
}

// A promote request in the middle of an analysis finishes it: no more steps, through Promoting
// and Finalising to Succeeded, the primary running the new revision.
func TestPromoteRequestDuringAnalysisSucceedsWithoutMoreSteps(t *testing.T) {
	f := midAnalysis(t)
	cd := f.canary("podinfo")
	id := f.request("podinfo", request.Promote, cd.Status.LastAppliedSpec, "looks good")
	if got := f.waitRequest("podinfo", id); got.Result != flaggerv1.RequestDone || got.Actor != "alice (kubectl-pennant)" {
		t.Fatalf("lastRequest %+v, want Done by alice (kubectl-pennant)", got)
	}
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.waitEvent("Normal Promotion of "+f.key("podinfo")+" requested by alice (kubectl-pennant): looks good", 5*time.Second)
	// One step may have run between the weight read and the request; none after the promotion.
	if ws := f.advancedWeights(); len(ws) == 0 || ws[len(ws)-1] > cd.Status.CanaryWeight+5 || ws[len(ws)-1] >= 50 {
		t.Errorf("weights advanced to %v after a promote at %d", ws, cd.Status.CanaryWeight)
	}
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.1.1" {
		t.Errorf("the primary runs %s, want the promoted 6.1.1", got)
	}
}

// An abort request at 30% rolls the release back at once: Failed, all traffic on the primary, the
// target scaled down, and the event and the Stalled condition say who aborted it and why.
func TestAbortRequestAt30PercentRollsBack(t *testing.T) {
	f := midAnalysis(t)
	var cd *flaggerv1.Canary
	testenvEventually(f, func() (bool, string) {
		cd = f.canary("podinfo")
		return cd.Status.CanaryWeight >= 30, fmt.Sprintf("weight %d", cd.Status.CanaryWeight)
	})
	id := f.request("podinfo", request.Abort, cd.Status.LastAppliedSpec, "5xx on checkout")
	f.wantAborted("aborted by alice (kubectl-pennant): 5xx on checkout")
	if got := f.waitRequest("podinfo", id); got.Result != flaggerv1.RequestDone {
		t.Errorf("lastRequest %+v, want Done", got)
	}
	if ws := f.advancedWeights(); ws[len(ws)-1] >= 50 {
		t.Errorf("weights advanced to %v", ws)
	}
}

// A retry request releases the revision whose release failed again, without a change to the
// target: a new analysis of the same revision, this time promoted.
func TestRetryRequestReleasesTheFailedRevisionAgain(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 95)
	f.create(podinfoDeployment("podinfo", 1), analysedCanary(prom, 2, 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	failed := f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)

	prom.successRate.Store(100.0)
	id := f.request("podinfo", request.Retry, failed.Status.LastAppliedSpec, "the database is back")
	if got := f.waitRequest("podinfo", id); got.Result != flaggerv1.RequestDone {
		t.Fatalf("lastRequest %+v, want Done", got)
	}
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	if cd.Status.LastPromotedSpec != failed.Status.LastAppliedSpec {
		t.Errorf("promoted %s, want the retried revision %s", cd.Status.LastPromotedSpec, failed.Status.LastAppliedSpec)
	}
	f.waitEvent("Normal Retrying "+f.key("podinfo")+" revision "+failed.Status.LastAppliedSpec+", requested by alice (kubectl-pennant): the database is back", 5*time.Second)
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("the primary runs %s, want the retried 6.0.1", got)
	}
}

// A pause holds the weight past two intervals and past the progress deadline (the canary's is
// 2s here, and the analysis interval 1s), with the Paused condition; resume continues the release.
func TestPauseHoldsTheWeightUntilResumed(t *testing.T) {
	f := midAnalysis(t, func(cd *flaggerv1.Canary) {
		two := int32(2)
		cd.Spec.ProgressDeadlineSeconds = &two
	})
	revision := f.canary("podinfo").Status.LastAppliedSpec
	id := f.request("podinfo", request.Pause, revision, "watching the dashboards")
	if got := f.waitRequest("podinfo", id); got.Result != flaggerv1.RequestDone {
		t.Fatalf("lastRequest %+v, want Done", got)
	}
	held := f.canary("podinfo")
	if !canary.Paused(&held.Status) {
		t.Fatalf("conditions %v, want Paused", held.Status.Conditions)
	}
	time.Sleep(3 * time.Second) // three intervals, and longer than the progress deadline
	cd := f.canary("podinfo")
	if cd.Status.CanaryWeight != held.Status.CanaryWeight || cd.Status.Phase != flaggerv1.CanaryPhaseProgressing {
		t.Fatalf("paused at weight %d: now %s at %d", held.Status.CanaryWeight, cd.Status.Phase, cd.Status.CanaryWeight)
	}
	f.waitEvent(fmt.Sprintf("Normal Paused %s at canary weight %d, requested by alice (kubectl-pennant): watching the dashboards", f.key("podinfo"), held.Status.CanaryWeight), 5*time.Second)

	id = f.request("podinfo", request.Resume, revision, "")
	if got := f.waitRequest("podinfo", id); got.Result != flaggerv1.RequestDone {
		t.Fatalf("lastRequest %+v, want Done", got)
	}
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	if canary.Paused(&f.canary("podinfo").Status) {
		t.Error("still Paused after the release")
	}
}

// A request for a revision the canary no longer releases is ignored with a Warning event; the
// release goes on.
func TestStaleRequestIsIgnoredWithAnEvent(t *testing.T) {
	f := midAnalysis(t)
	old := f.canary("podinfo").Status.LastPromotedSpec
	id := f.request("podinfo", request.Abort, old, "")
	if got := f.waitRequest("podinfo", id); got.Result != flaggerv1.RequestStale {
		t.Fatalf("lastRequest %+v, want Stale", got)
	}
	f.waitEvent("Warning Ignoring stale request to abort "+f.key("podinfo")+" by alice (kubectl-pennant): it is for revision "+old, 5*time.Second)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
}

// A request written while the controller is down is carried out when it starts, and only once:
// neither that start nor the next one pauses the canary again.
func TestRequestSurvivesAControllerRestart(t *testing.T) {
	f := newRestartableFixture(t)
	stop := f.start()
	f.create(podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 100))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	testenvEventually(f.fixture, func() (bool, string) {
		cd := f.canary("podinfo")
		return cd.Status.Iterations >= 1, fmt.Sprintf("phase %s iterations %d", cd.Status.Phase, cd.Status.Iterations)
	})
	stop()

	id := f.request("podinfo", request.Pause, f.canary("podinfo").Status.LastAppliedSpec, "restart")
	stop = f.start()
	f.waitRequest("podinfo", id)
	paused := "Paused " + f.key("podinfo") + " at canary weight 0, requested by alice (kubectl-pennant): restart"
	testenvEventually(f.fixture, func() (bool, string) {
		return f.eventCount(paused) == 1, fmt.Sprintf("%d pause events", f.eventCount(paused))
	})
	stop()
	f.start()
	time.Sleep(2 * time.Second) // two intervals: time enough to carry it out again
	if n := f.eventCount(paused); n != 1 {
		t.Errorf("%d pause events after a second restart, want 1", n)
	}
	if cd := f.canary("podinfo"); !canary.Paused(&cd.Status) || cd.Status.Phase != flaggerv1.CanaryPhaseProgressing {
		t.Errorf("phase %s conditions %v, want Progressing and Paused", cd.Status.Phase, cd.Status.Conditions)
	}
}
