package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/router"
)

// writeStatus patches the status subresource once, and only when something changed. The patch
// carries the resourceVersion the decision was made from (optimistic lock): a lagging cache or a
// second leader cannot write an older weight or failedChecks back; the conflict requeues the
// canary, which decides again from the newer status.
func (r *CanaryReconciler) writeStatus(ctx context.Context, cd *flaggerv1.Canary, st flaggerv1.CanaryStatus) error {
	if equality.Semantic.DeepEqual(cd.Status, st) {
		return nil
	}
	patch := client.MergeFromWithOptions(cd.DeepCopy(), client.MergeFromWithOptimisticLock{})
	cd.Status = st
	if err := r.Client.Status().Patch(ctx, cd, patch); err != nil {
		return err
	}
	r.rememberWrite(cd)
	return nil
}

// withoutTimes blanks timestamps so that two statuses can be compared by content.
func withoutTimes(st flaggerv1.CanaryStatus) flaggerv1.CanaryStatus {
	out := *st.DeepCopy()
	out.LastTransitionTime = metav1.Time{}
	for i := range out.Conditions {
		out.Conditions[i].LastTransitionTime = metav1.Time{}
		out.Conditions[i].LastUpdateTime = metav1.Time{}
	}
	return out
}

// withSessionCookies decides the session affinity cookies of a split about to be applied
// (router.NextSessionCookies: a run's cookie is drawn when the canary first gets traffic and
// becomes the previous one when it gets none again), records them in st, the status written with
// the split, and returns the canary the router is to write them from. The cookies live in the
// status, so a restart hands out the same ones; a status without a run's cookie (written before
// Pennant kept them there, or whose write was lost after the route's) takes the cookies the routing
// object hands out (a cache read). Routers without session affinity get no cookies.
func (r *CanaryReconciler) withSessionCookies(ctx context.Context, cd *flaggerv1.Canary, e env, routes canary.Routes, st *flaggerv1.CanaryStatus) (*flaggerv1.Canary, error) {
	sticky, ok := e.router.(router.SessionAffinityRouter)
	sa := router.SessionAffinityOf(cd)
	if !ok {
		sa = nil
	}
	current := router.SessionCookiesOf(st)
	if sa != nil && current.Canary == "" {
		observed, err := sticky.SessionCookies(ctx, cd)
		if err != nil {
			return nil, err
		}
		current = current.Or(observed)
	}
	next := router.NextSessionCookies(sa, current, routes.Canary, router.NewCookieValue)
	next.Record(st)
	routed := cd.DeepCopy()
	next.Record(&routed.Status)
	return routed, nil
}
