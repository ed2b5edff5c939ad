package workload

import (
	"context"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestHPAScaler(t *testing.T) {
	target := hpa("podinfo", 2)
	target.Labels = map[string]string{"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "apps"}
	target.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
		Name: "cpu", Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: int32p(80)}}}}
	f, c := newTestFactory(t, Options{}, target)
	cd := newCanary(KindDeployment, "podinfo")
	cd.Spec.AutoscalerRef = &flaggerv1.AutoscalerReference{Kind: KindHorizontalPodAutoscaler, Name: "podinfo",
		PrimaryScalerReplicas: &flaggerv1.ScalerReplicas{MinReplicas: int32p(3)}}
	scaler, err := f.Scaler(cd)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := scaler.ReconcilePrimaryScaler(ctx, cd, true); err != nil {
		t.Fatal(err)
	}
	p := get(t, c, "podinfo-primary", &autoscalingv2.HorizontalPodAutoscaler{})
	if p.Spec.ScaleTargetRef.Name != "podinfo-primary" || p.Spec.ScaleTargetRef.Kind != "Deployment" {
		t.Errorf("scaleTargetRef = %+v", p.Spec.ScaleTargetRef)
	}
	if *p.Spec.MinReplicas != 3 || p.Spec.MaxReplicas != 10 || len(p.Spec.Metrics) != 1 {
		t.Errorf("spec = %+v, want min from primaryScalerReplicas, max and metrics from the target", p.Spec)
	}
	if !equalMaps(p.Labels, map[string]string{"app": "podinfo"}) {
		t.Errorf("labels = %v", p.Labels)
	}
	assertCanaryController(t, p.OwnerReferences)

	target = get(t, c, "podinfo", &autoscalingv2.HorizontalPodAutoscaler{})
	target.Spec.MaxReplicas = 20
	target.Labels["team"] = "a"
	if err := c.Update(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := scaler.ReconcilePrimaryScaler(ctx, cd, true); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "podinfo-primary", &autoscalingv2.HorizontalPodAutoscaler{}).Spec.MaxReplicas; got != 10 {
		t.Errorf("init=true updated the primary HPA (max %d)", got)
	}
	if err := scaler.ReconcilePrimaryScaler(ctx, cd, false); err != nil {
		t.Fatal(err)
	}
	p = get(t, c, "podinfo-primary", &autoscalingv2.HorizontalPodAutoscaler{})
	if p.Spec.MaxReplicas != 20 || *p.Spec.MinReplicas != 3 || p.Labels["team"] != "a" {
		t.Errorf("after promotion: max %d, min %d, labels %v", p.Spec.MaxReplicas, *p.Spec.MinReplicas, p.Labels)
	}
	if scaler.PauseTargetScaler(ctx, cd) != nil || scaler.ResumeTargetScaler(ctx, cd) != nil {
		t.Error("HPA pause/resume must be no-ops")
	}
}

