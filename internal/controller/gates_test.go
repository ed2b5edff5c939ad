package controller_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
)

// gate is a webhook on loopback that refuses until opened, like the load tester's /gate/check.
type gate struct {
	open  atomic.Bool
	calls atomic.Int32
	srv   *httptest.Server
}

func newGate(t *testing.T) *gate {
	g := &gate{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		g.calls.Add(1)
		if g.open.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte("Forbidden"))
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func TestConfirmRolloutGateHoldsCanaryInWaiting(t *testing.T) {
	f := newFixture(t)
	g := newGate(t)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "gate", Type: flaggerv1.ConfirmRolloutHook, URL: g.srv.URL}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseWaiting, phaseTimeout)
	f.waitEvent("Warning Halt "+f.key("podinfo")+" advancement waiting for approval gate", 5*time.Second)
	calls := g.calls.Load()
	time.Sleep(2 * time.Second)
	if got := f.canary("podinfo").Status.Phase; got != flaggerv1.CanaryPhaseWaiting {
		t.Fatalf("phase = %q while the gate is closed, want Waiting", got)
	}
	if g.calls.Load() <= calls {
		t.Error("the gate was not asked again on the next interval")
	}
	if got := ptrReplicas(f, "podinfo"); got != 0 {
		t.Errorf("target replicas = %d while waiting for approval, want 0", got)
	}

	g.open.Store(true)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("primary image = %q, want 6.0.1", got)
	}
}

func TestSlowWebhookDoesNotDelayOtherCanaries(t *testing.T) {
	// One reconcile worker: a webhook call made on it would hold every other canary.
	f := newFixture(t, func(c *controller.Config) { c.Options.MaxConcurrentReconciles = 1 })
	hanging := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hanging:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hanging) })

	stuck := blueGreenCanary("stuck", "Deployment", 1)
	stuck.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "slow-gate", Type: flaggerv1.ConfirmRolloutHook, URL: slow.URL, Timeout: "50s"}}
	f.create(podinfoDeployment("stuck", 1), stuck, podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 2))
	f.waitPhase("stuck", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("stuck", "ghcr.io/stefanprodan/podinfo:6.0.1")
	time.Sleep(time.Second) // the slow gate is being called
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, 20*time.Second)
	if got := f.canary("stuck").Status.Phase; got != flaggerv1.CanaryPhaseInitialized {
		t.Errorf("the canary behind the hanging gate is %q, want it still Initialized", got)
	}
}

// istioGatedCanary is an Istio canary of two 10% steps without metrics, whose release is held by
// the given webhooks.
func istioGatedCanary(name string, hooks ...flaggerv1.CanaryWebhook) *flaggerv1.Canary {
	cd := blueGreenCanary(name, "Deployment", 0)
	cd.Spec.Provider = "istio"
	cd.Spec.Analysis.StepWeight = 10
	cd.Spec.Analysis.MaxWeight = 20
	cd.Spec.Analysis.Webhooks = hooks
	return cd
}

// virtualServiceSplit is the weights of the first HTTP route of the canary's VirtualService.
func (f *fixture) virtualServiceSplit(name string) split {
	f.t.Helper()
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	f.get(name, vs)
	if got := istioSplits(vs.Object); len(got) > 0 {
		return got[0]
	}
	return split{}
}

// waitCalled waits until a webhook has been called more than n times.
func (f *fixture) waitCalled(g *gate, n int32, what string) {
	f.t.Helper()
	testenvEventually(f, func() (bool, string) {
		return g.calls.Load() > n, what + " was not called (" + f.canaryPhase("podinfo") + ")"
	})
}

func (f *fixture) canaryPhase(name string) string { return string(f.canary(name).Status.Phase) }

