package router

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// glooSeedCanary is the canary of the Gloo guide (seed 003): podinfo on port 9898, canary steps of
// 5 up to 50, with apex metadata.
func glooSeedCanary(t *testing.T, e *routerEnv) *flaggerv1.Canary {
	t.Helper()
	cd := testCanary("gloo")
	cd.Spec.Service.TargetPort = intstr.FromInt32(9898)
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{
		Labels:      map[string]string{"app.kubernetes.io/part-of": "shop"},
		Annotations: map[string]string{"team": "web"},
	}
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "10s", Threshold: 5, MaxWeight: 50, StepWeight: 5}
	return e.createCanary(t, cd)
}

const glooRouteTable100 = `
routes:
- inheritablePathMatchers: true
  routeAction:
    multi:
      destinations:
      - destination: {upstream: {name: $NS-podinfo-primaryupstream-9898, namespace: $NS}}
        weight: 100
      - destination: {upstream: {name: $NS-podinfo-canaryupstream-9898, namespace: $NS}}
        weight: 0
`

func TestGlooRouterCanary(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := glooSeedCanary(t, e)
	r := NewGloo(e.c, Options{FieldOwner: "pennant"})

	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	primaryName, canaryName := e.ns+"-podinfo-primaryupstream-9898", e.ns+"-podinfo-canaryupstream-9898"
	primary := edgeTestGet(t, e, glooUpstreamGVK, primaryName)
	edgeTestSpecOmitZero(t, e, primary, `kube: {serviceName: podinfo-primary, serviceNamespace: $NS, servicePort: 9898}`)
	edgeTestGenerated(t, primary, cd)
	edgeTestLabels(t, primary, nil) // Flagger puts the apex labels on the RouteTable only
	canary := edgeTestGet(t, e, glooUpstreamGVK, canaryName)
	edgeTestSpecOmitZero(t, e, canary, `kube: {serviceName: podinfo-canary, serviceNamespace: $NS, servicePort: 9898}`)
	edgeTestGenerated(t, canary, cd)
	edgeTestLabels(t, canary, nil)
	rt := edgeTestGet(t, e, glooRouteTableGVK, "podinfo")
	edgeTestSpecOmitZero(t, e, rt, glooRouteTable100)
	edgeTestGenerated(t, rt, cd)
	edgeTestLabels(t, rt, cd.Spec.Service.Apex.Labels)
	edgeTestRoutes(t, r, cd, 100, 0)

	// Nothing changed: nothing is written.
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	edgeTestUnchanged(t, e, primary, canary, rt)

	// Seed 003: the canary weight advances by 5 up to 50.
	for w := 5; w <= 50; w += 5 {
		if err := r.SetRoutes(ctx, cd, 100-w, w, false); err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
		edgeTestRoutes(t, r, cd, 100-w, w)
		got := edgeTestGet(t, e, glooRouteTableGVK, "podinfo")
		want := strings.Replace(strings.Replace(glooRouteTable100, "weight: 100", "weight: "+strconv.Itoa(100-w), 1), "weight: 0", "weight: "+strconv.Itoa(w), 1)
		edgeTestSpecOmitZero(t, e, got, want)
		if w == 25 {
			// A reconcile during the analysis keeps the weights and writes nothing.
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			edgeTestRoutes(t, r, cd, 75, 25)
			edgeTestUnchanged(t, e, got)
			if err := r.SetRoutes(ctx, cd, 75, 25, false); err != nil {
				t.Fatal(err)
			}
			edgeTestUnchanged(t, e, got)
		}
	}

	// Promotion: all traffic back to the primary.
	if err := r.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	edgeTestRoutes(t, r, cd, 100, 0)
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, glooRouteTableGVK, "podinfo"), glooRouteTable100)

	if err := r.SetRoutes(ctx, cd, 0, 0, false); err == nil {
		t.Error("SetRoutes(0, 0) succeeded, want an error")
	}
	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	edgeTestGenerated(t, edgeTestGet(t, e, glooRouteTableGVK, "podinfo"), cd)
}

