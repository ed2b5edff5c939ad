package canary

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// SetConditions derives the Promoted condition (exactly as Flagger words it) and the kstatus
// conditions Ready, Reconciling and Stalled from the phase. stalled, when set, is why the canary
// cannot progress without a change.
//
// queued, when set, is why the release waits for a free slot (phase Waiting): the Reconciling
// condition then has the reason ReleaseQueued, which is how the next decision knows.
func SetConditions(st *flaggerv1.CanaryStatus, cd *flaggerv1.Canary, stalled, queued string, now time.Time) {
	st.ObservedGeneration = cd.Generation
	if st.Phase == "" {
		setStalled(st, cd, stalled, now)
		return
	}
	status, message := promoted(st.Phase, cd.Spec.TargetRef.Kind)
	if queued != "" && st.Phase == flaggerv1.CanaryPhaseWaiting {
		message = "Release queued: " + queued + "."
		set(st, cd, now, flaggerv1.PromotedCondition, status, string(st.Phase), message)
		set(st, cd, now, flaggerv1.ReadyCondition, metav1.ConditionUnknown, string(st.Phase), message)
		set(st, cd, now, flaggerv1.ReconcilingCondition, metav1.ConditionTrue, flaggerv1.ReleaseQueuedReason, message)
		setStalled(st, cd, stalled, now)
		return
	}
	set(st, cd, now, flaggerv1.PromotedCondition, status, string(st.Phase), message)

	switch st.Phase {
	case flaggerv1.CanaryPhaseInitialized, flaggerv1.CanaryPhaseSucceeded:
		set(st, cd, now, flaggerv1.ReadyCondition, metav1.ConditionTrue, string(st.Phase), message)
		remove(st, flaggerv1.ReconcilingCondition)
	case flaggerv1.CanaryPhaseFailed:
		set(st, cd, now, flaggerv1.ReadyCondition, metav1.ConditionFalse, string(st.Phase), message)
		remove(st, flaggerv1.ReconcilingCondition)
		if stalled == "" {
			stalled = message
		}
	default:
		set(st, cd, now, flaggerv1.ReadyCondition, metav1.ConditionUnknown, string(st.Phase), message)
		set(st, cd, now, flaggerv1.ReconcilingCondition, metav1.ConditionTrue, string(st.Phase), message)
	}
	setStalled(st, cd, stalled, now)
}

func setStalled(st *flaggerv1.CanaryStatus, cd *flaggerv1.Canary, stalled string, now time.Time) {
	if stalled == "" {
		remove(st, flaggerv1.StalledCondition)
		return
	}
	reason := "ProgressDeadlineExceeded"
	if st.Phase == flaggerv1.CanaryPhaseFailed {
		reason = string(flaggerv1.CanaryPhaseFailed)
	}
	set(st, cd, now, flaggerv1.StalledCondition, metav1.ConditionTrue, reason, stalled)
}

// SetRetrying records an error that is retried (an API write refused by quota, an admission
// webhook or a full Service IP range; a referenced Secret that does not exist yet) where users
// look: not Ready and Reconciling with the cause. The next successful decision derives the
// conditions from the phase again, which clears it.
func SetRetrying(st *flaggerv1.CanaryStatus, cd *flaggerv1.Canary, reason, message string, now time.Time) {
	st.ObservedGeneration = cd.Generation
	set(st, cd, now, flaggerv1.ReadyCondition, metav1.ConditionFalse, reason, message)
	set(st, cd, now, flaggerv1.ReconcilingCondition, metav1.ConditionTrue, reason, message)
}

// SetInvalid marks a canary whose spec or target cannot work: Stalled and not Ready, with reason.
func SetInvalid(st *flaggerv1.CanaryStatus, cd *flaggerv1.Canary, reason, message string, now time.Time) {
	st.ObservedGeneration = cd.Generation
	set(st, cd, now, flaggerv1.ReadyCondition, metav1.ConditionFalse, reason, message)
	set(st, cd, now, flaggerv1.StalledCondition, metav1.ConditionTrue, reason, message)
	remove(st, flaggerv1.ReconcilingCondition)
}

// set adds or updates a condition with Flagger's times: lastUpdateTime moves when the status,
// reason or message changes, lastTransitionTime only when the status does. An unchanged condition
// keeps both, so that deciding again does not make a status write.
func set(st *flaggerv1.CanaryStatus, cd *flaggerv1.Canary, now time.Time, typ string, status metav1.ConditionStatus, reason, message string) {
	stamp := metav1.NewTime(now)
	c := flaggerv1.FindCanaryCondition(st.Conditions, typ)
	if c == nil {
		st.Conditions = append(st.Conditions, flaggerv1.CanaryCondition{
			Condition: metav1.Condition{
				Type: typ, Status: status, Reason: reason, Message: message,
				ObservedGeneration: cd.Generation, LastTransitionTime: stamp,
			},
			LastUpdateTime: stamp,
		})
		return
	}
	c.ObservedGeneration = cd.Generation
	if c.Status != status {
		c.Status, c.LastTransitionTime = status, stamp
		c.LastUpdateTime = stamp
	}
	if c.Reason != reason || c.Message != message {
		c.Reason, c.Message = reason, message
		c.LastUpdateTime = stamp
	}
	if c.LastUpdateTime.IsZero() {
		// Written before the field existed: the condition has held since its last transition.
		c.LastUpdateTime = c.LastTransitionTime
	}
}

// remove drops the condition of type typ.
func remove(st *flaggerv1.CanaryStatus, typ string) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			st.Conditions = append(st.Conditions[:i], st.Conditions[i+1:]...)
			return
		}
	}
}

func promoted(p flaggerv1.CanaryPhase, kind string) (metav1.ConditionStatus, string) {
	switch p {
	case flaggerv1.CanaryPhaseInitialized:
		return metav1.ConditionTrue, fmt.Sprintf("%s initialization completed.", kind)
	case flaggerv1.CanaryPhaseWaiting, flaggerv1.CanaryPhaseWaitingPromotion:
		return metav1.ConditionUnknown, "Waiting for approval."
	case flaggerv1.CanaryPhaseProgressing:
		return metav1.ConditionUnknown, "New revision detected, progressing canary analysis."
	case flaggerv1.CanaryPhasePromoting:
		return metav1.ConditionUnknown, "Canary analysis completed, starting primary rolling update."
	case flaggerv1.CanaryPhaseFinalising:
		return metav1.ConditionUnknown, "Canary analysis completed, routing all traffic to primary."
	case flaggerv1.CanaryPhaseSucceeded:
		return metav1.ConditionTrue, "Canary analysis completed successfully, promotion finished."
	case flaggerv1.CanaryPhaseFailed:
		return metav1.ConditionFalse, fmt.Sprintf("Canary analysis failed, %s scaled to zero.", kind)
	default:
		return metav1.ConditionUnknown, fmt.Sprintf("New %s detected, starting initialization.", kind)
	}
}
