package workload

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const ns = "test"

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := flaggerv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	// KEDA is not a Go dependency: teach the fake client its kind as unstructured.
	s.AddKnownTypeWithName(ScaledObjectGVK, &unstructured.Unstructured{})
	s.AddKnownTypeWithName(ScaledObjectGVK.GroupVersion().WithKind("ScaledObjectList"), &unstructured.UnstructuredList{})
	return s
}

func newTestFactory(t *testing.T, opts Options, objs ...client.Object) (*Factory, client.Client) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).Build()
	return NewFactory(c, opts), c
}

func newCanary(kind, target string) *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns, UID: "canary-uid"},
		Spec: flaggerv1.CanarySpec{
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: kind, Name: target},
			Service:   flaggerv1.CanaryService{Port: 9898},
			Analysis:  &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, StepWeight: 10},
		},
	}
}

func podTemplate(labels map[string]string, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"prometheus.io/scrape": "true"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "podinfod",
			Image: image,
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}, {ContainerPort: 9797}},
		}}},
	}
}

func newDeployment(name string, replicas *int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name, "team": "a"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, "ghcr.io/stefanprodan/podinfo:6.0.0"),
		},
	}
}

func newDaemonSet(name string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: podTemplate(labels, "ghcr.io/stefanprodan/podinfo:6.0.0"),
		},
	}
}

func configMap(name string, data map[string]string, annotations map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations, Labels: map[string]string{"app": "podinfo"}},
		Data:       data,
	}
}

func secret(name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Type: typ, Data: data}
}

func get[T client.Object](t *testing.T, c client.Client, name string, obj T) T {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return obj
}

func mustController(t *testing.T, f *Factory, cd *flaggerv1.Canary) Controller {
	t.Helper()
	c, err := f.Controller(cd)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func int32p(n int32) *int32 { return ptr.To(n) }
