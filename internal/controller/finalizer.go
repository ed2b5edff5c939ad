package controller

import (
	"context"
	"fmt"
	appsv1 "k8s.io/api/apps/v1"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/workload"
)

// finalizeRetry is how often a deleted canary checks that its restored target is ready (the
// target's watch events wake it sooner).
const finalizeRetry = 2 * time.Second

// Deleting a canary. Two finalizers hold a deleted canary, and with it (through the garbage
// collector) its -primary workload and generated Services, until its target serves again:
//
//   - Flagger's (flaggerv1.Finalizer), set with revertOnDeletion: the target gets the primary's
//     replicas back and, once it is ready, the apex Service and the routes point at it again.
//   - Pennant's (flaggerv1.ScaleBackFinalizer), set on every canary whose target Pennant scales
//     down: without revertOnDeletion the target gets the primary's replicas back, and the primary
//     goes only once the target has available replicas (Flagger #853: without it the primary is
//     deleted at once while the target sits at 0 replicas). This wait is bounded by the canary's
//     progress deadline, counted from the deletion, and ends at once when the target is gone.
//
// Both are removed together, in one patch.

// scalesTargetDown reports whether Pennant scales the canary's target down while the primary
// serves: Deployments (to 0 replicas) and DaemonSets (by node selector); Service and Knative
// targets keep their own serving objects.
func scalesTargetDown(cd *flaggerv1.Canary) bool {
	switch cd.Spec.TargetRef.Kind {
	case workload.KindDeployment, workload.KindDaemonSet:
		return true
	}
	return false
}

// setFinalizers gives a live canary the finalizers it should carry (Flagger's with revertOnDeletion,
// Pennant's when its target is scaled down) and leaves anyone else's alone. It reports whether
// they changed.
func setFinalizers(cd *flaggerv1.Canary) bool {
	changed := setFinalizer(cd, flaggerv1.Finalizer, cd.Spec.RevertOnDeletion)
	return setFinalizer(cd, flaggerv1.ScaleBackFinalizer, scalesTargetDown(cd)) || changed
}

func setFinalizer(cd *flaggerv1.Canary, finalizer string, want bool) bool {
	if want {
		return controllerutil.AddFinalizer(cd, finalizer)
	}
	return controllerutil.RemoveFinalizer(cd, finalizer)
}

// syncFinalizer brings the finalizers of a live canary in line with its spec, in one patch when
// anything changes (none otherwise). The patch carries the resourceVersion it was made from, so a
// lagging cache cannot drop a finalizer someone else added meanwhile; it reports done when the
// reconcile must stop.
func (r *CanaryReconciler) syncFinalizer(ctx context.Context, cd *flaggerv1.Canary) (bool, error) {
	before := cd.DeepCopy()
	if !setFinalizers(cd) {
		return false, nil
	}
	patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	if err := r.Client.Patch(ctx, cd, patch); err != nil {
		return true, err
	}
	return false, nil
}

// finalize runs while a deleted canary holds one of the finalizers above: with Flagger's it reverts
// the target and its routing (revertOnDeletion), with Pennant's alone it scales the target back.
// Then it removes both.
func (r *CanaryReconciler) finalize(ctx context.Context, cd *flaggerv1.Canary) (ctrl.Result, error) {
	revert := controllerutil.ContainsFinalizer(cd, flaggerv1.Finalizer)
	if !revert && !controllerutil.ContainsFinalizer(cd, flaggerv1.ScaleBackFinalizer) {
		return ctrl.Result{}, nil
	}
	if cd.Status.Phase != flaggerv1.CanaryPhaseTerminating {
		st := *cd.Status.DeepCopy()
		st.Phase = flaggerv1.CanaryPhaseTerminating
		canary.SetConditions(&st, cd, "", "", r.Now())
		if err := r.writeStatus(ctx, cd, st); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		r.Announcer.Info(cd, "Terminating canary "+cd.Key())
	}
	if revert {
		done, err := r.revert(ctx, cd)
		if err != nil || !done {
			return ctrl.Result{RequeueAfter: finalizeRetry}, client.IgnoreNotFound(err)
		}
	} else if wait := r.scaleBack(ctx, cd); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	return ctrl.Result{}, r.release(ctx, cd)
}

