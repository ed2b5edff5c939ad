package router

import (
	"context"
	"fmt"
	"strings"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const (
	traefikTestPrimaryOnly = `
weighted:
  services:
  - {name: podinfo-primary, namespace: $NS, port: 9898, weight: 100}
`
	traefikTestBoth = `
weighted:
  services:
  - {name: podinfo-primary, namespace: $NS, port: 9898, weight: %d}
  - {name: podinfo-canary, namespace: $NS, port: 9898, weight: %d}
`
)

func TestTraefikRouterCanary(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := testCanary("traefik")
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{
		Labels:      map[string]string{"app.kubernetes.io/part-of": "shop"},
		Annotations: map[string]string{"team": "web"},
	}
	cd = e.createCanary(t, cd)
	r := NewTraefik(e.c, Options{FieldOwner: "pennant"})

	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ts := edgeTestGet(t, e, traefikServiceGVK, "podinfo")
	edgeTestSpec(t, e, ts, traefikTestPrimaryOnly)
	edgeTestGenerated(t, ts, cd)
	edgeTestLabels(t, ts, cd.Spec.Service.Apex.Labels)
	edgeTestRoutes(t, r, cd, 100, 0)
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	edgeTestUnchanged(t, e, ts)

	for w := 10; w <= 50; w += 10 {
		if err := r.SetRoutes(ctx, cd, 100-w, w, false); err != nil {
			t.Fatalf("weight %d: %v", w, err)
		}
		got := edgeTestGet(t, e, traefikServiceGVK, "podinfo")
		edgeTestSpec(t, e, got, fmt.Sprintf(traefikTestBoth, 100-w, w))
		edgeTestRoutes(t, r, cd, 100-w, w)
		if w == 30 {
			// A reconcile during the analysis keeps the weights (Flagger #1692) and writes nothing.
			if err := r.Reconcile(ctx, cd); err != nil {
				t.Fatal(err)
			}
			edgeTestRoutes(t, r, cd, 70, 30)
			edgeTestUnchanged(t, e, got)
		}
	}

	// Promotion: the canary, about to be scaled to zero, leaves the weighted round robin.
	if err := r.SetRoutes(ctx, cd, 100, 0, false); err != nil {
		t.Fatal(err)
	}
	edgeTestSpec(t, e, edgeTestGet(t, e, traefikServiceGVK, "podinfo"), traefikTestPrimaryOnly)
	edgeTestRoutes(t, r, cd, 100, 0)
}

// TestTraefikRouterTakeOver checks that a TraefikService created by hand keeps its sticky sessions
// and is given back as it was.
func TestTraefikRouterTakeOver(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, testCanary("traefik"))
	const original = `
weighted:
  sticky: {cookie: {name: lb}}
  services: [{name: podinfo, port: 9898}]
`
	edgeTestCreate(t, e, traefikServiceGVK, e.ns, "podinfo", original, nil)
	r := NewTraefik(e.c, Options{FieldOwner: "pennant"})
	if err := r.Reconcile(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRoutes(ctx, cd, 80, 20, false); err != nil {
		t.Fatal(err)
	}
	ts := edgeTestGet(t, e, traefikServiceGVK, "podinfo")
	edgeTestSpec(t, e, ts, "weighted:\n  sticky: {cookie: {name: lb}}\n"+strings.TrimPrefix(fmt.Sprintf(traefikTestBoth, 80, 20), "\nweighted:\n"))
	if _, ok := ts.GetAnnotations()[OriginalConfigAnnotation]; !ok {
		t.Errorf("no %s on the taken over TraefikService", OriginalConfigAnnotation)
	}
	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	restored := edgeTestGet(t, e, traefikServiceGVK, "podinfo")
	edgeTestSpec(t, e, restored, original)
	if len(restored.GetOwnerReferences()) != 0 {
		t.Errorf("owner references after Finalize: %v", restored.GetOwnerReferences())
	}
	if _, ok := restored.GetAnnotations()[OriginalConfigAnnotation]; ok {
		t.Errorf("%s left after Finalize", OriginalConfigAnnotation)
	}
}

func TestTraefikRouterRefusesABTesting(t *testing.T) {
	e := newRouterEnv(t)
	cd := testCanary("traefik")
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: 10, Match: []flaggerv1.ABMatch{
		{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}}},
	}}
	cd = e.createCanary(t, cd)
	err := NewTraefik(e.c, Options{FieldOwner: "pennant"}).Reconcile(context.Background(), cd)
	if !IsInvalidSpec(err) {
		t.Fatalf("Reconcile = %v, want an InvalidSpecError", err)
	}
	edgeTestNone(t, e, traefikServiceGVK)
}

func TestTraefikRouterForeignOwner(t *testing.T) {
	e := newRouterEnv(t)
	cd := e.createCanary(t, testCanary("traefik"))
	ts := edgeTestCreate(t, e, traefikServiceGVK, e.ns, "podinfo", `weighted: {services: [{name: other, port: 80}]}`, edgeTestForeignOwner(t, e))
	r := NewTraefik(e.c, Options{FieldOwner: "pennant"})
	err := r.Reconcile(context.Background(), cd)
	if !IsInvalidSpec(err) || !strings.Contains(err.Error(), "controlled by ConfigMap someone-else") {
		t.Fatalf("Reconcile = %v, want an InvalidSpecError naming the owner", err)
	}
	if err := r.Finalize(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	edgeTestUnchanged(t, e, ts)
}
