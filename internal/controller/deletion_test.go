package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

// Deleting a canary without revertOnDeletion (Flagger #853): the garbage collector deletes the
// primary, which the canary owns, only once the target has available replicas again.

// noSuchNode keeps pods Pending: no node has this label.
var noSuchNode = map[string]string{"pennant.test/no-such-node": "true"}

// servingCheck is one look at the primary and the target while a canary is deleted.
type servingCheck struct {
	primaryGone     bool // deleted, or being deleted by the garbage collector
	primaryReady    int32
	targetAvailable int32
	targetReplicas  int32
}

// look reads the primary first, then the target: once the target has available replicas they stay
// (nothing scales it down any more), so a primary found gone with a target not yet available means
// the primary went first.
func (f *fixture) look(name string) servingCheck {
	f.t.Helper()
	var s servingCheck
	primary := &appsv1.Deployment{}
	err := f.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name + "-primary"}, primary)
	switch {
	case apierrors.IsNotFound(err):
		s.primaryGone = true
	case err != nil:
		f.t.Fatal(err)
	default:
		s.primaryGone = !primary.DeletionTimestamp.IsZero()
		s.primaryReady = primary.Status.ReadyReplicas
	}
	target := &appsv1.Deployment{}
	f.get(name, target)
	s.targetAvailable = target.Status.AvailableReplicas
	s.targetReplicas = ptr.Deref(target.Spec.Replicas, 1)
	return s
}

// parkTarget gives the (scaled-down) target's pods a node selector no node has, and waits until the
// deployment controller has seen it (a scale-up racing the template change would scale the old
// ReplicaSet) and the pods it had before the scale-down are gone: their availability would
// otherwise still count in the status that look reads.
func (f *fixture) parkTarget(name string) {
	f.t.Helper()
	d := &appsv1.Deployment{}
	f.update(name, d, func() { d.Spec.Template.Spec.NodeSelector = noSuchNode })
	testenvEventually(f, func() (bool, string) {
		f.get(name, d)
		return d.Status.ObservedGeneration >= d.Generation && d.Status.Replicas == 0 && d.Status.AvailableReplicas == 0,
			fmt.Sprintf("deployment generation %d observed %d, %d replicas (%d available)",
				d.Generation, d.Status.ObservedGeneration, d.Status.Replicas, d.Status.AvailableReplicas)
	})
}

func (f *fixture) deleteCanary(name string) {
	f.t.Helper()
	if err := f.c.Delete(context.Background(), f.canary(name)); err != nil {
		f.t.Fatal(err)
	}
}

// waitServedUntilGone watches the primary and the target until the canary and its primary are
// gone, and fails when at any moment neither serves.
func (f *fixture) waitServedUntilGone(name string) servingCheck {
	f.t.Helper()
	var last servingCheck
	testenv.Eventually(f.t, phaseTimeout, 20*time.Millisecond, func() (bool, string) {
		last = f.look(name)
		if last.primaryGone && last.targetAvailable == 0 {
			f.t.Fatalf("the primary was deleted while the target had no available replica (%+v)", last)
		}
		if !last.primaryGone && last.primaryReady == 0 {
			f.t.Fatalf("the primary has no ready pod while the canary is deleted (%+v)", last)
		}
		canaryGone := !f.exists(name, &flaggerv1.Canary{})
		primaryGone := !f.exists(name+"-primary", &appsv1.Deployment{})
		return canaryGone && primaryGone, fmt.Sprintf("canary gone %v, primary gone %v; %+v", canaryGone, primaryGone, last)
	})
	return last
}

