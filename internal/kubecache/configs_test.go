package kubecache_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/kubecache"
	"github.com/pennant/pennant/internal/testenv"
	"github.com/pennant/pennant/internal/workload"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// requests records the API requests made through a rest.Config.
type requests struct {
	mu   sync.Mutex
	seen []string
}

func (r *requests) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			r.mu.Lock()
			r.seen = append(r.seen, req.Method+" "+req.URL.Path+"?"+req.URL.RawQuery)
			r.mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

// since returns the requests made after the first n.
func (r *requests) since(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen[n:])
}

func (r *requests) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// setup is a running Configs and a Reader over it, both making their API requests through reqs.
type setup struct {
	env     *testenv.Env
	reqs    *requests
	configs *kubecache.Configs
	reader  *kubecache.Reader
	ctx     context.Context
}

func start(t *testing.T, tweak func(*kubecache.Configs)) *setup {
	t.Helper()
	env := testenv.Start(t)
	reqs := &requests{}
	cl, err := cluster.New(reqs.wrap(env.Config), func(o *cluster.Options) { o.Scheme = env.Scheme })
	if err != nil {
		t.Fatal(err)
	}
	configs := kubecache.NewConfigs(cl)
	if tweak != nil {
		tweak(configs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- configs.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &setup{env: env, reqs: reqs, configs: configs, reader: kubecache.NewReader(configs, cl.GetAPIReader()), ctx: ctx}
}

func (s *setup) create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := s.env.Client.Create(s.ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

func opaque(ns, name, password string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "podinfo"}},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte(password)}}
}

func key(obj client.Object) client.ObjectKey { return client.ObjectKeyFromObject(obj) }

