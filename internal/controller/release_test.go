package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

const phaseTimeout = 60 * time.Second

func TestBlueGreenReleaseWithKubernetesProvider(t *testing.T) {
	f := newFixture(t)
	f.create(podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 2))

	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	if got := condition(cd, flaggerv1.PromotedCondition); got != metav1.ConditionTrue {
		t.Errorf("Promoted condition = %q, want True", got)
	}
	if got := condition(cd, flaggerv1.ReadyCondition); got != metav1.ConditionTrue {
		t.Errorf("Ready condition = %q, want True", got)
	}
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := primary.Spec.Selector.MatchLabels["app"]; got != "podinfo-primary" {
		t.Errorf("primary selector app = %q, want podinfo-primary", got)
	}
	for _, name := range []string{"podinfo", "podinfo-primary", "podinfo-canary"} {
		svc := &corev1.Service{}
		f.get(name, svc)
		if svc.Spec.Ports[0].Port != 9898 {
			t.Errorf("service %s port = %d, want 9898", name, svc.Spec.Ports[0].Port)
		}
	}
	apex := &corev1.Service{}
	f.get("podinfo", apex)
	if got := apex.Spec.Selector["app"]; got != "podinfo-primary" {
		t.Errorf("apex selector app = %q, want podinfo-primary", got)
	}
	f.waitTargetReplicas("podinfo", 0)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("primary image = %q, want 6.0.1", got)
	}
	f.waitTargetReplicas("podinfo", 0)
	for _, want := range []string{
		"Normal Initialization done! " + f.key("podinfo"),
		"Normal New revision detected! Scaling up " + f.key("podinfo"),
		"Normal Starting canary analysis for " + f.key("podinfo"),
		"Normal Advance " + f.key("podinfo") + " canary iteration 1/2",
		"Normal Advance " + f.key("podinfo") + " canary iteration 2/2",
		"Normal Copying " + f.key("podinfo") + " template spec to podinfo-primary." + f.ns,
		"Normal Promotion completed! Scaling down " + f.key("podinfo"),
	} {
		f.waitEvent(want, 5*time.Second)
	}
	for _, e := range f.events() {
		if strings.Contains(e, "not found") {
			t.Errorf("spurious event during a healthy release: %q", e)
		}
	}
}

func TestConfigMapChangeAloneTriggersRollout(t *testing.T) {
	f := newFixture(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config"}, Data: map[string]string{"color": "blue"}}
	d := podinfoDeployment("podinfo", 1)
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{
		ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config"}},
	}}
	f.create(cm, d, blueGreenCanary("podinfo", "Deployment", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := primary.Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name; got != "podinfo-config-primary" {
		t.Errorf("primary envFrom configmap = %q, want podinfo-config-primary", got)
	}

	f.update("podinfo-config", cm, func() { cm.Data["color"] = "green" })
	f.waitEvent("New revision detected! Scaling up "+f.key("podinfo"), phaseTimeout)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	copyCM := &corev1.ConfigMap{}
	f.get("podinfo-config-primary", copyCM)
	if got := copyCM.Data["color"]; got != "green" {
		t.Errorf("podinfo-config-primary color = %q, want green", got)
	}
}

func TestCanaryNeverReadyFailsAtProgressDeadline(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 2)
	cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	// No node has this label: the new pods stay Pending and the canary never becomes ready.
	d := &appsv1.Deployment{}
	f.update("podinfo", d, func() {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1"
		d.Spec.Template.Spec.NodeSelector = map[string]string{"pennant.test/no-such-node": "true"}
	})
	failed := f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	if got := condition(failed, flaggerv1.StalledCondition); got != metav1.ConditionTrue {
		t.Errorf("Stalled condition = %q, want True", got)
	}
	f.waitEvent("Warning Rolling back "+f.key("podinfo")+" progress deadline exceeded", 5*time.Second)
	f.waitEvent("Warning Canary failed! Scaling down "+f.key("podinfo"), 5*time.Second)

	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.0" {
		t.Errorf("primary image = %q, want the previous 6.0.0", got)
	}
	apex := &corev1.Service{}
	f.get("podinfo", apex)
	if got := apex.Spec.Selector["app"]; got != "podinfo-primary" {
		t.Errorf("apex selector app = %q, want podinfo-primary (traffic stays on the primary)", got)
	}
	f.waitTargetReplicas("podinfo", 0)
}

func TestNewRevisionDuringAnalysisRestartsIt(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 6)
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitEvent("Advance "+f.key("podinfo")+" canary iteration 2/6", phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.2")
	f.waitEvent("New revision detected! Restarting analysis for "+f.key("podinfo"), phaseTimeout)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.2" {
		t.Errorf("primary image = %q, want 6.0.2", got)
	}
}

