package router

import (
	"context"
	"errors"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/workload"
)

const ns = "test"

func newCanary() *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns, UID: "canary-uid"},
		Spec: flaggerv1.CanarySpec{
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1.CanaryService{Port: 9898},
		},
	}
}

// fixedSelector stands in for workload.Factory.Selector.
func fixedSelector(ports map[string]int32) SelectorFunc {
	return func(context.Context, *flaggerv1.Canary) (string, string, map[string]int32, error) {
		return "app", "podinfo", ports, nil
	}
}

func newRouter(t *testing.T, selector SelectorFunc, objs ...client.Object) (*KubernetesServices, client.Client) {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := flaggerv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	return NewKubernetesRouter(c, selector, KubernetesOptions{FieldOwner: "pennant"}), c
}

func getService(t *testing.T, c client.Client, name string) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{}
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, svc); err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return svc
}

func initializeAndReconcile(t *testing.T, r *KubernetesServices, cd *flaggerv1.Canary) {
	t.Helper()
	if err := r.Initialize(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
}

func TestGeneratedServices(t *testing.T) {
	cd := newCanary()
	cd.Spec.Service.Name = "frontend"
	cd.Spec.Service.AppProtocol = "http"
	cd.Spec.Service.TrafficDistribution = "PreferClose"
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{Labels: map[string]string{"tier": "apex"}, Annotations: map[string]string{"a": "apex"}}
	cd.Spec.Service.Primary = &flaggerv1.CustomMetadata{Labels: map[string]string{"tier": "primary"}}
	cd.Spec.Service.Canary = &flaggerv1.CustomMetadata{Annotations: map[string]string{"a": "canary"}}
	r, c := newRouter(t, fixedSelector(nil))
	initializeAndReconcile(t, r, cd)

	fluxOff := map[string]string{kustomizeReconcileAnnotation: "disabled", helmDriftDetectionAnnotation: "disabled"}
	tests := []struct {
		name        string
		selector    string
		labels      map[string]string
		annotations map[string]string
	}{
		{"frontend", "podinfo-primary", map[string]string{"app": "frontend", "tier": "apex"}, with(fluxOff, "a", "apex")},
		{"frontend-primary", "podinfo-primary", map[string]string{"app": "frontend-primary", "tier": "primary"}, fluxOff},
		{"frontend-canary", "podinfo", map[string]string{"app": "frontend-canary"}, with(fluxOff, "a", "canary")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := getService(t, c, tt.name)
			if got := svc.Spec.Selector; !equality.Semantic.DeepEqual(got, map[string]string{"app": tt.selector}) {
				t.Errorf("selector = %v, want app=%s", got, tt.selector)
			}
			if !equality.Semantic.DeepEqual(svc.Labels, tt.labels) {
				t.Errorf("labels = %v, want %v", svc.Labels, tt.labels)
			}
			if !equality.Semantic.DeepEqual(svc.Annotations, tt.annotations) {
				t.Errorf("annotations = %v, want %v", svc.Annotations, tt.annotations)
			}
			want := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: intstr.FromInt32(9898), AppProtocol: ptr.To("http")}}
			if !equality.Semantic.DeepEqual(svc.Spec.Ports, want) {
				t.Errorf("ports = %+v, want %+v", svc.Spec.Ports, want)
			}
			if svc.Spec.Type != corev1.ServiceTypeClusterIP || ptr.Deref(svc.Spec.TrafficDistribution, "") != "PreferClose" {
				t.Errorf("type %s, trafficDistribution %v", svc.Spec.Type, svc.Spec.TrafficDistribution)
			}
			ref := metav1.GetControllerOf(svc)
			if ref == nil || ref.Kind != "Canary" || ref.Name != "podinfo" || ref.APIVersion != "flagger.app/v1beta1" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
				t.Errorf("controller = %+v", ref)
			}
		})
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range m {
		out[key] = val
	}
	return out
}