func TestPrimaryQuery(t *testing.T) {
	tests := []struct{ query, want string }{
		{`rate(x{app="podinfo"}[1m])`, `rate(x{app="podinfo-primary"}[1m])`},
		{`rate(x{app="podinfo-canary"}[1m])`, `rate(x{app="podinfo-primary"}[1m])`},
		{`rate(x{app="podinfo-primary"}[1m])`, `rate(x{app="podinfo-primary"}[1m])`},
		{`a{d="podinfo"} / b{d="podinfo-canary"}`, `a{d="podinfo-primary"} / b{d="podinfo-primary"}`},
		{`up{app="other"}`, `up{app="other"}`},
	}
	for _, tt := range tests {
		if got := primaryQuery(tt.query, "podinfo"); got != tt.want {
			t.Errorf("primaryQuery(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestScaledObjectScaler(t *testing.T) {
	target := scaledObject("podinfo-so", 1, map[string]string{"team": "a", KEDAPausedReplicasAnnotation: "0"})
	f, c := newTestFactory(t, Options{}, target)
	cd := newCanary(KindDeployment, "podinfo")
	cd.Spec.AutoscalerRef = &flaggerv1.AutoscalerReference{Kind: KindScaledObject, Name: "podinfo-so",
		PrimaryScalerQueries:  map[string]string{"custom": `up{app="mine"}`},
		PrimaryScalerReplicas: &flaggerv1.ScalerReplicas{MaxReplicas: int32p(8)}}
	scaler, err := f.Scaler(cd)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := scaler.ReconcilePrimaryScaler(ctx, cd, true); err != nil {
		t.Fatal(err)
	}
	p := get(t, c, "podinfo-so-primary", newScaledObject())
	field := func(fields ...string) any {
		v, _, _ := unstructured.NestedFieldNoCopy(p.Object, fields...)
		return v
	}
	if got := field("spec", "scaleTargetRef", "name"); got != "podinfo-primary" {
		t.Errorf("scaleTargetRef.name = %v", got)
	}
	if got := field("spec", "advanced", "horizontalPodAutoscalerConfig", "name"); got != "podinfo-hpa-primary" {
		t.Errorf("hpa name = %v", got)
	}
	if got, _ := nestedInt(p.Object, "spec", "maxReplicaCount"); got != 8 {
		t.Errorf("maxReplicaCount = %v, want 8", got)
	}
	if got, _ := nestedInt(p.Object, "spec", "minReplicaCount"); got != 1 {
		t.Errorf("minReplicaCount = %v, want 1", got)
	}
	triggers := field("spec", "triggers").([]any)
	query := func(i int) any {
		v, _, _ := unstructured.NestedFieldNoCopy(triggers[i].(map[string]any), "metadata", "query")
		return v
	}
	if got, want := query(0), `sum(rate(http_requests_total{app="podinfo-primary"}[1m])) + sum(up{service="podinfo-primary"})`; got != want {
		t.Errorf("rewritten query = %v, want %v", got, want)
	}
	if got := query(1); got != `up{app="mine"}` {
		t.Errorf("query from primaryScalerQueries = %v", got)
	}
	if got := query(2); got != nil {
		t.Errorf("a trigger without query got one: %v", got)
	}
	if _, paused := p.GetAnnotations()[KEDAPausedReplicasAnnotation]; paused || p.GetAnnotations()["team"] != "a" {
		t.Errorf("annotations = %v, want the target's without the pause", p.GetAnnotations())
	}
	assertCanaryController(t, p.GetOwnerReferences())
	if target := get(t, c, "podinfo-so", newScaledObject()); target.Object["spec"].(map[string]any)["scaleTargetRef"].(map[string]any)["name"] != "podinfo" {
		t.Error("the target ScaledObject was modified")
	}

	if err := scaler.ResumeTargetScaler(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if _, paused := get(t, c, "podinfo-so", newScaledObject()).GetAnnotations()[KEDAPausedReplicasAnnotation]; paused {
		t.Error("Resume left the paused-replicas annotation")
	}
	if err := scaler.PauseTargetScaler(ctx, cd); err != nil {
		t.Fatal(err)
	}
	so := get(t, c, "podinfo-so", newScaledObject())
	if so.GetAnnotations()[KEDAPausedReplicasAnnotation] != "0" || so.GetAnnotations()["team"] != "a" {
		t.Errorf("annotations after pause = %v", so.GetAnnotations())
	}

	unstructured.RemoveNestedField(so.Object, "spec", "advanced")
	if err := c.Update(ctx, so); err != nil {
		t.Fatal(err)
	}
	if err := scaler.ReconcilePrimaryScaler(ctx, cd, false); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedMap(get(t, c, "podinfo-so-primary", newScaledObject()).Object, "spec", "advanced"); found {
		t.Error("init=false did not update the primary ScaledObject's spec")
	}
}

func TestNopScaler(t *testing.T) {
	f, _ := newTestFactory(t, Options{})
	s, _ := f.Scaler(newCanary(KindDeployment, "podinfo"))
	ctx, cd := context.Background(), newCanary(KindDeployment, "podinfo")
	if s.ReconcilePrimaryScaler(ctx, cd, false) != nil || s.PauseTargetScaler(ctx, cd) != nil || s.ResumeTargetScaler(ctx, cd) != nil {
		t.Error("the nop scaler must do nothing")
	}
}