// TestGlooRouterABTesting is the A/B test of seed 003: requests with X-Canary: insider go to the
// canary, the rest to the primary.
func TestGlooRouterABTesting(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("gloo")
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: 10, Match: []flaggerv1.ABMatch{
		{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}}},
	}}
	cd = e.createCanary(t, cd)
	r := NewGloo(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	const ab = `
routes:
- matchers:
  - headers: [{name: x-canary, value: insider}]
  inheritablePathMatchers: true
  routeAction:
    multi:
      destinations:
      - destination: {upstream: {name: $NS-podinfo-primaryupstream-9898, namespace: $NS}}
        weight: %d
      - destination: {upstream: {name: $NS-podinfo-canaryupstream-9898, namespace: $NS}}
        weight: %d
- inheritablePathMatchers: true
  routeAction:
    multi:
      destinations:
      - destination: {upstream: {name: $NS-podinfo-primaryupstream-9898, namespace: $NS}}
        weight: 100
      - destination: {upstream: {name: $NS-podinfo-canaryupstream-9898, namespace: $NS}}
        weight: 0
`
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, glooRouteTableGVK, "podinfo"), fmt.Sprintf(ab, 100, 0))
	edgeTestRoutes(t, r, cd, 100, 0)

	// The analysis sends all matched traffic to the canary.
	if err := r.SetRoutes(ctx, cd, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, glooRouteTableGVK, "podinfo"), fmt.Sprintf(ab, 0, 100))
	edgeTestRoutes(t, r, cd, 0, 100)

	// Promotion.
	if err := r.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	edgeTestSpecOmitZero(t, e, edgeTestGet(t, e, glooRouteTableGVK, "podinfo"), fmt.Sprintf(ab, 100, 0))
	edgeTestRoutes(t, r, cd, 100, 0)
}

// TestGlooRouterMatchers covers the match translation: service.match paths, and every kind of
// A/B match (seed 003's user-agent regexes included), one matcher per service match × A/B match.
func TestGlooRouterMatchers(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("gloo")
	cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{
		{URI: &flaggerv1.StringMatch{Prefix: "/api"}},
		{URI: &flaggerv1.StringMatch{Exact: "/healthz"}, IgnoreURICase: true},
	}
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: 10, Match: []flaggerv1.ABMatch{
		{Headers: map[string]flaggerv1.StringMatch{"user-agent": {Regex: ".*Mobile.*"}, "cookie": {Prefix: "canary="}}},
		{
			Method:         &flaggerv1.StringMatch{Exact: "GET"},
			QueryParams:    map[string]flaggerv1.StringMatch{"beta": {Exact: "1"}, "ref": {Suffix: ".io"}},
			WithoutHeaders: map[string]flaggerv1.StringMatch{"x-internal": {}},
		},
	}}
	cd = e.createCanary(t, cd)
	r := NewGloo(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	const want = `
routes:
- matchers:
  - prefix: /api
    headers: [{name: cookie, value: 'canary=.*', regex: true}, {name: user-agent, value: .*Mobile.*, regex: true}]
  - prefix: /api
    methods: [GET]
    headers: [{name: x-internal, invertMatch: true}]
    queryParameters: [{name: beta, value: "1"}, {name: ref, value: '.*\.io', regex: true}]
  - exact: /healthz
    caseSensitive: false
    headers: [{name: cookie, value: 'canary=.*', regex: true}, {name: user-agent, value: .*Mobile.*, regex: true}]
  - exact: /healthz
    caseSensitive: false
    methods: [GET]
    headers: [{name: x-internal, invertMatch: true}]
    queryParameters: [{name: beta, value: "1"}, {name: ref, value: '.*\.io', regex: true}]
  inheritablePathMatchers: false
  routeAction:
    multi:
      destinations:
      - destination: {upstream: {name: $NS-podinfo-primaryupstream-9898, namespace: $NS}}
        weight: 100
      - destination: {upstream: {name: $NS-podinfo-canaryupstream-9898, namespace: $NS}}
        weight: 0
- matchers:
  - prefix: /api
  - exact: /healthz
    caseSensitive: false
  inheritablePathMatchers: false
  routeAction:
    multi:
      destinations:
      - destination: {upstream: {name: $NS-podinfo-primaryupstream-9898, namespace: $NS}}
        weight: 100
      - destination: {upstream: {name: $NS-podinfo-canaryupstream-9898, namespace: $NS}}
        weight: 0
`
	rt := edgeTestGet(t, e, glooRouteTableGVK, "podinfo")
	edgeTestSpecOmitZero(t, e, rt, want)
	// Map iteration order must not make the object flap.
	for range 5 {
		if err := r.Reconcile(ctx, cd); err != nil {
			t.Fatal(err)
		}
	}
	edgeTestUnchanged(t, e, rt)
}

