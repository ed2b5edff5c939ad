package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

// finalizeRetry is how often a revert checks that the restored target is ready.
const finalizeRetry = 2 * time.Second

// finalize reverts a canary with revertOnDeletion: the target gets its replicas back, and once it
// is ready the apex Service and the routes point at it again. Only then is the finalizer removed.
func (r *CanaryReconciler) finalize(ctx context.Context, cd *flaggerv1.Canary) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(cd, flaggerv1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if cd.Status.Phase != flaggerv1.CanaryPhaseTerminating {
		st := *cd.Status.DeepCopy()
		st.Phase = flaggerv1.CanaryPhaseTerminating
		canary.SetConditions(&st, cd, "", r.Now())
		if err := r.writeStatus(ctx, cd, st); err != nil {
			return ctrl.Result{}, err
		}
		r.Announcer.Info(cd, "Terminating canary "+cd.Key())
	}
	done, err := r.revert(ctx, cd)
	if err != nil || !done {
		return ctrl.Result{RequeueAfter: finalizeRetry}, client.IgnoreNotFound(err)
	}
	patch := client.MergeFrom(cd.DeepCopy())
	controllerutil.RemoveFinalizer(cd, flaggerv1.Finalizer)
	if err := r.Client.Patch(ctx, cd, patch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.forget(key(cd))
	r.Metrics.Forget(cd.Namespace, cd.Name)
	return ctrl.Result{}, nil
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
