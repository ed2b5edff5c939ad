package router

import (
	"context"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// The tests of the ingress-style routers (nginx, skipper, apisix, knative) share these helpers.

var ieFluxOff = map[string]string{FluxReconcileAnnotation: "disabled", HelmDriftDetectionAnnotation: "disabled"}

// ieIngress is the user's Ingress: host app.example.com, / to the apex Service podinfo and /static
// to another Service, with labels and annotations, some of which must not be copied.
func ieIngress(ns string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	backend := func(svc string) networkingv1.IngressBackend {
		return networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 9898}}}
	}
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{
			Name: "podinfo", Namespace: ns,
			Labels: map[string]string{"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"},
			Annotations: map[string]string{
				"kubernetes.io/ingress.class":                      "nginx",
				kubectlLastAppliedAnnotation:                       `{"kind":"Ingress"}`,
				"nginx.ingress.kubernetes.io/proxy-body-size":      "8m",
				"nginx.ingress.kubernetes.io/canary":               "false",
				"kustomize.toolkit.fluxcd.io/checksum":             "abc",
				"zalando.org/skipper-predicate":                    `Header("X-Env", "prod")`,
				"example.com/owner-team":                           "web",
				"nginx.ingress.kubernetes.io/canary-by-header-foo": "stale",
			},
		},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("nginx"),
			Rules: []networkingv1.IngressRule{{
				Host: "app.example.com",
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
					{Path: "/", PathType: &prefix, Backend: backend("podinfo")},
					{Path: "/static", PathType: &prefix, Backend: backend("static")},
				}}},
			}},
		},
	}
}

// ieSetup creates the canary (provider, ingressRef podinfo, routeRef podinfo) after mutate, and the
// given objects, in a fresh namespace.
func ieSetup(t *testing.T, provider string, mutate func(cd *flaggerv1.Canary), objs ...func(ns string) client.Object) (*routerEnv, *flaggerv1.Canary) {
	t.Helper()
	e := newRouterEnv(t)
	cd := testCanary(provider)
	cd.Spec.IngressRef = &flaggerv1.IngressReference{APIVersion: "networking.k8s.io/v1", Kind: "Ingress", Name: "podinfo"}
	cd.Spec.RouteRef = &flaggerv1.RouteReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "podinfo"}
	if mutate != nil {
		mutate(cd)
	}
	cd = e.createCanary(t, cd)
	for _, obj := range objs {
		if err := e.c.Create(context.Background(), obj(e.ns)); err != nil {
			t.Fatal(err)
		}
	}
	return e, cd
}

func ieGetIngress(t *testing.T, e *routerEnv, name string) *networkingv1.Ingress {
	t.Helper()
	ing := &networkingv1.Ingress{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: name}, ing); err != nil {
		t.Fatalf("get ingress %s: %v", name, err)
	}
	return ing
}

func ieIngressNames(t *testing.T, e *routerEnv) []string {
	t.Helper()
	list := &networkingv1.IngressList{}
	if err := e.c.List(context.Background(), list, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ing := range list.Items {
		names = append(names, ing.Name)
	}
	return names
}

func ieAssertRoutes(t *testing.T, rt Interface, cd *flaggerv1.Canary, wantPrimary, wantCanary int) {
	t.Helper()
	p, c, mirrored, err := rt.GetRoutes(context.Background(), cd)
	if err != nil {
		t.Fatalf("GetRoutes: %v", err)
	}
	if p != wantPrimary || c != wantCanary || mirrored {
		t.Fatalf("GetRoutes = %d/%d mirrored=%v, want %d/%d", p, c, mirrored, wantPrimary, wantCanary)
	}
}

func ieAssertController(t *testing.T, obj client.Object, cd *flaggerv1.Canary) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != "Canary" || ref.Name != cd.Name || ref.UID != cd.UID {
		t.Errorf("%s: controller = %+v, want canary %s", obj.GetName(), ref, cd.Name)
	}
}

func ieAssertInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if !IsInvalidSpec(err) {
		t.Fatalf("%s: err = %v, want an InvalidSpecError", what, err)
	}
}

