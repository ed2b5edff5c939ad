package workload

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// withEverything decorates a target with what primary creation rewrites or filters.
func withEverything(d *appsv1.Deployment) *appsv1.Deployment {
	d.Labels["kustomize.toolkit.fluxcd.io/name"] = "apps"
	d.Annotations = map[string]string{
		"team.example.com/owner":            "a",
		"helm.toolkit.fluxcd.io/name":       "apps",
		"deployment.kubernetes.io/revision": "7",
	}
	d.Spec.Template.Labels["kustomize.toolkit.fluxcd.io/namespace"] = "flux-system"
	d.Spec.ProgressDeadlineSeconds = int32p(120)
	d.Spec.MinReadySeconds = 5
	d.Spec.RevisionHistoryLimit = int32p(3)
	d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo", "tier": "podinfo"}}
	d.Spec.Template.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{LabelSelector: sel, TopologyKey: "kubernetes.io/hostname"}},
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 1, PodAffinityTerm: corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"podinfo", "other"}},
			}},
			TopologyKey: "zone",
		}}},
	}}
	d.Spec.Template.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
	}}
	c := &d.Spec.Template.Spec.Containers[0]
	c.Env = []corev1.EnvVar{{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config-env"}, Key: "color"}}}}
	c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-secret-env"}}}}
	d.Spec.Template.Spec.Volumes = []corev1.Volume{
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config-vol"}}}},
		{Name: "untracked", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shared-config"}}}},
	}
	return d
}

func trackedObjects() []client.Object {
	return []client.Object{
		configMap("podinfo-config-env", map[string]string{"color": "blue"}, nil),
		configMap("podinfo-config-vol", map[string]string{"a": "1"}, nil),
		configMap("shared-config", map[string]string{"b": "2"}, map[string]string{ConfigTrackingAnnotation: "disabled"}),
		secret("podinfo-secret-env", corev1.SecretTypeOpaque, map[string][]byte{"token": []byte("s3cr3t")}),
	}
}

func TestDeploymentInitializeCreatesPrimary(t *testing.T) {
	target := withEverything(newDeployment("podinfo", int32p(3)))
	f, c := newTestFactory(t, Options{IncludeLabelPrefix: []string{"*"}, EnableConfigTracking: true},
		append(trackedObjects(), target)...)
	cd := newCanary(KindDeployment, "podinfo")
	ctrl := mustController(t, f, cd)
	if err := ctrl.Initialize(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	p := get(t, c, "podinfo-primary", &appsv1.Deployment{})

	wantLabels := map[string]string{"app": "podinfo-primary", "team": "a"}
	if !equalMaps(p.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", p.Labels, wantLabels)
	}
	revision, _ := ctrl.Revision(context.Background(), cd)
	wantAnnotations := map[string]string{"team.example.com/owner": "a", PromotedRevisionAnnotation: revision}
	if !equalMaps(p.Annotations, wantAnnotations) {
		t.Errorf("annotations = %v, want %v", p.Annotations, wantAnnotations)
	}
	assertCanaryController(t, p.OwnerReferences)
	if got := p.Spec.Selector.MatchLabels; !equalMaps(got, map[string]string{"app": "podinfo-primary"}) {
		t.Errorf("selector = %v", got)
	}
	if got := p.Spec.Template.Labels; !equalMaps(got, map[string]string{"app": "podinfo-primary"}) {
		t.Errorf("pod labels = %v", got)
	}
	if p.Spec.Template.Annotations[FlaggerIDAnnotation] == "" || p.Spec.Template.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("pod annotations = %v", p.Spec.Template.Annotations)
	}
	if *p.Spec.Replicas != 3 || *p.Spec.ProgressDeadlineSeconds != 120 || p.Spec.MinReadySeconds != 5 ||
		*p.Spec.RevisionHistoryLimit != 3 || p.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("copied spec fields wrong: %+v", p.Spec)
	}

	spec := p.Spec.Template.Spec
	anti := spec.Affinity.PodAntiAffinity
	if got := anti.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels; got["app"] != "podinfo-primary" || got["tier"] != "podinfo" {
		t.Errorf("anti-affinity matchLabels = %v: want only the selector label rewritten", got)
	}
	if got := anti.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector.MatchExpressions[0].Values; got[0] != "podinfo-primary" || got[1] != "other" {
		t.Errorf("anti-affinity expression values = %v", got)
	}
	if got := spec.TopologySpreadConstraints[0].LabelSelector.MatchLabels["app"]; got != "podinfo-primary" {
		t.Errorf("topology spread selector = %s", got)
	}
	if got := spec.Containers[0].Env[0].ValueFrom.ConfigMapKeyRef.Name; got != "podinfo-config-env-primary" {
		t.Errorf("env configmap ref = %s", got)
	}
	if got := spec.Containers[0].EnvFrom[0].SecretRef.Name; got != "podinfo-secret-env-primary" {
		t.Errorf("envFrom secret ref = %s", got)
	}
	if got := spec.Volumes[0].ConfigMap.Name; got != "podinfo-config-vol-primary" {
		t.Errorf("volume configmap = %s", got)
	}
	if got := spec.Volumes[1].ConfigMap.Name; got != "shared-config" {
		t.Errorf("untracked volume configmap = %s: want it left alone", got)
	}
	for _, name := range []string{"podinfo-config-env-primary", "podinfo-config-vol-primary"} {
		cm := get(t, c, name, &corev1.ConfigMap{})
		assertCanaryController(t, cm.OwnerReferences)
	}
	if s := get(t, c, "podinfo-secret-env-primary", &corev1.Secret{}); string(s.Data["token"]) != "s3cr3t" || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("secret copy = %+v", s)
	}

	// The target itself is untouched.
	if got := get(t, c, "podinfo", &appsv1.Deployment{}); *got.Spec.Replicas != 3 || got.Spec.Template.Spec.Volumes[0].ConfigMap.Name != "podinfo-config-vol" {
		t.Error("Initialize changed the target")
	}
}

