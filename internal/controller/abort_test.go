package controller_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// midAnalysis starts an Istio release and returns once the canary carries traffic.
func midAnalysis(t *testing.T, tweaks ...func(*flaggerv1.Canary)) *fixture {
	t.Helper()
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	cd := weightedCanary("istio", prom)
	for _, tweak := range tweaks {
		tweak(cd)
	}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.1.1")
	testenvEventually(f, func() (bool, string) {
		cd := f.canary("podinfo")
		return cd.Status.CanaryWeight >= 10, fmt.Sprintf("phase %s weight %d", cd.Status.Phase, cd.Status.CanaryWeight)
	})
	return f
}

// wantAborted checks that the release failed with reason in its event, all traffic on the
// primary and the target scaled down.
func (f *fixture) wantAborted(reason string) {
	f.t.Helper()
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	if cd.Status.CanaryWeight != 0 {
		f.t.Errorf("canaryWeight %d after the abort, want 0", cd.Status.CanaryWeight)
	}
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(virtualServiceGVK)
	f.get("podinfo", vs)
	if got := istioSplits(vs.Object); len(got) == 0 || got[0] != (split{primary: 100}) {
		f.t.Errorf("VirtualService routes %v after the abort, want 100/0", got)
	}
	f.waitTargetReplicas("podinfo", 0)
	f.waitEvent("Canary failed! "+f.key("podinfo")+": "+reason, 10*time.Second)
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.0" {
		f.t.Errorf("the primary runs %s after the abort, want the last promoted 6.0.0", got)
	}
}

// A spec made invalid in the middle of an analysis (one the schema admits, refused by the
// controller) ends the release at once: traffic back on the primary, target scaled down, Failed
// with the reason, instead of a split frozen with nothing analysing it.
func TestSpecMadeInvalidDuringAnalysisFailsTheRelease(t *testing.T) {
	f := midAnalysis(t)
	cd := &flaggerv1.Canary{}
	f.update("podinfo", cd, func() {
		cd.Spec.Analysis.StepWeight = 0
		cd.Spec.Analysis.StepWeights = []int{20, 10}
	})
	f.wantAborted("analysis.stepWeights must be positive and increasing")
	if c := condition(f.canary("podinfo"), "Ready"); c != "False" {
		t.Errorf("Ready condition %q after the abort, want False", c)
	}
}

// A new revision of the target that mounts a Secret which does not exist, applied in the middle of
// an analysis, is a problem that may go away (the Secret may be on its way): the analysis waits
// for it, with the cause on the canary's conditions, for its progress deadline; then the release
// fails with that reason and the traffic goes back to the primary.
func TestMissingSecretDuringAnalysisFailsTheReleaseAtTheDeadline(t *testing.T) {
	const deadline = 8
	f := midAnalysis(t, func(cd *flaggerv1.Canary) { cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](deadline) })
	d := &appsv1.Deployment{}
	f.update("podinfo", d, func() {
		d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: "podinfo-secret"}}}}
		d.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}}
	})
	testenvEventually(f, func() (bool, string) {
		c := flaggerv1.FindCanaryCondition(f.canary("podinfo").Status.Conditions, flaggerv1.ReadyCondition)
		return c != nil && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "podinfo-secret"),
			fmt.Sprintf("Ready condition %+v, want False with the missing secret", c)
	})
	waitStarted := time.Now()
	if cd := f.canary("podinfo"); cd.Status.Phase != flaggerv1.CanaryPhaseProgressing || cd.Status.CanaryWeight == 0 {
		t.Fatalf("phase %s weight %d right after the secret went missing, want the analysis waiting", cd.Status.Phase, cd.Status.CanaryWeight)
	}
	f.wantAborted("secret podinfo-secret." + f.ns + " referenced by the target does not exist")
	if waited := time.Since(waitStarted); waited > (deadline+20)*time.Second {
		t.Errorf("the release failed %v after the problem appeared, want about the %ds deadline", waited, deadline)
	}
	// The secret appears: a new release can start from a clean state.
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-secret"}, StringData: map[string]string{"k": "v"}})
	testenvEventually(f, func() (bool, string) {
		cd := f.canary("podinfo")
		return cd.Status.Phase == flaggerv1.CanaryPhaseProgressing || cd.Status.Phase == flaggerv1.CanaryPhaseSucceeded,
			fmt.Sprintf("phase %s after the secret appeared", cd.Status.Phase)
	})
}