func TestServicePorts(t *testing.T) {
	discovered := map[string]int32{"http": 9898, "http-metrics": 9797, "tcp-podinfod-2": 8080, "grpc": 9999, "dup": 9797, "admin": 80}
	tests := []struct {
		name    string
		service flaggerv1.CanaryService
		want    []corev1.ServicePort
	}{
		{"no discovery", flaggerv1.CanaryService{Port: 80, PortName: "web", TargetPort: intstr.FromString("http")},
			[]corev1.ServicePort{{Name: "web", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http")}}},
		{"discovery skips the main target port, taken names and numbers", flaggerv1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(9898), PortDiscovery: true},
			[]corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(9898)},
				{Name: "dup", Protocol: corev1.ProtocolTCP, Port: 9797, TargetPort: intstr.FromInt32(9797)},
				{Name: "grpc", Protocol: corev1.ProtocolTCP, Port: 9999, TargetPort: intstr.FromInt32(9999)},
				{Name: "tcp-podinfod-2", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromInt32(8080)},
			}},
		{"discovery with a named target port", flaggerv1.CanaryService{Port: 9898, PortName: "main", TargetPort: intstr.FromString("grpc"), PortDiscovery: true},
			[]corev1.ServicePort{
				{Name: "main", Protocol: corev1.ProtocolTCP, Port: 9898, TargetPort: intstr.FromString("grpc")},
				{Name: "admin", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80)},
				{Name: "dup", Protocol: corev1.ProtocolTCP, Port: 9797, TargetPort: intstr.FromInt32(9797)},
				{Name: "tcp-podinfod-2", Protocol: corev1.ProtocolTCP, Port: 8080, TargetPort: intstr.FromInt32(8080)},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := servicePorts(tt.service, discovered); !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("ports:\n got  %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestPortDiscoveryReachesTheServices(t *testing.T) {
	cd := newCanary()
	cd.Spec.Service.PortDiscovery = true
	r, c := newRouter(t, fixedSelector(map[string]int32{"http": 9898, "metrics": 9797}))
	initializeAndReconcile(t, r, cd)
	for _, name := range []string{"podinfo", "podinfo-primary", "podinfo-canary"} {
		ports := getService(t, c, name).Spec.Ports
		if len(ports) != 2 || ports[1].Name != "metrics" || ports[1].Port != 9797 {
			t.Errorf("%s ports = %+v", name, ports)
		}
	}
}

func TestHeadless(t *testing.T) {
	cd := newCanary()
	cd.Spec.Service.Headless = true
	r, c := newRouter(t, fixedSelector(nil))
	initializeAndReconcile(t, r, cd)
	for name, want := range map[string]string{"podinfo-primary": "None", "podinfo-canary": "None", "podinfo": ""} {
		if got := getService(t, c, name).Spec.ClusterIP; got != want {
			t.Errorf("%s clusterIP = %q, want %q", name, got, want)
		}
	}
}

func TestOwnedServiceUpdateKeepsUnmanagedAndAllocated(t *testing.T) {
	cd := newCanary()
	cd.Spec.Service.UnmanagedMetadata = &flaggerv1.UnmanagedMetadata{Labels: []string{"external"}, Annotations: []string{"cloud.example.com/lb"}}
	existing := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo-primary", Namespace: ns,
			Labels:          map[string]string{"app": "podinfo-primary", "external": "yes", "stale": "x"},
			Annotations:     map[string]string{"cloud.example.com/lb": "keep", "old": "drop"},
			OwnerReferences: []metav1.OwnerReference{cd.OwnerReference()}},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeNodePort,
			ClusterIP:  "10.0.0.7",
			ClusterIPs: []string{"10.0.0.7"},
			Selector:   map[string]string{"app": "stale"},
			Ports:      []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080}},
		},
	}
	r, c := newRouter(t, fixedSelector(nil), existing)
	if err := r.Initialize(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	svc := getService(t, c, "podinfo-primary")
	if svc.Spec.ClusterIP != "10.0.0.7" || svc.Spec.Ports[0].NodePort != 30080 || svc.Spec.Ports[0].Port != 9898 {
		t.Errorf("spec = %+v, want cluster IP and node port kept, port updated", svc.Spec)
	}
	if svc.Spec.Selector["app"] != "podinfo-primary" {
		t.Errorf("selector = %v", svc.Spec.Selector)
	}
	if want := map[string]string{"app": "podinfo-primary", "external": "yes"}; !equality.Semantic.DeepEqual(svc.Labels, want) {
		t.Errorf("labels = %v, want %v", svc.Labels, want)
	}
	if svc.Annotations["cloud.example.com/lb"] != "keep" || svc.Annotations["old"] != "" || svc.Annotations[kustomizeReconcileAnnotation] != "disabled" {
		t.Errorf("annotations = %v", svc.Annotations)
	}

	// A second pass changes nothing.
	before := svc.ResourceVersion
	if err := r.Initialize(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	if getService(t, c, "podinfo-primary").ResourceVersion != before {
		t.Error("an up-to-date service was updated again")
	}
}

func TestUserApexIsTakenOverGently(t *testing.T) {
	userApex := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns, Labels: map[string]string{"owner": "me"}, Annotations: map[string]string{"note": "mine"}},
		Spec: corev1.ServiceSpec{
			Type:      corev1.ServiceTypeLoadBalancer,
			ClusterIP: "10.0.0.9",
			Selector:  map[string]string{"app": "podinfo"},
			Ports: []corev1.ServicePort{
				{Name: "http", Protocol: corev1.ProtocolTCP, Port: 9898, NodePort: 31000},
				{Name: "debug", Protocol: corev1.ProtocolTCP, Port: 6060},
			},
		},
	}
	r, c := newRouter(t, fixedSelector(nil), userApex)
	if err := r.Reconcile(context.Background(), newCanary()); err != nil {
		t.Fatal(err)
	}
	svc := getService(t, c, "podinfo")
	if svc.Spec.Selector["app"] != "podinfo-primary" {
		t.Errorf("selector = %v", svc.Spec.Selector)
	}
	if svc.Labels["owner"] != "me" || svc.Labels["app"] != "" || svc.Annotations["note"] != "mine" || len(svc.OwnerReferences) != 0 {
		t.Errorf("metadata changed: %+v", svc.ObjectMeta)
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Spec.Ports) != 2 || svc.Spec.Ports[0].NodePort != 31000 || svc.Spec.Ports[1].Name != "debug" {
		t.Errorf("spec = %+v", svc.Spec)
	}
}

