package router

// The metadata and the serialisation of the generated routing objects, compared with what Flagger
// 1.44 writes for the same canary: the routing object that stands for the apex Service carries the
// apex Service's labels (spec.service.apex.labels plus <selector label>: <apex name>); the
// DestinationRules and Gloo Upstreams carry none; the VirtualService writes its zero weights, Gloo's
// RouteTable and Contour's HTTPProxy leave them out; Gloo's Upstreams select the Services' pods;
// the ApisixRoute copy always says whether it carries websockets.

import (
	"context"
	"reflect"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/workload"
)

// objectsSelectorLabel is the target's selector label: the third of -selector-labels, with a value
// that is not the target's name, so that the tests tell the label's value from the names.
const (
	objectsSelectorLabel = "app.kubernetes.io/name"
	objectsSelectorValue = "podinfo-web"
)

// objectsOptions creates the podinfo Deployment in the test namespace and returns router options
// whose Selector is the one the controller uses (workload.Factory.Selector).
func objectsOptions(t *testing.T, e *routerEnv) Options {
	t.Helper()
	labels := map[string]string{objectsSelectorLabel: objectsSelectorValue}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "podinfo", Image: "ghcr.io/stefanprodan/podinfo:6.0.0"}}},
			},
		},
	}
	if err := e.c.Create(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	f := workload.NewFactory(e.c, workload.Options{FieldOwner: "pennant"})
	return Options{FieldOwner: "pennant", Selector: f.Selector}
}

// objectsGet reads an object as unstructured, as the API server stores it.
func objectsGet(t *testing.T, e *routerEnv, gvk schema.GroupVersionKind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := edgeGet(context.Background(), e.c, gvk, ns, name)
	if err != nil {
		t.Fatalf("get %s %s: %v", gvk.Kind, name, err)
	}
	return u
}

func objectsAssertLabels(t *testing.T, obj client.Object, want map[string]string) {
	t.Helper()
	if got := obj.GetLabels(); !reflect.DeepEqual(got, want) && (len(got) > 0 || len(want) > 0) {
		t.Errorf("%s labels = %v, want %v", obj.GetName(), got, want)
	}
}

// objectsWeight returns the weight of the i-th destination of the list at path (map keys and list
// indices), and whether the key is there at all.
func objectsWeight(t *testing.T, obj *unstructured.Unstructured, i int, path ...any) (weight any, present bool) {
	t.Helper()
	var node any = obj.Object
	for _, p := range append(path, i) {
		switch k := p.(type) {
		case string:
			m, _ := node.(map[string]any)
			node = m[k]
		case int:
			l, _ := node.([]any)
			if k >= len(l) {
				t.Fatalf("%s: nothing at %v", obj.GetName(), path)
			}
			node = l[k]
		}
	}
	d, ok := node.(map[string]any)
	if !ok {
		t.Fatalf("%s: no destination %d at %v", obj.GetName(), i, path)
	}
	weight, present = d["weight"]
	return weight, present
}

func objectsAssertZeroWritten(t *testing.T, obj *unstructured.Unstructured, i int, path ...any) {
	t.Helper()
	if w, ok := objectsWeight(t, obj, i, path...); !ok || w != int64(0) {
		t.Errorf("%s %v[%d].weight = %v (present %v), want 0 written", obj.GetName(), path, i, w, ok)
	}
}

func objectsAssertZeroOmitted(t *testing.T, obj *unstructured.Unstructured, i int, path ...any) {
	t.Helper()
	if w, ok := objectsWeight(t, obj, i, path...); ok {
		t.Errorf("%s %v[%d].weight = %v, want it left out", obj.GetName(), path, i, w)
	}
}

func objectsAssertUnchanged(t *testing.T, e *routerEnv, what string, objs ...*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		now := objectsGet(t, e, o.GroupVersionKind(), o.GetNamespace(), o.GetName())
		if now.GetResourceVersion() != o.GetResourceVersion() {
			t.Errorf("%s wrote %s %s", what, o.GetKind(), o.GetName())
		}
	}
}

