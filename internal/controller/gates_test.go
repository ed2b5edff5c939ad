package controller_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

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
