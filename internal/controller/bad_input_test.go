package controller_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/testenv"
)

func TestMissingTargetIsReportedAndNothingIsCreated(t *testing.T) {
	f := newFixture(t)
	f.create(blueGreenCanary("podinfo", "Deployment", 1))
	f.waitStalled("podinfo", "TargetNotFound")
	f.waitEvent("Warning Deployment podinfo."+f.ns+" not found", 10*time.Second)
	f.assertNothingCreated()

	// GitOps applies in any order: once the target shows up, the canary initializes.
	f.create(podinfoDeployment("podinfo", 1))
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	if c := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.StalledCondition); c != nil {
		t.Errorf("Stalled condition kept after recovery: %+v", c)
	}
}

func TestTargetWithoutSelectorLabelIsReported(t *testing.T) {
	f := newFixture(t)
	d := podinfoDeployment("podinfo", 1)
	labels := map[string]string{"component": "podinfo"}
	d.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
	d.Spec.Template.Labels = labels
	f.create(d, blueGreenCanary("podinfo", "Deployment", 1))
	f.waitStalled("podinfo", "InvalidTarget")
	f.assertNothingCreated()
	if got := ptrReplicas(f, "podinfo"); got != 1 {
		t.Errorf("target replicas = %d, want 1 (untouched)", got)
	}
}

func (f *fixture) waitStalled(name, reason string) {
	f.t.Helper()
	testenvEventually(f, func() (bool, string) {
		cd := f.canary(name)
		c := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.StalledCondition)
		if c == nil {
			return false, "no Stalled condition yet"
		}
		ready := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.ReadyCondition)
		return c.Status == metav1.ConditionTrue && c.Reason == reason && ready != nil && ready.Status == metav1.ConditionFalse,
			"Stalled " + string(c.Status) + " " + c.Reason + ": " + c.Message
	})
}

func (f *fixture) assertNothingCreated() {
	f.t.Helper()
	for _, name := range []string{"podinfo", "podinfo-primary", "podinfo-canary"} {
		if f.exists(name, &corev1.Service{}) {
			f.t.Errorf("service %s was created for an invalid canary", name)
		}
	}
	if f.exists("podinfo-primary", &appsv1.Deployment{}) {
		f.t.Error("primary deployment was created for an invalid canary")
	}
}

func ptrReplicas(f *fixture, name string) int32 {
	d := &appsv1.Deployment{}
	f.get(name, d)
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

func testenvEventually(f *fixture, cond func() (bool, string)) {
	f.t.Helper()
	testenv.Eventually(f.t, phaseTimeout, 200*time.Millisecond, cond)
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func TestRouterSpecProblemsAreReportedBeforeAnythingIsWritten(t *testing.T) {
	cases := []struct {
		name     string
		provider string
		mesh     string
		want     string
	}{
		{"gatewayapi without gatewayRefs", "gatewayapi:v1", "", "spec.service.gatewayRefs is required"},
		{"nginx without ingressRef", "nginx", "", "ingressRef"},
		{"unknown -mesh-provider", "", "no-such-mesh", `provider "no-such-mesh" is not supported`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *controller.Config) {
				if tc.mesh != "" {
					c.Options.MeshProvider = tc.mesh
				}
			})
			cd := blueGreenCanary("podinfo", "Deployment", 1)
			cd.Spec.Provider = tc.provider
			f.create(podinfoDeployment("podinfo", 1), cd)
			f.waitStalled("podinfo", "InvalidSpec")
			f.waitEvent(tc.want, 10*time.Second)
			f.assertNothingCreated()
		})
	}
}

// An API error that persists (here a quota that refuses the generated Services) is put where users
// look: the canary's conditions and a Warning event, not only the controller's log; it clears when
// the retry succeeds.
func TestRetriedAPIErrorIsOnTheCanary(t *testing.T) {
	f := newFixture(t)
	f.create(&corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-services"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourceServices: resource.MustParse("0")}},
	})
	// The quota refuses creations once the quota controller has recorded its hard limits.
	testenvEventually(f, func() (bool, string) {
		q := &corev1.ResourceQuota{}
		f.get("no-services", q)
		return len(q.Status.Hard) > 0, "quota status not computed yet"
	})
	f.create(podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 1))
	testenvEventually(f, func() (bool, string) {
		cd := f.canary("podinfo")
		ready := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.ReadyCondition)
		rec := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.ReconcilingCondition)
		if ready == nil || rec == nil {
			return false, "no Ready/Reconciling conditions yet"
		}
		return ready.Status == metav1.ConditionFalse && ready.Reason == "ReconcileError" &&
				rec.Status == metav1.ConditionTrue && strings.Contains(ready.Message, "exceeded quota"),
			"Ready " + string(ready.Status) + " " + ready.Reason + ": " + ready.Message
	})
	f.waitEvent("exceeded quota", 10*time.Second)

	q := &corev1.ResourceQuota{}
	f.get("no-services", q)
	if err := f.c.Delete(context.Background(), q); err != nil {
		t.Fatal(err)
	}
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	if c := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.ReadyCondition); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Ready after the retry succeeded: %+v", c)
	}
}
