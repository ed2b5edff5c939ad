package supervisor

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

// fixedObjects is a Lookup over fixed objects of namespace "ns".
type fixedObjects struct {
	configMaps map[string]map[string]string
	secrets    map[string]map[string]string
}

func (m fixedObjects) ConfigMap(ns, name string) (*corev1.ConfigMap, error) {
	data, ok := m.configMaps[name]
	if !ok || ns != "ns" {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
	}
	return &corev1.ConfigMap{Data: data}, nil
}

func (m fixedObjects) Secret(ns, name string) (*corev1.Secret, error) {
	data, ok := m.secrets[name]
	if !ok || ns != "ns" {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
	}
	s := &corev1.Secret{Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s, nil
}

func testPod(c corev1.Container) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo-7d9-abc", Namespace: "ns", Labels: map[string]string{"app": "podinfo"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{c}},
		Status:     corev1.PodStatus{PodIP: "10.244.0.9", Phase: corev1.PodRunning},
	}
}

func cmKey(name, key string, optional bool) *corev1.EnvVarSource {
	return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
}

func TestChildEnvResolvesLiteralsReferencesAndEnvFrom(t *testing.T) {
	pod := testPod(corev1.Container{
		Image: "ghcr.io/stefanprodan/podinfo:6.0.1",
		EnvFrom: []corev1.EnvFromSource{
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config-primary"}}},
			{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
		},
		Env: []corev1.EnvVar{
			{Name: "LATENCY", Value: "10ms"}, // overrides envFrom
			{Name: "ERROR_RATE", ValueFrom: cmKey("faults", "rate", false)},
			{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "token"}}},
			{Name: "OPTIONAL", ValueFrom: cmKey("faults", "nope", true)},
			{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
		},
	})
	lookup := fixedObjects{
		configMaps: map[string]map[string]string{
			"podinfo-config-primary": {"LATENCY": "1s", "MESSAGE": "primary", "bad-name!": "x"},
			"podinfo-config":         {"MESSAGE": "canary"},
			"faults":                 {"rate": "0.5"},
		},
		secrets: map[string]map[string]string{"creds": {"token": "t0k", "user": "me"}},
	}
	env, version, err := ChildEnv(pod, lookup, "/usr/bin")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PATH=/usr/bin", "POD_NAME=podinfo-7d9-abc", "POD_NAMESPACE=ns", "POD_IP=10.244.0.9",
		"LATENCY=10ms", "MESSAGE=primary", "S_token=t0k", "S_user=me",
		"ERROR_RATE=0.5", "TOKEN=t0k", "MY_IP=10.244.0.9", "APP=podinfo", "PODINFO_VERSION=6.0.1",
	}
	if !slices.Equal(env, want) {
		t.Fatalf("env\n got %q\nwant %q", env, want)
	}
	if version != "6.0.1" {
		t.Errorf("version %q", version)
	}
}

func TestChildEnvKeepsAVersionThePodSets(t *testing.T) {
	pod := testPod(corev1.Container{Image: "podinfo:6.0.1", Env: []corev1.EnvVar{{Name: "VERSION", Value: "custom"}}})
	env, version, err := ChildEnv(pod, fixedObjects{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if version != "custom" || slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PODINFO_VERSION=") }) {
		t.Fatalf("version %q, env %q", version, env)
	}
}

func TestChildEnvFailsOnMissingRequiredReferences(t *testing.T) {
	for name, e := range map[string]corev1.EnvVar{
		"missing ConfigMap":  {Name: "A", ValueFrom: cmKey("absent", "k", false)},
		"missing key":        {Name: "A", ValueFrom: cmKey("faults", "k", false)},
		"unsupported field":  {Name: "A", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.foo"}}},
		"missing Secret key": {Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "k"}}},
	} {
		pod := testPod(corev1.Container{Env: []corev1.EnvVar{e}})
		lookup := fixedObjects{configMaps: map[string]map[string]string{"faults": {}}, secrets: map[string]map[string]string{"creds": {}}}
		if _, _, err := ChildEnv(pod, lookup, ""); err == nil || !strings.Contains(err.Error(), "env A") {
			t.Errorf("%s: error %v, want one naming env A", name, err)
		}
	}
	pod := testPod(corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}}}})
	if _, _, err := ChildEnv(pod, fixedObjects{}, ""); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("required envFrom ConfigMap missing: error %v", err)
	}
}

func TestImageVersion(t *testing.T) {
	for image, want := range map[string]string{
		"ghcr.io/stefanprodan/podinfo:6.0.1":          "6.0.1",
		"podinfo:6.1.0":                               "6.1.0",
		"podinfo":                                     "latest",
		"localhost:5000/podinfo":                      "latest",
		"localhost:5000/podinfo:6.0.2":                "6.0.2",
		"podinfo:6.0.3@sha256:0123456789abcdef0123":   "6.0.3",
		"ghcr.io/x/podinfo@sha256:0123456789abcdef01": "0123456789ab",
	} {
		if got := ImageVersion(image); got != want {
			t.Errorf("ImageVersion(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestListenAddrsAreEveryTCPContainerPortOnThePodIP(t *testing.T) {
	pod := testPod(corev1.Container{Ports: []corev1.ContainerPort{
		{Name: "http", ContainerPort: 9898}, {Name: "http-metrics", ContainerPort: 9797, Protocol: corev1.ProtocolTCP},
		{Name: "grpc", ContainerPort: 9999}, {Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP},
	}})
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Ports: []corev1.ContainerPort{{ContainerPort: 9898}, {ContainerPort: 8080}}})
	want := []string{"10.244.0.9:9898", "10.244.0.9:9797", "10.244.0.9:9999", "10.244.0.9:8080"}
	if got := ListenAddrs(pod); !slices.Equal(got, want) {
		t.Fatalf("ListenAddrs = %q, want %q", got, want)
	}
}

func TestServingNeedsIPRunningAndNoDeletion(t *testing.T) {
	pod := testPod(corev1.Container{})
	if !Serving(pod) {
		t.Fatal("a running pod with an IP is not serving")
	}
	for name, change := range map[string]func(*corev1.Pod){
		"no IP":    func(p *corev1.Pod) { p.Status.PodIP = "" },
		"pending":  func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending },
		"deleting": func(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} },
	} {
		p := pod.DeepCopy()
		change(p)
		if Serving(p) {
			t.Errorf("%s: serving", name)
		}
	}
}

func TestGracePeriodIsThePodsBounded(t *testing.T) {
	pod := testPod(corev1.Container{})
	if g := GracePeriod(pod, time.Minute); g != DefaultGracePeriod {
		t.Errorf("unset: %v", g)
	}
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
	if g := GracePeriod(pod, time.Minute); g != 5*time.Second {
		t.Errorf("5s: %v", g)
	}
	pod.Spec.TerminationGracePeriodSeconds = ptr.To[int64](3600)
	if g := GracePeriod(pod, time.Minute); g != time.Minute {
		t.Errorf("3600s bounded by 1m: %v", g)
	}
}
