package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// updateGolden (UPDATE_GOLDEN=1) rewrites the golden files in testdata/ instead of comparing.
var updateGolden = os.Getenv("UPDATE_GOLDEN") == "1"

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	os.Exit(testenv.Main(m))
}

// fixture is a namespace of the local control plane with Pennant's controller running in-process
// (wired as internal/controller's tests do) and an Env of the plugin for it.
type fixture struct {
	// stopController stops the controller (the test's namespace stays).
	stopController func()
	t              *testing.T
	ns             string
	c              client.Client
	env            *Env
	out            *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	te := testenv.Start(t)
	te.RequireCluster(t)
	ns := te.NewNamespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	mgr, err := ctrl.NewManager(te.Config, ctrl.Options{
		Scheme:     te.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
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
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop")
		}
	}
	t.Cleanup(stop)
	env, err := NewEnv(te.Config, ns, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &bytes.Buffer{}
	env.Out, env.ErrOut = out, out
	env.Age = func(time.Time) string { return "AGE" } // stable golden files
	return &fixture{stopController: stop, t: t, ns: ns, c: te.Client, env: env, out: out}
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

// update re-reads the object and applies change until the write goes through.
func (f *fixture) update(name string, obj client.Object, change func()) {
	f.t.Helper()
	for range 10 {
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, obj); err != nil {
			f.t.Fatal(err)
		}
		change()
		if err := f.c.Update(context.Background(), obj); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("updating %s: conflicts did not clear", name)
}

func (f *fixture) waitPhase(name string, want flaggerv1.CanaryPhase) {
	f.t.Helper()
	testenv.Eventually(f.t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		cd := &flaggerv1.Canary{}
		if err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, cd); err != nil {
			return false, err.Error()
		}
		return cd.Status.Phase == want, fmt.Sprintf("phase %q, want %q", cd.Status.Phase, want)
	})
}

// waitFor runs the command until its output (the whole of it) satisfies ok.
func (f *fixture) waitFor(run func() error, ok func(out string) bool) string {
	f.t.Helper()
	var out string
	testenv.Eventually(f.t, 60*time.Second, 300*time.Millisecond, func() (bool, string) {
		f.out.Reset()
		if err := run(); err != nil {
			return false, err.Error()
		}
		out = f.out.String()
		return ok(out), out
	})
	return out
}

// setImage starts a release.
func (f *fixture) setImage(name, image string) {
	d := &appsv1.Deployment{}
	f.update(name, d, func() { d.Spec.Template.Spec.Containers[0].Image = image })
}

// normalise replaces the test's namespace, so that golden files hold for every run.
func (f *fixture) normalise(s string) string { return strings.ReplaceAll(s, f.ns, "NS") }

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (UPDATE_GOLDEN=1 with -run %s rewrites it):\n--- got\n%s\n--- want\n%s", path, t.Name(), got, want)
	}
}

func podinfo(name string) *appsv1.Deployment {
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

// blueGreen is a kubernetes-provider canary with short intervals.
func blueGreen(name string, iterations int) *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flaggerv1.CanarySpec{
			Provider:                "kubernetes",
			TargetRef:               flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Service:                 flaggerv1.CanaryService{Port: 9898},
			Analysis:                &flaggerv1.CanaryAnalysis{Interval: "1s", Threshold: 2, Iterations: iterations},
		},
	}
}

// hookServer is a webhook or gate on 127.0.0.1 answering status to every call.
func hookServer(t *testing.T, status int) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
	t.Cleanup(s.Close)
	return s.URL
}

// dropLines removes the lines matching re (events whose timing varies between runs).
func dropLines(s string, re *regexp.Regexp) string {
	var keep []string
	for _, l := range strings.SplitAfter(s, "\n") {
		if !re.MatchString(l) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