// TestGlooRouterUpstreamRef checks that the configuration of the upstreamRef Upstream (in another
// namespace) is copied into both generated upstreams, without its type, and kept in sync.
func TestGlooRouterUpstreamRef(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	configNS := e.env.NewNamespace(t)
	const config = `
static:
  hosts: [{addr: example.com, port: 80}]
sslConfig:
  sni: podinfo.test
  secretRef: {name: podinfo-tls, namespace: gloo-system}
circuitBreakers: {maxConnections: 100, maxRequests: 50}
connectionConfig: {connectTimeout: 2s, maxRequestsPerConnection: 51}
loadBalancerConfig:
  roundRobin:
    slowStartConfig: {slowStartWindow: 2m, minWeightPercent: 5}
useHttp2: true
initialStreamWindowSize: 65535
`
	ref := edgeTestCreate(t, e, glooUpstreamGVK, configNS, "config-upstream", config, nil)
	cd := testCanary("gloo")
	cd.Spec.UpstreamRef = &flaggerv1.CrossNamespaceObjectReference{
		APIVersion: "gloo.solo.io/v1", Kind: "Upstream", Name: "config-upstream", Namespace: configNS,
	}
	cd = e.createCanary(t, cd)
	r := NewGloo(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	copied := strings.Replace(config, "static:\n  hosts: [{addr: example.com, port: 80}]\n", "", 1)
	for _, side := range []string{"primary", "canary"} {
		u := edgeTestGet(t, e, glooUpstreamGVK, e.ns+"-podinfo-"+side+"upstream-9898")
		edgeTestSpecOmitZero(t, e, u, copied+"kube: {serviceName: podinfo-"+side+", serviceNamespace: $NS, servicePort: 9898}\n")
	}

	// A change of the referenced upstream reaches the generated ones.
	if err := unstructured.SetNestedField(ref.Object, int64(60), "spec", "circuitBreakers", "maxRequests"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Update(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	u := edgeTestGet(t, e, glooUpstreamGVK, e.ns+"-podinfo-canaryupstream-9898")
	if got, _, _ := unstructured.NestedInt64(u.Object, "spec", "circuitBreakers", "maxRequests"); got != 60 {
		t.Errorf("canary upstream circuitBreakers.maxRequests = %d, want 60", got)
	}
	// The copied configuration is stable: nothing is written when nothing changed.
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	edgeTestUnchanged(t, e, u)
}

func TestGlooRouterMissingUpstreamRef(t *testing.T) {
	e := newRouterEnv(t)
	cd := testCanary("gloo")
	cd.Spec.UpstreamRef = &flaggerv1.CrossNamespaceObjectReference{APIVersion: "gloo.solo.io/v1", Kind: "Upstream", Name: "nope", Namespace: "gloo-system"}
	cd = e.createCanary(t, cd)
	err := NewGloo(e.c, Options{FieldOwner: "pennant"}).Reconcile(context.Background(), cd)
	if !IsInvalidSpec(err) || !strings.Contains(err.Error(), "Upstream nope.gloo-system not found") {
		t.Fatalf("Reconcile = %v, want an InvalidSpecError naming Upstream nope.gloo-system", err)
	}
	edgeTestNone(t, e, glooUpstreamGVK, glooRouteTableGVK)
}

// TestGlooRouterForeignOwner checks that a RouteTable controlled by something else is refused
// before anything is written.
func TestGlooRouterForeignOwner(t *testing.T) {
	e := newRouterEnv(t)
	cd := e.createCanary(t, testCanary("gloo"))
	owner := edgeTestForeignOwner(t, e)
	rt := edgeTestCreate(t, e, glooRouteTableGVK, e.ns, "podinfo", `routes: [{matchers: [{prefix: /other}]}]`, owner)
	err := NewGloo(e.c, Options{FieldOwner: "pennant"}).Reconcile(context.Background(), cd)
	if !IsInvalidSpec(err) || !strings.Contains(err.Error(), "controlled by ConfigMap someone-else") {
		t.Fatalf("Reconcile = %v, want an InvalidSpecError naming the owner", err)
	}
	edgeTestUnchanged(t, e, rt)
	edgeTestNone(t, e, glooUpstreamGVK)
	if err := NewGloo(e.c, Options{FieldOwner: "pennant"}).SetRoutes(context.Background(), cd, 50, 50, false); !IsInvalidSpec(err) {
		t.Fatalf("SetRoutes = %v, want an InvalidSpecError", err)
	}
	edgeTestUnchanged(t, e, rt)
}

func TestGlooRouterValidate(t *testing.T) {
	r := NewGloo(nil, Options{})
	for name, mutate := range map[string]func(*flaggerv1.Canary){
		"upstreamRef without name": func(cd *flaggerv1.Canary) {
			cd.Spec.UpstreamRef = &flaggerv1.CrossNamespaceObjectReference{APIVersion: "gloo.solo.io/v1", Kind: "Upstream"}
		},
		"upstreamRef of another group": func(cd *flaggerv1.Canary) {
			cd.Spec.UpstreamRef = &flaggerv1.CrossNamespaceObjectReference{APIVersion: "networking.istio.io/v1", Kind: "Upstream", Name: "u"}
		},
		"regex method": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.Match = []flaggerv1.ABMatch{{Method: &flaggerv1.StringMatch{Regex: "GET|HEAD"}}}
		},
		"authority": func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{Authority: &flaggerv1.StringMatch{Exact: "app.example.com"}}}
		},
	} {
		cd := testCanary("gloo")
		mutate(cd)
		if err := r.Validate(cd); !IsInvalidSpec(err) {
			t.Errorf("%s: Validate = %v, want an InvalidSpecError", name, err)
		}
	}
	cd := testCanary("gloo")
	cd.Spec.UpstreamRef = &flaggerv1.CrossNamespaceObjectReference{APIVersion: "gloo.solo.io/v1", Kind: "Upstream", Name: "u"}
	if err := r.Validate(cd); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
}

