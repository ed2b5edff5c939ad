package workload

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var now = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func deploymentWithStatus(desired *int32, generation int64, st appsv1.DeploymentStatus) *appsv1.Deployment {
	d := newDeployment("podinfo", desired)
	d.Generation = generation
	d.Status = st
	return d
}

func TestDeploymentReadiness(t *testing.T) {
	const prefix = "Waiting for podinfo.test rollout to finish: "
	progressDeadline := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: reasonProgressDeadlineExceeded}
	unavailableSince := func(ago time.Duration) appsv1.DeploymentCondition {
		return appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse,
			Reason: reasonMinimumReplicasUnavailable, LastUpdateTime: metav1.NewTime(now.Add(-ago))}
	}
	tests := []struct {
		name  string
		d     *appsv1.Deployment
		check readinessCheck
		want  Readiness
	}{
		{"ready", deploymentWithStatus(int32p(3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}),
			readinessCheck{threshold: 100}, Readiness{Ready: true}},
		{"generation not observed", deploymentWithStatus(int32p(3), 3, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "observed deployment generation less than desired generation"}},
		{"progress deadline exceeded", deploymentWithStatus(int32p(3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 1, Conditions: []appsv1.DeploymentCondition{progressDeadline}}),
			readinessCheck{threshold: 100}, Readiness{Failed: true, Message: "Deployment podinfo.test exceeded its progress deadline"}},
		{"replicas not updated", deploymentWithStatus(int32p(3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 1}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "1 out of 3 new replicas have been updated"}},
		{"nil replicas means one", deploymentWithStatus(nil, 2, appsv1.DeploymentStatus{ObservedGeneration: 2}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "0 out of 1 new replicas have been updated"}},
		{"old replicas pending", deploymentWithStatus(int32p(3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 5, UpdatedReplicas: 3, AvailableReplicas: 3}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "2 old replicas are pending termination"}},
		{"not available", deploymentWithStatus(int32p(3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "2 of 3 updated replicas are available"}},
		{"threshold met", deploymentWithStatus(int32p(4), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 4, AvailableReplicas: 2}),
			readinessCheck{threshold: 50}, Readiness{Ready: true}},
		{"threshold rounds up", deploymentWithStatus(int32p(3), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1}),
			readinessCheck{threshold: 50}, Readiness{Message: prefix + "1 of 3 updated replicas are available"}},
		// No route ever gives weight to a workload with no available replica (issue 8).
		{"scaled to zero, terminating", deploymentWithStatus(int32p(0), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1}),
			readinessCheck{threshold: 100}, Readiness{ScaledDown: true, Message: prefix + "1 old replicas are pending termination"}},
		{"scaled to zero", deploymentWithStatus(int32p(0), 2, appsv1.DeploymentStatus{ObservedGeneration: 2}),
			readinessCheck{threshold: 100}, Readiness{ScaledDown: true, Message: prefix + "no available replicas (0 desired)"}},
		{"unavailable within deadline", deploymentWithStatus(int32p(1), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{unavailableSince(time.Minute)}}),
			readinessCheck{threshold: 100, deadline: 10 * time.Minute, now: now}, Readiness{Message: prefix + "0 of 1 updated replicas are available"}},
		{"unavailable past deadline", deploymentWithStatus(int32p(1), 2, appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{unavailableSince(time.Hour)}}),
			readinessCheck{threshold: 100, deadline: 10 * time.Minute, now: now},
			Readiness{Failed: true, Message: "Deployment podinfo.test exceeded its progress deadline of 10m0s: " + prefix + "0 of 1 updated replicas are available"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deploymentReadiness(tt.d, tt.check); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// parked gives a DaemonSet the controller's scale-to-zero node selector.
func parked(ds *appsv1.DaemonSet) *appsv1.DaemonSet {
	ds.Spec.Template.Spec.NodeSelector = map[string]string{ScaleToZeroNodeSelector: "true"}
	return ds
}

func TestDaemonSetReadiness(t *testing.T) {
	const prefix = "Waiting for podinfo.test rollout to finish: "
	ds := func(generation int64, st appsv1.DaemonSetStatus) *appsv1.DaemonSet {
		d := newDaemonSet("podinfo")
		d.Generation, d.Status = generation, st
		return d
	}
	tests := []struct {
		name  string
		ds    *appsv1.DaemonSet
		check readinessCheck
		want  Readiness
	}{
		{"ready", ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}),
			readinessCheck{threshold: 100}, Readiness{Ready: true}},
		{"generation", ds(2, appsv1.DaemonSetStatus{ObservedGeneration: 1}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "observed daemonset generation less than desired generation"}},
		{"not updated", ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 1}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "1 out of 3 new pods have been updated"}},
		{"not available", ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 1}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "1 of 3 updated pods are available"}},
		{"threshold", ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 3}),
			readinessCheck{threshold: 75}, Readiness{Ready: true}},
		{"no node to run on", ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1}),
			readinessCheck{threshold: 100}, Readiness{Message: prefix + "no available pods (0 desired)"}},
		{"scaled to zero", parked(ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1})),
			readinessCheck{threshold: 100}, Readiness{ScaledDown: true, Message: prefix + "no available pods (0 desired)"}},
		{"deadline passed", ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 2, UpdatedNumberScheduled: 1}),
			readinessCheck{threshold: 100, deadline: time.Minute, since: now.Add(-time.Hour), now: now},
			Readiness{Failed: true, Message: "DaemonSet podinfo.test exceeded its progress deadline of 1m0s: " + prefix + "1 out of 2 new pods have been updated"}},
		{"no transition yet", ds(1, appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 2, UpdatedNumberScheduled: 1}),
			readinessCheck{threshold: 100, deadline: time.Minute, now: now}, Readiness{Message: prefix + "1 out of 2 new pods have been updated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := daemonSetReadiness(tt.ds, tt.check); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestReadinessReadsTheRightObjects checks that PrimaryReady looks at <target>-primary with the primary
// threshold and CanaryReady at the target with the canary threshold.
func TestReadinessReadsTheRightObjects(t *testing.T) {
	target := deploymentWithStatus(int32p(2), 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1})
	primary := deploymentWithStatus(int32p(4), 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 4, AvailableReplicas: 1})
	primary.Name = "podinfo-primary"
	primary.Annotations = map[string]string{PromotedRevisionAnnotation: "abc"}
	f, _ := newTestFactory(t, Options{}, target, primary)
	cd := newCanary(KindDeployment, "podinfo")
	cd.Spec.Analysis.PrimaryReadyThreshold = ptr.To(25)
	cd.Spec.Analysis.CanaryReadyThreshold = ptr.To(100)
	ctrl := mustController(t, f, cd)

	p, err := ctrl.PrimaryReady(context.Background(), cd)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Ready || p.PromotedRevision != "abc" {
		t.Errorf("primary = %+v, want ready at 25%% with revision abc", p)
	}
	c, err := ctrl.CanaryReady(context.Background(), cd)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Waiting for podinfo.test rollout to finish: 1 of 2 updated replicas are available"; c.Ready || c.Message != want {
		t.Errorf("canary = %+v, want %q", c, want)
	}
}