func TestDeploymentInitializeReplicasAndLabelPrefix(t *testing.T) {
	tests := []struct {
		name     string
		replicas *int32
		prefixes []string
		want     int32
		labels   map[string]string
	}{
		{"nil replicas, no prefix", nil, nil, 1, map[string]string{"app": "podinfo-primary"}},
		{"zero replicas", int32p(0), []string{"te"}, 1, map[string]string{"app": "podinfo-primary", "team": "a"}},
		{"two replicas", int32p(2), []string{"x"}, 2, map[string]string{"app": "podinfo-primary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newTestFactory(t, Options{IncludeLabelPrefix: tt.prefixes}, newDeployment("podinfo", tt.replicas))
			cd := newCanary(KindDeployment, "podinfo")
			if err := mustController(t, f, cd).Initialize(context.Background(), cd); err != nil {
				t.Fatal(err)
			}
			p := get(t, c, "podinfo-primary", &appsv1.Deployment{})
			if *p.Spec.Replicas != tt.want {
				t.Errorf("replicas = %d, want %d", *p.Spec.Replicas, tt.want)
			}
			if !equalMaps(p.Labels, tt.labels) {
				t.Errorf("labels = %v, want %v", p.Labels, tt.labels)
			}
		})
	}
}

func TestDeploymentInitializeLeavesExistingPrimary(t *testing.T) {
	target := withEverything(newDeployment("podinfo", int32p(1)))
	f, c := newTestFactory(t, Options{EnableConfigTracking: true}, append(trackedObjects(), target)...)
	cd := newCanary(KindDeployment, "podinfo")
	ctrl := mustController(t, f, cd)
	ctx := context.Background()
	if err := ctrl.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	before := get(t, c, "podinfo-primary", &appsv1.Deployment{})

	// A new revision and new config data must reach the primary only through Promote.
	changeImageAndConfig(t, c, "podinfo:6.0.1", "green")
	if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config-vol-primary", Namespace: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	after := get(t, c, "podinfo-primary", &appsv1.Deployment{})
	if after.ResourceVersion != before.ResourceVersion {
		t.Error("Initialize updated an existing primary")
	}
	if got := get(t, c, "podinfo-config-env-primary", &corev1.ConfigMap{}).Data["color"]; got != "blue" {
		t.Errorf("primary config copy = %s before promotion, want blue", got)
	}
	get(t, c, "podinfo-config-vol-primary", &corev1.ConfigMap{}) // a missing copy is recreated
}

func changeImageAndConfig(t *testing.T, c client.Client, image, color string) {
	t.Helper()
	ctx := context.Background()
	d := get(t, c, "podinfo", &appsv1.Deployment{})
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := c.Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	cm := get(t, c, "podinfo-config-env", &corev1.ConfigMap{})
	cm.Data["color"] = color
	if err := c.Update(ctx, cm); err != nil {
		t.Fatal(err)
	}
}

