package controller_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/testenv"
	"github.com/pennant/pennant/internal/workload"
)

// stopTimeout bounds a manager's stop in these tests: far below the webhooks' timeouts, so that
// a stop that waits for a webhook instead of cancelling it fails.
const stopTimeout = 15 * time.Second

// restartableFixture is a namespace whose canary controller the test stops and starts again, as
// a restart of the controller's process would.
type restartableFixture struct {
	*fixture
	// wrapHooks, when set, wraps the webhook caller of every controller started.
	wrapHooks func(next controller.CanaryWebhookCaller) controller.CanaryWebhookCaller
}

func newRestartableFixture(t *testing.T) *restartableFixture {
	t.Helper()
	env := testenv.Start(t)
	env.RequireCluster(t)
	ns := env.NewNamespace(t)
	return &restartableFixture{fixture: &fixture{requests: &atomic.Int64{}, t: t, env: env, ns: ns, c: env.Client, ctx: context.Background()}}
}

// start runs a canary controller (a manager of its own) for the namespace and returns its stop,
// which cancels the manager and waits for mgr.Start to return.
func (f *restartableFixture) start() (stop func()) {
	t := f.t
	t.Helper()
	mgr, err := ctrl.NewManager(f.env.Config, ctrl.Options{
		Scheme:     f.env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{f.ns: {}}},
		Client:     client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := controller.NewCanaryReconciler(mgr, controller.Config{
		Options:  controller.Options{MeshProvider: "kubernetes", MinInterval: 200 * time.Millisecond, MaxConcurrentReconciles: 2},
		Workload: workload.Options{EnableConfigTracking: true, FieldOwner: "flagger"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.wrapHooks != nil {
		r.Hooks = f.wrapHooks(r.Hooks)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(stopTimeout):
			t.Fatalf("manager did not stop within %v", stopTimeout)
		}
	}
	t.Cleanup(stop)
	return stop
}

// inFlightHooks counts the webhook calls that have not returned yet.
type inFlightHooks struct {
	next    controller.CanaryWebhookCaller
	running *atomic.Int64
}

func (h inFlightHooks) Call(ctx context.Context, cd *flaggerv1.Canary, hook flaggerv1.CanaryWebhook, phase flaggerv1.CanaryPhase, metadata map[string]string) error {
	h.running.Add(1)
	defer h.running.Add(-1)
	return h.next.Call(ctx, cd, hook, phase, metadata)
}

// hangingHook is a webhook on loopback that never answers: it reports each request's arrival and
// the end of the request's context (the controller closed the connection).
func hangingHook(t *testing.T) (url string, arrived, closed chan struct{}) {
	arrived, closed = make(chan struct{}, 16), make(chan struct{}, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection (and cancels r.Context()) only once the body
		// has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			closed <- struct{}{}
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before Close: no handler outlives the test
	return srv.URL, arrived, closed
}

func receive(t *testing.T, ch <-chan struct{}, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s within %v", what, timeout)
	}
}

// The manager's stop cancels a webhook call in flight and waits for it: no task outlives the
// manager, even one whose webhook timeout is a minute away.
func TestManagerStopCancelsWebhookInFlight(t *testing.T) {
	f := newRestartableFixture(t)
	running := &atomic.Int64{}
	f.wrapHooks = func(next controller.CanaryWebhookCaller) controller.CanaryWebhookCaller {
		return inFlightHooks{next: next, running: running}
	}
	url, arrived, closed := hangingHook(t)
	stop := f.start()

	cd := blueGreenCanary("podinfo", "Deployment", 2)
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "smoke", Type: flaggerv1.PreRolloutHook, URL: url, Timeout: "1m"}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	receive(t, arrived, phaseTimeout, "no pre-rollout call arrived")

	stop()
	if n := running.Load(); n != 0 {
		t.Fatalf("%d webhook calls still running after the manager stopped", n)
	}
	receive(t, closed, 5*time.Second, "the webhook server did not see the call cancelled")
	if got := f.canary("podinfo").Status.FailedChecks; got != 0 {
		t.Errorf("failedChecks = %d after the stop, want 0: a call cut short by the stop is no failed check", got)
	}
}

// A pre-rollout webhook that passed is called once per revision: neither the repeated first step
// behind a closed confirm-traffic-increase gate nor a controller restart calls it again.
func TestPreRolloutRunsOncePerRevisionAcrossARestart(t *testing.T) {
	f := newRestartableFixture(t)
	prom := newPromAPI(t, 100)
	pre := newHookRecorder(t, http.StatusOK)
	gate := newHookRecorder(t, http.StatusForbidden)
	stop := f.start()

	cd := weightedCanary("istio", prom)
	cd.Spec.Analysis.StepWeight = 25
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{
		{Name: "smoke", Type: flaggerv1.PreRolloutHook, URL: pre.srv.URL},
		{Name: "approve", Type: flaggerv1.ConfirmTrafficIncreaseHook, URL: gate.srv.URL},
	}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")

	waitCalls := func(h *hookRecorder, atLeast int) {
		t.Helper()
		testenvEventually(f.fixture, func() (bool, string) {
			n := len(h.received())
			return n >= atLeast, fmt.Sprintf("%d calls, want at least %d", n, atLeast)
		})
	}
	wantPreCalls := func(when string) {
		t.Helper()
		if n := len(pre.received()); n != 1 {
			t.Fatalf("%s: pre-rollout webhook called %d times, want once", when, n)
		}
	}
	waitCalls(gate, 2)
	wantPreCalls("behind the closed gate")
	testenvEventually(f.fixture, func() (bool, string) {
		st := f.canary("podinfo").Status
		return st.PreRolloutPassedSpec != "" && st.PreRolloutPassedSpec == st.LastAppliedSpec,
			fmt.Sprintf("preRolloutPassedSpec %q, lastAppliedSpec %q", st.PreRolloutPassedSpec, st.LastAppliedSpec)
	})

	stop()
	seen := len(gate.received())
	f.start()
	waitCalls(gate, seen+2)
	wantPreCalls("after the restart")

	gate.status.Store(http.StatusOK)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	wantPreCalls("after the release")
}
