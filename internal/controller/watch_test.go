package controller_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/testenv"
)

// driftDeadline is how soon a hand edit must be undone or a new reference picked up: far below the
// one-minute poll these used to wait for, with room for a loaded machine.
const driftDeadline = 10 * time.Second

// waitVirtualServiceHosts waits until the VirtualService's hosts are want.
func (f *fixture) waitVirtualServiceHosts(name string, want []string, timeout time.Duration) time.Duration {
	f.t.Helper()
	start := time.Now()
	testenv.Eventually(f.t, timeout, 50*time.Millisecond, func() (bool, string) {
		vs := &istionetv1.VirtualService{}
		f.get(name, vs)
		return slices.Equal(vs.Spec.Hosts, want), "VirtualService hosts " + strings.Join(vs.Spec.Hosts, ",")
	})
	return time.Since(start)
}

// expectIdle fails when the controller makes any API request for a while: a watch event of its
// own write must not start a loop of writes.
func (f *fixture) expectIdle(what string) {
	f.t.Helper()
	time.Sleep(time.Second)
	before := f.requests.Load()
	time.Sleep(3 * time.Second)
	if got := f.requests.Load() - before; got != 0 {
		f.t.Errorf("%s: the controller made %d API requests in 3s of an idle canary, want 0", what, got)
	}
}

func TestHandEditedVirtualServiceIsCorrected(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.Provider = "istio"
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.expectIdle("after initialization")

	vs := &istionetv1.VirtualService{}
	f.update("podinfo", vs, func() { vs.Spec.Hosts = []string{"hand-edited.example.com"} })
	took := f.waitVirtualServiceHosts("podinfo", []string{"podinfo"}, driftDeadline)
	t.Logf("hand edit corrected after %v", took)
	f.expectIdle("after the correction")
}

func TestIngressRefCreatedAfterTheCanaryUnblocksIt(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.Provider = "nginx"
	cd.Spec.IngressRef = &flaggerv1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "podinfo"}
	f.create(podinfoDeployment("podinfo", 1), cd)
	testenv.Eventually(t, phaseTimeout, 200*time.Millisecond, func() (bool, string) {
		c := flaggerv1.FindCanaryCondition(f.canary("podinfo").Status.Conditions, flaggerv1.ReadyCondition)
		return c != nil && c.Reason == "ReferenceNotFound", "Ready condition " + ptrString(c)
	})
	time.Sleep(2 * time.Second) // the canary settles on the missing reference

	start := time.Now()
	f.create(podinfoIngress("podinfo"))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, driftDeadline)
	t.Logf("initialized %v after the Ingress was created", time.Since(start))
	f.get("podinfo-canary", &networkingv1.Ingress{})
	f.expectIdle("after initialization")
}

func ptrString(c *flaggerv1.CanaryCondition) string {
	if c == nil {
		return "<none>"
	}
	return c.Reason + ": " + c.Message
}

func podinfoIngress(name string) *networkingv1.Ingress {
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "app.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: name, Port: networkingv1.ServiceBackendPort{Number: 9898},
				}},
			}}}},
		}}},
	}
}

var traefikServiceGVK = schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "TraefikService"}

const traefikServiceCRD = "traefikservices.traefik.io"

// removeCRD deletes a CRD and waits until it is gone.
func removeCRD(t *testing.T, c client.Client, name string) {
	t.Helper()
	crd := &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Delete(context.Background(), crd); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	testenv.Eventually(t, time.Minute, 200*time.Millisecond, func() (bool, string) {
		err := c.Get(context.Background(), types.NamespacedName{Name: name}, &apiextensionsv1.CustomResourceDefinition{})
		return apierrors.IsNotFound(err), "CRD " + name + " still there"
	})
}

func traefikRoutes(f *fixture) []any {
	ts := &unstructured.Unstructured{}
	ts.SetGroupVersionKind(traefikServiceGVK)
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "podinfo"}, ts); err != nil {
		return nil
	}
	services, _, _ := unstructured.NestedSlice(ts.Object, "spec", "weighted", "services")
	return services
}