func TestDeploymentPromote(t *testing.T) {
	tests := []struct {
		name           string
		autoscaler     bool
		targetReplicas int32
		wantReplicas   int32
	}{
		{"replicas copied without autoscaler", false, 4, 4},
		{"replicas kept with autoscaler", true, 4, 2},
		{"target at zero keeps primary replicas", false, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := withEverything(newDeployment("podinfo", int32p(2)))
			f, c := newTestFactory(t, Options{EnableConfigTracking: true}, append(trackedObjects(), target)...)
			cd := newCanary(KindDeployment, "podinfo")
			if tt.autoscaler {
				cd.Spec.AutoscalerRef = &flaggerv1.AutoscalerReference{Kind: KindHorizontalPodAutoscaler, Name: "podinfo"}
			}
			ctrl := mustController(t, f, cd)
			ctx := context.Background()
			if err := ctrl.Initialize(ctx, cd); err != nil {
				t.Fatal(err)
			}
			firstID := get(t, c, "podinfo-primary", &appsv1.Deployment{}).Spec.Template.Annotations[FlaggerIDAnnotation]

			changeImageAndConfig(t, c, "podinfo:6.0.1", "green")
			d := get(t, c, "podinfo", &appsv1.Deployment{})
			d.Spec.Replicas = int32p(tt.targetReplicas)
			if err := c.Update(ctx, d); err != nil {
				t.Fatal(err)
			}
			if err := ctrl.Promote(ctx, cd); err != nil {
				t.Fatal(err)
			}

			p := get(t, c, "podinfo-primary", &appsv1.Deployment{})
			if got := p.Spec.Template.Spec.Containers[0].Image; got != "podinfo:6.0.1" {
				t.Errorf("image = %s", got)
			}
			if id := p.Spec.Template.Annotations[FlaggerIDAnnotation]; id == "" || id == firstID {
				t.Errorf("flagger-id = %q, want a new one (was %q)", id, firstID)
			}
			if *p.Spec.Replicas != tt.wantReplicas {
				t.Errorf("replicas = %d, want %d", *p.Spec.Replicas, tt.wantReplicas)
			}
			if got := p.Spec.Template.Spec.Volumes[0].ConfigMap.Name; got != "podinfo-config-vol-primary" {
				t.Errorf("volume = %s", got)
			}
			if got := get(t, c, "podinfo-config-env-primary", &corev1.ConfigMap{}).Data["color"]; got != "green" {
				t.Errorf("config copy = %s after promotion, want green", got)
			}
			revision, _ := ctrl.Revision(ctx, cd)
			configs, err := ctrl.TrackedConfigs(ctx, cd)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ctrl.PrimaryReady(ctx, cd)
			if err != nil {
				t.Fatal(err)
			}
			// The record names the configs too: a config-only change is visible on the primary.
			if want := PromotedMarker(revision, configs); r.PromotedRevision != want || len(configs) == 0 {
				t.Errorf("promoted revision = %q, want %q (configs %v)", r.PromotedRevision, want, configs)
			}
		})
	}
}

func assertCanaryController(t *testing.T, refs []metav1.OwnerReference) {
	t.Helper()
	want := metav1.OwnerReference{APIVersion: "flagger.app/v1beta1", Kind: "Canary", Name: "podinfo", UID: "canary-uid",
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
	if len(refs) != 1 || !equality.Semantic.DeepEqual(refs[0], want) {
		t.Errorf("owner references = %+v, want only %+v", refs, want)
	}
}

func equalMaps(a, b map[string]string) bool {
	return equality.Semantic.DeepEqual(a, b)
}

func TestPromotedMarkerNamesTheConfigs(t *testing.T) {
	if got := PromotedMarker("rev", nil); got != "rev" {
		t.Errorf("without configs: %q, want the bare revision", got)
	}
	a := PromotedMarker("rev", map[string]string{"configmap/a": "1", "secret/b": "2"})
	b := PromotedMarker("rev", map[string]string{"secret/b": "2", "configmap/a": "1"})
	c := PromotedMarker("rev", map[string]string{"configmap/a": "3", "secret/b": "2"})
	if a != b || a == c || a == "rev" {
		t.Errorf("markers %q %q %q: want equal for equal configs, different when a checksum changes", a, b, c)
	}
}