// ieForeignOwner makes obj controlled by a ConfigMap named other, created in its namespace.
func ieForeignOwner(t *testing.T, e *routerEnv, obj client.Object) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: e.ns}}
	if err := e.c.Create(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "other", UID: cm.UID, Controller: ptr.To(true)}})
}

// ieCountWrites returns a client of e's API server that counts the writes made through it, so that
// tests see writes the API server would drop as no-ops (same resourceVersion).
func ieCountWrites(t *testing.T, e *routerEnv) (client.Client, *int) {
	t.Helper()
	c, err := client.NewWithWatch(e.env.Config, client.Options{Scheme: e.c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	writes := new(int)
	return interceptor.NewClient(c, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			*writes++
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			*writes++
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			*writes++
			return c.Patch(ctx, obj, patch, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			*writes++
			return c.Delete(ctx, obj, opts...)
		},
	}), writes
}

func ieWith(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func ieIngressObj(ns string) client.Object { return ieIngress(ns) }

func TestNginxRoutesWeights(t *testing.T) {
	ctx := context.Background()
	e, cd := ieSetup(t, "nginx", nil, ieIngressObj)
	c, writes := ieCountWrites(t, e)
	rt := NewNginx(c, Options{FieldOwner: "pennant"})
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}

	ing := ieGetIngress(t, e, "podinfo-canary")
	wantAnnotations := ieWith(ieFluxOff,
		"kubernetes.io/ingress.class", "nginx",
		"nginx.ingress.kubernetes.io/proxy-body-size", "8m",
		"zalando.org/skipper-predicate", `Header("X-Env", "prod")`,
		"example.com/owner-team", "web",
		"nginx.ingress.kubernetes.io/canary", "true",
		"nginx.ingress.kubernetes.io/canary-weight", "0",
	)
	if !equality.Semantic.DeepEqual(ing.Annotations, wantAnnotations) {
		t.Errorf("annotations = %v, want %v", ing.Annotations, wantAnnotations)
	}
	if want := map[string]string{"app": "podinfo"}; !equality.Semantic.DeepEqual(ing.Labels, want) {
		t.Errorf("labels = %v, want %v", ing.Labels, want)
	}
	wantSpec := ieIngress(e.ns).Spec
	wantSpec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "podinfo-canary"
	if !equality.Semantic.DeepEqual(ing.Spec, wantSpec) {
		t.Errorf("spec = %+v, want %+v", ing.Spec, wantSpec)
	}
	ieAssertController(t, ing, cd)
	src := ieGetIngress(t, e, "podinfo")
	if src.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name != "podinfo" || len(src.OwnerReferences) > 0 {
		t.Errorf("the original ingress changed: %+v", src)
	}
	ieAssertRoutes(t, rt, cd, 100, 0)

	for _, w := range []int{10, 20, 30, 40, 50} {
		if err := rt.SetRoutes(ctx, cd, 100-w, w, false); err != nil {
			t.Fatal(err)
		}
		ing := ieGetIngress(t, e, "podinfo-canary")
		if got := ing.Annotations["nginx.ingress.kubernetes.io/canary-weight"]; got != strconv.Itoa(w) {
			t.Errorf("step %d: canary-weight = %q", w, got)
		}
		if got := ing.Annotations["nginx.ingress.kubernetes.io/canary"]; got != "true" {
			t.Errorf("step %d: canary = %q", w, got)
		}
		ieAssertRoutes(t, rt, cd, 100-w, w)
	}

	// Nothing changes: no write, and Reconcile keeps the weight.
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
	ieAssertRoutes(t, rt, cd, 50, 50)

	// A change of the original reaches the copy, with the weight kept.
	src.Spec.Rules[0].HTTP.Paths[0].Path = "/api"
	if err := e.c.Update(ctx, src); err != nil {
		t.Fatal(err)
	}
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ing = ieGetIngress(t, e, "podinfo-canary")
	if p := ing.Spec.Rules[0].HTTP.Paths[0]; p.Path != "/api" || p.Backend.Service.Name != "podinfo-canary" {
		t.Errorf("path after the original changed = %+v", p)
	}
	ieAssertRoutes(t, rt, cd, 50, 50)

	// Promotion.
	if err := rt.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	ing = ieGetIngress(t, e, "podinfo-canary")
	if got := ing.Annotations["nginx.ingress.kubernetes.io/canary-weight"]; got != "0" {
		t.Errorf("after promotion: canary-weight = %q", got)
	}
	ieAssertRoutes(t, rt, cd, 100, 0)
	if err := rt.Finalize(ctx, cd); err != nil {
		t.Fatal(err)
	}
}

func TestNginxBlueGreenAndPrefix(t *testing.T) {
	ctx := context.Background()
	e, cd := ieSetup(t, "nginx", func(cd *flaggerv1.Canary) {
		cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 2, Iterations: 5}
	}, ieIngressObj)
	rt := NewNginx(e.c, Options{FieldOwner: "pennant", IngressAnnotationsPrefix: "custom.ingress.kubernetes.io"})
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if err := rt.SetRoutes(ctx, cd, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	ing := ieGetIngress(t, e, "podinfo-canary")
	if ing.Annotations["custom.ingress.kubernetes.io/canary"] != "true" || ing.Annotations["custom.ingress.kubernetes.io/canary-weight"] != "100" {
		t.Errorf("annotations = %v", ing.Annotations)
	}
	// With another prefix the nginx.ingress.kubernetes.io/canary* annotations are the user's own.
	if ing.Annotations["nginx.ingress.kubernetes.io/canary"] != "false" {
		t.Errorf("annotations = %v", ing.Annotations)
	}
	ieAssertRoutes(t, rt, cd, 0, 100)
	if err := rt.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	ieAssertRoutes(t, rt, cd, 100, 0)
}

func TestNginxABTesting(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		match []flaggerv1.ABMatch
		want  map[string]string
	}{
		{
			name: "header exact and cookie",
			match: []flaggerv1.ABMatch{
				{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}}},
				{Headers: map[string]flaggerv1.StringMatch{"cookie": {Exact: "canary"}}},
			},
			want: map[string]string{
				"canary-by-header": "x-canary", "canary-by-header-value": "insider", "canary-by-cookie": "canary",
			},
		},
		{
			name:  "header regex",
			match: []flaggerv1.ABMatch{{Headers: map[string]flaggerv1.StringMatch{"user-agent": {Regex: ".*Firefox.*"}}}},
			want:  map[string]string{"canary-by-header": "user-agent", "canary-by-header-pattern": ".*Firefox.*"},
		},
		{
			name: "last header wins",
			match: []flaggerv1.ABMatch{
				{Headers: map[string]flaggerv1.StringMatch{"x-a": {Exact: "1"}, "x-b": {Regex: "2.*"}}},
			},
			want: map[string]string{"canary-by-header": "x-b", "canary-by-header-pattern": "2.*"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, cd := ieSetup(t, "nginx", func(cd *flaggerv1.Canary) {
				cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 2, Iterations: 10, Match: tt.match}
			}, ieIngressObj)
			rt := NewNginx(e.c, Options{FieldOwner: "pennant"})
			if err := rt.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			ieAssertRoutes(t, rt, cd, 100, 0)

			if err := rt.SetRoutes(ctx, cd, 0, 100, false); err != nil {
				t.Fatal(err)
			}
			ing := ieGetIngress(t, e, "podinfo-canary")
			want := map[string]string{"canary": "true", "canary-weight": "0"}
			for k, v := range tt.want {
				want[k] = v
			}
			if got := nginxOwnAnnotations(ing.Annotations); !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("canary annotations = %v, want %v", got, want)
			}
			ieAssertRoutes(t, rt, cd, 0, 100)
			if err := rt.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			ieAssertRoutes(t, rt, cd, 0, 100)

			// Promotion: the matches go, all traffic to the primary.
			if err := rt.SetRoutes(ctx, cd, 100, 0, false); err != nil {
				t.Fatal(err)
			}
			ing = ieGetIngress(t, e, "podinfo-canary")
			if got, want := nginxOwnAnnotations(ing.Annotations), map[string]string{"canary": "true", "canary-weight": "0"}; !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("after promotion: canary annotations = %v, want %v", got, want)
			}
			ieAssertRoutes(t, rt, cd, 100, 0)
		})
	}
}