// release removes Pennant's and Flagger's finalizers in one patch: the garbage collector then
// deletes the canary, its primary and its generated objects.
func (r *CanaryReconciler) release(ctx context.Context, cd *flaggerv1.Canary) error {
	patch := client.MergeFromWithOptions(cd.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(cd, flaggerv1.Finalizer)
	controllerutil.RemoveFinalizer(cd, flaggerv1.ScaleBackFinalizer)
	if err := r.Client.Patch(ctx, cd, patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.forget(key(cd))
	r.Metrics.Forget(cd.Namespace, cd.Name)
	return nil
}

// releaseDeadline is when a deleted canary whose target does not become ready is let go anyway:
// its progress deadline after its deletion.
func releaseDeadline(cd *flaggerv1.Canary) time.Time {
	return cd.DeletionTimestamp.Add(time.Duration(cd.GetProgressDeadlineSeconds()) * time.Second)
}

// releaseWait is how long to wait before looking at the target of a deleted canary again, when
// it is not ready at now: zero once the deadline has passed.
func releaseWait(cd *flaggerv1.Canary, now time.Time) time.Duration {
	left := releaseDeadline(cd).Sub(now)
	if left <= 0 {
		return 0
	}
	return min(finalizeRetry, left)
}

// scaleBack restores the target of a canary deleted without revertOnDeletion and reports how long
// to wait before looking again; zero means the canary can go: the target has available replicas,
// it is gone, or the progress deadline since the deletion has passed (said in a Warning event).
// Errors count as not ready: they are put on the canary, and the deadline still holds.
func (r *CanaryReconciler) scaleBack(ctx context.Context, cd *flaggerv1.Canary) time.Duration {
	done, why, err := r.restoreTarget(ctx, cd)
	if done {
		return 0
	}
	if err != nil {
		why = err.Error()
	}
	if wait := releaseWait(cd, r.Now()); wait > 0 {
		if err != nil && !apierrors.IsConflict(err) {
			_ = r.retrying(ctx, cd, err)
		}
		return wait
	}
	r.Announcer.Warn(cd, fmt.Sprintf("Releasing canary %s: its %s %s is not ready %ds after the deletion (progress deadline): %s; "+
		"the primary is deleted anyway", cd.Key(), cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, cd.GetProgressDeadlineSeconds(), why))
	return 0
}

// restoreTarget resumes the target's autoscaler and gives the target the primary's replicas (or,
// when there is no primary, the replicas ScaleFromZero gives: a target that was never scaled down
// keeps its own). It reports done once the target is ready or gone, else why it waits.
func (r *CanaryReconciler) restoreTarget(ctx context.Context, cd *flaggerv1.Canary) (done bool, why string, err error) {
	wl, err := r.Workloads.Controller(cd)
	if err != nil {
		// A kind Pennant does not know: it never scaled anything down.
		return true, "", nil
	}
	if sc, err := r.Workloads.Scaler(cd); err == nil {
		if err := sc.ResumeTargetScaler(ctx, cd); err != nil && !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
			return false, "", err
		}
	}
	restore := wl.Finalize
	if _, err := wl.PrimaryReady(ctx, cd); apierrors.IsNotFound(err) {
		restore = wl.ScaleFromZero
	}
	if err := restore(ctx, cd); err != nil {
		return apierrors.IsNotFound(err), "", client.IgnoreNotFound(err)
	}
	ready, err := wl.CanaryReady(ctx, cd)
	if err != nil {
		return workload.IsTargetNotFound(err), "", client.IgnoreNotFound(err)
	}
	if ready.Ready {
		// The primary goes next, so the readiness must not come from a cached target older than the
		// scale-down (or the scale-up just written): then the target may in fact have no replica.
		current, err := r.cachedTargetIsCurrent(ctx, cd)
		if err != nil || !current {
			return false, "the cache has not caught up with the target yet", client.IgnoreNotFound(err)
		}
	}
	return ready.Ready, ready.Message, nil
}

// cachedTargetIsCurrent compares the cached Deployment or DaemonSet target with the API server's
// (one GET); other kinds are never scaled, so their cached copy is good enough.
func (r *CanaryReconciler) cachedTargetIsCurrent(ctx context.Context, cd *flaggerv1.Canary) (bool, error) {
	var cached, live client.Object
	switch cd.Spec.TargetRef.Kind {
	case "Deployment":
		cached, live = &appsv1.Deployment{}, &appsv1.Deployment{}
	case "DaemonSet":
		cached, live = &appsv1.DaemonSet{}, &appsv1.DaemonSet{}
	default:
		return true, nil
	}
	if r.apiReader == nil {
		return true, nil
	}
	k := client.ObjectKey{Namespace: cd.Namespace, Name: cd.Spec.TargetRef.Name}
	if err := r.Client.Get(ctx, k, cached); err != nil {
		return false, err
	}
	if err := r.apiReader.Get(ctx, k, live); err != nil {
		return false, err
	}
	return cached.GetResourceVersion() == live.GetResourceVersion(), nil
}

// revert restores the target; it reports done when there is nothing left to wait for.
func (r *CanaryReconciler) revert(ctx context.Context, cd *flaggerv1.Canary) (bool, error) {
	e, err := r.environment(cd, r.provider(cd))
	if err != nil {
		// Nothing Pennant could have set up: let the canary go.
		return true, nil
	}
	if err := e.scaler.ResumeTargetScaler(ctx, cd); err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	if err := e.workload.Finalize(ctx, cd); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
	ready, err := e.workload.CanaryReady(ctx, cd)
	if err != nil || !ready.Ready {
		return false, err
	}
	if err := e.services.Finalize(ctx, cd); err != nil {
		return false, err
	}
	return true, e.router.Finalize(ctx, cd)
}
