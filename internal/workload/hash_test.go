package workload

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRevisionHashIsStableAcrossEqualTemplates(t *testing.T) {
	literal := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "podinfo", "tier": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:      "podinfod",
			Image:     "podinfo:6.0.0",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000m")}},
		}}},
	}
	// The same template as it comes back from the API: decoded from JSON with keys in another order,
	// with empty (non-nil) maps and slices where the literal has nil, and a null creationTimestamp.
	var decoded corev1.PodTemplateSpec
	raw := `{"spec":{"containers":[{"resources":{"limits":{"cpu":"1"}},"image":"podinfo:6.0.0","name":"podinfod","env":[]}],
		"nodeSelector":{}},"metadata":{"creationTimestamp":null,"annotations":{},"labels":{"tier":"web","app":"podinfo"}}}`
	if err := json.Unmarshal([]byte(raw), &decoded); err != nil {
		t.Fatal(err)
	}
	a, err := revisionHash(literal)
	if err != nil {
		t.Fatal(err)
	}
	b, err := revisionHash(decoded)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("equal templates hash differently: %s != %s", a, b)
	}
	if len(a) != 32 {
		t.Errorf("hash %q: want 32 hex characters", a)
	}

	// A newer API adding a field nobody sets is invisible to the hash.
	type newerPodTemplateSpec struct {
		corev1.PodTemplateSpec `json:",inline"`
		NewField               *struct{ X string } `json:"newField"`
		NewList                []string            `json:"newList"`
	}
	c, _ := revisionHash(newerPodTemplateSpec{PodTemplateSpec: literal})
	if c != a {
		t.Errorf("an unset new field changed the hash: %s != %s", c, a)
	}

	changed := literal.DeepCopy()
	changed.Spec.Containers[0].Image = "podinfo:6.0.1"
	d, _ := revisionHash(changed)
	if d == a {
		t.Error("changing the image did not change the hash")
	}
}

func TestPruneEmptyKeepsFalseAndZero(t *testing.T) {
	got, empty := pruneEmpty(map[string]any{"a": false, "b": json.Number("0"), "c": "", "d": map[string]any{"e": nil}, "f": []any{}})
	if empty {
		t.Fatal("map with false and 0 reported empty")
	}
	m := got.(map[string]any)
	if len(m) != 2 || m["a"] != false || m["b"] != json.Number("0") {
		t.Errorf("pruned = %v, want only a=false and b=0", m)
	}
}
