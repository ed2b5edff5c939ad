package router

import (
	"context"
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func skipperWant(t *testing.T, ing *networkingv1.Ingress, primary, canary int, predicate string) {
	t.Helper()
	weights := fmt.Sprintf(`{"podinfo-canary":%d,"podinfo-primary":%d}`, canary, primary)
	if got := ing.Annotations["zalando.org/backend-weights"]; got != weights {
		t.Errorf("backend-weights = %s, want %s", got, weights)
	}
	if got := ing.Annotations["zalando.org/skipper-predicate"]; got != predicate {
		t.Errorf("skipper-predicate = %s, want %s", got, predicate)
	}
}

func TestSkipperRoutesWeights(t *testing.T) {
	ctx := context.Background()
	e, cd := ieSetup(t, "skipper", nil, ieIngressObj)
	c, writes := ieCountWrites(t, e)
	rt := NewSkipper(c, Options{FieldOwner: "pennant"})
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}

	ing := ieGetIngress(t, e, "podinfo-canary")
	wantAnnotations := ieWith(ieFluxOff,
		"kubernetes.io/ingress.class", "nginx",
		"nginx.ingress.kubernetes.io/proxy-body-size", "8m",
		"nginx.ingress.kubernetes.io/canary", "false",
		"nginx.ingress.kubernetes.io/canary-by-header-foo", "stale",
		"example.com/owner-team", "web",
		"zalando.org/backend-weights", `{"podinfo-canary":0,"podinfo-primary":100}`,
		"zalando.org/skipper-predicate", `Weight(100) && Header("X-Env", "prod")`,
	)
	if !equality.Semantic.DeepEqual(ing.Annotations, wantAnnotations) {
		t.Errorf("annotations = %v, want %v", ing.Annotations, wantAnnotations)
	}
	if want := map[string]string{"app": "podinfo"}; !equality.Semantic.DeepEqual(ing.Labels, want) {
		t.Errorf("labels = %v, want %v", ing.Labels, want)
	}
	wantSpec := ieIngress(e.ns).Spec
	paths := wantSpec.Rules[0].HTTP.Paths
	canaryPath := *paths[0].DeepCopy()
	canaryPath.Backend.Service.Name = "podinfo-canary"
	paths[0].Backend.Service.Name = "podinfo-primary"
	wantSpec.Rules[0].HTTP.Paths = append(paths, canaryPath)
	if !equality.Semantic.DeepEqual(ing.Spec, wantSpec) {
		t.Errorf("spec = %+v, want %+v", ing.Spec, wantSpec)
	}
	ieAssertController(t, ing, cd)
	if src := ieGetIngress(t, e, "podinfo"); src.Annotations["zalando.org/backend-weights"] != "" || len(src.OwnerReferences) > 0 {
		t.Errorf("the original ingress changed: %+v", src.ObjectMeta)
	}
	ieAssertRoutes(t, rt, cd, 100, 0)

	for _, w := range []int{10, 20, 30, 40, 50} {
		if err := rt.SetRoutes(ctx, cd, 100-w, w, false); err != nil {
			t.Fatal(err)
		}
		skipperWant(t, ieGetIngress(t, e, "podinfo-canary"), 100-w, w, `Weight(100) && Header("X-Env", "prod")`)
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

	// Promotion switches the canary routes off; Reconcile keeps them off.
	if err := rt.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	n = *writes
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if *writes != n {
		t.Errorf("Reconcile after promotion wrote %d times", *writes-n)
	}
	skipperWant(t, ieGetIngress(t, e, "podinfo-canary"), 100, 0, `False() && Header("X-Env", "prod")`)
	ieAssertRoutes(t, rt, cd, 100, 0)

	// The next rollout turns them on again; blue/green sends everything to the canary.
	if err := rt.SetRoutes(ctx, cd, 0, 100, false); err != nil {
		t.Fatal(err)
	}
	skipperWant(t, ieGetIngress(t, e, "podinfo-canary"), 0, 100, `Weight(100) && Header("X-Env", "prod")`)
	ieAssertRoutes(t, rt, cd, 0, 100)

	// Finalize deletes the canary ingress, once.
	n = *writes
	for range 2 {
		if err := rt.Finalize(ctx, cd); err != nil {
			t.Fatal(err)
		}
	}
	if *writes != n+1 {
		t.Errorf("two Finalize calls wrote %d times, want 1 delete", *writes-n)
	}
	if names := ieIngressNames(t, e); len(names) != 1 || names[0] != "podinfo" {
		t.Errorf("ingresses after Finalize = %v, want only the original", names)
	}
	if _, _, _, err := rt.GetRoutes(ctx, cd); !apierrors.IsNotFound(err) {
		t.Errorf("GetRoutes after Finalize: %v", err)
	}
}

func TestSkipperBadInput(t *testing.T) {
	ctx := context.Background()

	t.Run("missing ingressRef", func(t *testing.T) {
		e, cd := ieSetup(t, "skipper", func(cd *flaggerv1.Canary) { cd.Spec.IngressRef = nil }, ieIngressObj)
		rt := NewSkipper(e.c, Options{})
		ieAssertInvalid(t, "Validate", rt.Validate(cd))
		ieAssertInvalid(t, "Reconcile", rt.Reconcile(ctx, cd))
		ieAssertInvalid(t, "SetRoutes", rt.SetRoutes(ctx, cd, 90, 10, false))
		if err := rt.Finalize(ctx, cd); err != nil {
			t.Errorf("Finalize: %v", err)
		}
		if names := ieIngressNames(t, e); len(names) != 1 {
			t.Errorf("ingresses = %v, want only the original", names)
		}
	})

	t.Run("missing ingress", func(t *testing.T) {
		e, cd := ieSetup(t, "skipper", nil)
		rt := NewSkipper(e.c, Options{})
		err := rt.Reconcile(ctx, cd)
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "ingress podinfo."+e.ns) {
			t.Fatalf("err = %v, want a not-found error naming the ingress", err)
		}
		if err := rt.Finalize(ctx, cd); err != nil {
			t.Errorf("Finalize: %v", err)
		}
		if names := ieIngressNames(t, e); len(names) != 0 {
			t.Errorf("ingresses = %v, want none", names)
		}
	})

	t.Run("no backend for the apex service", func(t *testing.T) {
		e, cd := ieSetup(t, "skipper", func(cd *flaggerv1.Canary) { cd.Spec.Service.Name = "frontend" }, ieIngressObj)
		ieAssertInvalid(t, "Reconcile", NewSkipper(e.c, Options{}).Reconcile(ctx, cd))
		if names := ieIngressNames(t, e); len(names) != 1 {
			t.Errorf("ingresses = %v, want only the original", names)
		}
	})

	t.Run("canary ingress controlled by another owner", func(t *testing.T) {
		e, cd := ieSetup(t, "skipper", nil, ieIngressObj)
		other := ieIngress(e.ns)
		other.Name = "podinfo-canary"
		ieForeignOwner(t, e, other)
		if err := e.c.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		rt := NewSkipper(e.c, Options{})
		ieAssertInvalid(t, "Reconcile", rt.Reconcile(ctx, cd))
		ieAssertInvalid(t, "SetRoutes", rt.SetRoutes(ctx, cd, 90, 10, false))
		ieAssertInvalid(t, "Finalize", rt.Finalize(ctx, cd))
		got := &networkingv1.Ingress{}
		if err := e.c.Get(ctx, client.ObjectKeyFromObject(other), got); err != nil || got.ResourceVersion != other.ResourceVersion {
			t.Errorf("the foreign ingress was written or deleted: %v", err)
		}
	})
}