// TestCachedSecretsHaveNoDataAndTheReaderReadsThemOncePerVersion: the cache holds a Secret without
// its data, with its checksum; the Reader returns the data with one API request, and none for
// a second read; a change reaches both, and the cache of another namespace is never started.
func TestCachedSecretsHaveNoDataAndTheReaderReadsThemOncePerVersion(t *testing.T) {
	s := start(t, nil)
	ns, elsewhere := s.env.NewNamespace(t), s.env.NewNamespace(t)
	creds := opaque(ns, "creds", "one")
	s.create(t, creds, opaque(elsewhere, "unrelated", "x"))

	cached := &corev1.Secret{}
	if err := s.configs.Get(s.ctx, key(creds), cached); err != nil {
		t.Fatal(err)
	}
	if cached.Data != nil || !kubecache.Stripped(cached) || cached.Type != corev1.SecretTypeOpaque || cached.Labels["app"] != "podinfo" {
		t.Errorf("cached secret %+v, want no data, the checksum, its type and labels", cached)
	}
	if got, want := kubecache.Checksum(cached), kubecache.DataChecksum(creds); got != want {
		t.Errorf("cached checksum %q, want %q", got, want)
	}

	before := s.reqs.count()
	full := &corev1.Secret{}
	if err := s.reader.Get(s.ctx, key(creds), full); err != nil {
		t.Fatal(err)
	}
	if string(full.Data["password"]) != "one" || kubecache.Stripped(full) {
		t.Errorf("Reader returned %+v, want the data", full)
	}
	if got := s.reqs.since(before); len(got) != 1 || !strings.HasPrefix(got[0], "GET /api/v1/namespaces/"+ns+"/secrets/creds") {
		t.Errorf("first read made requests %q, want one GET of the secret", got)
	}
	before = s.reqs.count()
	for range 3 {
		if err := s.reader.Get(s.ctx, key(creds), &corev1.Secret{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.reqs.since(before); len(got) != 0 {
		t.Errorf("reads at the same resourceVersion made requests %q, want none", got)
	}

	changed := full.DeepCopy()
	changed.Data["password"] = []byte("two")
	if err := s.env.Client.Update(s.ctx, changed); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		got := &corev1.Secret{}
		err := s.configs.Get(s.ctx, key(creds), got)
		return err == nil && got.ResourceVersion == changed.ResourceVersion,
			fmt.Sprintf("cached resourceVersion %s (%v), want %s", got.ResourceVersion, err, changed.ResourceVersion)
	})
	_ = s.configs.Get(s.ctx, key(creds), cached)
	if kubecache.Checksum(cached) != kubecache.DataChecksum(changed) {
		t.Errorf("cached checksum %q after the change, want %q", kubecache.Checksum(cached), kubecache.DataChecksum(changed))
	}
	before = s.reqs.count()
	if err := s.reader.Get(s.ctx, key(creds), full); err != nil || string(full.Data["password"]) != "two" {
		t.Errorf("Reader after the change: %v, %q, want two", err, full.Data["password"])
	}
	if got := s.reqs.since(before); len(got) != 1 {
		t.Errorf("read of the new version made requests %q, want one GET", got)
	}

	if got := s.configs.Namespaces(); !slices.Equal(got, []string{ns}) {
		t.Errorf("namespaces cached: %v, want only %s", got, ns)
	}
	err := s.configs.Get(s.ctx, client.ObjectKey{Namespace: ns, Name: "missing"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("missing secret: %v, want NotFound", err)
	}
}

// TestTheAPIRefusesACachedSecret: an object that carries the cache's checksum annotation cannot be
// written, so a cached Secret without its data is never written back by mistake.
func TestTheAPIRefusesACachedSecret(t *testing.T) {
	s := start(t, nil)
	ns := s.env.NewNamespace(t)
	creds := opaque(ns, "creds", "one")
	s.create(t, creds)
	cached := &corev1.Secret{}
	if err := s.configs.Get(s.ctx, key(creds), cached); err != nil {
		t.Fatal(err)
	}
	err := s.env.Client.Update(s.ctx, cached)
	if !apierrors.IsInvalid(err) {
		t.Errorf("writing the cached secret back: %v, want Invalid", err)
	}
	stored := &corev1.Secret{}
	if err := s.env.Client.Get(s.ctx, key(creds), stored); err != nil || string(stored.Data["password"]) != "one" {
		t.Errorf("stored secret %+v (%v), want its data intact", stored, err)
	}
}

// TestConfigEventsReachTheController: a change of a Secret in a cached namespace is an event of
// Source, for informers started before and after the source.
func TestConfigEventsReachTheController(t *testing.T) {
	s := start(t, nil)
	ns := s.env.NewNamespace(t)
	creds, settings := opaque(ns, "creds", "one"), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}}
	s.create(t, creds, settings)
	if err := s.configs.Get(s.ctx, key(creds), &corev1.Secret{}); err != nil { // started before the source
		t.Fatal(err)
	}
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	t.Cleanup(queue.ShutDown)
	toRequest := func(kind string) handler.EventHandler {
		return handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: kind + "/" + o.GetName()}}}
		})
	}
	for _, src := range []interface {
		Start(context.Context, workqueue.TypedRateLimitingInterface[reconcile.Request]) error
	}{
		s.configs.Source(&corev1.Secret{}, toRequest("secret")), s.configs.Source(&corev1.ConfigMap{}, toRequest("configmap")),
	} {
		if err := src.Start(s.ctx, queue); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.configs.Get(s.ctx, key(settings), &corev1.ConfigMap{}); err != nil { // started after
		t.Fatal(err)
	}
	seen := map[string]bool{}
	want := []string{"secret/creds", "configmap/settings"}
	for !seen[want[0]] || !seen[want[1]] {
		req, shutdown := queue.Get()
		if shutdown {
			t.Fatal("queue shut down")
		}
		seen[req.Name] = true
		queue.Forget(req)
		queue.Done(req)
	}
	creds.Data["password"] = []byte("two")
	if err := s.env.Client.Update(s.ctx, creds); err != nil {
		t.Fatal(err)
	}
	// kube-controller-manager publishes kube-root-ca.crt into every new namespace, whenever it gets
	// to it: its event may come at any time and is not the one this test waits for.
	got := make(chan string, 8)
	go func() {
		for {
			req, shutdown := queue.Get()
			if shutdown {
				return
			}
			select { // never blocks once the test has returned
			case got <- req.Name:
			default:
			}
			queue.Done(req)
		}
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case name := <-got:
			switch name {
			case "secret/creds":
				return
			case "configmap/kube-root-ca.crt":
				continue
			}
			t.Errorf("event for %s, want secret/creds", name)
		case <-deadline:
			t.Fatal("no event for the change of the secret")
		}
	}
}

