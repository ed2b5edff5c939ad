package workload

import (
	"context"
	"fmt"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// nopScaler is the Scaler of a canary without autoscalerRef.
type nopScaler struct{}

func (nopScaler) ReconcilePrimaryScaler(context.Context, *flaggerv1.Canary, bool) error { return nil }

func (nopScaler) PauseTargetScaler(context.Context, *flaggerv1.Canary) error { return nil }

func (nopScaler) ResumeTargetScaler(context.Context, *flaggerv1.Canary) error { return nil }

// autoscalerMinReplicas is the minimum replica count of the target's autoscaler (HPA default: 1,
// ScaledObject default: 0).
func (f *Factory) autoscalerMinReplicas(ctx context.Context, cd *flaggerv1.Canary) (int32, error) {
	ref := cd.Spec.AutoscalerRef
	switch ref.Kind {
	case KindHorizontalPodAutoscaler:
		hpa := &autoscalingv2.HorizontalPodAutoscaler{}
		if err := f.getAutoscaler(ctx, cd, hpa); err != nil {
			return 0, err
		}
		return ptr.Deref(hpa.Spec.MinReplicas, 1), nil
	case KindScaledObject:
		so := newScaledObject()
		if err := f.getAutoscaler(ctx, cd, so); err != nil {
			return 0, err
		}
		n, _ := nestedInt(so.Object, "spec", "minReplicaCount")
		return int32(n), nil
	}
	return 0, permanentf("autoscalerRef kind %q of %s is not supported", ref.Kind, cd.Key())
}

func (f *Factory) getAutoscaler(ctx context.Context, cd *flaggerv1.Canary, obj client.Object) error {
	if err := f.get(ctx, cd.Namespace, cd.Spec.AutoscalerRef.Name, obj); err != nil {
		return autoscalerError(cd, err)
	}
	return nil
}

// nestedInt reads an integer field of an unstructured object, whichever numeric type decoding chose.
func nestedInt(obj map[string]any, fields ...string) (int64, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, fields...)
	if !found || err != nil {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case int32:
		return int64(n), true
	case int:
		return int64(n), true
	case float64:
		return int64(n), true
	}
	return 0, false
}

func autoscalerError(cd *flaggerv1.Canary, err error) error {
	ref := cd.Spec.AutoscalerRef
	return fmt.Errorf("autoscaler %s %s.%s: %w", ref.Kind, ref.Name, cd.Namespace, err)
}
