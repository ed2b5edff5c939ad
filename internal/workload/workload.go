// Package workload manages the target and its -primary clone: creation, promotion, scaling, readiness,
// revision hashing, ConfigMap/Secret tracking and autoscaler clones. All reads go through the
// controller-runtime client handed in, which in the manager is backed by the informer cache.
package workload

import (
	"context"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Readiness is what a readiness check saw.
type Readiness struct {
	// Ready is true when enough replicas are updated and available.
	Ready bool
	// Failed is true when Kubernetes itself gave up (e.g. Deployment ProgressDeadlineExceeded):
	// waiting longer will not help.
	Failed bool
	// Message explains a not-ready state in Flagger's words, e.g.
	// "Waiting for podinfo.test rollout to finish: 0 of 1 updated replicas are available".
	Message string
	// ScaledDown is true when the workload is parked at zero by the controller (a Deployment with
	// 0 replicas, a DaemonSet with the scale-to-zero node selector): it will not become ready by
	// waiting.
	ScaledDown bool
	// PromotedRevision is set by PrimaryReady: the target revision the primary was last created or
	// promoted from, as recorded by Pennant on the primary object. It lets the controller tell whether
	// the cache has seen its promotion yet. Empty when unknown (e.g. a primary created by Flagger).
	PromotedRevision string
}

// Controller is what the reconciler needs from a target kind (Deployment, DaemonSet, Service).
type Controller interface {
	// Initialize creates or adopts <target>-primary (and the -primary ConfigMap/Secret copies)
	// from the target. It does not scale the target.
	Initialize(ctx context.Context, cd *flaggerv1.Canary) error
	// Promote copies the target's pod template (with config refs rewritten) to the primary.
	Promote(ctx context.Context, cd *flaggerv1.Canary) error
	// Revision is a stable hash of what defines a release of the target (the pod template).
	Revision(ctx context.Context, cd *flaggerv1.Canary) (string, error)
	// TrackedConfigs returns the checksums of the ConfigMaps/Secrets the target references,
	// keyed "configmap/<name>" / "secret/<name>".
	TrackedConfigs(ctx context.Context, cd *flaggerv1.Canary) (map[string]string, error)
	// PrimaryReady and CanaryReady check the availability of the primary and of the target.
	PrimaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error)
	CanaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error)
	// ScaleToZero and ScaleFromZero scale the target (DaemonSets use a node selector instead).
	ScaleToZero(ctx context.Context, cd *flaggerv1.Canary) error
	ScaleFromZero(ctx context.Context, cd *flaggerv1.Canary) error
	// Selector returns the selector label key and value of the target, and its container ports
	// (name -> port) for port discovery.
	Selector(ctx context.Context, cd *flaggerv1.Canary) (label, value string, ports map[string]int32, err error)
	// Finalize restores the target when the Canary is deleted with revertOnDeletion.
	Finalize(ctx context.Context, cd *flaggerv1.Canary) error
	// PrimaryRunsTarget reports whether the primary already runs the target's pod template (e.g. a
	// canary that Flagger promoted, whose revision hashes Pennant does not share).
	PrimaryRunsTarget(ctx context.Context, cd *flaggerv1.Canary) (bool, error)
}

// Scaler manages the -primary clone of the target's autoscaler (HPA or KEDA ScaledObject).
type Scaler interface {
	// ReconcilePrimaryScaler creates the primary autoscaler; with init=false it also updates it.
	ReconcilePrimaryScaler(ctx context.Context, cd *flaggerv1.Canary, init bool) error
	// PauseTargetScaler and ResumeTargetScaler stop and restart the target's autoscaler
	// (KEDA paused-replicas annotation; no-ops for HPA).
	PauseTargetScaler(ctx context.Context, cd *flaggerv1.Canary) error
	ResumeTargetScaler(ctx context.Context, cd *flaggerv1.Canary) error
}
