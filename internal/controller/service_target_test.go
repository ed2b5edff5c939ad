package controller_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// A Service target (targetRef kind Service, apiVersion v1) canaries whatever the Service fronts:
// Flagger copies it to <name>-canary (kept in sync with the target) and <name>-primary (changed only
// by promotion), generates no Services of its own, scales nothing, and a change of the target's spec
// is a new revision. These tests release one through the Istio router on the real control plane.

// backendService is the target: a ClusterIP Service in front of the pods labelled app=<app>.
func backendService(app string, targetPort int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend", Labels: map[string]string{"team": "payments"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(targetPort)}},
		},
	}
}

// serviceHeaders is a spec.service.headers with every operation, on requests and responses.
func serviceHeaders() *flaggerv1.Headers {
	return &flaggerv1.Headers{
		Request: &flaggerv1.HeaderOperations{
			Set:    map[string]string{"x-forwarded-proto": "https"},
			Add:    map[string]string{"x-request-source": "mesh"},
			Remove: []string{"x-debug"},
		},
		Response: &flaggerv1.HeaderOperations{
			Set:    map[string]string{"cache-control": "no-store"},
			Add:    map[string]string{"x-served-by": "backend"},
			Remove: []string{"server", "x-envoy-upstream-service-time"},
		},
	}
}

// istioServiceCanary is an Istio canary of the backend Service: 20% steps up to 60%, a rollout
// webhook as its only check, and the headers of serviceHeaders.
func istioServiceCanary(hook string) *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "backend"},
		Spec: flaggerv1.CanarySpec{
			Provider:                "istio",
			TargetRef:               flaggerv1.LocalObjectReference{APIVersion: "v1", Kind: "Service", Name: "backend"},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Service:                 flaggerv1.CanaryService{Port: 9898, Headers: serviceHeaders()},
			Analysis: &flaggerv1.CanaryAnalysis{
				Interval: "1s", Threshold: 2, StepWeight: 20, MaxWeight: 60,
				Webhooks: []flaggerv1.CanaryWebhook{{Name: "acceptance", Type: flaggerv1.RolloutHook, URL: hook}},
			},
		},
	}
}

// service reads a Service.
func (f *fixture) service(name string) *corev1.Service {
	f.t.Helper()
	svc := &corev1.Service{}
	f.get(name, svc)
	return svc
}

// wantServiceCopy checks that a copy of the target is owned by the canary and serves what the
// target served at the time: selector and target port.
func (f *fixture) wantServiceCopy(name, app string, targetPort int32) {
	f.t.Helper()
	svc := f.service(name)
	if got := svc.Spec.Selector["app"]; got != app {
		f.t.Errorf("Service %s selects app=%s, want app=%s", name, got, app)
	}
	if got := svc.Spec.Ports; len(got) != 1 || got[0].Port != 9898 || got[0].TargetPort != intstr.FromInt32(targetPort) {
		f.t.Errorf("Service %s ports %+v, want 9898 -> %d", name, got, targetPort)
	}
	if ref := metav1.GetControllerOf(svc); ref == nil || ref.Kind != flaggerv1.CanaryKind || ref.Name != "backend" {
		f.t.Errorf("Service %s controller %+v, want canary backend", name, ref)
	}
}

// virtualService reads the VirtualService named after the canary's service.
func (f *fixture) virtualService(name string) *unstructured.Unstructured {
	f.t.Helper()
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	f.get(name, vs)
	return vs
}

// wantHeaders checks that every HTTP route of the VirtualService carries want as its headers.
func (f *fixture) wantHeaders(vs *unstructured.Unstructured, want map[string]any) {
	f.t.Helper()
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	if len(routes) == 0 {
		f.t.Fatalf("VirtualService %s has no http routes", vs.GetName())
	}
	for i, r := range routes {
		got, _, _ := unstructured.NestedMap(r.(map[string]any), "headers")
		if !reflect.DeepEqual(got, want) {
			f.t.Errorf("VirtualService %s http[%d].headers = %v, want %v", vs.GetName(), i, got, want)
		}
	}
}

// istioHeaders is serviceHeaders as the VirtualService holds it.
func istioHeaders(requestSet string) map[string]any {
	return map[string]any{
		"request": map[string]any{
			"set":    map[string]any{"x-forwarded-proto": requestSet},
			"add":    map[string]any{"x-request-source": "mesh"},
			"remove": []any{"x-debug"},
		},
		"response": map[string]any{
			"set":    map[string]any{"cache-control": "no-store"},
			"add":    map[string]any{"x-served-by": "backend"},
			"remove": []any{"server", "x-envoy-upstream-service-time"},
		},
	}
}

