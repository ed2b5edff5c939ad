package controller

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
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
