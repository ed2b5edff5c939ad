package workload

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// ScaledObjectGVK is KEDA's ScaledObject, handled as unstructured to keep KEDA out of the dependencies.
var ScaledObjectGVK = schema.GroupVersionKind{Group: "keda.sh", Version: "v1alpha1", Kind: KindScaledObject}

func newScaledObject() *unstructured.Unstructured {
	so := &unstructured.Unstructured{}
	so.SetGroupVersionKind(ScaledObjectGVK)
	return so
}

// scaledObjectScaler clones the target's KEDA ScaledObject into <so>-primary, scaling the primary,
// and pauses the target's ScaledObject while the target is scaled to zero.
type scaledObjectScaler struct {
	f *Factory
}

var _ Scaler = (*scaledObjectScaler)(nil)

// ReconcilePrimaryScaler creates <so>-primary; with init=false (promotion) it also updates it.
func (s *scaledObjectScaler) ReconcilePrimaryScaler(ctx context.Context, cd *flaggerv1.Canary, init bool) error {
	target := newScaledObject()
	if err := s.f.getAutoscaler(ctx, cd, target); err != nil {
		return err
	}
	desired, err := primaryScaledObject(cd, target)
	if err != nil {
		return autoscalerError(cd, err)
	}
	existing := newScaledObject()
	err = s.f.get(ctx, desired.GetNamespace(), desired.GetName(), existing)
	if apierrors.IsNotFound(err) {
		return s.f.create(ctx, desired)
	}
	if err != nil || init {
		return err
	}
	updated := existing.DeepCopy()
	updated.Object["spec"] = desired.Object["spec"]
	updated.SetLabels(desired.GetLabels())
	updated.SetAnnotations(desired.GetAnnotations())
	if equality.Semantic.DeepEqual(existing.Object, updated.Object) {
		return nil
	}
	return s.f.update(ctx, updated)
}

// primaryScaledObject is the target ScaledObject pointed at the primary: scaleTargetRef, trigger
// queries and the name of the HPA KEDA generates are renamed, primaryScalerReplicas applied. Unknown
// spec fields are copied as they are.
func primaryScaledObject(cd *flaggerv1.Canary, target *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	spec, _, err := unstructured.NestedMap(target.Object, "spec") // a deep copy
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	if err := unstructured.SetNestedField(spec, primaryName(cd.Spec.TargetRef.Name), "scaleTargetRef", "name"); err != nil {
		return nil, err
	}
	if err := setPrimaryQueries(spec, cd); err != nil {
		return nil, err
	}
	if name, _, _ := unstructured.NestedString(spec, "advanced", "horizontalPodAutoscalerConfig", "name"); name != "" {
		_ = unstructured.SetNestedField(spec, primaryName(name), "advanced", "horizontalPodAutoscalerConfig", "name")
	}
	if r := cd.Spec.AutoscalerRef.PrimaryScalerReplicas; r != nil {
		if r.MinReplicas != nil {
			spec["minReplicaCount"] = int64(*r.MinReplicas)
		}
		if r.MaxReplicas != nil {
			spec["maxReplicaCount"] = int64(*r.MaxReplicas)
		}
	}
	so := newScaledObject()
	so.SetName(primaryName(target.GetName()))
	so.SetNamespace(target.GetNamespace())
	so.SetLabels(withoutFluxKeys(target.GetLabels()))
	so.SetAnnotations(withoutPause(withoutFluxKeys(target.GetAnnotations())))
	so.SetOwnerReferences([]metav1.OwnerReference{cd.OwnerReference()})
	so.Object["spec"] = spec
	return so, nil
}

// withoutPause drops KEDA's pause annotations: the target being paused (scaled to zero) must not
// pause the primary.
func withoutPause(annotations map[string]string) map[string]string {
	delete(annotations, KEDAPausedReplicasAnnotation)
	delete(annotations, kedaPausedAnnotation)
	return annotations
}

// setPrimaryQueries sets each trigger's metadata.query to the one primaryScalerQueries gives for the
// trigger's name, or else rewrites the target's query to the primary (see primaryQuery).
func setPrimaryQueries(spec map[string]any, cd *flaggerv1.Canary) error {
	triggers, found, err := unstructured.NestedSlice(spec, "triggers")
	if err != nil || !found {
		return err
	}
	for i, t := range triggers {
		trigger, ok := t.(map[string]any)
		if !ok {
			continue
		}
		name, _, _ := unstructured.NestedString(trigger, "name")
		query, hasQuery, _ := unstructured.NestedString(trigger, "metadata", "query")
		if q, ok := cd.Spec.AutoscalerRef.PrimaryScalerQueries[name]; ok && name != "" {
			query, hasQuery = q, true
		} else if hasQuery {
			query = primaryQuery(query, cd.Spec.TargetRef.Name)
		}
		if hasQuery {
			if err := unstructured.SetNestedField(trigger, query, "metadata", "query"); err != nil {
				return err
			}
		}
		triggers[i] = trigger
	}
	return unstructured.SetNestedSlice(spec, triggers, "triggers")
}

// primaryQuery points a query about the target at the primary: every "<target>", "<target>-canary"
// and "<target>-primary" becomes "<target>-primary" (Flagger's rule, without its
// "<target>-primary-primary" slip).
func primaryQuery(query, target string) string {
	if target == "" {
		return query
	}
	var b strings.Builder
	for {
		i := strings.Index(query, target)
		if i < 0 {
			b.WriteString(query)
			return b.String()
		}
		b.WriteString(query[:i])
		b.WriteString(primaryName(target))
		query = query[i+len(target):]
		for _, suffix := range []string{canarySuffix, primarySuffix} {
			if strings.HasPrefix(query, suffix) {
				query = query[len(suffix):]
				break
			}
		}
	}
}

// PauseTargetScaler holds the target's ScaledObject at zero replicas.
func (s *scaledObjectScaler) PauseTargetScaler(ctx context.Context, cd *flaggerv1.Canary) error {
	return s.setPausedReplicas(ctx, cd, true)
}

// ResumeTargetScaler lets the target's ScaledObject scale again.
func (s *scaledObjectScaler) ResumeTargetScaler(ctx context.Context, cd *flaggerv1.Canary) error {
	return s.setPausedReplicas(ctx, cd, false)
}

// setPausedReplicas merge-patches only the paused-replicas annotation, when it is not as wanted.
func (s *scaledObjectScaler) setPausedReplicas(ctx context.Context, cd *flaggerv1.Canary, paused bool) error {
	so := newScaledObject()
	if err := s.f.getAutoscaler(ctx, cd, so); err != nil {
		return err
	}
	value, isPaused := so.GetAnnotations()[KEDAPausedReplicasAnnotation]
	if paused == isPaused && (!paused || value == "0") {
		return nil
	}
	patch := `null`
	if paused {
		patch = `"0"`
	}
	return s.f.mergePatch(ctx, so, fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%s}}}`, KEDAPausedReplicasAnnotation, patch))
}