func TestDeletionWithoutRevertOnDeletionKeepsThePrimaryUntilTheTargetServes(t *testing.T) {
	f := newFixture(t)
	f.create(podinfoDeployment("podinfo", 2), blueGreenCanary("podinfo", "Deployment", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.waitTargetReplicas("podinfo", 0)
	if got := f.canary("podinfo").Finalizers; !slices.Equal(got, []string{flaggerv1.ScaleBackFinalizer}) {
		t.Fatalf("finalizers = %v, want [%s]", got, flaggerv1.ScaleBackFinalizer)
	}

	f.deleteCanary("podinfo")
	last := f.waitServedUntilGone("podinfo")
	if last.targetReplicas != 2 || last.targetAvailable != 2 {
		t.Errorf("target has %d replicas, %d available, want the primary's 2", last.targetReplicas, last.targetAvailable)
	}
	f.waitEvent("Normal Terminating canary "+f.key("podinfo"), 5*time.Second)
	// As with Flagger, the generated Services go with the canary (no revertOnDeletion).
	testenvEventually(f, func() (bool, string) {
		return !f.exists("podinfo-primary", &corev1.Service{}), "Service podinfo-primary still exists"
	})
}

// The target's pods stay Pending for a while after the deletion: the canary (and so the primary)
// waits, Terminating, and goes as soon as they are available.
func TestDeletionWaitsForTheTargetToBecomeReady(t *testing.T) {
	f := newFixture(t)
	f.create(podinfoDeployment("podinfo", 2), blueGreenCanary("podinfo", "Deployment", 1))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.waitTargetReplicas("podinfo", 0)
	cd := &flaggerv1.Canary{}
	f.update("podinfo", cd, func() { cd.Spec.Suspend = true }) // the change below starts no release
	f.parkTarget("podinfo")

	f.deleteCanary("podinfo")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseTerminating, phaseTimeout)
	f.waitTargetReplicas("podinfo", 2)
	for range 15 { // 3s: the target's pods are Pending, the primary stays and serves
		s := f.look("podinfo")
		if s.primaryGone || s.primaryReady != 2 || s.targetAvailable != 0 {
			t.Fatalf("while the target cannot run: %+v, want the primary with its 2 ready pods and no available target", s)
		}
		if !f.exists("podinfo", &flaggerv1.Canary{}) {
			t.Fatal("the canary was released while its target had no available replica")
		}
		time.Sleep(200 * time.Millisecond)
	}

	d := &appsv1.Deployment{}
	f.update("podinfo", d, func() { d.Spec.Template.Spec.NodeSelector = nil })
	if last := f.waitServedUntilGone("podinfo"); last.targetAvailable != 2 {
		t.Errorf("target has %d available replicas, want 2", last.targetAvailable)
	}
	for _, e := range f.events() {
		if strings.HasPrefix(e, "Warning Releasing canary") {
			t.Errorf("unexpected event %q", e)
		}
	}
}

// A target that never becomes ready does not hold the canary (nor its namespace) forever: it goes
// after its progress deadline, counted from the deletion, with a Warning event.
func TestDeletionReleasesANeverReadyTargetAfterTheProgressDeadline(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.waitTargetReplicas("podinfo", 0)
	f.update("podinfo", cd, func() { cd.Spec.Suspend = true })
	f.parkTarget("podinfo")

	deleted := time.Now()
	f.deleteCanary("podinfo")
	f.waitGone("podinfo", &flaggerv1.Canary{})
	// The deletionTimestamp has whole seconds: the deadline may end up to a second early.
	if held := time.Since(deleted); held < 2*time.Second {
		t.Errorf("the canary was released %v after its deletion, before its progress deadline of 3s", held)
	}
	f.waitEvent("Warning Releasing canary "+f.key("podinfo")+": its Deployment podinfo is not ready 3s after the deletion", 5*time.Second)
	testenvEventually(f, func() (bool, string) {
		return !f.exists("podinfo-primary", &appsv1.Deployment{}), "the primary still exists"
	})
	if got := ptrReplicas(f, "podinfo"); got != 1 {
		t.Errorf("target replicas = %d, want the primary's 1", got)
	}
}

// A target deleted with the canary (e.g. with its namespace) leaves nothing to wait for.
func TestDeletionWithTheTargetGoneReleasesAtOnce(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](600)
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	target := &appsv1.Deployment{}
	f.get("podinfo", target)
	if err := f.c.Delete(context.Background(), target); err != nil {
		t.Fatal(err)
	}
	testenvEventually(f, func() (bool, string) {
		return !f.exists("podinfo", &appsv1.Deployment{}), "the target still exists"
	})
	f.deleteCanary("podinfo")
	testenv.Eventually(t, 15*time.Second, 100*time.Millisecond, func() (bool, string) {
		return !f.exists("podinfo", &flaggerv1.Canary{}), "the canary still exists"
	})
}

// A canary that never scaled its target down (here an invalid one, with no primary) does not take
// replicas from it when it is deleted.
func TestDeletionOfACanaryWithoutPrimaryLeavesTheTargetAlone(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.Provider = "nginx" // without ingressRef: InvalidSpec, nothing is created
	f.create(podinfoDeployment("podinfo", 3), cd)
	testenvEventually(f, func() (bool, string) {
		got := f.canary("podinfo")
		return condition(got, flaggerv1.StalledCondition) == metav1.ConditionTrue && len(got.Finalizers) == 1,
			fmt.Sprintf("conditions %v, finalizers %v", got.Status.Conditions, got.Finalizers)
	})
	f.deleteCanary("podinfo")
	f.waitGone("podinfo", &flaggerv1.Canary{})
	if got := ptrReplicas(f, "podinfo"); got != 3 {
		t.Errorf("target replicas = %d after deleting a canary that never scaled it, want 3", got)
	}
}

