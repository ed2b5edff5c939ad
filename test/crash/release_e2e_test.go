//go:build e2e

package crash

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(testenv.Main(m, testenv.WithModuleCRDs("istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml")))
}

const (
	oldImage = "ghcr.io/stefanprodan/podinfo:6.0.0"
	newImage = "ghcr.io/stefanprodan/podinfo:6.0.1"
	// stepInterval is the canary's analysis interval; pennant runs with -min-analysis-interval=1s.
	stepInterval = time.Second
	// phaseTimeout bounds every wait for a phase: a release here takes a few seconds.
	phaseTimeout = 90 * time.Second
)

// rolloutHook is a loopback rollout webhook that passes its first `passes` calls and fails the rest
// (passes < 0: always passes). It records when it was called.
type rolloutHook struct {
	*httptest.Server
	passes int

	mu    sync.Mutex
	calls []time.Time
}

func newRolloutHook(t *testing.T, passes int) *rolloutHook {
	h := &rolloutHook{passes: passes}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.mu.Lock()
		h.calls = append(h.calls, time.Now())
		n := len(h.calls)
		h.mu.Unlock()
		if h.passes >= 0 && n > h.passes {
			http.Error(w, "acceptance test failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.Close)
	return h
}

// Calls returns how many times the hook was called.
func (h *rolloutHook) Calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

// release is one namespace with podinfo, its Istio canary, a rollout hook and a pennant process.
type release struct {
	t    *testing.T
	env  *testenv.Env
	ns   string
	hook *rolloutHook
	ctl  *controller
	ctx  context.Context

	steps *stepRecorder
}

// newRelease sets up podinfo and its canary in a fresh namespace and starts pennant; it returns
// once the canary is Initialized.
func newRelease(t *testing.T, binary string, passes int) *release {
	t.Helper()
	env := testenv.Start(t)
	env.RequireCluster(t)
	r := &release{t: t, env: env, ns: env.NewNamespace(t), hook: newRolloutHook(t, passes), ctx: context.Background()}
	r.create(podinfo(), r.canary())
	r.ctl = newController(t, binary, r.ns, "-min-analysis-interval=1s")
	r.ctl.Start()
	r.waitPhase(flaggerv1.CanaryPhaseInitialized)
	r.steps = recordSteps(t, env, r.ns)
	return r
}

func podinfo() *appsv1.Deployment {
	labels := map[string]string{"app": "podinfo"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "podinfod", Image: oldImage,
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
				}}},
			},
		},
	}
}

// canary is an Istio canary (weights 25, 50, then promotion) whose only check is the rollout hook.
func (r *release) canary() *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: flaggerv1.CanarySpec{
			Provider:                "istio",
			TargetRef:               flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Service:                 flaggerv1.CanaryService{Port: 9898},
			Analysis: &flaggerv1.CanaryAnalysis{
				Interval: "1s", Threshold: 2, StepWeight: 25, MaxWeight: 50,
				Webhooks: []flaggerv1.CanaryWebhook{{Name: "acceptance", URL: r.hook.URL, Timeout: "5s"}},
			},
		},
	}
}