// TestIdleNamespacesAreDropped: a namespace nothing reads any more and Keep does not claim loses
// its informers; one Keep claims keeps them.
func TestIdleNamespacesAreDropped(t *testing.T) {
	var kept string
	s := start(t, func(c *kubecache.Configs) {
		c.Idle = 500 * time.Millisecond
		c.Keep = func(_ context.Context, ns string) bool { return ns == kept }
	})
	kept = s.env.NewNamespace(t)
	idle := s.env.NewNamespace(t)
	for _, ns := range []string{kept, idle} {
		if err := s.configs.Get(s.ctx, client.ObjectKey{Namespace: ns, Name: "any"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
			t.Fatalf("reading a missing ConfigMap: %v", err)
		}
	}
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		got := s.configs.Namespaces()
		return slices.Equal(got, []string{kept}), fmt.Sprintf("namespaces cached %v, want only %s", got, kept)
	})
}

// TestAForbiddenNamespaceFailsFast: when the controller may not list Secrets in a namespace, a read
// fails with the API's error at once instead of waiting for the informer to sync.
func TestAForbiddenNamespaceFailsFast(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "pennant-test-nobody"}
	cl, err := cluster.New(cfg, func(o *cluster.Options) { o.Scheme = env.Scheme })
	if err != nil {
		t.Fatal(err)
	}
	configs := kubecache.NewConfigs(cl)
	configs.SyncTimeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = configs.Start(ctx) }()
	began := time.Now()
	err = configs.Get(ctx, client.ObjectKey{Namespace: ns, Name: "creds"}, &corev1.Secret{})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("read: %v, want the API's forbidden", err)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("the read failed after %s, want at once", took)
	}
}

