package workload

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// serviceController canaries whatever sits behind a Service (e.g. an ExternalName): the target Service
// is copied to <name>-canary (kept in sync) and <name>-primary (changed only by promotion). There is
// nothing to scale and nothing to wait for.
type serviceController struct {
	f *Factory
}

var _ Controller = (*serviceController)(nil)

func (c *serviceController) target(ctx context.Context, cd *flaggerv1.Canary) (*corev1.Service, error) {
	svc := &corev1.Service{}
	return svc, c.f.getTarget(ctx, cd, svc)
}

// Initialize syncs <name>-canary with the target and creates <name>-primary when missing.
func (c *serviceController) Initialize(ctx context.Context, cd *flaggerv1.Canary) error {
	target, err := c.target(ctx, cd)
	if err != nil {
		return err
	}
	if err := c.syncCopy(ctx, cd, target, canaryName(target.Name), "", true); err != nil {
		return err
	}
	revision, err := revisionHash(target.Spec)
	if err != nil {
		return err
	}
	return c.syncCopy(ctx, cd, target, primaryName(target.Name), revision, false)
}

// Promote copies the canary's spec, i.e. the target's (<name>-canary is its copy), to the primary.
func (c *serviceController) Promote(ctx context.Context, cd *flaggerv1.Canary) error {
	target, err := c.target(ctx, cd)
	if err != nil {
		return err
	}
	revision, err := revisionHash(target.Spec)
	if err != nil {
		return err
	}
	return c.syncCopy(ctx, cd, target, primaryName(target.Name), revision, true)
}

// syncCopy creates the copy called name, and updates it when update is set. A non-empty revision is
// recorded on the copy (the primary's).
func (c *serviceController) syncCopy(ctx context.Context, cd *flaggerv1.Canary, target *corev1.Service,
	name, revision string, update bool) error {
	existing := &corev1.Service{}
	err := c.f.get(ctx, target.Namespace, name, existing)
	if apierrors.IsNotFound(err) {
		return c.f.create(ctx, c.newCopy(cd, target, name, revision))
	}
	if err != nil || !update {
		return err
	}
	svc := existing.DeepCopy()
	svc.Spec = copiedServiceSpec(target.Spec, &existing.Spec)
	svc.Labels = mergeInto(svc.Labels, copiedMetadata(target.Labels, c.f.opts.IncludeLabelPrefix))
	svc.Annotations = mergeInto(svc.Annotations, copiedMetadata(target.Annotations, c.f.opts.IncludeLabelPrefix))
	if revision != "" {
		svc.Annotations[PromotedRevisionAnnotation] = revision
	}
	if equality.Semantic.DeepEqual(existing, svc) {
		return nil
	}
	return c.f.update(ctx, svc)
}

func (c *serviceController) newCopy(cd *flaggerv1.Canary, target *corev1.Service, name, revision string) *corev1.Service {
	annotations := copiedMetadata(target.Annotations, c.f.opts.IncludeLabelPrefix)
	if revision != "" {
		annotations[PromotedRevisionAnnotation] = revision
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       target.Namespace,
			Labels:          copiedMetadata(target.Labels, c.f.opts.IncludeLabelPrefix),
			Annotations:     annotations,
			OwnerReferences: []metav1.OwnerReference{cd.OwnerReference()},
		},
		Spec: copiedServiceSpec(target.Spec, nil),
	}
}

// copiedServiceSpec is src without the addresses the API server allocated to src: cluster IPs (unless
// headless), node ports and health check node port. Those of an existing copy are kept.
func copiedServiceSpec(src corev1.ServiceSpec, existing *corev1.ServiceSpec) corev1.ServiceSpec {
	spec := *src.DeepCopy()
	if spec.ClusterIP != corev1.ClusterIPNone {
		spec.ClusterIP, spec.ClusterIPs = "", nil
	}
	spec.HealthCheckNodePort = 0
	for i := range spec.Ports {
		spec.Ports[i].NodePort = 0
	}
	if existing == nil {
		return spec
	}
	spec.ClusterIP, spec.ClusterIPs = existing.ClusterIP, existing.ClusterIPs
	spec.HealthCheckNodePort = existing.HealthCheckNodePort
	keepNodePorts(spec.Ports, existing.Ports)
	return spec
}

// keepNodePorts copies the node ports of existing ports to the ports of the same name.
func keepNodePorts(ports, existing []corev1.ServicePort) {
	for i := range ports {
		for _, e := range existing {
			if e.Name == ports[i].Name && e.NodePort > 0 {
				ports[i].NodePort = e.NodePort
			}
		}
	}
}

func (c *serviceController) Revision(ctx context.Context, cd *flaggerv1.Canary) (string, error) {
	target, err := c.target(ctx, cd)
	if err != nil {
		return "", err
	}
	return revisionHash(target.Spec)
}

// TrackedConfigs is always empty: a Service references no ConfigMap or Secret.
func (c *serviceController) TrackedConfigs(context.Context, *flaggerv1.Canary) (map[string]string, error) {
	return nil, nil
}

func (c *serviceController) PrimaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error) {
	primary := &corev1.Service{}
	if err := c.f.getPrimary(ctx, cd, primary); err != nil {
		return Readiness{}, err
	}
	return Readiness{Ready: true, PromotedRevision: primary.Annotations[PromotedRevisionAnnotation]}, nil
}

func (c *serviceController) CanaryReady(context.Context, *flaggerv1.Canary) (Readiness, error) {
	return Readiness{Ready: true}, nil
}

func (c *serviceController) ScaleToZero(context.Context, *flaggerv1.Canary) error { return nil }

func (c *serviceController) ScaleFromZero(context.Context, *flaggerv1.Canary) error { return nil }

func (c *serviceController) Finalize(context.Context, *flaggerv1.Canary) error { return nil }

// PrimaryRunsTarget reports whether the primary copy has the target's spec, whoever made it (Pennant
// or Flagger): the addresses the API server allocated to each aside, the two must be equal.
func (c *serviceController) PrimaryRunsTarget(ctx context.Context, cd *flaggerv1.Canary) (bool, error) {
	target, err := c.target(ctx, cd)
	if err != nil {
		return false, err
	}
	primary := &corev1.Service{}
	if err := c.f.getPrimary(ctx, cd, primary); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return equality.Semantic.DeepEqual(copiedServiceSpec(target.Spec, &primary.Spec), primary.Spec), nil
}

// Selector is empty: a Service target selects no pods of its own and gets no generated Services.
func (c *serviceController) Selector(context.Context, *flaggerv1.Canary) (string, string, map[string]int32, error) {
	return "", "", nil, nil
}