func (r *release) create(objs ...client.Object) {
	r.t.Helper()
	for _, o := range objs {
		o.SetNamespace(r.ns)
		if err := r.env.Client.Create(r.ctx, o); err != nil {
			r.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func (r *release) get(name string, obj client.Object) error {
	return r.env.Client.Get(r.ctx, client.ObjectKey{Namespace: r.ns, Name: name}, obj)
}

// setImage starts a release: the test's own client, so the proxy does not count the write.
func (r *release) setImage(image string) {
	r.t.Helper()
	testenv.Eventually(r.t, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		d := &appsv1.Deployment{}
		if err := r.get("podinfo", d); err != nil {
			return false, err.Error()
		}
		d.Spec.Template.Spec.Containers[0].Image = image
		err := r.env.Client.Update(r.ctx, d)
		return err == nil, fmt.Sprintf("update podinfo: %v", err)
	})
}

func (r *release) phase() flaggerv1.CanaryPhase {
	cd := &flaggerv1.Canary{}
	if err := r.get("podinfo", cd); err != nil {
		return ""
	}
	return cd.Status.Phase
}

func (r *release) waitPhase(want ...flaggerv1.CanaryPhase) flaggerv1.CanaryPhase {
	r.t.Helper()
	var got flaggerv1.CanaryPhase
	testenv.Eventually(r.t, phaseTimeout, 100*time.Millisecond, func() (bool, string) {
		got = r.phase()
		for _, w := range want {
			if got == w {
				return true, ""
			}
		}
		return false, fmt.Sprintf("canary phase %q, want one of %v", got, want)
	})
	return got
}

// terminal waits for Succeeded or Failed.
func (r *release) terminal() flaggerv1.CanaryPhase {
	r.t.Helper()
	return r.waitPhase(flaggerv1.CanaryPhaseSucceeded, flaggerv1.CanaryPhaseFailed)
}

// stepRecorder watches the canary and records every distinct status.lastStepTime, so that the
// spacing of the analysis steps can be checked across controller restarts.
type stepRecorder struct {
	mu    sync.Mutex
	steps []time.Time
	stop  func()
	done  chan struct{}
}

func recordSteps(t *testing.T, env *testenv.Env, ns string) *stepRecorder {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(context.Background(), &flaggerv1.CanaryList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	s := &stepRecorder{stop: w.Stop, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ev := range w.ResultChan() {
			cd, ok := ev.Object.(*flaggerv1.Canary)
			if !ok || ev.Type == watch.Error || cd.Status.LastStepTime == nil {
				continue
			}
			step := cd.Status.LastStepTime.Time
			s.mu.Lock()
			if n := len(s.steps); n == 0 || !s.steps[n-1].Equal(step) {
				s.steps = append(s.steps, step)
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.finish)
	return s
}

func (s *stepRecorder) finish() { s.stop(); <-s.done }

// tooSoon returns the pairs of consecutive steps less than one interval apart.
func (s *stepRecorder) tooSoon(interval time.Duration) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad []string
	for i := 1; i < len(s.steps); i++ {
		if gap := s.steps[i].Sub(s.steps[i-1]); gap < interval {
			bad = append(bad, fmt.Sprintf("step %d ran %s after step %d", i+1, gap, i))
		}
	}
	return bad
}

// checkOutcome asserts what must hold once a release has ended, crashed or not: Failed means the
// primary runs the old image with all the traffic, Succeeded the new one; the target is scaled to
// zero; the steps kept their interval; every object pennant made is owned by the canary.
func (r *release) checkOutcome(phase flaggerv1.CanaryPhase) {
	r.t.Helper()
	want := map[flaggerv1.CanaryPhase]string{flaggerv1.CanaryPhaseFailed: oldImage, flaggerv1.CanaryPhaseSucceeded: newImage}[phase]
	// The terminal phase is written last; give the final writes of the same pass a moment.
	testenv.Eventually(r.t, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		primary := &appsv1.Deployment{}
		if err := r.get("podinfo-primary", primary); err != nil {
			return false, err.Error()
		}
		if got := primary.Spec.Template.Spec.Containers[0].Image; got != want {
			return false, fmt.Sprintf("%s: the primary runs %s, want %s", phase, got, want)
		}
		target := &appsv1.Deployment{}
		if err := r.get("podinfo", target); err != nil {
			return false, err.Error()
		}
		if got := ptr.Deref(target.Spec.Replicas, 1); got != 0 {
			return false, fmt.Sprintf("%s: the target has %d replicas, want 0", phase, got)
		}
		vs := &networkingv1.VirtualService{}
		if err := r.get("podinfo", vs); err != nil {
			return false, err.Error()
		}
		if msg := allOnPrimary(vs); msg != "" {
			return false, fmt.Sprintf("%s: %s", phase, msg)
		}
		return true, ""
	})
	for _, bad := range r.steps.tooSoon(stepInterval) {
		r.t.Errorf("analysis step too soon: %s", bad)
	}
	r.checkOwned()
}

// allOnPrimary describes how a VirtualService's routes give weight to anything but the primary.
func allOnPrimary(vs *networkingv1.VirtualService) string {
	if len(vs.Spec.Http) == 0 {
		return "the VirtualService has no HTTP routes"
	}
	for _, route := range vs.Spec.Http {
		for _, dst := range route.Route {
			host := dst.GetDestination().GetHost()
			if host != "podinfo-primary" && dst.Weight != 0 {
				return fmt.Sprintf("VirtualService route %q gives %d%% to %s", route.Name, dst.Weight, host)
			}
			if host == "podinfo-primary" && dst.Weight != 100 && len(route.Route) > 1 {
				return fmt.Sprintf("VirtualService route %q gives the primary %d%%", route.Name, dst.Weight)
			}
		}
	}
	return ""
}

// checkOwned fails the test for an object in the namespace, other than the target and what the
// control plane makes for it, that no Canary owns: a crash must not orphan anything.
func (r *release) checkOwned() {
	r.t.Helper()
	var objs []client.Object
	deployments := &appsv1.DeploymentList{}
	services := &corev1.ServiceList{}
	vss := &networkingv1.VirtualServiceList{}
	drs := &networkingv1.DestinationRuleList{}
	for _, l := range []client.ObjectList{deployments, services, vss, drs} {
		if err := r.env.Client.List(r.ctx, l, client.InNamespace(r.ns)); err != nil && !apierrors.IsNotFound(err) {
			r.t.Fatalf("list %T: %v", l, err)
		}
	}
	for i := range deployments.Items {
		if deployments.Items[i].Name != "podinfo" {
			objs = append(objs, &deployments.Items[i])
		}
	}
	for i := range services.Items {
		objs = append(objs, &services.Items[i])
	}
	for _, vs := range vss.Items {
		objs = append(objs, vs)
	}
	for _, dr := range drs.Items {
		objs = append(objs, dr)
	}
	for _, o := range objs {
		if !ownedByCanary(o) {
			r.t.Errorf("%T %s is not owned by the canary (owners %v)", o, o.GetName(), o.GetOwnerReferences())
		}
	}
	if len(objs) == 0 {
		r.t.Errorf("no objects made by pennant found in %s", r.ns)
	}
}

func ownedByCanary(o client.Object) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind == "Canary" && ref.Name == "podinfo" && ptr.Deref(ref.Controller, false) {
			return true
		}
	}
	return false
}
