package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
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

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(testenv.Main(m,
		testenv.WithModuleCRDs("istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml"),
		testenv.WithModuleCRDs("sigs.k8s.io/gateway-api",
			"config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
			"config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml"),
		testenv.WithFixtureCRDs("keda.yaml", "gloo.yaml", "knative.yaml")))
}

// fixture is one test's namespace on the local control plane with a running controller.
type fixture struct {
	// requests counts the controller's API requests (not the test's own); paths records them.
	requests *atomic.Int64
	paths    *pathRecorder
	t        *testing.T
	env      *testenv.Env
	ns       string
	c        client.Client
	ctx      context.Context
}

// newFixture starts the canary controller for a fresh namespace on the local control plane.
func newFixture(t *testing.T, tweaks ...func(*controller.Config)) *fixture {
	t.Helper()
	env := testenv.Start(t)
	env.RequireCluster(t)
	ns := env.NewNamespace(t)
	f := &fixture{t: t, env: env, ns: ns, c: env.Client}
	f.requests, f.paths, f.ctx = startController(t, env, ns, "", tweaks...)
	return f
}

// startController runs a canary controller for namespace ns owning the canaries that match
// selector (all when empty), until the test ends. It returns the counter and recorder of its API
// requests and its context.
func startController(t *testing.T, env *testenv.Env, ns, selector string, tweaks ...func(*controller.Config)) (*atomic.Int64, *pathRecorder, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	requests := &atomic.Int64{}
	paths := &pathRecorder{}
	restCfg := rest.CopyConfig(env.Config)
	restCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{paths.RoundTrip(rt), requests} })
	cacheOpts := cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}}
	if err := controller.WatchShard(&cacheOpts, selector); err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:  env.Scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   cacheOpts,
		Client:  client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		// Each test runs its own manager in this process: controller names repeat.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := controller.Config{
		Options:  controller.Options{MeshProvider: "kubernetes", MinInterval: 200 * time.Millisecond, MaxConcurrentReconciles: 2},
		Workload: workload.Options{EnableConfigTracking: true, FieldOwner: "flagger"},
	}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	r, err := controller.NewCanaryReconciler(mgr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop")
		}
	})
	return requests, paths, ctx
}

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func (f *fixture) create(objs ...client.Object) {
	f.t.Helper()
	for _, o := range objs {
		o.SetNamespace(f.ns)
		if err := f.c.Create(context.Background(), o); err != nil {
			f.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func (f *fixture) get(name string, obj client.Object) {
	f.t.Helper()
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, obj); err != nil {
		f.t.Fatalf("getting %T %s: %v", obj, name, err)
	}
}

func (f *fixture) exists(name string, obj client.Object) bool {
	return f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, obj) == nil
}

// update re-reads the object and applies change until the write goes through.
func (f *fixture) update(name string, obj client.Object, change func()) {
	f.t.Helper()
	for range 10 {
		f.get(name, obj)
		change()
		err := f.c.Update(context.Background(), obj)
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("updating %s: conflicts did not clear", name)
}

func (f *fixture) canary(name string) *flaggerv1.Canary {
	cd := &flaggerv1.Canary{}
	f.get(name, cd)
	return cd
}

// waitPhase waits until the canary reaches the phase; it fails at once on an unexpected terminal phase.
func (f *fixture) waitPhase(name string, want flaggerv1.CanaryPhase, timeout time.Duration) *flaggerv1.Canary {
	f.t.Helper()
	var cd *flaggerv1.Canary
	testenv.Eventually(f.t, timeout, 200*time.Millisecond, func() (bool, string) {
		cd = &flaggerv1.Canary{}
		if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, cd); err != nil {
			return false, err.Error()
		}
		got := cd.Status.Phase
		if got != want && (got == flaggerv1.CanaryPhaseFailed || got == flaggerv1.CanaryPhaseSucceeded) &&
			cd.Status.LastAppliedSpec != "" && want != flaggerv1.CanaryPhaseInitialized {
			f.t.Logf("events:\n%s", strings.Join(f.events(), "\n"))
		}
		return got == want, fmt.Sprintf("canary %s phase %q, want %q; conditions %v", name, got, want, cd.Status.Conditions)
	})
	return cd
}

// events lists the canary events of the namespace as "Type Message", oldest first.
func (f *fixture) events() []string {
	var list corev1.EventList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == flaggerv1.CanaryKind {
			out = append(out, e.Type+" "+e.Message)
		}
	}
	return out
}

// waitEvent waits for a canary event whose text contains want.
func (f *fixture) waitEvent(want string, timeout time.Duration) {
	f.t.Helper()
	testenv.Eventually(f.t, timeout, 200*time.Millisecond, func() (bool, string) {
		evs := f.events()
		for _, e := range evs {
			if strings.Contains(e, want) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("no event %q among:\n%s", want, strings.Join(evs, "\n"))
	})
}

func (f *fixture) key(name string) string { return name + "." + f.ns }

func condition(cd *flaggerv1.Canary, typ string) metav1.ConditionStatus {
	if c := flaggerv1.FindCanaryCondition(cd.Status.Conditions, typ); c != nil {
		return c.Status
	}
	return ""
}

func podinfoDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "podinfod",
					Image: "ghcr.io/stefanprodan/podinfo:6.0.0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}, {Name: "http-metrics", ContainerPort: 9797}},
				}}},
			},
		},
	}
}

// blueGreenCanary is a kubernetes-provider canary with short intervals for tests.
func blueGreenCanary(name, kind string, iterations int) *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flaggerv1.CanarySpec{
			Provider:                "kubernetes",
			TargetRef:               flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: kind, Name: name},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Service:                 flaggerv1.CanaryService{Port: 9898},
			Analysis:                &flaggerv1.CanaryAnalysis{Interval: "1s", Threshold: 2, Iterations: iterations},
		},
	}
}

func image(spec corev1.PodSpec) string { return spec.Containers[0].Image }
