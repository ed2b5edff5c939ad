package controller

import (
	"context"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

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
		primary, err = workload.Readiness{Message: primaryPending(cd)}, nil
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
	if st := cd.Status.LastAppliedSpec; st != "" && !canary.IsRevision(st) {
		obs.ForeignStatus = true
		if obs.PrimaryRunsTarget, err = e.workload.PrimaryRunsTarget(ctx, cd); err != nil {
			return obs, err
		}
	}
	if obs.PrimaryPromoted, err = primaryPromoted(ctx, cd, e, primary); err != nil {
		return obs, err
	}
	p, c, mirrored, err := e.router.GetRoutes(ctx, cd)
	if apierrors.IsNotFound(err) {
		// Not created yet (routing is set up once the primary is ready) or not in the cache yet:
		// all traffic still goes to the primary.
		p, c, mirrored, err = 100, 0, false, nil
	}
	if err != nil {
		return obs, err
	}
	obs.Routes = canary.Routes{Primary: p, Canary: c, Mirrored: mirrored}
	// The pace of the analysis is kept in the status, not in memory: a restart does not run the
	// next step sooner than one interval after the previous.
	if t := cd.Status.LastStepTime; t != nil {
		obs.LastTick = t.Time
	}
	obs.LastWait = loadTime(&r.waits, key(cd))
	return obs, nil
}

// primaryPromoted tells whether the primary runs status.lastAppliedSpec. A primary another
// controller made (Flagger, before Pennant took over) carries no revision of Pennant's until
// Pennant's first promotion: what it runs tells instead, so that this promotion is not skipped.
func primaryPromoted(ctx context.Context, cd *flaggerv1.Canary, e env, primary workload.Readiness) (bool, error) {
	if primary.PromotedRevision == "" {
		return e.workload.PrimaryRunsTarget(ctx, cd)
	}
	var tracked map[string]string
	if cd.Status.TrackedConfigs != nil {
		tracked = *cd.Status.TrackedConfigs
	}
	return primary.PromotedRevision == workload.PromotedMarker(cd.Status.LastAppliedSpec, tracked), nil
}

// primaryPending is the wait for a primary the cache has not seen yet.
func primaryPending(cd *flaggerv1.Canary) string {
	return "Waiting for " + cd.Spec.TargetRef.Name + "-primary." + cd.Namespace + " to be created"
}

func readiness(r workload.Readiness) canary.Readiness {
	return canary.Readiness{Ready: r.Ready, Failed: r.Failed, ScaledDown: r.ScaledDown, Message: r.Message}
}

func loadTime(m *sync.Map, k types.NamespacedName) time.Time {
	if t, ok := m.Load(k); ok {
		return t.(time.Time)
	}
	return time.Time{}
}

// remember keeps the time of a readiness wait's announcement, once its decision is written. It
// only spaces out events: losing it in a restart announces the wait once more.
func (r *CanaryReconciler) remember(cd *flaggerv1.Canary, d canary.Decision, now time.Time) {
	if d.Waited {
		r.waits.Store(key(cd), now)
	}
}

// forget drops what is remembered of a deleted canary.
func (r *CanaryReconciler) forget(k types.NamespacedName) {
	for _, m := range []*sync.Map{&r.waits, &r.written, &r.providersChecked} {
		m.Delete(k)
	}
	if r.checks != nil {
		r.checks.forget(k)
	}
}
