package canary

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// A release without a free slot waits in Waiting, queued, with nothing scaled or routed; while it
// waits its decisions change nothing (no status write); once it has a slot it starts.
func TestReleaseWaitsForASlot(t *testing.T) {
	const why = "3 releases in flight, the controller's limit (-max-concurrent-releases)"
	cd := newCanary(withStatus(idleStatus(flaggerv1.CanaryPhaseSucceeded)))
	obs := observed(cd.Status)
	in := Input{Canary: cd, Observed: obs}
	if !MayStartRelease(in) {
		t.Fatal("a new revision of an idle canary may not start a release")
	}
	obs.ReleaseQueue = why
	d := next(t, cd, obs, istio(), t0, &fakeChecks{})
	if d.Status.Phase != flaggerv1.CanaryPhaseWaiting || !d.Status.ReleaseQueued() || d.Queued != why {
		t.Fatalf("phase %s, queued %v (%q), want Waiting and queued", d.Status.Phase, d.Status.ReleaseQueued(), d.Queued)
	}
	if got := render(d.Actions); !slices.Equal(got, []string{"Event: Release of podinfo.test queued: " + why}) {
		t.Errorf("actions %v, want the queued event alone", got)
	}
	if c := flaggerv1.FindCanaryCondition(d.Status.Conditions, flaggerv1.PromotedCondition); c == nil || c.Message != "Release queued: "+why+"." {
		t.Errorf("Promoted condition %+v does not say why it waits", c)
	}

	queued := newCanary(withStatus(d.Status))
	again := next(t, queued, obs, istio(), t0.Add(queueRecheck), &fakeChecks{})
	if !equality.Semantic.DeepEqual(again.Status, queued.Status) || len(again.Actions) != 0 || again.RequeueAfter != queueRecheck {
		t.Errorf("waiting changed the status or acted: %v, requeue %v", render(again.Actions), again.RequeueAfter)
	}

	obs.ReleaseQueue = ""
	started := next(t, queued, obs, istio(), t0.Add(2*queueRecheck), &fakeChecks{})
	if started.Status.Phase != flaggerv1.CanaryPhaseProgressing || started.Status.ReleaseQueued() ||
		!slices.Contains(render(started.Actions), "ScaleUp") {
		t.Errorf("with a slot: phase %s, actions %v; want Progressing and the canary scaled up", started.Status.Phase, render(started.Actions))
	}
}