func TestIstioObjectsAsFlagger(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := istioSeedCanary()
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{Labels: map[string]string{"tier": "frontend"}}
	cd = e.createCanary(t, cd)
	r := NewIstio(e.c, objectsOptions(t, e))
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}

	for _, host := range []string{"podinfo-primary", "podinfo-canary"} {
		objectsAssertLabels(t, objectsGet(t, e, istioDestinationRuleGVK, e.ns, host), nil)
	}
	vs := objectsGet(t, e, istioVirtualServiceGVK, e.ns, "podinfo")
	objectsAssertLabels(t, vs, map[string]string{"tier": "frontend", objectsSelectorLabel: "podinfo"})
	objectsAssertZeroWritten(t, vs, 1, "spec", "http", 0, "route")

	// Blue/green: the primary's zero is written too; promotion writes the canary's back.
	if err := r.SetRoutes(ctx, cd, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	objectsAssertZeroWritten(t, objectsGet(t, e, istioVirtualServiceGVK, e.ns, "podinfo"), 0, "spec", "http", 0, "route")
	if err := r.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	vs = objectsGet(t, e, istioVirtualServiceGVK, e.ns, "podinfo")
	objectsAssertZeroWritten(t, vs, 1, "spec", "http", 0, "route")
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	objectsAssertUnchanged(t, e, "a Reconcile of the VirtualService as desired", vs)

	// A VirtualService without the explicit zeros (one an earlier Pennant wrote) is the same
	// routing: it is not rewritten for them alone.
	typed := istioGetVS(t, e, "podinfo")
	if err := e.c.Update(ctx, typed); err != nil {
		t.Fatal(err)
	}
	vs = objectsGet(t, e, istioVirtualServiceGVK, e.ns, "podinfo")
	if _, ok := objectsWeight(t, vs, 1, "spec", "http", 0, "route"); ok {
		t.Fatal("the typed client wrote weight 0; the case below tests nothing")
	}
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	objectsAssertUnchanged(t, e, "a Reconcile of a VirtualService without explicit zero weights", vs)
}

