package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/workload"
)

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
	// A primary promoted by another controller carries no revision: trust it, as Flagger would.
	obs.PrimaryPromoted = primary.PromotedRevision == "" || primary.PromotedRevision == cd.Status.LastAppliedSpec
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