// revertOnDeletion is as before (the target, apex Service and routes restored); the canary carries
// both finalizers and loses both.
func TestDeletionWithRevertOnDeletionRemovesBothFinalizers(t *testing.T) {
	f := newFixture(t)
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.RevertOnDeletion = true
	f.create(podinfoDeployment("podinfo", 2), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.waitTargetReplicas("podinfo", 0)
	want := []string{flaggerv1.Finalizer, flaggerv1.ScaleBackFinalizer}
	if got := f.canary("podinfo").Finalizers; !slices.Equal(got, want) {
		t.Fatalf("finalizers = %v, want %v", got, want)
	}

	f.deleteCanary("podinfo")
	f.waitGone("podinfo", &flaggerv1.Canary{})
	f.waitTargetReplicas("podinfo", 2)
	apex := &corev1.Service{}
	if f.exists("podinfo", apex) && apex.DeletionTimestamp.IsZero() && apex.Spec.Selector["app"] != "podinfo" {
		t.Errorf("apex selector app = %q after revert, want podinfo", apex.Spec.Selector["app"])
	}
	f.waitEvent("Normal Terminating canary "+f.key("podinfo"), 5*time.Second)
}

// finalizerHistory records each distinct finalizer list a watched canary goes through.
type finalizerHistory struct {
	mu    sync.Mutex
	lists [][]string
}

func (h *finalizerHistory) get() [][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lists)
}

// watchFinalizers records the finalizer lists of the canary called name from now on; every write
// to it is one watch event.
func (f *fixture) watchFinalizers(name string) *finalizerHistory {
	f.t.Helper()
	wc, err := client.NewWithWatch(f.env.Config, client.Options{Scheme: f.env.Scheme})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := wc.Watch(ctx, &flaggerv1.CanaryList{}, client.InNamespace(f.ns))
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { w.Stop(); cancel() })
	h := &finalizerHistory{lists: [][]string{nil}}
	go func() {
		for ev := range w.ResultChan() {
			cd, ok := ev.Object.(*flaggerv1.Canary)
			if !ok || cd.Name != name || ev.Type == watch.Deleted {
				continue
			}
			h.mu.Lock()
			if !slices.Equal(h.lists[len(h.lists)-1], cd.Finalizers) {
				h.lists = append(h.lists, slices.Clone(cd.Finalizers))
			}
			h.mu.Unlock()
		}
	}()
	return h
}

// Both finalizers come in one patch, once; dropping revertOnDeletion removes only Flagger's.
func TestFinalizersAreAddedInOnePatch(t *testing.T) {
	f := newFixture(t)
	h := f.watchFinalizers("podinfo")
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.RevertOnDeletion = true
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.waitTargetReplicas("podinfo", 0)
	time.Sleep(time.Second) // later reconciles must not touch them again

	both := []string{flaggerv1.Finalizer, flaggerv1.ScaleBackFinalizer}
	if got := h.get(); len(got) != 2 || !slices.Equal(got[1], both) {
		t.Fatalf("finalizer lists the canary went through: %v, want [] then %v in one write", got, both)
	}

	f.update("podinfo", cd, func() { cd.Spec.RevertOnDeletion = false })
	only := []string{flaggerv1.ScaleBackFinalizer}
	testenvEventually(f, func() (bool, string) {
		got := h.get()
		return len(got) == 3 && slices.Equal(got[2], only), fmt.Sprintf("finalizer lists %v, want %v added in one more write", got, only)
	})
	time.Sleep(time.Second)
	if got := h.get(); len(got) != 3 {
		t.Errorf("finalizer lists the canary went through: %v, want 3", got)
	}
}

// Service targets are never scaled down: their canaries carry no finalizer of Pennant's.
func TestNoFinalizerForServiceTargets(t *testing.T) {
	f := newFixture(t)
	target := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "backend"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "backend"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(9898)}},
		},
	}
	cd := blueGreenCanary("backend", "Service", 1)
	cd.Spec.TargetRef.APIVersion = "v1"
	f.create(target, cd)
	testenvEventually(f, func() (bool, string) {
		got := f.canary("backend")
		return got.Status.ObservedGeneration == got.Generation && got.Status.Phase != "",
			fmt.Sprintf("phase %q, conditions %v", got.Status.Phase, got.Status.Conditions)
	})
	if got := f.canary("backend").Finalizers; len(got) != 0 {
		t.Fatalf("finalizers of a Service-target canary = %v, want none", got)
	}
	f.deleteCanary("backend")
	f.waitGone("backend", &flaggerv1.Canary{})
}
