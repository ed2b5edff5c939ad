package workload

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func hpa(name string, minReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			MinReplicas:    int32p(minReplicas),
			MaxReplicas:    10,
		},
	}
}

func scaledObject(name string, minReplicas int64, annotations map[string]string) *unstructured.Unstructured {
	so := newScaledObject()
	so.SetName(name)
	so.SetNamespace(ns)
	so.SetAnnotations(annotations)
	so.Object["spec"] = map[string]any{
		"scaleTargetRef":  map[string]any{"name": "podinfo"},
		"minReplicaCount": minReplicas,
		"maxReplicaCount": int64(5),
		"triggers": []any{
			map[string]any{"type": "prometheus", "name": "requests", "metadata": map[string]any{
				"query": `sum(rate(http_requests_total{app="podinfo"}[1m])) + sum(up{service="podinfo-canary"})`}},
			map[string]any{"type": "prometheus", "name": "custom", "metadata": map[string]any{"query": `up{app="podinfo"}`}},
			map[string]any{"type": "cpu", "metadata": map[string]any{"value": "50"}},
		},
		"advanced": map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"name": "podinfo-hpa"}},
	}
	return so
}

func TestDeploymentScaling(t *testing.T) {
	hpaRef := &flaggerv1.AutoscalerReference{Kind: KindHorizontalPodAutoscaler, Name: "podinfo"}
	soRef := &flaggerv1.AutoscalerReference{Kind: KindScaledObject, Name: "podinfo-so"}
	primary := newDeployment("podinfo-primary", int32p(5))
	tests := []struct {
		name       string
		target     *int32
		autoscaler *flaggerv1.AutoscalerReference
		objects    []client.Object
		scale      func(Controller, context.Context, *flaggerv1.Canary) error
		want       int32
	}{
		{"to zero", int32p(3), nil, nil, Controller.ScaleToZero, 0},
		{"from zero keeps target replicas", int32p(3), nil, []client.Object{primary}, Controller.ScaleFromZero, 3},
		{"from zero without autoscaler takes primary replicas", int32p(0), nil, []client.Object{primary}, Controller.ScaleFromZero, 5},
		{"from zero without primary is one", int32p(0), nil, nil, Controller.ScaleFromZero, 1},
		{"from zero takes HPA minimum above one", int32p(0), hpaRef, []client.Object{primary, hpa("podinfo", 3)}, Controller.ScaleFromZero, 3},
		{"from zero with HPA minimum of one is one", int32p(0), hpaRef, []client.Object{primary, hpa("podinfo", 1)}, Controller.ScaleFromZero, 1},
		{"from zero takes ScaledObject minimum", int32p(0), soRef, []client.Object{primary, scaledObject("podinfo-so", 2, nil)}, Controller.ScaleFromZero, 2},
		{"finalize takes primary replicas", int32p(0), nil, []client.Object{primary}, Controller.Finalize, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newTestFactory(t, Options{}, append(tt.objects, newDeployment("podinfo", tt.target))...)
			cd := newCanary(KindDeployment, "podinfo")
			cd.Spec.AutoscalerRef = tt.autoscaler
			if err := tt.scale(mustController(t, f, cd), context.Background(), cd); err != nil {
				t.Fatal(err)
			}
			d := get(t, c, "podinfo", &appsv1.Deployment{})
			if *d.Spec.Replicas != tt.want {
				t.Errorf("replicas = %d, want %d", *d.Spec.Replicas, tt.want)
			}
			if d.Spec.Template.Spec.Containers[0].Image == "" {
				t.Error("the patch touched more than replicas")
			}
		})
	}
}

func TestDaemonSetScaleToZeroAndBack(t *testing.T) {
	f, c := newTestFactory(t, Options{}, newDaemonSet("podinfo"))
	cd := newCanary(KindDaemonSet, "podinfo")
	ctrl := mustController(t, f, cd)
	ctx := context.Background()
	if err := ctrl.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	before, _ := ctrl.Revision(ctx, cd)

	if err := ctrl.ScaleToZero(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ds := get(t, c, "podinfo", &appsv1.DaemonSet{})
	if ds.Spec.Template.Spec.NodeSelector[ScaleToZeroNodeSelector] != "true" {
		t.Fatalf("node selector = %v", ds.Spec.Template.Spec.NodeSelector)
	}
	if after, _ := ctrl.Revision(ctx, cd); after != before {
		t.Error("scaling to zero changed the revision")
	}
	if err := ctrl.Promote(ctx, cd); err != nil {
		t.Fatal(err)
	}
	p := get(t, c, "podinfo-primary", &appsv1.DaemonSet{})
	if _, parked := p.Spec.Template.Spec.NodeSelector[ScaleToZeroNodeSelector]; parked {
		t.Error("the primary inherited the scale-to-zero node selector")
	}
	if p.Spec.Selector.MatchLabels["app"] != "podinfo-primary" || p.Spec.Template.Labels["app"] != "podinfo-primary" {
		t.Errorf("primary selector/labels = %v / %v", p.Spec.Selector.MatchLabels, p.Spec.Template.Labels)
	}

	if err := ctrl.ScaleFromZero(ctx, cd); err != nil {
		t.Fatal(err)
	}
	ds = get(t, c, "podinfo", &appsv1.DaemonSet{})
	if _, parked := ds.Spec.Template.Spec.NodeSelector[ScaleToZeroNodeSelector]; parked {
		t.Error("ScaleFromZero left the node selector")
	}
	if after, _ := ctrl.Revision(ctx, cd); after != before {
		t.Error("scaling back changed the revision")
	}
}
