package workload

import (
	"context"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// selection is the selector label of a target: key and value, e.g. app=podinfo.
type selection struct {
	label, value string
}

func (s selection) primaryValue() string { return s.value + primarySuffix }

// primaryTemplate copies the target's pod template for the primary, after making sure the
// <name>-primary copies of its tracked configs exist (mode says whether existing copies are updated).
func (f *Factory) primaryTemplate(ctx context.Context, cd *flaggerv1.Canary, src *corev1.PodTemplateSpec,
	sel selection, mode configCopyMode) (corev1.PodTemplateSpec, error) {
	configs, err := f.syncConfigCopies(ctx, cd, &src.Spec, mode)
	if err != nil {
		return corev1.PodTemplateSpec{}, err
	}
	tmpl := derivePrimaryTemplate(src, sel, configs)
	tmpl.Annotations[FlaggerIDAnnotation] = uuid.NewString()
	return tmpl, nil
}

// derivePrimaryTemplate is the primary's pod template for a target template, without flagger-id.
func derivePrimaryTemplate(src *corev1.PodTemplateSpec, sel selection, configs []trackedConfig) corev1.PodTemplateSpec {
	tmpl := src.DeepCopy()
	tmpl.Labels = withoutFluxKeys(tmpl.Labels)
	tmpl.Labels[sel.label] = sel.primaryValue()
	tmpl.Annotations = withoutFluxKeys(tmpl.Annotations)
	rewriteConfigRefs(&tmpl.Spec, configs)
	rewriteAffinity(tmpl.Spec.Affinity, sel)
	for i := range tmpl.Spec.TopologySpreadConstraints {
		rewriteSelector(tmpl.Spec.TopologySpreadConstraints[i].LabelSelector, sel)
	}
	return *tmpl
}

// primaryRunsTemplate reports whether a primary's pod template is the one derived from the target's,
// whoever made it (Pennant or Flagger): flagger-id aside, they must hash alike.
func (f *Factory) primaryRunsTemplate(ctx context.Context, cd *flaggerv1.Canary, target, primary *corev1.PodTemplateSpec, sel selection) (bool, error) {
	configs, err := f.trackedConfigs(ctx, cd.Namespace, &target.Spec)
	if err != nil {
		return false, err
	}
	want := derivePrimaryTemplate(target, sel, configs)
	have := primary.DeepCopy()
	delete(have.Annotations, FlaggerIDAnnotation)
	wantHash, err := revisionHash(want)
	if err != nil {
		return false, err
	}
	haveHash, err := revisionHash(*have)
	return err == nil && wantHash == haveHash, err
}

// rewriteAffinity points pod (anti-)affinity terms that select the target's pods at the primary's
// pods instead, so that e.g. "one pod per node" keeps holding among primary pods.
func rewriteAffinity(a *corev1.Affinity, sel selection) {
	if a == nil {
		return
	}
	var required []corev1.PodAffinityTerm
	var preferred []corev1.WeightedPodAffinityTerm
	if a.PodAffinity != nil {
		required = append(required, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		preferred = append(preferred, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution...)
	}
	if a.PodAntiAffinity != nil {
		required = append(required, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution...)
		preferred = append(preferred, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution...)
	}
	// The slices share their elements' LabelSelector pointers with a, so rewriting them rewrites a.
	for _, t := range required {
		rewriteSelector(t.LabelSelector, sel)
	}
	for _, t := range preferred {
		rewriteSelector(t.PodAffinityTerm.LabelSelector, sel)
	}
}

// rewriteSelector renames the target's selector value to the primary's, for the selector label only:
// the primary's pods keep every other label's value.
func rewriteSelector(ls *metav1.LabelSelector, sel selection) {
	if ls == nil {
		return
	}
	if ls.MatchLabels[sel.label] == sel.value {
		ls.MatchLabels[sel.label] = sel.primaryValue()
	}
	for i := range ls.MatchExpressions {
		expr := &ls.MatchExpressions[i]
		if expr.Key != sel.label {
			continue
		}
		for j, v := range expr.Values {
			if v == sel.value {
				expr.Values[j] = sel.primaryValue()
			}
		}
	}
}

// primaryObjectMeta is the metadata of a new primary: the target's filtered labels and annotations, the
// selector label set to the primary's value, the promoted revision, and the Canary as controller.
func (f *Factory) primaryObjectMeta(cd *flaggerv1.Canary, target metav1.Object, sel selection, revision string) metav1.ObjectMeta {
	labels, annotations := f.primaryMetadata(target, sel, revision)
	return metav1.ObjectMeta{
		Name:            primaryName(target.GetName()),
		Namespace:       target.GetNamespace(),
		Labels:          labels,
		Annotations:     annotations,
		OwnerReferences: []metav1.OwnerReference{cd.OwnerReference()},
	}
}

func (f *Factory) primaryMetadata(target metav1.Object, sel selection, revision string) (labels, annotations map[string]string) {
	labels = copiedMetadata(target.GetLabels(), f.opts.IncludeLabelPrefix)
	labels[sel.label] = sel.primaryValue()
	annotations = copiedMetadata(target.GetAnnotations(), f.opts.IncludeLabelPrefix)
	annotations[PromotedRevisionAnnotation] = revision
	return labels, annotations
}

// promotePrimaryMetadata merges the target's copied metadata into the primary's: keys are added or
// overwritten, never removed, so that keys written by others (controllers, users) survive.
func (f *Factory) promotePrimaryMetadata(primary, target metav1.Object, sel selection, revision string) {
	labels, annotations := f.primaryMetadata(target, sel, revision)
	primary.SetLabels(mergeInto(primary.GetLabels(), labels))
	primary.SetAnnotations(mergeInto(primary.GetAnnotations(), annotations))
}
