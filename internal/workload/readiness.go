package workload

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Deployment condition reasons set by the deployment controller.
const (
	reasonProgressDeadlineExceeded   = "ProgressDeadlineExceeded"
	reasonMinimumReplicasUnavailable = "MinimumReplicasUnavailable"
)

// readinessCheck is what a readiness verdict depends on besides the object.
type readinessCheck struct {
	// threshold is the percentage of updated replicas that must be available.
	threshold int
	// deadline, when set, makes a not-ready workload Failed once stuck for longer (the canary only:
	// Flagger never fails a primary on time, as it may simply be recovering).
	deadline time.Duration
	// since is when the canary phase last changed (the DaemonSet deadline starts there).
	since time.Time
	now   time.Time
}

func waiting(name, namespace, format string, args ...any) Readiness {
	return Readiness{Message: fmt.Sprintf("Waiting for %s.%s rollout to finish: ", name, namespace) + fmt.Sprintf(format, args...)}
}

// requiredAvailable is ceil(n * threshold / 100).
func requiredAvailable(n int32, threshold int) int32 {
	return int32((int64(n)*int64(threshold) + 99) / 100)
}

func deploymentReadiness(d *appsv1.Deployment, check readinessCheck) Readiness {
	name, ns, st := d.Name, d.Namespace, d.Status
	if st.ObservedGeneration < d.Generation {
		return waiting(name, ns, "observed deployment generation less than desired generation")
	}
	if c := deploymentCondition(st, appsv1.DeploymentProgressing); c != nil && c.Reason == reasonProgressDeadlineExceeded {
		return Readiness{Failed: true, Message: fmt.Sprintf("Deployment %s.%s exceeded its progress deadline", name, ns)}
	}
	desired := ptr.Deref(d.Spec.Replicas, 1)
	var r Readiness
	switch {
	case st.UpdatedReplicas < desired:
		r = waiting(name, ns, "%d out of %d new replicas have been updated", st.UpdatedReplicas, desired)
	case st.Replicas > st.UpdatedReplicas:
		r = waiting(name, ns, "%d old replicas are pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < requiredAvailable(st.UpdatedReplicas, check.threshold):
		r = waiting(name, ns, "%d of %d updated replicas are available", st.AvailableReplicas, st.UpdatedReplicas)
	case st.AvailableReplicas == 0:
		// Traffic is never routed to a workload with no available replica, whatever the threshold
		// (scaled to zero, KEDA at its minimum of 0, or a scale-up the cache has not seen yet).
		r = waiting(name, ns, "no available replicas (%d desired)", desired)
	default:
		return Readiness{Ready: true}
	}
	r.ScaledDown = desired == 0
	if deploymentStuck(st, check) {
		r.Failed = true
		r.Message = fmt.Sprintf("Deployment %s.%s exceeded its progress deadline of %s: %s", name, ns, check.deadline, r.Message)
	}
	return r
}

// deploymentStuck is Flagger's second failure signal: minimum availability lost for longer than the
// canary's progress deadline, even though Kubernetes' own deadline has not fired.
func deploymentStuck(st appsv1.DeploymentStatus, check readinessCheck) bool {
	if check.deadline == 0 {
		return false
	}
	c := deploymentCondition(st, appsv1.DeploymentAvailable)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != reasonMinimumReplicasUnavailable {
		return false
	}
	return c.LastUpdateTime.Add(check.deadline).Before(check.now)
}

func deploymentCondition(st appsv1.DeploymentStatus, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

func daemonSetReadiness(ds *appsv1.DaemonSet, check readinessCheck) Readiness {
	name, ns, st := ds.Name, ds.Namespace, ds.Status
	if st.ObservedGeneration < ds.Generation {
		return waiting(name, ns, "observed daemonset generation less than desired generation")
	}
	var r Readiness
	switch {
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		r = waiting(name, ns, "%d out of %d new pods have been updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < requiredAvailable(st.DesiredNumberScheduled, check.threshold):
		r = waiting(name, ns, "%d of %d updated pods are available", st.NumberAvailable, st.DesiredNumberScheduled)
	case st.NumberAvailable == 0:
		r = waiting(name, ns, "no available pods (%d desired)", st.DesiredNumberScheduled)
	default:
		return Readiness{Ready: true}
	}
	_, r.ScaledDown = ds.Spec.Template.Spec.NodeSelector[ScaleToZeroNodeSelector]
	if check.deadline > 0 && !check.since.IsZero() && check.since.Add(check.deadline).Before(check.now) {
		r.Failed = true
		r.Message = fmt.Sprintf("DaemonSet %s.%s exceeded its progress deadline of %s: %s", name, ns, check.deadline, r.Message)
	}
	return r
}

// canaryCheck is the readiness check of the target: the canary threshold and Flagger's deadlines.
func (f *Factory) canaryCheck(cd *flaggerv1.Canary) readinessCheck {
	return readinessCheck{
		threshold: cd.GetAnalysisCanaryReadyThreshold(),
		deadline:  time.Duration(cd.GetProgressDeadlineSeconds()) * time.Second,
		since:     cd.Status.LastTransitionTime.Time,
		now:       f.now(),
	}
}