// TestTrackedConfigsFromTheCache: the checksums of a canary's tracked configs come from the cache
// alone (no API request), a change of a Secret's data changes them, and the -primary copies get
// the data, read once per version of each config.
func TestTrackedConfigsFromTheCache(t *testing.T) {
	s := start(t, nil)
	ns := s.env.NewNamespace(t)
	creds := opaque(ns, "creds", "one")
	settings := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"color": "blue"}}
	labels := map[string]string{"app": "podinfo"}
	target := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "podinfod", Image: "ghcr.io/stefanprodan/podinfo:6.0.0",
						EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}}}}},
					Volumes: []corev1.Volume{{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}}},
				},
			},
		},
	}
	cd := &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo"},
		Spec: flaggerv1.CanarySpec{
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1.CanaryService{Port: 9898},
			Analysis:  &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 1, Iterations: 1},
		},
	}
	s.create(t, creds, settings, target, cd)

	// The workload's own reads and writes (Deployments, copies) go through the test's client: the
	// requests counted are config tracking's.
	f := workload.NewFactory(s.env.Client, workload.Options{EnableConfigTracking: true, FieldOwner: "flagger"})
	f.UseConfigCache(s.configs, s.reader)
	ctl, err := f.Controller(cd)
	if err != nil {
		t.Fatal(err)
	}
	// The deployment controller updates the primary too: retry a write it raced with.
	promote := func() {
		t.Helper()
		if err := retry.RetryOnConflict(retry.DefaultRetry, func() error { return ctl.Promote(s.ctx, cd) }); err != nil {
			t.Fatal(err)
		}
	}
	tracked := func() map[string]string {
		t.Helper()
		got, err := ctl.TrackedConfigs(s.ctx, cd)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := tracked() // starts the namespace's informers
	want := map[string]string{"secret/creds": kubecache.DataChecksum(creds), "configmap/settings": kubecache.DataChecksum(settings)}
	if !equal(first, want) {
		t.Errorf("tracked configs %v, want %v", first, want)
	}

	before := s.reqs.count()
	if err := ctl.Initialize(s.ctx, cd); err != nil {
		t.Fatal(err)
	}
	if got := s.reqs.since(before); len(got) != 2 {
		t.Errorf("creating the primary made config requests %q, want one GET per config", got)
	}
	copyOf := func(name string, obj client.Object) client.Object {
		t.Helper()
		if err := s.env.Client.Get(s.ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			t.Fatal(err)
		}
		return obj
	}
	if got := copyOf("creds-primary", &corev1.Secret{}).(*corev1.Secret); string(got.Data["password"]) != "one" || kubecache.Stripped(got) {
		t.Errorf("secret copy %+v, want the data", got)
	}
	if got := copyOf("settings-primary", &corev1.ConfigMap{}).(*corev1.ConfigMap); got.Data["color"] != "blue" {
		t.Errorf("configmap copy %+v, want the data", got)
	}
	waitCached(t, s, ns, "creds-primary", &corev1.Secret{})
	waitCached(t, s, ns, "settings-primary", &corev1.ConfigMap{})

	before = s.reqs.count()
	for range 3 {
		if got := tracked(); !equal(got, first) {
			t.Errorf("tracked configs changed to %v without a change", got)
		}
		if err := ctl.Initialize(s.ctx, cd); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.reqs.since(before); len(got) != 0 {
		t.Errorf("an idle canary's config tracking made requests %q, want none", got)
	}

	creds.Data["password"] = []byte("two")
	if err := s.env.Client.Update(s.ctx, creds); err != nil {
		t.Fatal(err)
	}
	before = s.reqs.count()
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		got := tracked()
		return got["secret/creds"] == kubecache.DataChecksum(creds) && got["configmap/settings"] == first["configmap/settings"],
			fmt.Sprintf("tracked configs %v, want the secret's new checksum %s", got, kubecache.DataChecksum(creds))
	})
	if got := s.reqs.since(before); len(got) != 0 {
		t.Errorf("seeing the change made requests %q, want none", got)
	}

	before = s.reqs.count()
	promote()
	if got := s.reqs.since(before); len(got) != 1 || !strings.Contains(got[0], "/secrets/creds") {
		t.Errorf("promotion made config requests %q, want one GET of the changed secret", got)
	}
	if got := copyOf("creds-primary", &corev1.Secret{}).(*corev1.Secret); string(got.Data["password"]) != "two" {
		t.Errorf("secret copy after the promotion %+v, want the new data", got)
	}
	if got := copyOf("settings-primary", &corev1.ConfigMap{}).(*corev1.ConfigMap); got.Data["color"] != "blue" {
		t.Errorf("configmap copy after the promotion %+v, want its data", got)
	}
	waitCached(t, s, ns, "creds-primary", copyOf("creds-primary", &corev1.Secret{}))
	before = s.reqs.count()
	rv := copyOf("creds-primary", &corev1.Secret{}).GetResourceVersion()
	promote()
	if got := s.reqs.since(before); len(got) != 0 {
		t.Errorf("promoting again made config requests %q, want none", got)
	}
	if got := copyOf("creds-primary", &corev1.Secret{}).GetResourceVersion(); got != rv {
		t.Errorf("promoting again rewrote the secret copy (resourceVersion %s, was %s)", got, rv)
	}
}

// waitCached waits until the cache holds name, at want's resourceVersion when want has one.
func waitCached(t *testing.T, s *setup, ns, name string, want client.Object) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		got := want.DeepCopyObject().(client.Object)
		err := s.configs.Get(s.ctx, client.ObjectKey{Namespace: ns, Name: name}, got)
		return err == nil && (want.GetResourceVersion() == "" || got.GetResourceVersion() == want.GetResourceVersion()),
			fmt.Sprintf("%s not cached at resourceVersion %q: %v", name, want.GetResourceVersion(), err)
	})
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