// initializeServiceTarget creates the backend Service (app=backend-v1 on port 9898) and its canary,
// and checks what initialization made: the two copies, the Istio objects, and nothing else.
func initializeServiceTarget(t *testing.T, hook string) *fixture {
	f := newFixture(t)
	f.create(backendService("backend-v1", 9898), istioServiceCanary(hook))
	cd := f.waitPhase("backend", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	if cd.Status.LastAppliedSpec == "" || cd.Status.LastPromotedSpec != cd.Status.LastAppliedSpec {
		t.Errorf("initialized status lastAppliedSpec %q lastPromotedSpec %q, want the same revision",
			cd.Status.LastAppliedSpec, cd.Status.LastPromotedSpec)
	}
	f.wantServiceCopy("backend-primary", "backend-v1", 9898)
	f.wantServiceCopy("backend-canary", "backend-v1", 9898)
	// The target is the apex: it is left as the user wrote it, not made to select a -primary pod label.
	target := f.service("backend")
	if got := target.Spec.Selector; !reflect.DeepEqual(got, map[string]string{"app": "backend-v1"}) || len(target.OwnerReferences) != 0 {
		t.Errorf("target Service selector %v owners %v, want it untouched", got, target.OwnerReferences)
	}
	primary, canary := f.service("backend-primary"), f.service("backend-canary")
	if ip := primary.Spec.ClusterIP; ip == "" || ip == target.Spec.ClusterIP || ip == canary.Spec.ClusterIP {
		t.Errorf("cluster IPs target %s primary %s canary %s, want three of their own", target.Spec.ClusterIP, ip, canary.Spec.ClusterIP)
	}
	if f.exists("backend-primary", &appsv1.Deployment{}) {
		t.Error("a Service target got a primary Deployment")
	}
	for _, name := range []string{"backend-primary", "backend-canary"} {
		dr := &unstructured.Unstructured{}
		dr.SetGroupVersionKind(schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"})
		f.get(name, dr)
		if host, _, _ := unstructured.NestedString(dr.Object, "spec", "host"); host != name {
			t.Errorf("DestinationRule %s host = %q", name, host)
		}
	}
	vs := f.virtualService("backend")
	if hosts, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "hosts"); !reflect.DeepEqual(hosts, []string{"backend"}) {
		t.Errorf("VirtualService hosts %v, want the target Service [backend]", hosts)
	}
	if got := istioSplits(vs.Object); !reflect.DeepEqual(got, []split{{primary: 100}}) {
		t.Errorf("VirtualService routes %v after initialization, want 100/0", got)
	}
	f.wantHeaders(vs, istioHeaders("https"))
	f.wantNoWarnings()
	return f
}

// wantNoWarnings fails on a Warning event other than the wait for the primary copy to reach the
// cache at initialization. The routing objects created at initialization must not give one (their
// routes were once written again at once, and failed on the cache that had not seen them yet).
func (f *fixture) wantNoWarnings() {
	f.t.Helper()
	for _, e := range f.events() {
		if strings.HasPrefix(e, "Warning") && !strings.Contains(e, "-primary."+f.ns+" to be created") {
			f.t.Errorf("unexpected warning: %q; events:\n%s", e, strings.Join(f.events(), "\n"))
		}
	}
}

// moveBackendTo points the target Service at other pods on another port: a new revision.
func (f *fixture) moveBackendTo(app string, targetPort int32) {
	svc := &corev1.Service{}
	f.update("backend", svc, func() {
		svc.Spec.Selector = map[string]string{"app": app}
		svc.Spec.Ports[0].TargetPort = intstr.FromInt32(targetPort)
	})
}

func TestServiceTargetReleaseWithIstio(t *testing.T) {
	hook := newHookRecorder(t, http.StatusOK)
	f := initializeServiceTarget(t, hook.srv.URL)
	initialized := f.canary("backend").Status.LastAppliedSpec
	primaryIP := f.service("backend-primary").Spec.ClusterIP
	rec := f.recordWeights(virtualServiceGVK, "backend", istioSplits)

	f.moveBackendTo("backend-v2", 8080)
	f.waitEvent("New revision detected! Scaling up "+f.key("backend"), phaseTimeout)
	// While the analysis runs, the canary copy follows the target and the primary does not.
	testenvEventually(f, func() (bool, string) {
		cd := f.canary("backend")
		return cd.Status.CanaryWeight >= 20, fmt.Sprintf("phase %s weight %d", cd.Status.Phase, cd.Status.CanaryWeight)
	})
	f.wantServiceCopy("backend-canary", "backend-v2", 8080)
	f.wantServiceCopy("backend-primary", "backend-v1", 9898)
	f.wantHeaders(f.virtualService("backend"), istioHeaders("https"))

	cd := f.waitPhase("backend", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	time.Sleep(200 * time.Millisecond)
	if got, want := rec.sequence(), []string{"100/0", "80/20", "60/40", "40/60", "100/0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("VirtualService weights went %v, want %v", got, want)
	}
	if cd.Status.LastAppliedSpec == initialized || cd.Status.LastPromotedSpec != cd.Status.LastAppliedSpec {
		t.Errorf("succeeded status lastAppliedSpec %q (initialized %q) lastPromotedSpec %q, want the new revision promoted",
			cd.Status.LastAppliedSpec, initialized, cd.Status.LastPromotedSpec)
	}
	// Promotion copied the target's spec to the primary, in place.
	f.wantServiceCopy("backend-primary", "backend-v2", 8080)
	f.wantServiceCopy("backend-canary", "backend-v2", 8080)
	if got := f.service("backend-primary").Spec.ClusterIP; got != primaryIP {
		t.Errorf("primary cluster IP %s after promotion, want %s kept (updated, not recreated)", got, primaryIP)
	}
	vs := f.virtualService("backend")
	if got := istioSplits(vs.Object); !reflect.DeepEqual(got, []split{{primary: 100}}) {
		t.Errorf("VirtualService routes %v after promotion, want 100/0", got)
	}
	f.wantHeaders(vs, istioHeaders("https"))
	f.waitEvent("Copying "+f.key("backend")+" template spec to backend-primary."+f.ns, 5*time.Second)
	f.waitEvent("Promotion completed! Scaling down "+f.key("backend"), 5*time.Second)
	f.wantNoWarnings()
	if len(hook.received()) == 0 {
		t.Error("the rollout webhook was never called")
	}

	// A change of service.headers reaches the VirtualService without a release.
	c := &flaggerv1.Canary{}
	f.update("backend", c, func() { c.Spec.Service.Headers.Request.Set["x-forwarded-proto"] = "http" })
	testenvEventually(f, func() (bool, string) {
		routes, _, _ := unstructured.NestedSlice(f.virtualService("backend").Object, "spec", "http")
		got, _, _ := unstructured.NestedMap(routes[0].(map[string]any), "headers")
		return reflect.DeepEqual(got, istioHeaders("http")), fmt.Sprintf("headers %v", got)
	})
	if got := f.canary("backend").Status.Phase; got != flaggerv1.CanaryPhaseSucceeded {
		t.Errorf("phase %s after a change of headers, want Succeeded", got)
	}
}

func TestServiceTargetRollbackWithIstio(t *testing.T) {
	hook := newHookRecorder(t, http.StatusOK)
	f := initializeServiceTarget(t, hook.srv.URL)
	promoted := f.canary("backend").Status.LastPromotedSpec

	hook.status.Store(http.StatusInternalServerError)
	f.moveBackendTo("backend-v2", 8080)
	cd := f.waitPhase("backend", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	f.waitEvent("Warning Rolling back "+f.key("backend")+" failed checks threshold reached 2", 5*time.Second)
	if cd.Status.CanaryWeight != 0 || cd.Status.LastPromotedSpec != promoted {
		t.Errorf("failed status weight %d lastPromotedSpec %q, want 0 and %q", cd.Status.CanaryWeight, cd.Status.LastPromotedSpec, promoted)
	}
	if got := istioSplits(f.virtualService("backend").Object); !reflect.DeepEqual(got, []split{{primary: 100}}) {
		t.Errorf("VirtualService routes %v after the rollback, want 100/0", got)
	}
	// The primary still serves the last promoted spec; the canary copy keeps following the target.
	f.wantServiceCopy("backend-primary", "backend-v1", 9898)
	f.wantServiceCopy("backend-canary", "backend-v2", 8080)

	// A fixed target is a new revision: it is released again.
	hook.status.Store(http.StatusOK)
	f.moveBackendTo("backend-v3", 8080)
	testenvEventually(f, func() (bool, string) {
		got := f.canary("backend").Status
		return got.Phase != flaggerv1.CanaryPhaseFailed, fmt.Sprintf("phase %s", got.Phase)
	})
	f.waitPhase("backend", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.wantServiceCopy("backend-primary", "backend-v3", 8080)
}

// Replacing Flagger: a Service-target canary that Flagger promoted (its own hashes in the status, a
// primary copy without Pennant's revision annotation) is taken over as it is when the primary
// serves the target's spec, and released when it does not.
func TestTakingOverAServiceTargetFromFlagger(t *testing.T) {
	for _, tc := range []struct {
		name        string
		changed     bool
		wantRelease bool
	}{
		{name: "primary serves the target", changed: false, wantRelease: false},
		{name: "target changed since", changed: true, wantRelease: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := newHookRecorder(t, http.StatusOK)
			f := initializeServiceTarget(t, hook.srv.URL)
			primary := &corev1.Service{}
			f.update("backend-primary", primary, func() { delete(primary.Annotations, "pennant.dev/revision") })
			f.asFlaggerLeftIt("backend")
			if tc.changed {
				f.moveBackendTo("backend-v2", 8080)
			} else {
				c := &flaggerv1.Canary{}
				f.update("backend", c, func() { c.Annotations = map[string]string{"wake": "up"} })
			}
			if tc.wantRelease {
				f.waitEvent("Promotion completed! Scaling down "+f.key("backend"), phaseTimeout)
			} else {
				f.waitEvent("recorded from a previous controller's status", phaseTimeout)
			}
			testenvEventually(f, func() (bool, string) {
				got := f.canary("backend")
				return got.Status.Phase == flaggerv1.CanaryPhaseSucceeded && len(got.Status.LastPromotedSpec) == 32,
					fmt.Sprintf("after taking over: phase %s, lastPromotedSpec %q; want Succeeded and a Pennant revision",
						got.Status.Phase, got.Status.LastPromotedSpec)
			})
			released := false
			for _, e := range f.events() {
				released = released || strings.Contains(e, "New revision detected")
			}
			if released != tc.wantRelease {
				t.Errorf("taking over started a release: %v, want %v; events:\n%s", released, tc.wantRelease, strings.Join(f.events(), "\n"))
			}
			if tc.changed {
				f.wantServiceCopy("backend-primary", "backend-v2", 8080)
			}
		})
	}
}

// asFlaggerLeftIt puts Flagger's own revision hashes in a settled canary's status.
func (f *fixture) asFlaggerLeftIt(name string) {
	f.t.Helper()
	cd := f.canary(name)
	patch := client.MergeFrom(cd.DeepCopy())
	cd.Status.LastAppliedSpec, cd.Status.LastPromotedSpec = "5f8c6d9b7", "5f8c6d9b7"
	cd.Status.Phase = flaggerv1.CanaryPhaseSucceeded
	if err := f.c.Status().Patch(context.Background(), cd, patch); err != nil {
		f.t.Fatal(err)
	}
}

// The same takeover with a Deployment: the primary Flagger made carries no Pennant revision, and
// the first release afterwards must still copy the target to it, not take the primary's word.
func TestFirstReleaseAfterTakingOverADeploymentFromFlaggerPromotes(t *testing.T) {
	f := newFixture(t)
	f.create(podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	primary := &appsv1.Deployment{}
	f.update("podinfo-primary", primary, func() { delete(primary.Annotations, "pennant.dev/revision") })
	f.asFlaggerLeftIt("podinfo")
	cd := &flaggerv1.Canary{}
	f.update("podinfo", cd, func() { cd.Annotations = map[string]string{"wake": "up"} })
	f.waitEvent("recorded from a previous controller's status", phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitEvent("Promotion completed! Scaling down "+f.key("podinfo"), phaseTimeout)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("primary image %q after the release, want the promoted 6.0.1", got)
	}
}

// Flagger's Service targets are meant for anything behind a Service (Flagger PR #372), e.g. an
// ExternalName: the release that turns the target into one must carry the copies along, although
// their cluster IPs (kept on every update) no longer apply.
func TestServiceTargetTurnedIntoAnExternalName(t *testing.T) {
	hook := newHookRecorder(t, http.StatusOK)
	f := initializeServiceTarget(t, hook.srv.URL)
	svc := &corev1.Service{}
	f.update("backend", svc, func() {
		svc.Spec.Type = corev1.ServiceTypeExternalName
		svc.Spec.ExternalName = "backend.example.com"
		svc.Spec.Selector = nil
	})
	f.waitEvent("Promotion completed! Scaling down "+f.key("backend"), phaseTimeout)
	f.waitPhase("backend", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	for _, name := range []string{"backend-canary", "backend-primary"} {
		got := f.service(name).Spec
		if got.Type != corev1.ServiceTypeExternalName || got.ExternalName != "backend.example.com" || got.ClusterIP != "" {
			t.Errorf("Service %s type %s externalName %q clusterIP %q, want the target's ExternalName without a cluster IP",
				name, got.Type, got.ExternalName, got.ClusterIP)
		}
	}
	f.wantNoWarnings()
}
