package workload

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// daemonSetController manages a DaemonSet target and its <target>-primary clone. A DaemonSet has no
// replicas: it is "scaled to zero" by a node selector that matches no node.
type daemonSetController struct {
	f *Factory
}

var _ Controller = (*daemonSetController)(nil)

func (c *daemonSetController) target(ctx context.Context, cd *flaggerv1.Canary) (*appsv1.DaemonSet, selection, error) {
	ds := &appsv1.DaemonSet{}
	if err := c.f.getTarget(ctx, cd, ds); err != nil {
		return nil, selection{}, err
	}
	label, value, err := selectorLabel(ds.Spec.Selector, c.f.opts.SelectorLabels, "daemonset", ds.Name, ds.Namespace)
	return ds, selection{label: label, value: value}, err
}

// Initialize creates the primary DaemonSet when it does not exist; see deploymentController.Initialize.
func (c *daemonSetController) Initialize(ctx context.Context, cd *flaggerv1.Canary) error {
	target, sel, err := c.target(ctx, cd)
	if err != nil {
		return err
	}
	err = c.f.getPrimary(ctx, cd, &appsv1.DaemonSet{})
	if err == nil {
		_, err = c.f.syncConfigCopies(ctx, cd, &target.Spec.Template.Spec, createMissingCopies)
		return err
	}
	if !apierrors.IsNotFound(err) {
		return err
	}
	tmpl, revision, err := c.primaryTemplate(ctx, cd, target, sel)
	if err != nil {
		return err
	}
	primary := &appsv1.DaemonSet{
		ObjectMeta: c.f.primaryObjectMeta(cd, target, sel, revision),
		Spec: appsv1.DaemonSetSpec{
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{sel.label: sel.primaryValue()}},
			Template:             tmpl,
			UpdateStrategy:       *target.Spec.UpdateStrategy.DeepCopy(),
			MinReadySeconds:      target.Spec.MinReadySeconds,
			RevisionHistoryLimit: target.Spec.RevisionHistoryLimit,
		},
	}
	return c.f.create(ctx, primary)
}

// primaryTemplate is the primary's pod template, which never inherits the target's scale-to-zero
// node selector, and the target's revision. Config copies are synced.
func (c *daemonSetController) primaryTemplate(ctx context.Context, cd *flaggerv1.Canary, target *appsv1.DaemonSet,
	sel selection) (corev1.PodTemplateSpec, string, error) {
	tmpl, err := c.f.primaryTemplate(ctx, cd, &target.Spec.Template, sel, syncCopies)
	if err != nil {
		return tmpl, "", err
	}
	delete(tmpl.Spec.NodeSelector, ScaleToZeroNodeSelector)
	revision, err := daemonSetRevision(target)
	return tmpl, revision, err
}

// daemonSetRevision hashes the pod template without the scale-to-zero node selector: scaling the
// target down or up is not a new revision.
func daemonSetRevision(ds *appsv1.DaemonSet) (string, error) {
	tmpl := ds.Spec.Template.DeepCopy()
	delete(tmpl.Spec.NodeSelector, ScaleToZeroNodeSelector)
	return revisionHash(tmpl)
}

func (c *daemonSetController) Promote(ctx context.Context, cd *flaggerv1.Canary) error {
	target, sel, err := c.target(ctx, cd)
	if err != nil {
		return err
	}
	primary := &appsv1.DaemonSet{}
	if err := c.f.getPrimary(ctx, cd, primary); err != nil {
		return err
	}
	tmpl, revision, err := c.primaryTemplate(ctx, cd, target, sel)
	if err != nil {
		return err
	}
	p := primary.DeepCopy()
	p.Spec.Template = tmpl
	p.Spec.UpdateStrategy = *target.Spec.UpdateStrategy.DeepCopy()
	p.Spec.MinReadySeconds = target.Spec.MinReadySeconds
	p.Spec.RevisionHistoryLimit = target.Spec.RevisionHistoryLimit
	configs, err := c.f.trackedChecksums(ctx, cd, &target.Spec.Template.Spec)
	if err != nil {
		return err
	}
	c.f.promotePrimaryMetadata(p, target, sel, PromotedMarker(revision, configs))
	return c.f.update(ctx, p)
}

