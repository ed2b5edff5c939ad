package workload

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestSelectorLabel(t *testing.T) {
	tests := []struct {
		name        string
		matchLabels map[string]string
		candidates  []string
		wantLabel   string
		wantValue   string
	}{
		{"app", map[string]string{"app": "podinfo", "name": "other"}, DefaultSelectorLabels, "app", "podinfo"},
		{"name", map[string]string{"name": "podinfo", "tier": "web"}, DefaultSelectorLabels, "name", "podinfo"},
		{"kubernetes name", map[string]string{"app.kubernetes.io/name": "podinfo"}, DefaultSelectorLabels, "app.kubernetes.io/name", "podinfo"},
		{"first candidate wins", map[string]string{"app": "a", "name": "n"}, []string{"name", "app"}, "name", "n"},
		{"custom label", map[string]string{"role": "api"}, []string{"role"}, "role", "api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			label, value, err := selectorLabel(&metav1.LabelSelector{MatchLabels: tt.matchLabels}, tt.candidates, "deployment", "podinfo", ns)
			if err != nil {
				t.Fatal(err)
			}
			if label != tt.wantLabel || value != tt.wantValue {
				t.Errorf("got %s=%s, want %s=%s", label, value, tt.wantLabel, tt.wantValue)
			}
		})
	}
}

func TestSelectorLabelMissingIsPermanent(t *testing.T) {
	d := newDeployment("podinfo", int32p(1))
	d.Spec.Selector.MatchLabels = map[string]string{"tier": "web"}
	f, _ := newTestFactory(t, Options{}, d)
	err := mustController(t, f, newCanary(KindDeployment, "podinfo")).Initialize(context.Background(), newCanary(KindDeployment, "podinfo"))
	if !IsPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
	for _, want := range []string{"selector label not found", "podinfo.test", "app.kubernetes.io/name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestMissingTargetIsNotFound(t *testing.T) {
	f, _ := newTestFactory(t, Options{})
	for _, kind := range []string{KindDeployment, KindDaemonSet, KindService} {
		cd := newCanary(kind, "podinfo")
		err := mustController(t, f, cd).Initialize(context.Background(), cd)
		if !apierrors.IsNotFound(err) || !IsTargetNotFound(err) || IsPermanent(err) {
			t.Errorf("%s: err = %v, want target NotFound and not permanent", kind, err)
		}
	}
}

func TestMissingPrimaryOrConfigIsNotAMissingTarget(t *testing.T) {
	f, _ := newTestFactory(t, Options{EnableConfigTracking: true}, referencingDeployment())
	cd := newCanary(KindDeployment, "podinfo")
	ctrl := mustController(t, f, cd)
	_, err := ctrl.PrimaryReady(context.Background(), cd)
	if !apierrors.IsNotFound(err) || IsTargetNotFound(err) {
		t.Errorf("missing primary: err = %v, want NotFound but not a missing target", err)
	}
	err = ctrl.Initialize(context.Background(), cd)
	if err == nil || apierrors.IsNotFound(err) || IsTargetNotFound(err) {
		t.Errorf("missing config: err = %v, want an error that is not NotFound", err)
	}
}

func TestFactoryKinds(t *testing.T) {
	f, _ := newTestFactory(t, Options{})
	controllers := map[string]Controller{
		KindDeployment: &deploymentController{},
		KindDaemonSet:  &daemonSetController{},
		KindService:    &serviceController{},
	}
	for kind, want := range controllers {
		got, err := f.Controller(newCanary(kind, "podinfo"))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if gotType, wantType := typeName(got), typeName(want); gotType != wantType {
			t.Errorf("%s: got %s, want %s", kind, gotType, wantType)
		}
	}

	knative := newCanary("", "")
	knative.Spec.TargetRef = flaggerv1.LocalObjectReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "podinfo"}
	if got, err := f.Controller(knative); err != nil || typeName(got) != typeName(&knativeController{}) {
		t.Errorf("Knative Service target: got %T, %v; want the Knative controller", got, err)
	}

	for _, ref := range []flaggerv1.LocalObjectReference{
		{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "podinfo"},
	} {
		cd := newCanary("", "")
		cd.Spec.TargetRef = ref
		if _, err := f.Controller(cd); !IsPermanent(err) {
			t.Errorf("%v: err = %v, want a permanent error", ref, err)
		}
	}
}

func TestFactoryScalers(t *testing.T) {
	f, _ := newTestFactory(t, Options{})
	tests := []struct {
		ref  *flaggerv1.AutoscalerReference
		want string
	}{
		{nil, "nopScaler"},
		{&flaggerv1.AutoscalerReference{Kind: KindHorizontalPodAutoscaler, Name: "podinfo"}, "*workload.hpaScaler"},
		{&flaggerv1.AutoscalerReference{Kind: KindScaledObject, Name: "podinfo"}, "*workload.scaledObjectScaler"},
	}
	for _, tt := range tests {
		cd := newCanary(KindDeployment, "podinfo")
		cd.Spec.AutoscalerRef = tt.ref
		s, err := f.Scaler(cd)
		if err != nil {
			t.Fatal(err)
		}
		if got := typeName(s); got != tt.want {
			t.Errorf("scaler = %s, want %s", got, tt.want)
		}
	}
	cd := newCanary(KindDeployment, "podinfo")
	cd.Spec.AutoscalerRef = &flaggerv1.AutoscalerReference{Kind: "VerticalPodAutoscaler", Name: "podinfo"}
	if _, err := f.Scaler(cd); !IsPermanent(err) {
		t.Errorf("err = %v, want a permanent error", err)
	}
}

func typeName(v any) string { return strings.TrimPrefix(fmt.Sprintf("%T", v), "workload.") }

func TestSelectorAndPorts(t *testing.T) {
	d := newDeployment("podinfo", int32p(1))
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers,
		corev1.Container{Name: "istio-proxy", Ports: []corev1.ContainerPort{{Name: "http-envoy-prom", ContainerPort: 15090}}},
		corev1.Container{Name: "envoy", Ports: []corev1.ContainerPort{{ContainerPort: 8001}}},
		corev1.Container{Name: "sidecar", Ports: []corev1.ContainerPort{{ContainerPort: 7000}, {ContainerPort: 7001}}},
	)
	f, _ := newTestFactory(t, Options{}, d)
	label, value, ports, err := f.Selector(context.Background(), newCanary(KindDeployment, "podinfo"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int32{"http": 9898, "tcp-podinfod-1": 9797, "tcp-sidecar-0": 7000, "tcp-sidecar-1": 7001}
	if label != "app" || value != "podinfo" || !reflect.DeepEqual(ports, want) {
		t.Errorf("got %s=%s %v, want app=podinfo %v", label, value, ports, want)
	}
}