func TestIstioTCPObjectsWriteZeroWeights(t *testing.T) {
	e := newRouterEnv(t)
	cd := testCanary("istio")
	cd.Spec.Service.AppProtocol = "tcp"
	cd = e.createCanary(t, cd)
	r := NewIstio(e.c, objectsOptions(t, e))
	if err := r.Reconcile(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	vs := objectsGet(t, e, istioVirtualServiceGVK, e.ns, "podinfo")
	objectsAssertZeroWritten(t, vs, 1, "spec", "tcp", 0, "route")
	objectsAssertLabels(t, vs, map[string]string{objectsSelectorLabel: "podinfo"})
}

func TestGlooObjectsAsFlagger(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := glooSeedCanary(t, e)
	r := NewGloo(e.c, objectsOptions(t, e))
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	primaryName, canaryName := glooUpstreamNames(cd)
	primary := objectsGet(t, e, glooUpstreamGVK, e.ns, primaryName)
	canary := objectsGet(t, e, glooUpstreamGVK, e.ns, canaryName)
	for _, u := range []struct {
		obj  *unstructured.Unstructured
		pods string
	}{{primary, objectsSelectorValue + "-primary"}, {canary, objectsSelectorValue}} {
		objectsAssertLabels(t, u.obj, nil)
		got, _, _ := unstructured.NestedStringMap(u.obj.Object, "spec", "kube", "selector")
		if want := map[string]string{objectsSelectorLabel: u.pods}; !reflect.DeepEqual(got, want) {
			t.Errorf("Upstream %s kube.selector = %v, want %v", u.obj.GetName(), got, want)
		}
	}
	rt := objectsGet(t, e, glooRouteTableGVK, e.ns, "podinfo")
	objectsAssertLabels(t, rt, map[string]string{"app.kubernetes.io/part-of": "shop", objectsSelectorLabel: "podinfo"})
	objectsAssertZeroOmitted(t, rt, 1, "spec", "routes", 0, "routeAction", "multi", "destinations")

	if err := r.SetRoutes(ctx, cd, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	rt = objectsGet(t, e, glooRouteTableGVK, e.ns, "podinfo")
	objectsAssertZeroOmitted(t, rt, 0, "spec", "routes", 0, "routeAction", "multi", "destinations")
	edgeTestRoutes(t, r, cd, 0, 100)
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	objectsAssertUnchanged(t, e, "a Reconcile of the Gloo objects as desired", primary, canary, rt)
}

func TestContourObjectsAsFlagger(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, testCanary("contour"))
	r := NewContour(e.c, objectsOptions(t, e))
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	proxy := objectsGet(t, e, contourHTTPProxyGVK, e.ns, "podinfo")
	// No spec.service.apex: the apex Service's own label still marks the HTTPProxy.
	objectsAssertLabels(t, proxy, map[string]string{objectsSelectorLabel: "podinfo"})
	objectsAssertZeroOmitted(t, proxy, 1, "spec", "routes", 0, "services")

	if err := r.SetRoutes(ctx, cd, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	proxy = objectsGet(t, e, contourHTTPProxyGVK, e.ns, "podinfo")
	objectsAssertZeroOmitted(t, proxy, 0, "spec", "routes", 0, "services")
	edgeTestRoutes(t, r, cd, 0, 100)
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	objectsAssertUnchanged(t, e, "a Reconcile of the HTTPProxy as desired", proxy)
}

func TestTraefikObjectsAsFlagger(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("traefik")
	cd.Spec.Service.Name = "podinfo-svc"
	cd = e.createCanary(t, cd)
	r := NewTraefik(e.c, objectsOptions(t, e))
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ts := objectsGet(t, e, traefikServiceGVK, e.ns, "podinfo-svc")
	// The value is the apex Service's name, as on the apex Service.
	objectsAssertLabels(t, ts, map[string]string{objectsSelectorLabel: "podinfo-svc"})
	if err := r.SetRoutes(ctx, cd, 90, 10, false); err != nil {
		t.Fatal(err)
	}
	objectsAssertLabels(t, objectsGet(t, e, traefikServiceGVK, e.ns, "podinfo-svc"), map[string]string{objectsSelectorLabel: "podinfo-svc"})
}

func TestKumaObjectsAsFlagger(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	opts := objectsOptions(t, e)
	cd := kumaCanary(t, e, "")
	r := NewKuma(e.c, opts)
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	tr := objectsGet(t, e, kumaTrafficRouteGVK, "", e.ns)
	objectsAssertLabels(t, tr, map[string]string{objectsSelectorLabel: e.ns})
	objectsAssertZeroWritten(t, tr, 1, "spec", "conf", "split")
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	objectsAssertUnchanged(t, e, "a Reconcile of the TrafficRoute as desired", tr)
}

func TestAPISIXRouteCopyWritesWebsocket(t *testing.T) {
	for _, tc := range []struct {
		name     string
		original any // the websocket of the user's route; nil: not set
		want     bool
	}{
		{"not set", nil, false},
		{"set", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, cd := apisixSetup(t, nil, func(spec map[string]any) {
				if tc.original != nil {
					routes := spec["http"].([]any)
					routes[1].(map[string]any)["websocket"] = tc.original
				}
			}, true)
			r := NewAPISIX(e.c, Options{FieldOwner: "pennant"})
			ctx := context.Background()
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			route := apisixGet(t, e, apisixCanaryName(cd))
			got, found, _ := unstructured.NestedFieldNoCopy(route.Object, "spec", "http")
			h := got.([]any)[0].(map[string]any)
			if ws, ok := h["websocket"]; !found || !ok || ws != tc.want {
				t.Errorf("websocket = %v (present %v), want %v", ws, ok, tc.want)
			}
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			if now := apisixGet(t, e, apisixCanaryName(cd)); now.GetResourceVersion() != route.GetResourceVersion() {
				t.Error("a Reconcile of the ApisixRoute as desired wrote it")
			}
		})
	}
}

// TestSetRoutesNeedsNoTarget: the labels read the target's selector label, but setting the weights
// must not: when the target is deleted during an analysis the traffic goes back to the primary.
func TestSetRoutesNeedsNoTarget(t *testing.T) {
	for _, tc := range []struct {
		provider string
		router   func(c client.Client, o Options) Interface
	}{
		{"istio", func(c client.Client, o Options) Interface { return NewIstio(c, o) }},
		{"contour", func(c client.Client, o Options) Interface { return NewContour(c, o) }},
		{"traefik", func(c client.Client, o Options) Interface { return NewTraefik(c, o) }},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			e := newRouterEnv(t)
			ctx := context.Background()
			cd := e.createCanary(t, testCanary(tc.provider))
			r := tc.router(e.c, objectsOptions(t, e))
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			if err := r.SetRoutes(ctx, cd, 50, 50, false); err != nil {
				t.Fatal(err)
			}
			dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns}}
			if err := e.c.Delete(ctx, dep); err != nil {
				t.Fatal(err)
			}
			if err := r.SetRoutes(ctx, cd, 100, 0, false); err != nil {
				t.Fatalf("SetRoutes without the target: %v", err)
			}
			if p, c, _, err := r.GetRoutes(ctx, cd); err != nil || p != 100 || c != 0 {
				t.Errorf("GetRoutes = %d/%d (%v), want 100/0", p, c, err)
			}
		})
	}
}

func TestGatewayAPIObjectsAsFlagger(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := gwCanary("gatewayapi:v1")
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{Labels: map[string]string{"team": "web"}}
	cd = e.createCanary(t, cd)
	r := NewGatewayAPI(e.c, objectsOptions(t, e), "v1")
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"team": "web", objectsSelectorLabel: "podinfo"}
	objectsAssertLabels(t, e.gwHTTPRoute(t, "podinfo"), want)
	// SetRoutes keeps the labels and does not need the target.
	if err := e.c.Delete(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns}}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRoutes(ctx, cd, 90, 10, false); err != nil {
		t.Fatal(err)
	}
	objectsAssertLabels(t, e.gwHTTPRoute(t, "podinfo"), want)
}