func TestDaemonSetTarget(t *testing.T) {
	f := newFixture(t)
	d := podinfoDeployment("podinfo", 1)
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Labels: d.Labels},
		Spec:       appsv1.DaemonSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template},
	}
	f.create(ds, blueGreenCanary("podinfo", "DaemonSet", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	primary := &appsv1.DaemonSet{}
	f.get("podinfo-primary", primary)
	f.get("podinfo", ds)
	if ds.Spec.Template.Spec.NodeSelector["flagger.app/scale-to-zero"] != "true" {
		t.Errorf("target DaemonSet node selector = %v, want flagger.app/scale-to-zero", ds.Spec.Template.Spec.NodeSelector)
	}
	f.update("podinfo", ds, func() { ds.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1" })
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("primary image = %q, want 6.0.1", got)
	}
}

func TestHPAPrimaryClone(t *testing.T) {
	f := newFixture(t)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			MinReplicas:    ptr.To[int32](2),
			MaxReplicas:    4,
		},
	}
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.AutoscalerRef = &flaggerv1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "podinfo"}
	f.create(podinfoDeployment("podinfo", 2), hpa, cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	primaryHPA := &autoscalingv2.HorizontalPodAutoscaler{}
	f.get("podinfo-primary", primaryHPA)
	if got := primaryHPA.Spec.ScaleTargetRef.Name; got != "podinfo-primary" {
		t.Errorf("primary HPA targets %q, want podinfo-primary", got)
	}
	if primaryHPA.Spec.MaxReplicas != 4 || ptr.Deref(primaryHPA.Spec.MinReplicas, 0) != 2 {
		t.Errorf("primary HPA replicas = %v..%d, want 2..4", primaryHPA.Spec.MinReplicas, primaryHPA.Spec.MaxReplicas)
	}
}

func TestRevertOnDeletionRestoresTarget(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.RevertOnDeletion = true
	f.create(podinfoDeployment("podinfo", 2), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.waitTargetReplicas("podinfo", 0)
	if got := f.canary("podinfo").Finalizers; !slices.Equal(got, []string{flaggerv1.Finalizer, flaggerv1.ScaleBackFinalizer}) {
		t.Fatalf("finalizers = %v, want Flagger's %s and Pennant's %s", got, flaggerv1.Finalizer, flaggerv1.ScaleBackFinalizer)
	}

	if err := f.c.Delete(f.ctx, f.canary("podinfo")); err != nil {
		t.Fatal(err)
	}
	f.waitGone("podinfo", &flaggerv1.Canary{})
	f.waitTargetReplicas("podinfo", 2)
	apex := &corev1.Service{}
	if f.exists("podinfo", apex) && apex.Spec.Selector["app"] != "podinfo" {
		t.Errorf("apex selector app = %q after revert, want podinfo", apex.Spec.Selector["app"])
	}
}

func TestSkipAnalysisPromotesDirectly(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 5)
	cd.Spec.SkipAnalysis = true
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.waitEvent("Promotion completed! Canary analysis was skipped for "+f.key("podinfo"), 5*time.Second)
	for _, e := range f.events() {
		if e == "Normal Advance "+f.key("podinfo")+" canary iteration 1/5" {
			t.Errorf("analysis ran although skipAnalysis is set: %q", e)
		}
	}
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("primary image = %q, want 6.0.1", got)
	}
}

