package controller

import (
	"context"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/workload"
)

// RevisionAnnotation records on the primary which target revision it was promoted from, so that
// the controller can tell from its cache that a promotion has reached the primary.
const RevisionAnnotation = "pennant.dev/revision"

// observe reads everything the phase machine needs; all reads come from the informer cache.
func (r *CanaryReconciler) observe(ctx context.Context, cd *flaggerv1.Canary, e env) (canary.Observation, error) {
	var obs canary.Observation
	var err error
	if obs.Revision, err = e.workload.Revision(ctx, cd); err != nil {
		return obs, err
	}
	if obs.Configs, err = e.workload.TrackedConfigs(ctx, cd); err != nil {
		return obs, err
	}
	primary, err := e.workload.PrimaryReady(ctx, cd)
	if apierrors.IsNotFound(err) {
		// The target exists (its selector was read), so only the cache lags behind the primary we made.
		primary, err = workload.Readiness{Message: "Waiting for " + cd.Spec.TargetRef.Name + "-primary." + cd.Namespace + " to be created"}, nil
	}
	if err != nil {
		return obs, err
	}
	obs.Primary = readiness(primary)
	target, err := e.workload.CanaryReady(ctx, cd)
	if err != nil {
		return obs, err
	}
	obs.Canary = readiness(target)
	if obs.PrimaryPromoted, err = r.primaryRuns(ctx, cd, cd.Status.LastAppliedSpec); err != nil {
		return obs, err
	}
	p, c, mirrored, err := e.router.GetRoutes(ctx, cd)
	if err != nil {
		return obs, err
	}
	obs.Routes = canary.Routes{Primary: p, Canary: c, Mirrored: mirrored}
	if t, ok := r.ticks.Load(key(cd)); ok {
		obs.LastTick = t.(time.Time)
	}
	return obs, nil
}

func readiness(r workload.Readiness) canary.Readiness {
	return canary.Readiness{Ready: r.Ready, Failed: r.Failed, Message: r.Message}
}

// primaryRuns reports whether the cached primary carries the given revision. A primary promoted by
// another controller (no annotation) is trusted, as Flagger would.
func (r *CanaryReconciler) primaryRuns(ctx context.Context, cd *flaggerv1.Canary, revision string) (bool, error) {
	obj, err := r.primaryObject(cd)
	if obj == nil || err != nil {
		return true, err
	}
	err = r.Client.Get(ctx, types.NamespacedName{Namespace: cd.Namespace, Name: obj.GetName()}, obj)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	got, ok := obj.GetAnnotations()[RevisionAnnotation]
	return !ok || got == revision, nil
}

func (r *CanaryReconciler) primaryObject(cd *flaggerv1.Canary) (client.Object, error) {
	name := cd.Spec.TargetRef.Name + "-primary"
	switch cd.Spec.TargetRef.Kind {
	case "Deployment":
		d := &appsv1.Deployment{}
		d.Name = name
		return d, nil
	case "DaemonSet":
		d := &appsv1.DaemonSet{}
		d.Name = name
		return d, nil
	default:
		return nil, nil
	}
}