// nginxOwnAnnotations are the nginx.ingress.kubernetes.io/canary* annotations Pennant writes, by
// suffix, less the user's canary-by-header-foo that is not copied.
func nginxOwnAnnotations(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if s, ok := strings.CutPrefix(k, "nginx.ingress.kubernetes.io/"); ok && strings.HasPrefix(s, "canary") {
			out[s] = v
		}
	}
	return out
}

func TestNginxBadInput(t *testing.T) {
	ctx := context.Background()

	t.Run("missing ingressRef", func(t *testing.T) {
		e, cd := ieSetup(t, "nginx", func(cd *flaggerv1.Canary) { cd.Spec.IngressRef = nil }, ieIngressObj)
		rt := NewNginx(e.c, Options{})
		ieAssertInvalid(t, "Validate", rt.Validate(cd))
		ieAssertInvalid(t, "Reconcile", rt.Reconcile(ctx, cd))
		ieAssertInvalid(t, "SetRoutes", rt.SetRoutes(ctx, cd, 90, 10, false))
		_, _, _, err := rt.GetRoutes(ctx, cd)
		ieAssertInvalid(t, "GetRoutes", err)
		if names := ieIngressNames(t, e); len(names) != 1 {
			t.Errorf("ingresses = %v, want only the original", names)
		}
	})

	t.Run("missing ingress", func(t *testing.T) {
		e, cd := ieSetup(t, "nginx", nil)
		rt := NewNginx(e.c, Options{})
		if err := rt.Validate(cd); err != nil {
			t.Fatal(err)
		}
		err := rt.Reconcile(ctx, cd)
		if !apierrors.IsNotFound(err) || IsInvalidSpec(err) || !strings.Contains(err.Error(), "ingress podinfo."+e.ns+" (spec.ingressRef") {
			t.Fatalf("err = %v, want a not-found error naming the ingress", err)
		}
		if _, _, _, err := rt.GetRoutes(ctx, cd); !apierrors.IsNotFound(err) {
			t.Fatalf("GetRoutes err = %v", err)
		}
		if names := ieIngressNames(t, e); len(names) != 0 {
			t.Errorf("ingresses = %v, want none", names)
		}
	})

	t.Run("no backend for the apex service", func(t *testing.T) {
		e, cd := ieSetup(t, "nginx", func(cd *flaggerv1.Canary) { cd.Spec.Service.Name = "frontend" }, ieIngressObj)
		rt := NewNginx(e.c, Options{})
		err := rt.Reconcile(ctx, cd)
		ieAssertInvalid(t, "Reconcile", err)
		if !strings.Contains(err.Error(), "service frontend") {
			t.Errorf("err = %v", err)
		}
		if names := ieIngressNames(t, e); len(names) != 1 {
			t.Errorf("ingresses = %v, want only the original", names)
		}
	})

	t.Run("canary ingress controlled by another owner", func(t *testing.T) {
		e, cd := ieSetup(t, "nginx", nil, ieIngressObj)
		other := ieIngress(e.ns)
		other.Name = "podinfo-canary"
		ieForeignOwner(t, e, other)
		if err := e.c.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		rt := NewNginx(e.c, Options{})
		err := rt.Reconcile(ctx, cd)
		ieAssertInvalid(t, "Reconcile", err)
		if !strings.Contains(err.Error(), "ConfigMap other") {
			t.Errorf("err = %v", err)
		}
		ieAssertInvalid(t, "SetRoutes", rt.SetRoutes(ctx, cd, 90, 10, false))
		got := ieGetIngress(t, e, "podinfo-canary")
		if got.ResourceVersion != other.ResourceVersion {
			t.Errorf("the foreign ingress was written")
		}
	})
}
