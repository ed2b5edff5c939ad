package router

import (
	"context"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// A Service target has no selector label: the apex routing object gets no label with an empty key,
// which the API server refuses (every Service target with a mesh provider failed to initialize).
func TestApexLabelsWithoutSelectorLabel(t *testing.T) {
	cd := &flaggerv1.Canary{Spec: flaggerv1.CanarySpec{
		TargetRef: flaggerv1.LocalObjectReference{APIVersion: "v1", Kind: "Service", Name: "backend"},
	}}
	none := func(context.Context, *flaggerv1.Canary) (string, string, map[string]int32, error) {
		return "", "", nil, nil
	}
	labels, err := apexLabels(context.Background(), none, cd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := labels[""]; ok {
		t.Errorf("apex labels %v carry an empty key", labels)
	}
}
