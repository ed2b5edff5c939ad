package router

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// apisixMethodRoute is the user's HTTP route to the apex Service.
func apisixMethodRoute() map[string]any {
	return map[string]any{
		"name": "method",
		"match": map[string]any{
			"hosts":   []any{"app.example.com"},
			"methods": []any{"GET"},
			"paths":   []any{"/*"},
		},
		"backends": []any{map[string]any{"serviceName": "podinfo", "servicePort": int64(9898), "resolveGranularity": "service"}},
		"plugins":  []any{map[string]any{"name": "proxy-rewrite", "enable": true, "config": map[string]any{"uri": "/"}}},
	}
}

// apisixRouteFixture is the user's ApisixRoute podinfo: a route to another Service first, then the
// route to the apex Service, and a stream route.
func apisixRouteFixture(ns string, mutate func(spec map[string]any)) func(string) client.Object {
	return func(string) client.Object {
		u := newApisixRoute(ns, "podinfo")
		u.SetLabels(map[string]string{"kustomize.toolkit.fluxcd.io/name": "apps"})
		u.SetAnnotations(map[string]string{"example.com/owner-team": "web", kubectlLastAppliedAnnotation: "{}"})
		spec := map[string]any{
			"ingressClassName": "apisix",
			"http": []any{
				map[string]any{
					"name":     "static",
					"match":    map[string]any{"paths": []any{"/static*"}},
					"backends": []any{map[string]any{"serviceName": "static", "servicePort": int64(80)}},
				},
				apisixMethodRoute(),
			},
			"stream": []any{map[string]any{
				"name": "tcp", "protocol": "TCP",
				"match":   map[string]any{"ingressPort": int64(9100)},
				"backend": map[string]any{"serviceName": "podinfo", "servicePort": int64(9898), "resolveGranularity": "endpoint"},
			}},
		}
		if mutate != nil {
			mutate(spec)
		}
		u.Object["spec"] = spec
		return u
	}
}

// apisixSetup is ieSetup with the ApisixRoute, whose namespace is only known once the env exists.
func apisixSetup(t *testing.T, mutateCanary func(*flaggerv1.Canary), mutateSpec func(map[string]any), withRoute bool) (*routerEnv, *flaggerv1.Canary) {
	t.Helper()
	e, cd := ieSetup(t, "apisix", mutateCanary)
	if withRoute {
		if err := e.c.Create(context.Background(), apisixRouteFixture(e.ns, mutateSpec)(e.ns)); err != nil {
			t.Fatal(err)
		}
	}
	return e, cd
}

func apisixGet(t *testing.T, e *routerEnv, name string) *unstructured.Unstructured {
	t.Helper()
	u := newApisixRoute(e.ns, name)
	if err := e.c.Get(context.Background(), client.ObjectKeyFromObject(u), u); err != nil {
		t.Fatalf("get ApisixRoute %s: %v", name, err)
	}
	return u
}