// A rollback webhook is asked while the confirm-rollout gate holds the release in Waiting; when it
// opens, the release fails: traffic on the primary, the target scaled down (here after GitOps put
// its replicas back meanwhile), and the refused revision is not started again.
func TestRollbackWebhookWhileWaitingFailsTheRelease(t *testing.T) {
	f := newFixture(t)
	approval, abort := newGate(t), newGate(t)
	f.create(podinfoDeployment("podinfo", 1), istioGatedCanary("podinfo",
		flaggerv1.CanaryWebhook{Name: "approval", Type: flaggerv1.ConfirmRolloutHook, URL: approval.srv.URL},
		flaggerv1.CanaryWebhook{Name: "abort", Type: flaggerv1.RollbackHook, URL: abort.srv.URL}))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseWaiting, phaseTimeout)
	target := &appsv1.Deployment{}
	f.update("podinfo", target, func() { target.Spec.Replicas = ptr.To[int32](1) })
	f.waitCalled(abort, abort.calls.Load(), "the rollback webhook, while Waiting,")
	if got := f.canary("podinfo").Status.Phase; got != flaggerv1.CanaryPhaseWaiting {
		t.Fatalf("phase %q while both gates are closed, want Waiting", got)
	}

	abort.open.Store(true)
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	f.waitEvent("Warning Rolling back "+f.key("podinfo")+" manual webhook invoked", 5*time.Second)
	f.waitTargetReplicas("podinfo", 0)
	if got := f.virtualServiceSplit("podinfo"); got != (split{primary: 100}) {
		t.Errorf("VirtualService %v after the rollback, want 100/0", got)
	}
	if cd.Status.CanaryWeight != 0 {
		t.Errorf("canaryWeight %d after the rollback, want 0", cd.Status.CanaryWeight)
	}

	// The refused revision stays refused: no new Waiting, the gate is not asked again.
	asked := approval.calls.Load()
	time.Sleep(3 * time.Second) // three analysis intervals
	if got := f.canary("podinfo").Status.Phase; got != flaggerv1.CanaryPhaseFailed {
		t.Fatalf("phase %q after the rollback, want it to stay Failed", got)
	}
	if approval.calls.Load() != asked {
		t.Errorf("the confirm-rollout gate was asked %d more times for the refused revision", approval.calls.Load()-asked)
	}
}

// A rollback webhook that opens while the confirm-promotion gate holds the release in
// WaitingPromotion fails it: the split goes back to the primary and the target is scaled down.
func TestRollbackWebhookWhileWaitingPromotionFailsTheRelease(t *testing.T) {
	f := newFixture(t)
	promotion, abort := newGate(t), newGate(t)
	f.create(podinfoDeployment("podinfo", 1), istioGatedCanary("podinfo",
		flaggerv1.CanaryWebhook{Name: "promotion", Type: flaggerv1.ConfirmPromotionHook, URL: promotion.srv.URL},
		flaggerv1.CanaryWebhook{Name: "abort", Type: flaggerv1.RollbackHook, URL: abort.srv.URL}))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseWaitingPromotion, phaseTimeout)
	if got := f.virtualServiceSplit("podinfo"); got != (split{primary: 80, canary: 20}) {
		t.Fatalf("VirtualService %v while waiting for promotion, want 80/20", got)
	}
	f.waitCalled(abort, abort.calls.Load(), "the rollback webhook, while WaitingPromotion,")

	abort.open.Store(true)
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	f.waitEvent("Warning Rolling back "+f.key("podinfo")+" manual webhook invoked", 5*time.Second)
	f.waitTargetReplicas("podinfo", 0)
	if got := f.virtualServiceSplit("podinfo"); got != (split{primary: 100}) {
		t.Errorf("VirtualService %v after the rollback, want 100/0", got)
	}
	if cd.Status.CanaryWeight != 0 {
		t.Errorf("canaryWeight %d after the rollback, want 0", cd.Status.CanaryWeight)
	}
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.0" {
		t.Errorf("primary image %q after the rollback, want the old 6.0.0", got)
	}
}
