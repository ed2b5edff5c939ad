package router

import (
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Helpers shared by the SMI, Kuma and App Mesh router tests.

// meshGet reads an object of kind gvk, failing the test when it cannot.
func meshGet(t *testing.T, c client.Client, gvk schema.GroupVersionKind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	u := meshObject(gvk, namespace, name)
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(u), u); err != nil {
		t.Fatalf("get %s %s: %v", gvk.Kind, name, err)
	}
	return u
}

// meshAbsent fails the test when the object exists.
func meshAbsent(t *testing.T, c client.Client, gvk schema.GroupVersionKind, namespace, name string) {
	t.Helper()
	u := meshObject(gvk, namespace, name)
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(u), u); err == nil {
		t.Errorf("%s %s exists, want none", gvk.Kind, name)
	}
}

// meshAssertYAML compares got, as JSON, with the YAML document want.
func meshAssertYAML(t *testing.T, what string, got any, want string) {
	t.Helper()
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, err := yaml.YAMLToJSON([]byte(want))
	if err != nil {
		t.Fatalf("bad expectation for %s: %v", what, err)
	}
	var g, w any
	if err := json.Unmarshal(gotJSON, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(wantJSON, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		gotYAML, _ := yaml.Marshal(g)
		t.Errorf("%s:\n--- got\n%s--- want\n%s", what, gotYAML, want)
	}
}

// meshAssertRoutes checks what GetRoutes reports.
func meshAssertRoutes(t *testing.T, r Interface, cd *flaggerv1.Canary, wantPrimary, wantCanary int) {
	t.Helper()
	p, c, m, err := r.GetRoutes(context.Background(), cd)
	if err != nil {
		t.Fatalf("GetRoutes: %v", err)
	}
	if p != wantPrimary || c != wantCanary || m {
		t.Errorf("GetRoutes = %d/%d mirrored=%v, want %d/%d", p, c, m, wantPrimary, wantCanary)
	}
}

// meshAssertController checks the controller reference of a generated object.
func meshAssertController(t *testing.T, u *unstructured.Unstructured, cd *flaggerv1.Canary) {
	t.Helper()
	ref := metav1.GetControllerOf(u)
	if ref == nil || ref.UID != cd.UID || ref.Kind != "Canary" || ref.APIVersion != "flagger.app/v1beta1" ||
		!ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("%s %s controller = %+v, want canary %s", u.GetKind(), u.GetName(), ref, cd.Name)
	}
}

// meshForeignOwner creates a ConfigMap in the namespace and returns an owner reference that makes it the
// controller of an object.
func meshForeignOwner(t *testing.T, c client.Client, namespace string) metav1.OwnerReference {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other-owner", Namespace: namespace}}
	if err := c.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID, Controller: ptr.To(true)}
}

// meshCreate creates an object from YAML.
func meshCreate(t *testing.T, c client.Client, doc string, owner *metav1.OwnerReference) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	if owner != nil {
		u.SetOwnerReferences([]metav1.OwnerReference{*owner})
	}
	if err := c.Create(context.Background(), u); err != nil {
		t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return u
}

const meshGeneratedAnnotations = `
kustomize.toolkit.fluxcd.io/reconcile: disabled
helm.toolkit.fluxcd.io/driftDetection: disabled`

// smiSpec is the expected TrafficSplit spec; v1alpha1 weights are quantity strings.
func smiSpec(version, service string, primary, canary int) string {
	w := func(n int) string {
		if version == SMIv1alpha1 {
			return `"` + strconv.Itoa(n) + `"`
		}
		return strconv.Itoa(n)
	}
	return `
service: ` + service + `
backends:
- service: podinfo-canary
  weight: ` + w(canary) + `
- service: podinfo-primary
  weight: ` + w(primary)
}

func smiGVK(version string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: smiGroup, Version: version, Kind: "TrafficSplit"}
}

