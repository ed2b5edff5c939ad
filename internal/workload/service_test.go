package workload

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func targetService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: ns, Labels: map[string]string{"app": "backend"}},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "v1.backend.example.com",
			Ports:        []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080}},
			ClusterIP:    "10.0.0.10",
			ClusterIPs:   []string{"10.0.0.10"},
		},
	}
}

func TestServiceTarget(t *testing.T) {
	f, c := newTestFactory(t, Options{IncludeLabelPrefix: []string{"*"}}, targetService())
	cd := newCanary(KindService, "backend")
	cd.Spec.TargetRef.APIVersion = "core/v1"
	ctrl := mustController(t, f, cd)
	ctx := context.Background()
	if err := ctrl.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"backend-primary", "backend-canary"} {
		svc := get(t, c, name, &corev1.Service{})
		if svc.Spec.ExternalName != "v1.backend.example.com" || svc.Spec.ClusterIP != "" || svc.Spec.ClusterIPs != nil || svc.Spec.Ports[0].NodePort != 0 {
			t.Errorf("%s spec = %+v, want a copy without allocated addresses", name, svc.Spec)
		}
		assertCanaryController(t, svc.OwnerReferences)
		if svc.Labels["app"] != "backend" {
			t.Errorf("%s labels = %v", name, svc.Labels)
		}
	}

	target := get(t, c, "backend", &corev1.Service{})
	target.Spec.ExternalName = "v2.backend.example.com"
	if err := c.Update(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "backend-canary", &corev1.Service{}).Spec.ExternalName; got != "v2.backend.example.com" {
		t.Errorf("canary copy = %s, want it synced with the target", got)
	}
	if got := get(t, c, "backend-primary", &corev1.Service{}).Spec.ExternalName; got != "v1.backend.example.com" {
		t.Errorf("primary copy = %s, want it unchanged before promotion", got)
	}
	if err := ctrl.Promote(ctx, cd); err != nil {
		t.Fatal(err)
	}
	if got := get(t, c, "backend-primary", &corev1.Service{}).Spec.ExternalName; got != "v2.backend.example.com" {
		t.Errorf("primary copy = %s after promotion", got)
	}

	revision, err := ctrl.Revision(ctx, cd)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := revisionHash(target.Spec); revision != want {
		t.Errorf("revision = %s, want the hash of the spec %s", revision, want)
	}
	primary, err := ctrl.PrimaryReady(ctx, cd)
	if err != nil || !primary.Ready || primary.PromotedRevision != revision {
		t.Errorf("primary readiness = %+v, %v", primary, err)
	}
	if canary, _ := ctrl.CanaryReady(ctx, cd); !canary.Ready {
		t.Error("a Service target is always ready")
	}
	for _, op := range []func(context.Context, *flaggerv1.Canary) error{ctrl.ScaleToZero, ctrl.ScaleFromZero, ctrl.Finalize} {
		if err := op(ctx, cd); err != nil {
			t.Error(err)
		}
	}
}

// A primary copy runs the target when their specs are equal apart from what the API server
// allocated to each (cluster IPs, node ports): that is how a copy Flagger made is recognised.
func TestServicePrimaryRunsTarget(t *testing.T) {
	primaryOf := func(change func(*corev1.Service)) *corev1.Service {
		p := targetService()
		p.Name = "backend-primary"
		p.Spec.ClusterIP, p.Spec.ClusterIPs = "10.0.0.20", []string{"10.0.0.20"}
		p.Spec.Ports[0].NodePort = 30081
		change(p)
		return p
	}
	for _, tc := range []struct {
		name    string
		primary *corev1.Service
		want    bool
	}{
		{"same spec, other addresses", primaryOf(func(*corev1.Service) {}), true},
		{"other external name", primaryOf(func(p *corev1.Service) { p.Spec.ExternalName = "v0.backend.example.com" }), false},
		{"other target port", primaryOf(func(p *corev1.Service) { p.Spec.Ports[0].TargetPort = intstr.FromInt32(9090) }), false},
		{"other selector", primaryOf(func(p *corev1.Service) { p.Spec.Selector = map[string]string{"app": "old"} }), false},
		{"no primary", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := []client.Object{targetService()}
			if tc.primary != nil {
				objs = append(objs, tc.primary)
			}
			f, _ := newTestFactory(t, Options{}, objs...)
			cd := newCanary(KindService, "backend")
			cd.Spec.TargetRef.APIVersion = "v1"
			got, err := mustController(t, f, cd).PrimaryRunsTarget(context.Background(), cd)
			if err != nil || got != tc.want {
				t.Errorf("PrimaryRunsTarget = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
