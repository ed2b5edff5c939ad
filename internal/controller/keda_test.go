package controller_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

var scaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}

func scaledObject(name, target string) *unstructured.Unstructured {
	so := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"name": target},
			"minReplicaCount": int64(2),
			"maxReplicaCount": int64(5),
			"triggers": []any{map[string]any{
				"type": "prometheus",
				"name": "requests",
				"metadata": map[string]any{
					"serverAddress": "http://prometheus:9090",
					"query":         `sum(rate(http_requests_total{app="` + target + `"}[1m]))`,
					"threshold":     "10",
				},
			}},
		},
	}}
	so.SetGroupVersionKind(scaledObjectGVK)
	so.SetName(name)
	return so
}

func TestKEDAScaledObjectPrimaryCloneAndPause(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 2)
	cd.Spec.AutoscalerRef = &flaggerv1.AutoscalerReference{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "podinfo-so"}
	f.create(podinfoDeployment("podinfo", 2), scaledObject("podinfo-so", "podinfo"), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	primary := newSO()
	f.get("podinfo-so-primary", primary)
	if got, _, _ := unstructured.NestedString(primary.Object, "spec", "scaleTargetRef", "name"); got != "podinfo-primary" {
		t.Errorf("primary ScaledObject targets %q, want podinfo-primary", got)
	}
	triggers, _, _ := unstructured.NestedSlice(primary.Object, "spec", "triggers")
	query, _, _ := unstructured.NestedString(triggers[0].(map[string]any), "metadata", "query")
	if want := `sum(rate(http_requests_total{app="podinfo-primary"}[1m]))`; query != want {
		t.Errorf("primary trigger query = %s, want %s", query, want)
	}
	target := newSO()
	f.get("podinfo-so", target)
	if got := target.GetAnnotations()["autoscaling.keda.sh/paused-replicas"]; got != "0" {
		t.Errorf("idle target ScaledObject paused-replicas = %q, want \"0\"", got)
	}

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseProgressing, phaseTimeout)
	f.get("podinfo-so", target)
	if _, paused := target.GetAnnotations()["autoscaling.keda.sh/paused-replicas"]; paused {
		t.Error("the target ScaledObject stays paused during the analysis")
	}
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.get("podinfo-so", target)
	if got := target.GetAnnotations()["autoscaling.keda.sh/paused-replicas"]; got != "0" {
		t.Errorf("target ScaledObject after promotion paused-replicas = %q, want \"0\"", got)
	}
}

func newSO() *unstructured.Unstructured {
	so := &unstructured.Unstructured{}
	so.SetGroupVersionKind(scaledObjectGVK)
	return so
}