// TestSMIRouterLifecycle runs a canary on the real TrafficSplit CRD of linkerd-smi (v1alpha1 for the
// linkerd provider, v1alpha2 for osm): initial routing, every weight step, blue/green, promotion.
func TestSMIRouterLifecycle(t *testing.T) {
	for _, tc := range []struct{ provider, version string }{
		{"linkerd", SMIv1alpha1},
		{"osm", SMIv1alpha2},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			e := newRouterEnv(t)
			ctx := context.Background()
			cd := testCanary(tc.provider)
			cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{Labels: map[string]string{"tier": "apex"}, Annotations: map[string]string{"a": "b"}}
			cd = e.createCanary(t, cd)
			r := NewSMI(e.c, Options{FieldOwner: "pennant"}, tc.version)
			if err := r.Validate(cd); err != nil {
				t.Fatal(err)
			}
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			ts := meshGet(t, e.c, smiGVK(tc.version), e.ns, "podinfo")
			meshAssertYAML(t, "spec", ts.Object["spec"], smiSpec(tc.version, "podinfo", 100, 0))
			meshAssertYAML(t, "labels", ts.GetLabels(), `tier: apex`)
			meshAssertYAML(t, "annotations", ts.GetAnnotations(), `a: b`+meshGeneratedAnnotations)
			meshAssertController(t, ts, cd)
			meshAssertRoutes(t, r, cd, 100, 0)

			// Canary steps, then blue/green's switch, then promotion back to the primary.
			for _, w := range [][2]int{{90, 10}, {80, 20}, {70, 30}, {60, 40}, {50, 50}, {0, 100}, {100, 0}} {
				if err := r.SetRoutes(ctx, cd, w[0], w[1], false); err != nil {
					t.Fatalf("SetRoutes(%v): %v", w, err)
				}
				ts = meshGet(t, e.c, smiGVK(tc.version), e.ns, "podinfo")
				meshAssertYAML(t, "spec", ts.Object["spec"], smiSpec(tc.version, "podinfo", w[0], w[1]))
				meshAssertRoutes(t, r, cd, w[0], w[1])
			}

			// Reconcile keeps the current weights; neither it nor SetRoutes rewrites an unchanged split.
			if err := r.SetRoutes(ctx, cd, 70, 30, false); err != nil {
				t.Fatal(err)
			}
			rv := meshGet(t, e.c, smiGVK(tc.version), e.ns, "podinfo").GetResourceVersion()
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			if err := r.SetRoutes(ctx, cd, 70, 30, false); err != nil {
				t.Fatal(err)
			}
			ts = meshGet(t, e.c, smiGVK(tc.version), e.ns, "podinfo")
			if ts.GetResourceVersion() != rv {
				t.Errorf("unchanged TrafficSplit was rewritten")
			}
			meshAssertYAML(t, "spec", ts.Object["spec"], smiSpec(tc.version, "podinfo", 70, 30))

			// hosts[0] becomes the split's service; the weights stay.
			cd.Spec.Service.Hosts = []string{"podinfo.example.com", "other"}
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			ts = meshGet(t, e.c, smiGVK(tc.version), e.ns, "podinfo")
			meshAssertYAML(t, "spec", ts.Object["spec"], smiSpec(tc.version, "podinfo.example.com", 70, 30))

			if err := r.Finalize(ctx, cd); err != nil {
				t.Fatal(err)
			}
			meshGet(t, e.c, smiGVK(tc.version), e.ns, "podinfo")
		})
	}
}

// TestSMIRouterReadsFlaggerQuantities reads and keeps v1alpha1 weights written as numbers or as
// other quantities than Flagger's.
func TestSMIRouterReadsFlaggerQuantities(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, testCanary("linkerd"))
	meshCreate(t, e.c, `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: podinfo, namespace: `+e.ns+`}
spec:
  service: podinfo
  backends:
  - {service: podinfo-canary, weight: 40}
  - {service: podinfo-primary, weight: "60"}
`, nil)
	r := NewSMI(e.c, Options{FieldOwner: "pennant"}, "v1alpha1")
	meshAssertRoutes(t, r, cd, 60, 40)
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ts := meshGet(t, e.c, smiGVK(SMIv1alpha1), e.ns, "podinfo")
	// Same weights: the backends are left as they are.
	backends, _, _ := unstructured.NestedSlice(ts.Object, "spec", "backends")
	meshAssertYAML(t, "backends", backends, `
- {service: podinfo-canary, weight: 40}
- {service: podinfo-primary, weight: "60"}`)
	meshAssertController(t, ts, cd)
}

// TestSMIRouterForeignOwner refuses a TrafficSplit controlled by something else and leaves it as it is.
func TestSMIRouterForeignOwner(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, testCanary("linkerd"))
	owner := meshForeignOwner(t, e.c, e.ns)
	before := meshCreate(t, e.c, `
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: podinfo, namespace: `+e.ns+`}
spec:
  service: other
  backends:
  - {service: other-v1, weight: "100"}
`, &owner)
	r := NewSMI(e.c, Options{FieldOwner: "pennant"}, "v1alpha1")
	for name, call := range map[string]func() error{
		"Reconcile": func() error { return r.Reconcile(ctx, cd) },
		"SetRoutes": func() error { return r.SetRoutes(ctx, cd, 50, 50, false) },
	} {
		err := call()
		if !IsInvalidSpec(err) {
			t.Errorf("%s = %v, want an InvalidSpecError", name, err)
		}
	}
	after := meshGet(t, e.c, smiGVK(SMIv1alpha1), e.ns, "podinfo")
	if after.GetResourceVersion() != before.GetResourceVersion() {
		t.Errorf("foreign TrafficSplit was written")
	}
}

