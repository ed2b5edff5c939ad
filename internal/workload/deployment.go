package workload

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// deploymentController manages a Deployment target and its <target>-primary clone.
type deploymentController struct {
	f *Factory
}

var _ Controller = (*deploymentController)(nil)

func (c *deploymentController) target(ctx context.Context, cd *flaggerv1.Canary) (*appsv1.Deployment, selection, error) {
	d := &appsv1.Deployment{}
	if err := c.f.getTarget(ctx, cd, d); err != nil {
		return nil, selection{}, err
	}
	label, value, err := selectorLabel(d.Spec.Selector, c.f.opts.SelectorLabels, "deployment", d.Name, d.Namespace)
	return d, selection{label: label, value: value}, err
}

// Initialize creates the primary Deployment when it does not exist. An existing primary is left
// alone (it runs the last promoted revision), only missing config copies are created.
func (c *deploymentController) Initialize(ctx context.Context, cd *flaggerv1.Canary) error {
	target, sel, err := c.target(ctx, cd)
	if err != nil {
		return err
	}
	err = c.f.getPrimary(ctx, cd, &appsv1.Deployment{})
	if err == nil {
		_, err = c.f.syncConfigCopies(ctx, cd, &target.Spec.Template.Spec, createMissingCopies)
		return err
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	return c.createPrimary(ctx, cd, target, sel)
}

func (c *deploymentController) createPrimary(ctx context.Context, cd *flaggerv1.Canary, target *appsv1.Deployment, sel selection) error {
	tmpl, err := c.f.primaryTemplate(ctx, cd, &target.Spec.Template, sel, syncCopies)
	if err != nil {
		return err
	}
	revision, err := revisionHash(target.Spec.Template)
	if err != nil {
		return err
	}
	replicas := ptr.Deref(target.Spec.Replicas, 0)
	primary := &appsv1.Deployment{
		ObjectMeta: c.f.primaryObjectMeta(cd, target, sel, revision),
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr.To(max(replicas, 1)),
			Selector:                &metav1.LabelSelector{MatchLabels: map[string]string{sel.label: sel.primaryValue()}},
			Template:                tmpl,
			Strategy:                *target.Spec.Strategy.DeepCopy(),
			MinReadySeconds:         target.Spec.MinReadySeconds,
			RevisionHistoryLimit:    target.Spec.RevisionHistoryLimit,
			ProgressDeadlineSeconds: target.Spec.ProgressDeadlineSeconds,
		},
	}
	return c.f.create(ctx, primary)
}

// Promote copies the target's pod template to the primary, after syncing the config copies. Replicas
// are copied only without an autoscaler (the primary's own autoscaler owns them otherwise) and only
// when the target has some: promoting a target scaled to zero must not scale the primary to zero.
func (c *deploymentController) Promote(ctx context.Context, cd *flaggerv1.Canary) error {
	target, sel, err := c.target(ctx, cd)
	if err != nil {
		return err
	}
	primary := &appsv1.Deployment{}
	if err := c.f.getPrimary(ctx, cd, primary); err != nil {
		return err
	}
	tmpl, err := c.f.primaryTemplate(ctx, cd, &target.Spec.Template, sel, syncCopies)
	if err != nil {
		return err
	}
	revision, err := revisionHash(target.Spec.Template)
	if err != nil {
		return err
	}
	p := primary.DeepCopy()
	p.Spec.Template = tmpl
	p.Spec.Strategy = *target.Spec.Strategy.DeepCopy()
	p.Spec.MinReadySeconds = target.Spec.MinReadySeconds
	p.Spec.RevisionHistoryLimit = target.Spec.RevisionHistoryLimit
	p.Spec.ProgressDeadlineSeconds = target.Spec.ProgressDeadlineSeconds
	if cd.Spec.AutoscalerRef == nil && ptr.Deref(target.Spec.Replicas, 0) > 0 {
		p.Spec.Replicas = ptr.To(*target.Spec.Replicas)
	}
	configs, err := c.f.trackedChecksums(ctx, cd, &target.Spec.Template.Spec)
	if err != nil {
		return err
	}
	c.f.promotePrimaryMetadata(p, target, sel, PromotedMarker(revision, configs))
	return c.f.update(ctx, p)
}

