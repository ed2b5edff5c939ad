package controller_test

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

var knativeServiceGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

func knativeService(name string) *unstructured.Unstructured {
	ksvc := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"containers": []any{map[string]any{"image": "ghcr.io/stefanprodan/podinfo:6.0.0"}},
		}}},
	}}
	ksvc.SetGroupVersionKind(knativeServiceGVK)
	ksvc.SetName(name)
	return ksvc
}

// setRevision plays Knative: the latest created revision is ready.
func (f *fixture) setRevision(name, revision string) {
	f.t.Helper()
	ksvc := &unstructured.Unstructured{}
	ksvc.SetGroupVersionKind(knativeServiceGVK)
	f.get(name, ksvc)
	patch := client.MergeFrom(ksvc.DeepCopy())
	_ = unstructured.SetNestedField(ksvc.Object, revision, "status", "latestCreatedRevisionName")
	_ = unstructured.SetNestedField(ksvc.Object, revision, "status", "latestReadyRevisionName")
	_ = unstructured.SetNestedSlice(ksvc.Object, []any{map[string]any{"type": "Ready", "status": "True"}}, "status", "conditions")
	if err := f.c.Status().Patch(context.Background(), ksvc, patch); err != nil {
		f.t.Fatal(err)
	}
}

func knativeSplits(obj map[string]any) []split {
	traffic, _, _ := unstructured.NestedSlice(obj, "spec", "traffic")
	var s split
	for _, t := range traffic {
		m := t.(map[string]any)
		percent, _, _ := unstructured.NestedInt64(m, "percent")
		if latest, _, _ := unstructured.NestedBool(m, "latestRevision"); latest {
			s.canary = int(percent)
		} else {
			s.primary = int(percent)
		}
	}
	if len(traffic) == 0 {
		return nil
	}
	return []split{s}
}

func TestKnativeServiceRelease(t *testing.T) {
	f := newFixture(t)
	f.create(knativeService("podinfo"))
	f.setRevision("podinfo", "podinfo-00001")
	cd := &flaggerv1.Canary{Spec: flaggerv1.CanarySpec{
		Provider:                "knative",
		TargetRef:               flaggerv1.LocalObjectReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "podinfo"},
		ProgressDeadlineSeconds: ptr.To[int32](60),
		Analysis:                &flaggerv1.CanaryAnalysis{Interval: "1s", Threshold: 1, StepWeight: 25, MaxWeight: 50},
	}}
	cd.Name = "podinfo"
	f.create(cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	ksvc := &unstructured.Unstructured{}
	ksvc.SetGroupVersionKind(knativeServiceGVK)
	f.get("podinfo", ksvc)
	if got := ksvc.GetAnnotations()[flaggerv1.KnativePrimaryRevisionAnnotation]; got != "podinfo-00001" {
		t.Fatalf("primary revision annotation = %q, want podinfo-00001", got)
	}
	rec := f.recordWeights(knativeServiceGVK, "podinfo", knativeSplits)

	f.setRevision("podinfo", "podinfo-00002")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.get("podinfo", ksvc)
	if got := ksvc.GetAnnotations()[flaggerv1.KnativePrimaryRevisionAnnotation]; got != "podinfo-00002" {
		t.Errorf("primary revision after promotion = %q, want podinfo-00002", got)
	}
	got := rec.sequence()
	want := []string{"100/0", "75/25", "50/50", "100/0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Knative traffic went %v, want %v", got, want)
	}
}
