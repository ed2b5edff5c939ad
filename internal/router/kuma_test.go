package router

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// kumaCanary is a kuma canary whose service is named after the test namespace: TrafficRoutes are
// cluster-scoped and the tests share the API server. The TrafficRoute is deleted when the test ends.
func kumaCanary(t *testing.T, e *routerEnv, mesh string) *flaggerv1.Canary {
	t.Helper()
	cd := testCanary("kuma")
	cd.Spec.Service.Name = e.ns
	if mesh != "" {
		cd.Annotations = map[string]string{KumaMeshAnnotation: mesh}
	}
	cd = e.createCanary(t, cd)
	t.Cleanup(func() {
		_ = e.c.Delete(context.Background(), meshObject(kumaTrafficRouteGVK, "", e.ns))
	})
	return cd
}

func kumaSpec(svc, ns string, primary, canary int) string {
	return fmt.Sprintf(`
sources:
- match: {kuma.io/service: "*"}
destinations:
- match: {kuma.io/service: %[1]s_%[2]s_svc_9898}
conf:
  split:
  - weight: %[3]d
    destination: {kuma.io/service: %[1]s-primary_%[2]s_svc_9898}
  - weight: %[4]d
    destination: {kuma.io/service: %[1]s-canary_%[2]s_svc_9898}
`, svc, ns, primary, canary)
}

// TestKumaRouterLifecycle runs a canary on Kuma's real TrafficRoute CRD: initial routing, every weight
// step, a blue/green switch (0/100), promotion back to the primary.
func TestKumaRouterLifecycle(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := kumaCanary(t, e, "mesh-a")
	r := NewKuma(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	tr := meshGet(t, e.c, kumaTrafficRouteGVK, "", e.ns)
	if tr.GetNamespace() != "" {
		t.Errorf("namespace = %q, want a cluster-scoped TrafficRoute", tr.GetNamespace())
	}
	if got := tr.Object["mesh"]; got != "mesh-a" {
		t.Errorf("mesh = %v, want mesh-a", got)
	}
	meshAssertYAML(t, "spec", tr.Object["spec"], kumaSpec(e.ns, e.ns, 100, 0))
	meshAssertYAML(t, "annotations", tr.GetAnnotations(), `"9898.service.kuma.io": http`+meshGeneratedAnnotations)
	if len(tr.GetLabels()) != 0 || len(tr.GetOwnerReferences()) != 0 {
		t.Errorf("labels %v, owner references %v: want none", tr.GetLabels(), tr.GetOwnerReferences())
	}
	meshAssertRoutes(t, r, cd, 100, 0)

	for _, w := range [][2]int{{90, 10}, {80, 20}, {70, 30}, {60, 40}, {50, 50}, {0, 100}, {100, 0}} {
		if err := r.SetRoutes(ctx, cd, w[0], w[1], false); err != nil {
			t.Fatalf("SetRoutes(%v): %v", w, err)
		}
		tr = meshGet(t, e.c, kumaTrafficRouteGVK, "", e.ns)
		meshAssertYAML(t, "spec", tr.Object["spec"], kumaSpec(e.ns, e.ns, w[0], w[1]))
		meshAssertRoutes(t, r, cd, w[0], w[1])
	}

	// Reconcile keeps the weights; unchanged objects are not rewritten.
	if err := r.SetRoutes(ctx, cd, 60, 40, false); err != nil {
		t.Fatal(err)
	}
	rv := meshGet(t, e.c, kumaTrafficRouteGVK, "", e.ns).GetResourceVersion()
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRoutes(ctx, cd, 60, 40, false); err != nil {
		t.Fatal(err)
	}
	tr = meshGet(t, e.c, kumaTrafficRouteGVK, "", e.ns)
	if tr.GetResourceVersion() != rv {
		t.Error("unchanged TrafficRoute was rewritten")
	}
	meshAssertYAML(t, "spec", tr.Object["spec"], kumaSpec(e.ns, e.ns, 60, 40))

	// Finalize leaves the TrafficRoute as it is, as Flagger does.
	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if meshGet(t, e.c, kumaTrafficRouteGVK, "", e.ns).GetResourceVersion() != rv {
		t.Error("Finalize changed the TrafficRoute")
	}
}

// TestKumaRouterDefaultMeshAndApexMetadata: no kuma.io/mesh annotation means mesh "default"; apex
// annotations replace the default protocol annotation. An owner reference to the canary left by
// Flagger is removed, other fields of spec.conf are kept.
func TestKumaRouterDefaultMeshAndApexMetadata(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("kuma")
	cd.Spec.Service.Name = e.ns
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{
		Labels:      map[string]string{"tier": "apex", "kustomize.toolkit.fluxcd.io/name": "x"},
		Annotations: map[string]string{"9898.service.kuma.io/protocol": "http"},
	}
	cd = e.createCanary(t, cd)
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), meshObject(kumaTrafficRouteGVK, "", e.ns)) })

	// A TrafficRoute as Flagger leaves it: owned by the canary, 70/30, with a load balancer.
	ref := cd.OwnerReference()
	meshCreate(t, e.c, `
apiVersion: kuma.io/v1alpha1
kind: TrafficRoute
mesh: default
metadata: {name: `+e.ns+`}
spec:
  sources:
  - match: {kuma.io/service: "*"}
  destinations:
  - match: {kuma.io/service: `+e.ns+`_`+e.ns+`_svc_9898}
  conf:
    loadBalancer: {roundRobin: {}}
    split:
    - weight: 70
      destination: {kuma.io/service: `+e.ns+`-primary_`+e.ns+`_svc_9898}
    - weight: 30
      destination: {kuma.io/service: `+e.ns+`-canary_`+e.ns+`_svc_9898}
`, &ref)
	r := NewKuma(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	tr := meshGet(t, e.c, kumaTrafficRouteGVK, "", e.ns)
	if got := tr.Object["mesh"]; got != "default" {
		t.Errorf("mesh = %v, want default", got)
	}
	conf, _ := tr.Object["spec"].(map[string]any)["conf"].(map[string]any)
	meshAssertYAML(t, "loadBalancer", conf["loadBalancer"], `roundRobin: {}`)
	meshAssertRoutes(t, r, cd, 70, 30)
	meshAssertYAML(t, "labels", tr.GetLabels(), `tier: apex`)
	meshAssertYAML(t, "annotations", tr.GetAnnotations(), `9898.service.kuma.io/protocol: http`+meshGeneratedAnnotations)
	if refs := tr.GetOwnerReferences(); len(refs) != 0 {
		t.Errorf("owner references = %v, want none", refs)
	}
}

