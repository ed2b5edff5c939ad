package workload

import (
	"context"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// hpaScaler clones the target's HorizontalPodAutoscaler (autoscaling/v2) into <hpa>-primary, scaling
// the primary. Pausing is not needed: an HPA does not scale a Deployment that has zero replicas.
type hpaScaler struct {
	f *Factory
}

var _ Scaler = (*hpaScaler)(nil)

// ReconcilePrimaryScaler creates <hpa>-primary; with init=false (promotion) it also brings its spec,
// labels and annotations up to date with the target's HPA.
func (s *hpaScaler) ReconcilePrimaryScaler(ctx context.Context, cd *flaggerv1.Canary, init bool) error {
	target := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := s.f.getAutoscaler(ctx, cd, target); err != nil {
		return err
	}
	desired := primaryHPA(cd, target)
	existing := &autoscalingv2.HorizontalPodAutoscaler{}
	err := s.f.get(ctx, desired.Namespace, desired.Name, existing)
	if apierrors.IsNotFound(err) {
		return s.f.create(ctx, desired)
	}
	if err != nil || init {
		return err
	}
	updated := existing.DeepCopy()
	updated.Spec = desired.Spec
	updated.Labels = desired.Labels
	updated.Annotations = desired.Annotations
	if equality.Semantic.DeepEqual(existing, updated) {
		return nil
	}
	return s.f.update(ctx, updated)
}

// primaryHPA is the target HPA pointed at the primary, with primaryScalerReplicas applied.
func primaryHPA(cd *flaggerv1.Canary, target *autoscalingv2.HorizontalPodAutoscaler) *autoscalingv2.HorizontalPodAutoscaler {
	spec := target.Spec.DeepCopy()
	spec.ScaleTargetRef.Name = primaryName(cd.Spec.TargetRef.Name)
	if r := cd.Spec.AutoscalerRef.PrimaryScalerReplicas; r != nil {
		if r.MinReplicas != nil {
			spec.MinReplicas = r.MinReplicas
		}
		if r.MaxReplicas != nil {
			spec.MaxReplicas = *r.MaxReplicas
		}
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{
			Name:            primaryName(target.Name),
			Namespace:       target.Namespace,
			Labels:          withoutFluxKeys(target.Labels),
			Annotations:     withoutFluxKeys(target.Annotations),
			OwnerReferences: []metav1.OwnerReference{cd.OwnerReference()},
		},
		Spec: *spec,
	}
}

func (s *hpaScaler) PauseTargetScaler(context.Context, *flaggerv1.Canary) error { return nil }

func (s *hpaScaler) ResumeTargetScaler(context.Context, *flaggerv1.Canary) error { return nil }