// ---- Test helpers shared by the Gloo, Contour and Traefik router tests. ----

// edgeTestGet reads a routing object of the test namespace.
func edgeTestGet(t *testing.T, e *routerEnv, gvk schema.GroupVersionKind, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := edgeGet(context.Background(), e.c, gvk, e.ns, name)
	if err != nil {
		t.Fatalf("get %s %s: %v", gvk.Kind, name, err)
	}
	return u
}

// edgeTestCreate creates an object with the given spec (YAML) and, if set, controller owner.
func edgeTestCreate(t *testing.T, e *routerEnv, gvk schema.GroupVersionKind, ns, name, specYAML string, owner *metav1.OwnerReference) *unstructured.Unstructured {
	t.Helper()
	var spec map[string]any
	if err := yaml.Unmarshal([]byte(specYAML), &spec); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(gvk)
	u.SetNamespace(ns)
	u.SetName(name)
	if owner != nil {
		u.SetOwnerReferences([]metav1.OwnerReference{*owner})
	}
	if err := e.c.Create(context.Background(), u); err != nil {
		t.Fatalf("create %s %s: %v", gvk.Kind, name, err)
	}
	return u
}

// edgeTestForeignOwner returns a controller reference to a ConfigMap of the test namespace.
func edgeTestForeignOwner(t *testing.T, e *routerEnv) *metav1.OwnerReference {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "someone-else", Namespace: e.ns}}
	if err := e.c.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID, Controller: ptr.To(true)}
}

