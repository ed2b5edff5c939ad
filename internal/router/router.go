// Package router owns traffic routing: the apex, -primary and -canary ClusterIP Services
// (KubernetesRouter) and, per provider, the mesh or ingress objects that split traffic (Interface).
package router

import (
	"context"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// KubernetesRouter manages the ClusterIP Services of a canary.
type KubernetesRouter interface {
	// Initialize creates or updates <svc>-canary and <svc>-primary.
	Initialize(ctx context.Context, cd *flaggerv1.Canary) error
	// Reconcile creates or updates the apex <svc>, selecting the primary pods.
	Reconcile(ctx context.Context, cd *flaggerv1.Canary) error
	// Finalize points the apex Service back at the target's pods (revertOnDeletion).
	Finalize(ctx context.Context, cd *flaggerv1.Canary) error
}

// Interface is a traffic-splitting provider (Istio, Gloo, Gateway API, ...).
type Interface interface {
	// Reconcile creates or updates the routing objects, keeping the current weights.
	Reconcile(ctx context.Context, cd *flaggerv1.Canary) error
	// SetRoutes sends primaryWeight/canaryWeight percent of traffic (or of matched traffic, for A/B)
	// to each side; mirrored copies traffic to the canary instead.
	SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, mirrored bool) error
	// GetRoutes reads the weights currently applied.
	GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error)
	// Finalize restores what the router changed (revertOnDeletion).
	Finalize(ctx context.Context, cd *flaggerv1.Canary) error
}