func (c *deploymentController) Revision(ctx context.Context, cd *flaggerv1.Canary) (string, error) {
	d := &appsv1.Deployment{}
	if err := c.f.getTarget(ctx, cd, d); err != nil {
		return "", err
	}
	return revisionHash(d.Spec.Template)
}

func (c *deploymentController) TrackedConfigs(ctx context.Context, cd *flaggerv1.Canary) (map[string]string, error) {
	d := &appsv1.Deployment{}
	if err := c.f.getTarget(ctx, cd, d); err != nil {
		return nil, err
	}
	return c.f.trackedChecksums(ctx, cd, &d.Spec.Template.Spec)
}

func (c *deploymentController) PrimaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error) {
	d := &appsv1.Deployment{}
	if err := c.f.getPrimary(ctx, cd, d); err != nil {
		return Readiness{}, err
	}
	r := deploymentReadiness(d, readinessCheck{threshold: cd.GetAnalysisPrimaryReadyThreshold()})
	r.PromotedRevision = d.Annotations[PromotedRevisionAnnotation]
	return r, nil
}

func (c *deploymentController) CanaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error) {
	d := &appsv1.Deployment{}
	if err := c.f.getTarget(ctx, cd, d); err != nil {
		return Readiness{}, err
	}
	return deploymentReadiness(d, c.f.canaryCheck(cd)), nil
}

func (c *deploymentController) ScaleToZero(ctx context.Context, cd *flaggerv1.Canary) error {
	return c.scaleTarget(ctx, cd, func(*appsv1.Deployment) (int32, error) { return 0, nil })
}

// ScaleFromZero gives the target the replicas it had, else its autoscaler's minimum when above one,
// else (without autoscaler) the primary's replicas, else one.
func (c *deploymentController) ScaleFromZero(ctx context.Context, cd *flaggerv1.Canary) error {
	return c.scaleTarget(ctx, cd, func(target *appsv1.Deployment) (int32, error) {
		if r := ptr.Deref(target.Spec.Replicas, 0); r > 0 {
			return r, nil
		}
		if cd.Spec.AutoscalerRef != nil {
			minReplicas, err := c.f.autoscalerMinReplicas(ctx, cd)
			return max(minReplicas, 1), err
		}
		return c.primaryReplicas(ctx, cd)
	})
}

// Finalize gives the target as many replicas as the primary has, before the primary goes away.
func (c *deploymentController) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	return c.scaleTarget(ctx, cd, func(*appsv1.Deployment) (int32, error) { return c.primaryReplicas(ctx, cd) })
}

func (c *deploymentController) Selector(ctx context.Context, cd *flaggerv1.Canary) (string, string, map[string]int32, error) {
	target, sel, err := c.target(ctx, cd)
	if err != nil {
		return "", "", nil, err
	}
	return sel.label, sel.value, containerPorts(target.Spec.Template.Spec.Containers), nil
}

// primaryReplicas is the primary's replica count, or 1 when it has none or does not exist.
func (c *deploymentController) primaryReplicas(ctx context.Context, cd *flaggerv1.Canary) (int32, error) {
	p := &appsv1.Deployment{}
	err := c.f.getPrimary(ctx, cd, p)
	if apierrors.IsNotFound(err) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	return max(ptr.Deref(p.Spec.Replicas, 1), 1), nil
}

// scaleTarget merge-patches spec.replicas of the target, touching nothing else, and only when it differs.
func (c *deploymentController) scaleTarget(ctx context.Context, cd *flaggerv1.Canary,
	replicas func(*appsv1.Deployment) (int32, error)) error {
	target := &appsv1.Deployment{}
	if err := c.f.getTarget(ctx, cd, target); err != nil {
		return err
	}
	want, err := replicas(target)
	if err != nil {
		return err
	}
	if target.Spec.Replicas != nil && *target.Spec.Replicas == want {
		return nil
	}
	return c.f.mergePatch(ctx, target.DeepCopy(), fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, want))
}

func (c *deploymentController) PrimaryRunsTarget(ctx context.Context, cd *flaggerv1.Canary) (bool, error) {
	target, sel, err := c.target(ctx, cd)
	if err != nil {
		return false, err
	}
	primary := &appsv1.Deployment{}
	if err := c.f.getPrimary(ctx, cd, primary); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return c.f.primaryRunsTemplate(ctx, cd, &target.Spec.Template, &primary.Spec.Template, sel)
}