// TestSMIRouterBadInput covers an unknown SMI version and SetRoutes/GetRoutes before Reconcile.
func TestSMIRouterBadInput(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, testCanary("smi:v1alpha3"))

	bad := NewSMI(e.c, Options{FieldOwner: "pennant"}, "v1alpha9")
	if err := bad.Validate(cd); !IsInvalidSpec(err) {
		t.Errorf("Validate = %v, want an InvalidSpecError", err)
	}
	if err := bad.Reconcile(ctx, cd); !IsInvalidSpec(err) {
		t.Errorf("Reconcile = %v, want an InvalidSpecError", err)
	}

	r := NewSMI(e.c, Options{FieldOwner: "pennant"}, "v1alpha2")
	if err := r.SetRoutes(ctx, cd, 50, 50, false); err == nil || IsInvalidSpec(err) {
		t.Errorf("SetRoutes before Reconcile = %v, want a plain error", err)
	}
	if _, _, _, err := r.GetRoutes(ctx, cd); err == nil {
		t.Error("GetRoutes before Reconcile succeeded")
	}
	meshAbsent(t, e.c, smiGVK(SMIv1alpha2), e.ns, "podinfo")
}

// TestSMIRouterIstioGateways checks the annotation of the Istio SMI adapter (provider smi:v1alpha2:istio).
func TestSMIRouterIstioGateways(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("smi:v1alpha2") // the mesh suffix comes from -mesh-provider: the Canary CRD enum refuses it
	cd.Spec.Service.Gateways = []string{"public-gateway.istio-system.svc.cluster.local"}
	cd = e.createCanary(t, cd)
	r := NewSMI(e.c, Options{FieldOwner: "pennant"}, "v1alpha2:istio")
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ts := meshGet(t, e.c, smiGVK(SMIv1alpha2), e.ns, "podinfo")
	meshAssertYAML(t, "annotations", ts.GetAnnotations(), `
VirtualService.v1alpha3.networking.istio.io/spec.gateways: '["public-gateway.istio-system.svc.cluster.local"]'`+meshGeneratedAnnotations)
}

// TestSMIv1alpha3Unit is a unit test: no servable CRD of TrafficSplit v1alpha3 is available (smi.yaml
// defines it with served: false and conflicts with smi-linkerd.yaml), so the v1alpha3 objects are
// checked on controller-runtime's fake client, without API server validation.
func TestSMIv1alpha3Unit(t *testing.T) {
	gvk := smiGVK(SMIv1alpha3)
	s := runtime.NewScheme()
	if err := flaggerv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	s.AddKnownTypeWithName(gvk, &unstructured.Unstructured{})
	s.AddKnownTypeWithName(gvk.GroupVersion().WithKind("TrafficSplitList"), &unstructured.UnstructuredList{})
	c := fake.NewClientBuilder().WithScheme(s).Build()
	ctx := context.Background()
	cd := testCanary("smi:v1alpha3")
	cd.Namespace, cd.UID = "test", "canary-uid"
	r := NewSMI(c, Options{FieldOwner: "pennant"}, "v1alpha3")

	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ts := meshGet(t, c, gvk, "test", "podinfo")
	if ts.GetAPIVersion() != "split.smi-spec.io/v1alpha3" {
		t.Errorf("apiVersion = %s", ts.GetAPIVersion())
	}
	meshAssertYAML(t, "spec", ts.Object["spec"], smiSpec(SMIv1alpha3, "podinfo", 100, 0))
	meshAssertYAML(t, "annotations", ts.GetAnnotations(), meshGeneratedAnnotations)
	meshAssertController(t, ts, cd)
	meshAssertRoutes(t, r, cd, 100, 0)
	for _, w := range [][2]int{{90, 10}, {50, 50}, {0, 100}, {100, 0}, {75, 25}} {
		if err := r.SetRoutes(ctx, cd, w[0], w[1], false); err != nil {
			t.Fatal(err)
		}
		ts = meshGet(t, c, gvk, "test", "podinfo")
		meshAssertYAML(t, "spec", ts.Object["spec"], smiSpec(SMIv1alpha3, "podinfo", w[0], w[1]))
		meshAssertRoutes(t, r, cd, w[0], w[1])
	}
	rv := ts.GetResourceVersion()
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRoutes(ctx, cd, 75, 25, false); err != nil {
		t.Fatal(err)
	}
	if got := meshGet(t, c, gvk, "test", "podinfo").GetResourceVersion(); got != rv {
		t.Errorf("unchanged TrafficSplit was rewritten (%s -> %s)", rv, got)
	}
}
