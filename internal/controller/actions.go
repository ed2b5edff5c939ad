package controller

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/webhooks"
)

// execute carries out the machine's actions in order; the first failure stops the rest and the
// status is not written, so the next reconcile decides again from the same state. st is the status
// the decision writes: routing actions record their session cookies in it.
func (r *CanaryReconciler) execute(ctx context.Context, cd *flaggerv1.Canary, e env, actions []canary.Action, st *flaggerv1.CanaryStatus) error {
	for _, a := range actions {
		if err := r.do(ctx, cd, e, a, st); err != nil {
			switch {
			case apierrors.IsConflict(err):
				// A conflict only means the cache lagged behind a write (e.g. an idempotent promotion
				// repeated before the cache saw the first): the retry decides again, quietly.
			case a.Kind == canary.ScaleUp:
				r.Announcer.Error(cd, err.Error()) // as Flagger logs a failed scale-up
			default:
				r.Announcer.Warn(cd, err.Error())
			}
			return err
		}
	}
	return nil
}

func (r *CanaryReconciler) do(ctx context.Context, cd *flaggerv1.Canary, e env, a canary.Action, st *flaggerv1.CanaryStatus) error {
	switch a.Kind {
	case canary.ScaleUp:
		if err := e.scaler.ResumeTargetScaler(ctx, cd); err != nil {
			return err
		}
		return e.workload.ScaleFromZero(ctx, cd)
	case canary.ScaleDown:
		if err := e.scaler.PauseTargetScaler(ctx, cd); err != nil {
			return err
		}
		return e.workload.ScaleToZero(ctx, cd)
	case canary.SetRoutes:
		r.Metrics.SetWeight(cd, a.Routes.Primary, a.Routes.Canary)
		routed, err := r.withSessionCookies(ctx, cd, e, a.Routes, st)
		if err != nil {
			return err
		}
		return e.router.SetRoutes(ctx, routed, a.Routes.Primary, a.Routes.Canary, a.Routes.Mirrored)
	case canary.Promote:
		return r.promote(ctx, cd, e)
	case canary.Event:
		if a.Warning {
			r.Announcer.Warn(cd, a.Message)
		} else {
			r.Announcer.Info(cd, a.Message)
		}
	case canary.Alert:
		r.Notifier.Alert(ctx, cd, a.Severity, a.Message)
	case canary.PostRollout:
		r.postRollout(cd, a.Phase)
	default:
		return fmt.Errorf("unknown action %q", a.Kind)
	}
	return nil
}

// promote copies the target to the primary (which records the revision it now runs) and updates
// the primary autoscaler.
func (r *CanaryReconciler) promote(ctx context.Context, cd *flaggerv1.Canary, e env) error {
	if err := e.workload.Promote(ctx, cd); err != nil {
		return err
	}
	return e.scaler.ReconcilePrimaryScaler(ctx, cd, false)
}

// postRolloutTimeout bounds the background calls of post-rollout hooks.
const postRolloutTimeout = 5 * time.Minute

// postRollout calls the post-rollout hooks in the background; their failures are reported, never
// acted upon.
func (r *CanaryReconciler) postRollout(cd *flaggerv1.Canary, phase flaggerv1.CanaryPhase) {
	hooks := cd.WebhooksOf(flaggerv1.PostRolloutHook)
	if len(hooks) == 0 {
		return
	}
	snapshot := cd.DeepCopy()
	go func() {
		for _, w := range hooks {
			err := r.tasks.run(key(snapshot), "post-rollout hook "+w.Name, postRolloutTimeout, func(ctx context.Context) error {
				return r.Hooks.Call(ctx, snapshot, w, phase, webhooks.Metadata(w))
			})
			if err != nil {
				r.Announcer.Warn(snapshot, fmt.Sprintf("Post-rollout hook %s failed %v", w.Name, cleanError(err)))
			} else {
				r.Announcer.Info(snapshot, fmt.Sprintf("Post-rollout check %s passed", w.Name))
			}
		}
	}()
}