// edgeTestSpec compares the spec of obj with the YAML want, where $NS is the test namespace.
func edgeTestSpec(t *testing.T, e *routerEnv, obj *unstructured.Unstructured, want string) {
	t.Helper()
	var w any
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(want, "$NS", e.ns)), &w); err != nil {
		t.Fatalf("bad expected YAML: %v", err)
	}
	raw, err := json.Marshal(obj.Object["spec"])
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := yaml.Marshal(got)
		ww, _ := yaml.Marshal(w)
		t.Errorf("%s %s spec:\n%s\nwant:\n%s", obj.GetKind(), obj.GetName(), g, ww)
	}
}

// edgeTestSpecOmitZero is edgeTestSpec for Gloo's RouteTables and Contour's HTTPProxies, which
// leave zero weights out as Flagger does: the lines "weight: 0" of want must be absent.
func edgeTestSpecOmitZero(t *testing.T, e *routerEnv, obj *unstructured.Unstructured, want string) {
	t.Helper()
	lines := strings.Split(want, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if strings.TrimSpace(l) != "weight: 0" {
			kept = append(kept, l)
		}
	}
	edgeTestSpec(t, e, obj, strings.Join(kept, "\n"))
}

// edgeTestLabels checks that the labels of obj are exactly want.
func edgeTestLabels(t *testing.T, obj *unstructured.Unstructured, want map[string]string) {
	t.Helper()
	if got := obj.GetLabels(); !reflect.DeepEqual(got, want) && (len(got) > 0 || len(want) > 0) {
		t.Errorf("%s %s labels = %v, want %v", obj.GetKind(), obj.GetName(), got, want)
	}
}

// edgeTestGenerated checks the metadata of a generated object: the canary as controller, the apex
// annotations and the Flux/Helm drift annotations (labels: edgeTestLabels).
func edgeTestGenerated(t *testing.T, obj *unstructured.Unstructured, cd *flaggerv1.Canary) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.UID != cd.UID || ref.Kind != "Canary" || ref.APIVersion != "flagger.app/v1beta1" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("%s %s controller = %+v, want canary %s", obj.GetKind(), obj.GetName(), ref, cd.Name)
	}
	ann := obj.GetAnnotations()
	if ann[FluxReconcileAnnotation] != "disabled" || ann[HelmDriftDetectionAnnotation] != "disabled" {
		t.Errorf("%s %s annotations = %v, want the drift annotations", obj.GetKind(), obj.GetName(), ann)
	}
	if apex := cd.Spec.Service.Apex; apex != nil {
		for k, v := range apex.Annotations {
			if ann[k] != v {
				t.Errorf("%s %s annotation %s = %q, want %q", obj.GetKind(), obj.GetName(), k, ann[k], v)
			}
		}
	}
	if _, ok := ann[OriginalConfigAnnotation]; ok {
		t.Errorf("%s %s was generated but has %s", obj.GetKind(), obj.GetName(), OriginalConfigAnnotation)
	}
}

// edgeTestUnchanged checks that the objects were not written since they were read.
func edgeTestUnchanged(t *testing.T, e *routerEnv, objs ...*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		now := edgeTestGet(t, e, o.GroupVersionKind(), o.GetName())
		if now.GetResourceVersion() != o.GetResourceVersion() {
			t.Errorf("%s %s was written (resourceVersion %s -> %s)", o.GetKind(), o.GetName(), o.GetResourceVersion(), now.GetResourceVersion())
		}
	}
}

// edgeTestNone checks that the test namespace holds no object of the kinds.
func edgeTestNone(t *testing.T, e *routerEnv, gvks ...schema.GroupVersionKind) {
	t.Helper()
	for _, gvk := range gvks {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := e.c.List(context.Background(), list, client.InNamespace(e.ns)); err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Items {
			t.Errorf("%s %s was written", gvk.Kind, o.GetName())
		}
	}
}

// edgeTestRoutes checks what GetRoutes reports.
func edgeTestRoutes(t *testing.T, r Interface, cd *flaggerv1.Canary, wantPrimary, wantCanary int) {
	t.Helper()
	p, c, m, err := r.GetRoutes(context.Background(), cd)
	if err != nil {
		t.Fatal(err)
	}
	if p != wantPrimary || c != wantCanary || m {
		t.Errorf("GetRoutes = %d/%d mirrored=%v, want %d/%d", p, c, m, wantPrimary, wantCanary)
	}
}