// TestKumaRouterForeignOwner refuses a TrafficRoute controlled by something else, and one that routes
// a service of another namespace (another canary's), leaving them as they are.
func TestKumaRouterForeignOwner(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := kumaCanary(t, e, "")
	r := NewKuma(e.c, Options{FieldOwner: "pennant"})

	namespace := &corev1.Namespace{}
	if err := e.c.Get(ctx, client.ObjectKey{Name: e.ns}, namespace); err != nil {
		t.Fatal(err)
	}
	owner := metav1.OwnerReference{APIVersion: "v1", Kind: "Namespace", Name: e.ns, UID: namespace.UID, Controller: ptr.To(true)}
	doc := `
apiVersion: kuma.io/v1alpha1
kind: TrafficRoute
mesh: default
metadata: {name: ` + e.ns + `}
spec:
  destinations:
  - match: {kuma.io/service: ` + e.ns + `_` + e.ns + `_svc_9898}
  conf:
    destination: {kuma.io/service: somewhere}
`
	before := meshCreate(t, e.c, doc, &owner)
	for name, call := range map[string]func() error{
		"Reconcile": func() error { return r.Reconcile(ctx, cd) },
		"SetRoutes": func() error { return r.SetRoutes(ctx, cd, 50, 50, false) },
	} {
		if err := call(); !IsInvalidSpec(err) {
			t.Errorf("controlled by a Namespace: %s = %v, want an InvalidSpecError", name, err)
		}
	}
	if meshGet(t, e.c, kumaTrafficRouteGVK, "", e.ns).GetResourceVersion() != before.GetResourceVersion() {
		t.Error("foreign TrafficRoute was written")
	}
	if err := e.c.Delete(ctx, before); err != nil {
		t.Fatal(err)
	}

	// Same name, no owner, but the destination is <svc>_other-namespace_svc_9898.
	before = meshCreate(t, e.c, `
apiVersion: kuma.io/v1alpha1
kind: TrafficRoute
mesh: default
metadata: {name: `+e.ns+`}
spec:
  destinations:
  - match: {kuma.io/service: `+e.ns+`_other-namespace_svc_9898}
  conf:
    split:
    - weight: 100
      destination: {kuma.io/service: `+e.ns+`-primary_other-namespace_svc_9898}
`, nil)
	for name, call := range map[string]func() error{
		"Reconcile": func() error { return r.Reconcile(ctx, cd) },
		"SetRoutes": func() error { return r.SetRoutes(ctx, cd, 50, 50, false) },
	} {
		if err := call(); !IsInvalidSpec(err) {
			t.Errorf("other namespace's route: %s = %v, want an InvalidSpecError", name, err)
		}
	}
	if meshGet(t, e.c, kumaTrafficRouteGVK, "", e.ns).GetResourceVersion() != before.GetResourceVersion() {
		t.Error("other namespace's TrafficRoute was written")
	}
}

// TestKumaRouterBeforeReconcile: SetRoutes and GetRoutes need the TrafficRoute and create nothing.
func TestKumaRouterBeforeReconcile(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := kumaCanary(t, e, "")
	r := NewKuma(e.c, Options{FieldOwner: "pennant"})
	if err := r.SetRoutes(ctx, cd, 50, 50, false); err == nil {
		t.Error("SetRoutes before Reconcile succeeded")
	}
	if _, _, _, err := r.GetRoutes(ctx, cd); err == nil {
		t.Error("GetRoutes before Reconcile succeeded")
	}
	meshAbsent(t, e.c, kumaTrafficRouteGVK, "", e.ns)
}
