// Package bench measures Pennant on the local control plane: API requests made for idle canaries and
// the time a release takes beyond what its analysis needs. Run with `make bench`; numbers are printed.
package bench

import (
	"context"
	"fmt"
	"github.com/go-logr/logr"
	"os"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/testenv"
	"github.com/pennant/pennant/internal/workload"
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	// BenchmarkScale's Istio canaries write VirtualServices and DestinationRules.
	os.Exit(testenv.Main(m, testenv.WithModuleCRDs("istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml")))
}

const (
	idleCanaries = 20
	idleWindow   = time.Minute
)

// BenchmarkIdleCanaries counts the API requests the controller makes for 20 initialized canaries
// that nothing changes, over one minute. Target: at most 1 request per canary per minute.
func BenchmarkIdleCanaries(b *testing.B) {
	s := start(b, 10*time.Second)
	for i := range idleCanaries {
		name := fmt.Sprintf("app%02d", i)
		s.create(b, deployment(name), bgCanary(name, "10s", 3))
	}
	for i := range idleCanaries {
		s.waitPhase(b, fmt.Sprintf("app%02d", i), flaggerv1.CanaryPhaseInitialized, 2*time.Minute)
	}
	time.Sleep(5 * time.Second) // let initialization's last events settle
	for b.Loop() {
		before := requests(b)
		if before == 0 {
			b.Fatal("rest_client_requests_total is not exported: the benchmark would measure nothing")
		}
		time.Sleep(idleWindow)
		perCanaryMinute := (requests(b) - before) / idleCanaries / idleWindow.Minutes()
		b.ReportMetric(perCanaryMinute, "requests/canary/min")
		fmt.Printf("idle: %d canaries, %.2f API requests per canary per minute (target <= 1; Flagger, estimated from its code, not measured: ~70, a dozen GETs per 10s tick)\n",
			idleCanaries, perCanaryMinute)
	}
}

// BenchmarkReleaseOverhead releases a blue/green canary whose analysis needs 3 x 10s and reports the
// time beyond those 30s from the image change to Succeeded. Target: at most one interval (10s).
func BenchmarkReleaseOverhead(b *testing.B) {
	const interval, iterations = 10 * time.Second, 3
	s := start(b, 10*time.Second)
	s.create(b, deployment("podinfo"), bgCanary("podinfo", "10s", iterations))
	s.waitPhase(b, "podinfo", flaggerv1.CanaryPhaseInitialized, 2*time.Minute)
	version := 0
	for b.Loop() {
		version++
		began := time.Now()
		d := &appsv1.Deployment{}
		s.get(b, "podinfo", d)
		d.Spec.Template.Spec.Containers[0].Image = fmt.Sprintf("ghcr.io/stefanprodan/podinfo:6.1.%d", version)
		if err := s.c.Update(context.Background(), d); err != nil {
			b.Fatal(err)
		}
		s.waitPhase(b, "podinfo", flaggerv1.CanaryPhaseProgressing, time.Minute)
		s.waitPhase(b, "podinfo", flaggerv1.CanaryPhaseSucceeded, 3*time.Minute)
		took := time.Since(began)
		overhead := took - iterations*interval
		b.ReportMetric(overhead.Seconds(), "overhead-s")
		fmt.Printf("release: %s for an analysis of %d x %s: overhead %s (target <= %s; Flagger, estimated from its scheduler, not measured: 3-4 intervals)\n",
			took.Round(100*time.Millisecond), iterations, interval, overhead.Round(100*time.Millisecond), interval)
	}
}

type setup struct {
	ns string
	c  client.Client
}

func start(b *testing.B, minInterval time.Duration) *setup {
	env := testenv.Start(b)
	env.RequireCluster(b)
	ns := env.NewNamespace(b)
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		b.Fatal(err)
	}
	r, err := controller.NewCanaryReconciler(mgr, controller.Config{
		Options:  controller.Options{MeshProvider: "kubernetes", MinInterval: minInterval, MaxConcurrentReconciles: 2},
		Workload: workload.Options{EnableConfigTracking: true, FieldOwner: "flagger"},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return &setup{ns: ns, c: env.Client}
}

// requests sums client-go's rest_client_requests_total as controller-runtime exports it. The
// benchmark's own client is idle while it is read, so the difference is the controller's.
func requests(b *testing.B) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, f := range families {
		if f.GetName() != "rest_client_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

func (s *setup) create(b *testing.B, objs ...client.Object) {
	for _, o := range objs {
		o.SetNamespace(s.ns)
		if err := s.c.Create(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
}

func (s *setup) get(b *testing.B, name string, obj client.Object) {
	if err := s.c.Get(context.Background(), types.NamespacedName{Namespace: s.ns, Name: name}, obj); err != nil {
		b.Fatal(err)
	}
}

func (s *setup) waitPhase(b *testing.B, name string, want flaggerv1.CanaryPhase, timeout time.Duration) {
	testenv.Eventually(b, timeout, 100*time.Millisecond, func() (bool, string) {
		cd := &flaggerv1.Canary{}
		if err := s.c.Get(context.Background(), types.NamespacedName{Namespace: s.ns, Name: name}, cd); err != nil {
			return false, err.Error()
		}
		return cd.Status.Phase == want, fmt.Sprintf("%s is %q, want %q", name, cd.Status.Phase, want)
	})
}

func deployment(name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "podinfod", Image: "ghcr.io/stefanprodan/podinfo:6.0.0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
				}}},
			},
		},
	}
}

func bgCanary(name, interval string, iterations int) *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flaggerv1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   flaggerv1.CanaryService{Port: 9898},
			Analysis:  &flaggerv1.CanaryAnalysis{Interval: interval, Threshold: 1, Iterations: iterations},
		},
	}
}