func apisixRouteNames(t *testing.T, e *routerEnv) []string {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(ApisixRouteGVK.GroupVersion().WithKind("ApisixRouteList"))
	if err := e.c.List(context.Background(), list, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range list.Items {
		names = append(names, u.GetName())
	}
	return names
}

func apisixWantSpec(primary, canary int64) map[string]any {
	h := apisixMethodRoute()
	h["priority"] = int64(10000)
	h["websocket"] = false // Flagger's ApisixRoute type always writes it
	h["backends"] = []any{
		map[string]any{"serviceName": "podinfo-primary", "servicePort": int64(9898), "resolveGranularity": "service", "weight": primary},
		map[string]any{"serviceName": "podinfo-canary", "servicePort": int64(9898), "resolveGranularity": "service", "weight": canary},
	}
	return map[string]any{"ingressClassName": "apisix", "http": []any{h}}
}

func TestAPISIXRoutesWeights(t *testing.T) {
	ctx := context.Background()
	e, cd := apisixSetup(t, nil, nil, true)
	c, writes := ieCountWrites(t, e)
	rt := NewAPISIX(c, Options{FieldOwner: "pennant"})
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}

	route := apisixGet(t, e, "podinfo-podinfo-canary")
	if got, want := route.Object["spec"], apisixWantSpec(100, 0); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("spec = %v, want %v", got, want)
	}
	if got, want := route.GetAnnotations(), ieWith(ieFluxOff, "example.com/owner-team", "web"); !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("annotations = %v, want %v", got, want)
	}
	if got := route.GetLabels(); len(got) != 0 {
		t.Errorf("labels = %v, want none", got)
	}
	ieAssertController(t, route, cd)
	if src := apisixGet(t, e, "podinfo"); !equality.Semantic.DeepEqual(src.Object["spec"], apisixRouteFixture(e.ns, nil)(e.ns).(*unstructured.Unstructured).Object["spec"]) {
		t.Errorf("the original route changed: %v", src.Object["spec"])
	}
	ieAssertRoutes(t, rt, cd, 100, 0)

	for _, w := range []int{10, 20, 30, 40, 50} {
		if err := rt.SetRoutes(ctx, cd, 100-w, w, false); err != nil {
			t.Fatal(err)
		}
		route := apisixGet(t, e, "podinfo-podinfo-canary")
		if got, want := route.Object["spec"], apisixWantSpec(int64(100-w), int64(w)); !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("step %d: spec = %v, want %v", w, got, want)
		}
		ieAssertRoutes(t, rt, cd, 100-w, w)
	}

	n := *writes
	if err := rt.SetRoutes(ctx, cd, 50, 50, false); err != nil {
		t.Fatal(err)
	}
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if *writes != n {
		t.Errorf("unchanged routes were written %d times", *writes-n)
	}

	// A change of the original reaches the copy, with the weights kept.
	src := apisixGet(t, e, "podinfo")
	routes, _, _ := unstructured.NestedSlice(src.Object, "spec", "http")
	routes[1].(map[string]any)["match"].(map[string]any)["paths"] = []any{"/api*"}
	if err := unstructured.SetNestedSlice(src.Object, routes, "spec", "http"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Update(ctx, src); err != nil {
		t.Fatal(err)
	}
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	paths, _, _ := unstructured.NestedSlice(apisixGet(t, e, "podinfo-podinfo-canary").Object["spec"].(map[string]any)["http"].([]any)[0].(map[string]any), "match", "paths")
	if !equality.Semantic.DeepEqual(paths, []any{"/api*"}) {
		t.Errorf("paths after the original changed = %v", paths)
	}
	ieAssertRoutes(t, rt, cd, 50, 50)

	// Blue/green, then promotion.
	if err := rt.SetRoutes(ctx, cd, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	ieAssertRoutes(t, rt, cd, 0, 100)
	if err := rt.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	ieAssertRoutes(t, rt, cd, 100, 0)
	if err := rt.SetRoutes(ctx, cd, 0, 0, false); err == nil {
		t.Error("SetRoutes(0, 0) succeeded")
	}
	ieAssertRoutes(t, rt, cd, 100, 0)
	if err := rt.Finalize(ctx, cd); err != nil {
		t.Fatal(err)
	}
}

func TestAPISIXBadInput(t *testing.T) {
	ctx := context.Background()
	onlyOriginal := func(t *testing.T, e *routerEnv) {
		t.Helper()
		if names := apisixRouteNames(t, e); len(names) != 1 || names[0] != "podinfo" {
			t.Errorf("ApisixRoutes = %v, want only the original", names)
		}
	}

	t.Run("missing routeRef", func(t *testing.T) {
		e, cd := apisixSetup(t, func(cd *flaggerv1.Canary) { cd.Spec.RouteRef = nil }, nil, true)
		rt := NewAPISIX(e.c, Options{})
		ieAssertInvalid(t, "Validate", rt.Validate(cd))
		ieAssertInvalid(t, "Reconcile", rt.Reconcile(ctx, cd))
		ieAssertInvalid(t, "SetRoutes", rt.SetRoutes(ctx, cd, 90, 10, false))
		_, _, _, err := rt.GetRoutes(ctx, cd)
		ieAssertInvalid(t, "GetRoutes", err)
		onlyOriginal(t, e)
	})

	t.Run("missing route", func(t *testing.T) {
		e, cd := apisixSetup(t, nil, nil, false)
		err := NewAPISIX(e.c, Options{}).Reconcile(ctx, cd)
		if !apierrors.IsNotFound(err) || IsInvalidSpec(err) || !strings.Contains(err.Error(), "ApisixRoute podinfo."+e.ns+" (spec.routeRef") {
			t.Fatalf("err = %v, want a not-found error naming the route", err)
		}
		if names := apisixRouteNames(t, e); len(names) != 0 {
			t.Errorf("ApisixRoutes = %v, want none", names)
		}
	})

	for name, mutate := range map[string]func(map[string]any){
		"two backends": func(spec map[string]any) {
			h := spec["http"].([]any)[1].(map[string]any)
			h["backends"] = append(h["backends"].([]any), map[string]any{"serviceName": "podinfo-v2", "servicePort": int64(9898)})
		},
		"no backend for the apex service": func(spec map[string]any) {
			spec["http"] = spec["http"].([]any)[:1]
		},
		"no http routes": func(spec map[string]any) {
			delete(spec, "http")
		},
	} {
		t.Run(name, func(t *testing.T) {
			e, cd := apisixSetup(t, nil, mutate, true)
			err := NewAPISIX(e.c, Options{}).Reconcile(ctx, cd)
			ieAssertInvalid(t, "Reconcile", err)
			if !strings.Contains(err.Error(), "ApisixRoute podinfo."+e.ns) {
				t.Errorf("err = %v", err)
			}
			onlyOriginal(t, e)
		})
	}

	t.Run("canary route controlled by another owner", func(t *testing.T) {
		e, cd := apisixSetup(t, nil, nil, true)
		other := apisixRouteFixture(e.ns, nil)(e.ns).(*unstructured.Unstructured)
		other.SetName("podinfo-podinfo-canary")
		ieForeignOwner(t, e, other)
		if err := e.c.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		rt := NewAPISIX(e.c, Options{})
		err := rt.Reconcile(ctx, cd)
		ieAssertInvalid(t, "Reconcile", err)
		if !strings.Contains(err.Error(), "ApisixRoute podinfo-podinfo-canary."+e.ns+" is controlled by ConfigMap other") {
			t.Errorf("err = %v", err)
		}
		ieAssertInvalid(t, "SetRoutes", rt.SetRoutes(ctx, cd, 90, 10, false))
		if got := apisixGet(t, e, "podinfo-podinfo-canary"); got.GetResourceVersion() != other.GetResourceVersion() {
			t.Error("the foreign route was written")
		}
	})
}
