package kubecache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// flaggerChecksum is how Flagger checksums a config's data.
func flaggerChecksum(t *testing.T, data any) string {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: "ns", ResourceVersion: "7",
		Labels:        map[string]string{"app": "podinfo"},
		Annotations:   map[string]string{"team": "a", lastAppliedAnnotation: `{"data":{"password":"c2VjcmV0"}}`},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}
}

func TestTransformKeepsTheChecksumInsteadOfTheData(t *testing.T) {
	data := map[string][]byte{"password": []byte("secret")}
	s := &corev1.Secret{ObjectMeta: meta("creds"), Type: corev1.SecretTypeBasicAuth, Data: data,
		StringData: map[string]string{"user": "u"}, Immutable: new(bool)}
	out, err := Transform(s.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Secret)
	if got.Data != nil || got.StringData != nil || got.ManagedFields != nil {
		t.Errorf("data, stringData or managed fields kept: %+v", got)
	}
	if got.Type != corev1.SecretTypeBasicAuth || got.Labels["app"] != "podinfo" || got.Annotations["team"] != "a" ||
		got.Immutable == nil || got.ResourceVersion != "7" {
		t.Errorf("type, labels, annotations, immutable or resourceVersion lost: %+v", got)
	}
	if _, ok := got.Annotations[lastAppliedAnnotation]; ok {
		t.Error("kubectl's last-applied configuration (a copy of the data) kept")
	}
	want := flaggerChecksum(t, data)
	if got.Annotations[ChecksumAnnotation] != want || Checksum(got) != want || Checksum(s) != want || DataChecksum(s) != want {
		t.Errorf("checksum %q (Checksum %q, of the full object %q), want Flagger's %q",
			got.Annotations[ChecksumAnnotation], Checksum(got), Checksum(s), want)
	}
	if !Stripped(got) || Stripped(s) {
		t.Error("Stripped is wrong")
	}
}

func TestChecksumIsFlaggers(t *testing.T) {
	// printf '{"a":"b"}' | sha256sum | cut -c1-16: the first 8 bytes of the sha256 of the JSON, in hex.
	cm := &corev1.ConfigMap{ObjectMeta: meta("settings"), Data: map[string]string{"a": "b"}}
	if got, want := DataChecksum(cm), "db4a7ecb114bc66c"; got != want {
		t.Errorf("checksum = %q, want %q", got, want)
	}
	cm.Data["a"] = "c"
	if DataChecksum(cm) == "db4a7ecb114bc66c" {
		t.Error("different data, same checksum")
	}
}

func TestConfigMapChecksumHasBinaryDataOnlyWhenPresent(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: meta("settings"), Data: map[string]string{"a": "1"}}
	if got, want := Checksum(Strip(cm)), flaggerChecksum(t, cm.Data); got != want {
		t.Errorf("checksum without binaryData %q, want Flagger's %q", got, want)
	}
	plain := DataChecksum(cm)
	cm.BinaryData = map[string][]byte{"b": {1}}
	stripped := Strip(cm).(*corev1.ConfigMap)
	if stripped.BinaryData != nil || stripped.Data != nil {
		t.Errorf("data kept: %+v", stripped)
	}
	if Checksum(stripped) == plain || Checksum(stripped) != DataChecksum(cm) {
		t.Errorf("binaryData did not join the checksum: %q", Checksum(stripped))
	}
	if cm.Data == nil || cm.BinaryData == nil || cm.Annotations[lastAppliedAnnotation] == "" {
		t.Error("Strip modified its argument")
	}
}

func TestTransformIsIdempotent(t *testing.T) {
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: meta("creds"), Data: map[string][]byte{"k": []byte("v")}},
		&corev1.ConfigMap{ObjectMeta: meta("settings"), Data: map[string]string{"k": "v"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "empty"}},
	} {
		once := Strip(obj)
		if twice := Strip(once); !equality.Semantic.DeepEqual(once, twice) {
			t.Errorf("%s: stripped twice %+v, once %+v", obj.GetName(), twice, once)
		}
	}
}

func TestTransformOfOtherObjectsDropsManagedFieldsOnly(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: meta("podinfo")}
	out, _ := Transform(d.DeepCopy())
	got := out.(*appsv1.Deployment)
	if got.ManagedFields != nil || Stripped(got) || len(got.Annotations) != 2 {
		t.Errorf("deployment transformed into %+v", got)
	}
	if Checksum(d) != "" {
		t.Error("a Deployment has a checksum")
	}
	if v, err := Transform("not an object"); v != "not an object" || err != nil {
		t.Errorf("Transform of a non-object: %v, %v", v, err)
	}
}
