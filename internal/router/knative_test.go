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

func knativeCanary(cd *flaggerv1.Canary) {
	cd.Spec.TargetRef = flaggerv1.LocalObjectReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "podinfo"}
	cd.Spec.IngressRef, cd.Spec.RouteRef = nil, nil
}

// knativeService creates the Knative Service podinfo with Knative's default traffic (all to the
// latest revision) and, unless empty, status.latestCreatedRevisionName.
func knativeService(t *testing.T, e *routerEnv, latest string) *unstructured.Unstructured {
	t.Helper()
	ctx := context.Background()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(KnativeServiceGVK)
	u.SetNamespace(e.ns)
	u.SetName("podinfo")
	u.SetAnnotations(map[string]string{"example.com/owner-team": "web"})
	u.Object["spec"] = map[string]any{
		"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"image": "ghcr.io/stefanprodan/podinfo:6.9.0"}},
		}},
		"traffic": []any{map[string]any{"latestRevision": true, "percent": int64(100)}},
	}
	if err := e.c.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	if latest != "" {
		knativeSetLatest(t, e, latest)
	}
	return knativeGet(t, e)
}

// knativeSetLatest stands in for Knative creating a revision.
func knativeSetLatest(t *testing.T, e *routerEnv, revision string) {
	t.Helper()
	u := knativeGet(t, e)
	if err := unstructured.SetNestedField(u.Object, revision, "status", "latestCreatedRevisionName"); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Status().Update(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

func knativeGet(t *testing.T, e *routerEnv) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(KnativeServiceGVK)
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: "podinfo"}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

func knativeWantTraffic(t *testing.T, u *unstructured.Unstructured, primaryRevision string, primary, canary int64) {
	t.Helper()
	got, _, _ := unstructured.NestedSlice(u.Object, "spec", "traffic")
	want := []any{
		map[string]any{"latestRevision": true, "percent": canary},
		map[string]any{"revisionName": primaryRevision, "latestRevision": false, "percent": primary},
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("spec.traffic = %v, want %v", got, want)
	}
}

func TestKnativeRoutesWeights(t *testing.T) {
	ctx := context.Background()
	e, cd := ieSetup(t, "knative", knativeCanary)
	// The Knative Service is the user's, whatever controls it: the router patches it, never owns it.
	ksvc := knativeService(t, e, "")
	ieForeignOwner(t, e, ksvc)
	if err := e.c.Update(ctx, ksvc); err != nil {
		t.Fatal(err)
	}
	knativeSetLatest(t, e, "podinfo-00001")
	owners := knativeGet(t, e).GetOwnerReferences()
	c, writes := ieCountWrites(t, e)
	rt := NewKnative(c, Options{FieldOwner: "pennant"})

	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ksvc = knativeGet(t, e)
	wantAnnotations := map[string]string{"example.com/owner-team": "web", KnativePrimaryRevisionAnnotation: "podinfo-00001"}
	if got := ksvc.GetAnnotations(); !equality.Semantic.DeepEqual(got, wantAnnotations) {
		t.Errorf("annotations = %v, want %v", got, wantAnnotations)
	}
	knativeWantTraffic(t, ksvc, "podinfo-00001", 100, 0)
	if got := ksvc.GetOwnerReferences(); !equality.Semantic.DeepEqual(got, owners) {
		t.Errorf("owner references = %v, want %v", got, owners)
	}
	ieAssertRoutes(t, rt, cd, 100, 0)

	// A new revision is the canary: the primary stays.
	knativeSetLatest(t, e, "podinfo-00002")
	n := *writes
	if err := rt.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if *writes != n {
		t.Errorf("Reconcile of an unchanged service wrote %d times", *writes-n)
	}

	for _, w := range []int{10, 20, 30, 40, 50} {
		if err := rt.SetRoutes(ctx, cd, 100-w, w, false); err != nil {
			t.Fatal(err)
		}
		knativeWantTraffic(t, knativeGet(t, e), "podinfo-00001", int64(100-w), int64(w))
		ieAssertRoutes(t, rt, cd, 100-w, w)
	}
	n = *writes
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

	// Promotion moves the annotation (the workload's job), then all traffic goes to the primary.
	ksvc = knativeGet(t, e)
	ksvc.SetAnnotations(ieWith(ksvc.GetAnnotations(), KnativePrimaryRevisionAnnotation, "podinfo-00002"))
	if err := e.c.Update(ctx, ksvc); err != nil {
		t.Fatal(err)
	}
	if err := rt.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	knativeWantTraffic(t, knativeGet(t, e), "podinfo-00002", 100, 0)
	ieAssertRoutes(t, rt, cd, 100, 0)

	// Finalize removes the annotation only, once.
	n = *writes
	for range 2 {
		if err := rt.Finalize(ctx, cd); err != nil {
			t.Fatal(err)
		}
	}
	if *writes != n+1 {
		t.Errorf("two Finalize calls wrote %d times, want 1", *writes-n)
	}
	ksvc = knativeGet(t, e)
	if got, want := ksvc.GetAnnotations(), map[string]string{"example.com/owner-team": "web"}; !equality.Semantic.DeepEqual(got, want) {
		t.Errorf("annotations after Finalize = %v, want %v", got, want)
	}
	knativeWantTraffic(t, ksvc, "podinfo-00002", 100, 0)
	if _, _, _, err := rt.GetRoutes(ctx, cd); err == nil || !strings.Contains(err.Error(), KnativePrimaryRevisionAnnotation) {
		t.Errorf("GetRoutes after Finalize: %v", err)
	}
}

func TestKnativeBadInput(t *testing.T) {
	ctx := context.Background()

	t.Run("not a Knative target", func(t *testing.T) {
		e, cd := ieSetup(t, "knative", nil)
		knativeService(t, e, "podinfo-00001")
		rt := NewKnative(e.c, Options{})
		ieAssertInvalid(t, "Validate", rt.Validate(cd))
		ieAssertInvalid(t, "Reconcile", rt.Reconcile(ctx, cd))
		ieAssertInvalid(t, "SetRoutes", rt.SetRoutes(ctx, cd, 90, 10, false))
		if err := rt.Finalize(ctx, cd); err != nil {
			t.Errorf("Finalize: %v", err)
		}
		if _, ok := knativeGet(t, e).GetAnnotations()[KnativePrimaryRevisionAnnotation]; ok {
			t.Error("the Knative Service was annotated")
		}
	})

	t.Run("missing Knative Service", func(t *testing.T) {
		e, cd := ieSetup(t, "knative", knativeCanary)
		rt := NewKnative(e.c, Options{})
		if err := rt.Validate(cd); err != nil {
			t.Fatal(err)
		}
		err := rt.Reconcile(ctx, cd)
		if !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "knative service podinfo."+e.ns+" (spec.targetRef") {
			t.Fatalf("err = %v, want a not-found error naming the service", err)
		}
		if _, _, _, err := rt.GetRoutes(ctx, cd); !apierrors.IsNotFound(err) {
			t.Errorf("GetRoutes: %v", err)
		}
		if err := rt.Finalize(ctx, cd); err != nil {
			t.Errorf("Finalize: %v", err)
		}
	})

	t.Run("no revision yet", func(t *testing.T) {
		e, cd := ieSetup(t, "knative", knativeCanary)
		before := knativeService(t, e, "")
		rt := NewKnative(e.c, Options{})
		if err := rt.Reconcile(ctx, cd); err == nil || IsInvalidSpec(err) || !strings.Contains(err.Error(), "no revision yet") {
			t.Fatalf("err = %v", err)
		}
		for name, err := range map[string]error{
			"SetRoutes": rt.SetRoutes(ctx, cd, 90, 10, false),
			"GetRoutes": func() error { _, _, _, err := rt.GetRoutes(ctx, cd); return err }(),
		} {
			if err == nil || !strings.Contains(err.Error(), KnativePrimaryRevisionAnnotation) {
				t.Errorf("%s before Reconcile: %v", name, err)
			}
		}
		if got := knativeGet(t, e).GetResourceVersion(); got != before.GetResourceVersion() {
			t.Error("the Knative Service was written")
		}
	})
}