func TestServiceOfAnotherCanaryIsAnError(t *testing.T) {
	other := newCanary()
	other.Name = "other"
	existing := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-canary", Namespace: ns,
		OwnerReferences: []metav1.OwnerReference{other.OwnerReference()}}}
	r, _ := newRouter(t, fixedSelector(nil), existing)
	err := r.Initialize(context.Background(), newCanary())
	if err == nil || !strings.Contains(err.Error(), "other") {
		t.Errorf("err = %v, want one naming canary other", err)
	}
}

func TestFinalize(t *testing.T) {
	lastApplied := `{"apiVersion":"v1","kind":"Service","spec":{"selector":{"app.kubernetes.io/name":"podinfo"}}}`
	tests := []struct {
		name        string
		annotations map[string]string
		want        map[string]string
	}{
		{"back to the target's pods", nil, map[string]string{"app": "podinfo"}},
		{"back to the applied selector", map[string]string{kubectlLastAppliedAnnotation: lastApplied}, map[string]string{"app.kubernetes.io/name": "podinfo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apex := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns, Annotations: tt.annotations},
				Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "podinfo-primary"}},
			}
			r, c := newRouter(t, fixedSelector(nil), apex)
			if err := r.Finalize(context.Background(), newCanary()); err != nil {
				t.Fatal(err)
			}
			if got := getService(t, c, "podinfo").Spec.Selector; !equality.Semantic.DeepEqual(got, tt.want) {
				t.Errorf("selector = %v, want %v", got, tt.want)
			}
		})
	}
	r, _ := newRouter(t, fixedSelector(nil))
	if err := r.Finalize(context.Background(), newCanary()); err != nil {
		t.Errorf("finalize without apex: %v", err)
	}
}

func TestSelectorErrorsPropagate(t *testing.T) {
	boom := errors.New("boom")
	r, _ := newRouter(t, func(context.Context, *flaggerv1.Canary) (string, string, map[string]int32, error) {
		return "", "", nil, boom
	})
	if err := r.Initialize(context.Background(), newCanary()); !errors.Is(err, boom) {
		t.Errorf("Initialize err = %v", err)
	}
	if err := r.Reconcile(context.Background(), newCanary()); !errors.Is(err, boom) {
		t.Errorf("Reconcile err = %v", err)
	}
}

func TestNop(t *testing.T) {
	ctx, cd := context.Background(), newCanary()
	var n Interface = Nop{}
	p, c, m, err := n.GetRoutes(ctx, cd)
	if p != 100 || c != 0 || m || err != nil {
		t.Errorf("GetRoutes = %d, %d, %v, %v; want 100, 0, false, nil", p, c, m, err)
	}
	if n.Reconcile(ctx, cd) != nil || n.SetRoutes(ctx, cd, 50, 50, false) != nil || n.Finalize(ctx, cd) != nil {
		t.Error("Nop must do nothing")
	}
	var k KubernetesRouter = NopKubernetes{}
	if k.Initialize(ctx, cd) != nil || k.Reconcile(ctx, cd) != nil || k.Finalize(ctx, cd) != nil {
		t.Error("NopKubernetes must do nothing")
	}
}

// TestWorkloadSelectorFits wires the router to the workload factory the way the controller does.
func TestWorkloadSelectorFits(t *testing.T) {
	labels := map[string]string{"app.kubernetes.io/name": "podinfo"}
	target := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{{Name: "metrics", ContainerPort: 9797}}}}}},
		},
	}
	_, c := newRouter(t, fixedSelector(nil), target)
	r := NewKubernetesRouter(c, workload.NewFactory(c, workload.Options{}).Selector, KubernetesOptions{})
	cd := newCanary()
	cd.Spec.Service.PortDiscovery = true
	initializeAndReconcile(t, r, cd)
	svc := getService(t, c, "podinfo-canary")
	if svc.Spec.Selector["app.kubernetes.io/name"] != "podinfo" || len(svc.Spec.Ports) != 2 {
		t.Errorf("canary service spec = %+v", svc.Spec)
	}
}