func (c *daemonSetController) Revision(ctx context.Context, cd *flaggerv1.Canary) (string, error) {
	ds := &appsv1.DaemonSet{}
	if err := c.f.getTarget(ctx, cd, ds); err != nil {
		return "", err
	}
	return daemonSetRevision(ds)
}

func (c *daemonSetController) TrackedConfigs(ctx context.Context, cd *flaggerv1.Canary) (map[string]string, error) {
	ds := &appsv1.DaemonSet{}
	if err := c.f.getTarget(ctx, cd, ds); err != nil {
		return nil, err
	}
	return c.f.trackedChecksums(ctx, cd, &ds.Spec.Template.Spec)
}

func (c *daemonSetController) PrimaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error) {
	ds := &appsv1.DaemonSet{}
	if err := c.f.getPrimary(ctx, cd, ds); err != nil {
		return Readiness{}, err
	}
	r := daemonSetReadiness(ds, readinessCheck{threshold: cd.GetAnalysisPrimaryReadyThreshold()})
	r.PromotedRevision = ds.Annotations[PromotedRevisionAnnotation]
	return r, nil
}

func (c *daemonSetController) CanaryReady(ctx context.Context, cd *flaggerv1.Canary) (Readiness, error) {
	ds := &appsv1.DaemonSet{}
	if err := c.f.getTarget(ctx, cd, ds); err != nil {
		return Readiness{}, err
	}
	return daemonSetReadiness(ds, c.f.canaryCheck(cd)), nil
}

// ScaleToZero adds the scale-to-zero node selector to the target's pod template.
func (c *daemonSetController) ScaleToZero(ctx context.Context, cd *flaggerv1.Canary) error {
	return c.setScaleToZeroSelector(ctx, cd, true)
}

// ScaleFromZero removes the scale-to-zero node selector from the target's pod template.
func (c *daemonSetController) ScaleFromZero(ctx context.Context, cd *flaggerv1.Canary) error {
	return c.setScaleToZeroSelector(ctx, cd, false)
}

// Finalize puts the target's pods back on their nodes.
func (c *daemonSetController) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	return c.setScaleToZeroSelector(ctx, cd, false)
}

func (c *daemonSetController) Selector(ctx context.Context, cd *flaggerv1.Canary) (string, string, map[string]int32, error) {
	target, sel, err := c.target(ctx, cd)
	if err != nil {
		return "", "", nil, err
	}
	return sel.label, sel.value, containerPorts(target.Spec.Template.Spec.Containers), nil
}

// setScaleToZeroSelector merge-patches only the scale-to-zero key of the node selector, when needed.
func (c *daemonSetController) setScaleToZeroSelector(ctx context.Context, cd *flaggerv1.Canary, parked bool) error {
	target := &appsv1.DaemonSet{}
	if err := c.f.getTarget(ctx, cd, target); err != nil {
		return err
	}
	_, isParked := target.Spec.Template.Spec.NodeSelector[ScaleToZeroNodeSelector]
	if isParked == parked {
		return nil
	}
	value := "null"
	if parked {
		value = `"true"`
	}
	patch := fmt.Appendf(nil, `{"spec":{"template":{"spec":{"nodeSelector":{%q:%s}}}}}`, ScaleToZeroNodeSelector, value)
	return c.f.mergePatch(ctx, target.DeepCopy(), patch)
}

func (c *daemonSetController) PrimaryRunsTarget(ctx context.Context, cd *flaggerv1.Canary) (bool, error) {
	target, sel, err := c.target(ctx, cd)
	if err != nil {
		return false, err
	}
	primary := &appsv1.DaemonSet{}
	if err := c.f.getPrimary(ctx, cd, primary); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return c.f.primaryRunsTemplate(ctx, cd, &target.Spec.Template, &primary.Spec.Template, sel)
}
