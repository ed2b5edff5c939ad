package workload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func expectedChecksum(t *testing.T, data any) string {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// referencingDeployment references every config in every place the tracker scans.
func referencingDeployment() *appsv1.Deployment {
	d := newDeployment("podinfo", int32p(1))
	ref := func(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }
	spec := &d.Spec.Template.Spec
	spec.Volumes = []corev1.Volume{
		{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("cm-volume")}}},
		{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "secret-volume"}}},
		{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("cm-projected")}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: ref("secret-projected")}},
		}}}},
		{Name: "opt", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("cm-missing-optional"), Optional: ptr.To(true)}}},
	}
	spec.InitContainers = []corev1.Container{{Name: "init", Env: []corev1.EnvVar{
		{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("cm-init-env"), Key: "a"}}},
		{Name: "B", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("secret-tls"), Key: "tls.crt"}}},
	}}}
	spec.Containers[0].EnvFrom = []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("cm-disabled")}},
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("secret-registry")}},
	}
	return d
}

func referencedObjects() []client.Object {
	return []client.Object{
		configMap("cm-volume", map[string]string{"k": "volume"}, nil),
		configMap("cm-projected", map[string]string{"k": "projected"}, nil),
		configMap("cm-init-env", map[string]string{"a": "1"}, nil),
		configMap("cm-disabled", map[string]string{"k": "v"}, map[string]string{ConfigTrackingAnnotation: "disabled"}),
		secret("secret-volume", corev1.SecretTypeBasicAuth, map[string][]byte{"username": []byte("u")}),
		secret("secret-projected", corev1.SecretTypeSSHAuth, map[string][]byte{"ssh-privatekey": []byte("k")}),
		secret("secret-tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": []byte("c")}),
		secret("secret-registry", corev1.SecretTypeDockerConfigJson, map[string][]byte{".dockerconfigjson": []byte("{}")}),
	}
}

func TestTrackedConfigs(t *testing.T) {
	f, _ := newTestFactory(t, Options{EnableConfigTracking: true}, append(referencedObjects(), referencingDeployment())...)
	cd := newCanary(KindDeployment, "podinfo")
	got, err := mustController(t, f, cd).TrackedConfigs(context.Background(), cd)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"configmap/cm-volume":     expectedChecksum(t, map[string]string{"k": "volume"}),
		"configmap/cm-projected":  expectedChecksum(t, map[string]string{"k": "projected"}),
		"configmap/cm-init-env":   expectedChecksum(t, map[string]string{"a": "1"}),
		"secret/secret-volume":    expectedChecksum(t, map[string][]byte{"username": []byte("u")}),
		"secret/secret-projected": expectedChecksum(t, map[string][]byte{"ssh-privatekey": []byte("k")}),
		"secret/secret-tls":       expectedChecksum(t, map[string][]byte{"tls.crt": []byte("c")}),
	}
	if !equalMaps(got, want) {
		t.Errorf("tracked configs:\n got  %v\n want %v", got, want)
	}
}

func TestTrackedConfigsDisabledIsNil(t *testing.T) {
	f, _ := newTestFactory(t, Options{}, append(referencedObjects(), referencingDeployment())...)
	cd := newCanary(KindDeployment, "podinfo")
	got, err := mustController(t, f, cd).TrackedConfigs(context.Background(), cd)
	if err != nil || got != nil {
		t.Errorf("got %v, %v; want nil, nil", got, err)
	}
}

func TestMissingRequiredConfigIsAnError(t *testing.T) {
	objs := referencedObjects()[1:] // no cm-volume, which is not optional
	f, _ := newTestFactory(t, Options{EnableConfigTracking: true}, append(objs, referencingDeployment())...)
	cd := newCanary(KindDeployment, "podinfo")
	_, err := mustController(t, f, cd).TrackedConfigs(context.Background(), cd)
	if err == nil || !strings.Contains(err.Error(), "cm-volume") {
		t.Errorf("err = %v, want one naming cm-volume", err)
	}
}

func TestConfigRefsOptionalOnlyWhenEveryRefIs(t *testing.T) {
	spec := &corev1.PodSpec{
		Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Optional: ptr.To(true)}}}},
		Containers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}}},
	}
	if optional := configRefs(spec)[configRef{kind: configMapKind, name: "cm"}]; optional {
		t.Error("a config referenced once without optional counted as optional")
	}
}

func TestConfigCopyOwners(t *testing.T) {
	f, c := newTestFactory(t, Options{EnableConfigTracking: true}, configMap("shared", map[string]string{"a": "1"}, nil))
	ctx := context.Background()
	first, second := newCanary(KindDeployment, "podinfo"), newCanary(KindDeployment, "podinfo")
	second.Name, second.UID = "other", "other-uid"
	spec := &corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shared"}}}}}}
	for _, cd := range []*flaggerv1.Canary{first, second, first} {
		configs, err := f.trackedConfigs(ctx, ns, spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.copyConfigs(ctx, cd, configs, syncCopies); err != nil {
			t.Fatal(err)
		}
	}
	refs := get(t, c, "shared-primary", &corev1.ConfigMap{}).OwnerReferences
	if len(refs) != 2 || refs[0].Name != "podinfo" || !*refs[0].Controller || refs[1].Name != "other" || *refs[1].Controller {
		t.Errorf("owner references = %+v, want podinfo (controller) then other (not controller)", refs)
	}
}

func TestImmutableConfigCopyIsRecreated(t *testing.T) {
	src := secret("creds", corev1.SecretTypeOpaque, map[string][]byte{"a": []byte("new")})
	src.Immutable = ptr.To(true)
	oldCopy := secret("creds-primary", corev1.SecretTypeOpaque, map[string][]byte{"a": []byte("old")})
	oldCopy.Immutable = ptr.To(true)
	f, c := newTestFactory(t, Options{EnableConfigTracking: true}, src, oldCopy)
	spec := &corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}}}}
	ctx := context.Background()
	configs, err := f.trackedConfigs(ctx, ns, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.copyConfigs(ctx, newCanary(KindDeployment, "podinfo"), configs, syncCopies); err != nil {
		t.Fatal(err)
	}
	got := get(t, c, "creds-primary", &corev1.Secret{})
	if string(got.Data["a"]) != "new" || got.Immutable != nil {
		t.Errorf("copy = %+v, want new data and not immutable", got)
	}
}
