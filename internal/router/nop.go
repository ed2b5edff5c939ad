package router

import (
	"context"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Nop is the mesh router of the kubernetes provider: traffic moves only when the apex Service's
// selector is switched (blue/green), so there are no routing objects and the primary always has it all.
type Nop struct{}

var _ Interface = Nop{}

func (Nop) Reconcile(context.Context, *flaggerv1.Canary) error { return nil }

func (Nop) SetRoutes(context.Context, *flaggerv1.Canary, int, int, bool) error { return nil }

// GetRoutes always reports 100% of the traffic on the primary.
func (Nop) GetRoutes(context.Context, *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	return 100, 0, false, nil
}

func (Nop) Finalize(context.Context, *flaggerv1.Canary) error { return nil }

// NopKubernetes is the KubernetesRouter of a Service target: the workload controller copies the target
// Service itself, so no Service is generated.
type NopKubernetes struct{}

var _ KubernetesRouter = NopKubernetes{}

func (NopKubernetes) Initialize(context.Context, *flaggerv1.Canary) error { return nil }

func (NopKubernetes) Reconcile(context.Context, *flaggerv1.Canary) error { return nil }

func (NopKubernetes) Finalize(context.Context, *flaggerv1.Canary) error { return nil }