func TestSuspendStopsReleases(t *testing.T) {
	f := newFixture(t)
	f.create(podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	cd := &flaggerv1.Canary{}
	f.update("podinfo", cd, func() { cd.Spec.Suspend = true })
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")

	// Several analysis intervals pass: nothing may happen.
	time.Sleep(3 * time.Second)
	if got := f.canary("podinfo").Status.Phase; got != flaggerv1.CanaryPhaseInitialized {
		t.Fatalf("suspended canary moved to %q", got)
	}
	f.waitTargetReplicas("podinfo", 0)

	f.update("podinfo", cd, func() { cd.Spec.Suspend = false })
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
}

// Flagger says "skipping canary run as object is suspended" on every run of a suspended canary;
// Pennant says it once per change of the spec (a Normal event, logged at info): reconciles that
// change nothing neither repeat it nor cost an API request.
func TestSuspendIsAnnouncedOncePerChange(t *testing.T) {
	f := newFixture(t)
	f.create(podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	cd := &flaggerv1.Canary{}
	f.update("podinfo", cd, func() { cd.Spec.Suspend = true })
	f.waitEvent("Normal "+canary.SuspendedMessage, 10*time.Second)
	time.Sleep(time.Second) // the status write that records the generation settles

	before := f.requests.Load()
	for i := range 5 {
		f.update("podinfo", cd, func() { cd.Annotations = map[string]string{"touch": itoa(int32(i))} })
		time.Sleep(300 * time.Millisecond) // more than one analysis interval in all
	}
	if got := f.requests.Load() - before; got != 0 {
		t.Errorf("the controller made %d API requests for 5 reconciles of a suspended canary, want 0", got)
	}
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1") // a new revision is no change of the canary
	time.Sleep(2 * time.Second)
	if n := f.eventCount(canary.SuspendedMessage); n != 1 {
		t.Errorf("suspension announced %d times, want once", n)
	}

	f.update("podinfo", cd, func() { cd.Spec.Suspend = false })
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	f.update("podinfo", cd, func() { cd.Spec.Suspend = true })
	testenvEventually(f, func() (bool, string) {
		n := f.eventCount(canary.SuspendedMessage)
		return n == 2, fmt.Sprintf("suspension announced %d times after suspending again, want 2", n)
	})
}

// eventCount is how many times the canary events of the namespace said msg (the recorder folds
// repeats into one Event with a count).
func (f *fixture) eventCount(msg string) int32 {
	f.t.Helper()
	var list corev1.EventList
	if err := f.c.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	var n int32
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == flaggerv1.CanaryKind && e.Message == msg {
			n += max(1, e.Count)
		}
	}
	return n
}

func (f *fixture) setImage(name, img string) {
	d := &appsv1.Deployment{}
	f.update(name, d, func() { d.Spec.Template.Spec.Containers[0].Image = img })
}

func (f *fixture) waitTargetReplicas(name string, want int32) {
	f.t.Helper()
	d := &appsv1.Deployment{}
	testenvEventually(f, func() (bool, string) {
		f.get(name, d)
		got := ptr.Deref(d.Spec.Replicas, 1)
		return got == want, "target replicas " + itoa(got) + ", want " + itoa(want)
	})
}

func (f *fixture) waitGone(name string, obj interface {
	GetName() string
}) {
	f.t.Helper()
	testenvEventually(f, func() (bool, string) {
		return !f.exists(name, &flaggerv1.Canary{}), name + " still exists"
	})
}

func TestSteadyStateReconcilesMakeNoAPIRequests(t *testing.T) {
	for _, provider := range []string{"kubernetes", "istio", "gloo"} {
		t.Run(provider, func(t *testing.T) {
			f := newFixture(t)
			cd := blueGreenCanary("podinfo", "Deployment", 1)
			cd.Spec.Provider = provider
			f.create(podinfoDeployment("podinfo", 1), cd)
			f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
			time.Sleep(2 * time.Second) // initialization's own events, status write and informers settle

			before := f.requests.Load()
			// Each annotation change wakes the canary; a settled canary must decide from the cache alone.
			for i := range 5 {
				cd := &flaggerv1.Canary{}
				f.update("podinfo", cd, func() { cd.Annotations = map[string]string{"touch": itoa(int32(i))} })
				time.Sleep(300 * time.Millisecond)
			}
			if got := f.requests.Load() - before; got != 0 {
				t.Errorf("the controller made %d API requests for 5 reconciles of a settled %s canary, want 0", got, provider)
			}
		})
	}
}

func TestTakingOverFromFlaggerReleasesNothing(t *testing.T) {
	f := newFixture(t)
	f.create(podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	// What Flagger leaves behind: its own revision hashes in the status.
	cd := f.canary("podinfo")
	patch := client.MergeFrom(cd.DeepCopy())
	cd.Status.LastAppliedSpec, cd.Status.LastPromotedSpec = "5f8c6d9b7", "5f8c6d9b7"
	cd.Status.Phase = flaggerv1.CanaryPhaseSucceeded
	if err := f.c.Status().Patch(context.Background(), cd, patch); err != nil {
		t.Fatal(err)
	}
	f.update("podinfo", cd, func() { cd.Annotations = map[string]string{"wake": "up"} })

	f.waitEvent("recorded from a previous controller's status", phaseTimeout)
	// The event is recorded while the decision is carried out, before its status is written.
	testenvEventually(f, func() (bool, string) {
		got := f.canary("podinfo")
		return got.Status.Phase == flaggerv1.CanaryPhaseSucceeded && len(got.Status.LastPromotedSpec) == 32,
			fmt.Sprintf("after taking over: phase %s, lastPromotedSpec %q; want Succeeded and a Pennant revision",
				got.Status.Phase, got.Status.LastPromotedSpec)
	})
	for _, e := range f.events() {
		if strings.Contains(e, "New revision detected") {
			t.Errorf("taking over started a release: %q", e)
		}
	}
	f.waitTargetReplicas("podinfo", 0)
}