// TestRoutingCRDInstalledAfterTheControllerStarted installs Traefik's CRDs after the manager started:
// the waiting canary goes on at once, and its TraefikService is watched (a hand edit is undone).
// Removing the CRD again stops nothing but that canary, which reports it.
func TestRoutingCRDInstalledAfterTheControllerStarted(t *testing.T) {
	env := testenv.Start(t)
	env.RequireCluster(t)
	removeCRD(t, env.Client, traefikServiceCRD)
	f := newFixture(t)
	other := blueGreenCanary("other", "Deployment", 1)
	f.create(podinfoDeployment("other", 1), other)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.Provider = "traefik"
	f.create(podinfoDeployment("podinfo", 1), cd)
	testenv.Eventually(t, phaseTimeout, 200*time.Millisecond, func() (bool, string) {
		c := flaggerv1.FindCanaryCondition(f.canary("podinfo").Status.Conditions, flaggerv1.ReadyCondition)
		return c != nil && c.Reason == "CRDNotInstalled", "Ready condition " + ptrString(c)
	})
	// Let the retries back off beyond what the test waits below.
	time.Sleep(3 * time.Second)

	start := time.Now()
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{repoPath(t, "test/crds/traefik.yaml")}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatal(err)
	}
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, driftDeadline)
	t.Logf("initialized %v after the CRDs were installed", time.Since(start))
	if !routesToPrimary(traefikRoutes(f)) {
		t.Fatalf("TraefikService services = %v, want the primary", traefikRoutes(f))
	}

	ts := &unstructured.Unstructured{}
	ts.SetGroupVersionKind(traefikServiceGVK)
	f.update("podinfo", ts, func() {
		_ = unstructured.SetNestedSlice(ts.Object, []any{map[string]any{"name": "elsewhere", "port": int64(80), "weight": int64(100)}}, "spec", "weighted", "services")
	})
	testenv.Eventually(t, driftDeadline, 50*time.Millisecond, func() (bool, string) {
		return routesToPrimary(traefikRoutes(f)), "TraefikService services still hand-edited"
	})
	f.expectIdle("after the correction")

	removeCRD(t, env.Client, traefikServiceCRD)
	touch := &flaggerv1.Canary{}
	f.update("podinfo", touch, func() { touch.Annotations = map[string]string{"touch": "1"} })
	testenv.Eventually(t, driftDeadline, 200*time.Millisecond, func() (bool, string) {
		c := flaggerv1.FindCanaryCondition(f.canary("podinfo").Status.Conditions, flaggerv1.ReadyCondition)
		return c != nil && c.Reason == "CRDNotInstalled", "Ready condition " + ptrString(c)
	})
	// The controller goes on with the others.
	f.setImage("other", "ghcr.io/stefanprodan/podinfo:6.1.1")
	f.waitPhase("other", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
}

// routesToPrimary tells whether a TraefikService's weighted services include the primary.
func routesToPrimary(services []any) bool {
	for _, s := range services {
		if m, ok := s.(map[string]any); ok && m["name"] == "podinfo-primary" {
			return true
		}
	}
	return false
}

func repoPath(t *testing.T, rel string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root + "/" + rel
}

// pathRecorder records the paths of the API requests made through a rest.Config.
type pathRecorder struct {
	mu    sync.Mutex
	paths []string
}

func (p *pathRecorder) RoundTrip(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		p.mu.Lock()
		p.paths = append(p.paths, r.Method+" "+r.URL.Path)
		p.mu.Unlock()
		return next.RoundTrip(r)
	})
}

func (p *pathRecorder) matching(substr string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, s := range p.paths {
		if strings.Contains(s, substr) {
			out = append(out, s)
		}
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestServiceMeshOnAnotherCluster gives the controller a service mesh cluster of its own
// (-kubeconfig-service-mesh). The test's control plane is the only one, so the "mesh cluster" is
// the same API server reached under another host name (localhost instead of 127.0.0.1), as a
// remote cluster would be: every Istio request goes through the mesh cluster's connection and none
// through the main one, the VirtualService carries no owner reference to a canary of another
// cluster (its owner is in an annotation), and a hand edit seen by the mesh cluster's watch is undone.
func TestServiceMeshOnAnotherCluster(t *testing.T) {
	env := testenv.Start(t)
	env.RequireCluster(t)
	meshCfg := rest.CopyConfig(env.Config)
	meshCfg.Host = strings.Replace(meshCfg.Host, "127.0.0.1", "localhost", 1)
	if meshCfg.Host == env.Config.Host {
		t.Fatalf("API server host %q: cannot reach it under another name", env.Config.Host)
	}
	meshRequests := &pathRecorder{}
	meshCfg.Wrap(meshRequests.RoundTrip)

	f := newFixture(t, func(cfg *controller.Config) {
		mesh, err := cluster.New(meshCfg, func(o *cluster.Options) {
			o.Scheme = env.Scheme
			o.Client = client.Options{Cache: &client.CacheOptions{Unstructured: true}}
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.MeshCluster = mesh
	})
	mainRequests := f.paths

	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.Provider = "istio"
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	if got := mainRequests.matching("networking.istio.io"); len(got) > 0 {
		t.Errorf("Istio requests through the main cluster's connection: %v", got)
	}
	if got := meshRequests.matching("/virtualservices"); len(got) == 0 {
		t.Error("no VirtualService request through the mesh cluster's connection")
	}
	if got := meshRequests.matching("/deployments"); len(got) > 0 {
		t.Errorf("workload requests through the mesh cluster's connection: %v", got)
	}
	vs := &istionetv1.VirtualService{}
	f.get("podinfo", vs)
	if len(vs.OwnerReferences) != 0 || !strings.Contains(vs.Annotations[controller.CanaryOwnerAnnotation], string(f.canary("podinfo").UID)) {
		t.Errorf("VirtualService owners %v, annotation %q: want none, and the canary in the annotation",
			vs.OwnerReferences, vs.Annotations[controller.CanaryOwnerAnnotation])
	}

	f.update("podinfo", vs, func() { vs.Spec.Hosts = []string{"hand-edited.example.com"} })
	f.waitVirtualServiceHosts("podinfo", []string{"podinfo"}, driftDeadline)
	f.expectIdle("after the correction")
}
