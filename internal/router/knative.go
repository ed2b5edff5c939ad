package router

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// KnativePrimaryRevisionAnnotation on a Knative Service names the revision serving as primary.
const KnativePrimaryRevisionAnnotation = flaggerv1.KnativePrimaryRevisionAnnotation

// KnativeServiceGVK is the kind of a Knative target.
var KnativeServiceGVK = schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}

// KnativeRouter is the router of the knative provider. It generates nothing: it patches the
// Knative Service named by spec.targetRef, whose annotation flagger.app/primary-revision names the
// primary revision (set to status.latestCreatedRevisionName when missing; promotion moves it), and
// whose spec.traffic it sets to
//
//	[{latestRevision: true, percent: <canary>}, {revisionName: <primary>, latestRevision: false, percent: <primary>}]
//
// so that the latest revision is the canary. The Knative Service is the user's: Pennant never
// becomes its owner.
type KnativeRouter struct {
	client client.Client
	owner  string
}

var (
	_ Interface = (*KnativeRouter)(nil)
	_ Validator = (*KnativeRouter)(nil)
)

// NewKnative returns the knative router.
func NewKnative(c client.Client, o Options) *KnativeRouter {
	return &KnativeRouter{client: c, owner: o.FieldOwner}
}

// Validate requires a Knative Service (serving.knative.dev/v1) target.
func (r *KnativeRouter) Validate(cd *flaggerv1.Canary) error {
	ref := cd.Spec.TargetRef
	if ref.APIVersion != KnativeServiceGVK.GroupVersion().String() || ref.Kind != KnativeServiceGVK.Kind {
		return Invalidf("canary %s: the knative provider requires a %s %s target, not %s %s",
			cd.Key(), KnativeServiceGVK.GroupVersion(), KnativeServiceGVK.Kind, ref.APIVersion, ref.Kind)
	}
	return nil
}

// Reconcile sets the primary revision annotation when it is missing and, when spec.traffic is not
// the primary/latest split yet, sends all traffic to the primary; an existing split is kept.
func (r *KnativeRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	ksvc, err := r.get(ctx, cd)
	if err != nil {
		return err
	}
	before := ksvc.DeepCopy()
	primary := ksvc.GetAnnotations()[KnativePrimaryRevisionAnnotation]
	if primary == "" {
		primary, _, _ = unstructured.NestedString(ksvc.Object, "status", "latestCreatedRevisionName")
		if primary == "" {
			return fmt.Errorf("knative service %s.%s has no revision yet (status.latestCreatedRevisionName is empty)",
				ksvc.GetName(), ksvc.GetNamespace())
		}
		annotations := ksvc.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[KnativePrimaryRevisionAnnotation] = primary
		ksvc.SetAnnotations(annotations)
	}
	if _, _, ok := knativeSplit(ksvc, primary); !ok {
		if err := setKnativeTraffic(ksvc, primary, 100, 0); err != nil {
			return err
		}
	}
	return r.patch(ctx, before, ksvc)
}

// SetRoutes sets the traffic split between the latest (canary) and the primary revision. Mirroring
// is not supported.
func (r *KnativeRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	ksvc, primary, err := r.getWithPrimary(ctx, cd)
	if err != nil {
		return err
	}
	if p, c, ok := knativeSplit(ksvc, primary); ok && p == primaryWeight && c == canaryWeight {
		return nil
	}
	before := ksvc.DeepCopy()
	if err := setKnativeTraffic(ksvc, primary, primaryWeight, canaryWeight); err != nil {
		return err
	}
	return r.patch(ctx, before, ksvc)
}

// GetRoutes reads the split from spec.traffic.
func (r *KnativeRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	ksvc, primary, err := r.getWithPrimary(ctx, cd)
	if err != nil {
		return 0, 0, false, err
	}
	p, c, ok := knativeSplit(ksvc, primary)
	if !ok {
		return 0, 0, false, fmt.Errorf("knative service %s.%s: spec.traffic does not split traffic between the latest revision and the primary revision %s",
			ksvc.GetName(), ksvc.GetNamespace(), primary)
	}
	return p, c, false, nil
}

// Finalize removes the primary revision annotation. spec.traffic is left as it is.
func (r *KnativeRouter) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	ksvc, err := r.get(ctx, cd)
	if apierrors.IsNotFound(err) || IsInvalidSpec(err) {
		return nil
	}
	if err != nil {
		return err
	}
	annotations := ksvc.GetAnnotations()
	if _, ok := annotations[KnativePrimaryRevisionAnnotation]; !ok {
		return nil
	}
	before := ksvc.DeepCopy()
	delete(annotations, KnativePrimaryRevisionAnnotation)
	ksvc.SetAnnotations(annotations)
	return r.patch(ctx, before, ksvc)
}

func (r *KnativeRouter) get(ctx context.Context, cd *flaggerv1.Canary) (*unstructured.Unstructured, error) {
	if err := r.Validate(cd); err != nil {
		return nil, err
	}
	ksvc := &unstructured.Unstructured{}
	ksvc.SetGroupVersionKind(KnativeServiceGVK)
	key := client.ObjectKey{Namespace: cd.Namespace, Name: cd.Spec.TargetRef.Name}
	if err := r.client.Get(ctx, key, ksvc); err != nil {
		return nil, fmt.Errorf("knative service %s.%s (spec.targetRef of canary %s): %w", key.Name, key.Namespace, cd.Key(), err)
	}
	return ksvc, nil
}

func (r *KnativeRouter) getWithPrimary(ctx context.Context, cd *flaggerv1.Canary) (*unstructured.Unstructured, string, error) {
	ksvc, err := r.get(ctx, cd)
	if err != nil {
		return nil, "", err
	}
	primary := ksvc.GetAnnotations()[KnativePrimaryRevisionAnnotation]
	if primary == "" {
		return nil, "", fmt.Errorf("knative service %s.%s has no %s annotation: the router has not reconciled it yet",
			ksvc.GetName(), ksvc.GetNamespace(), KnativePrimaryRevisionAnnotation)
	}
	return ksvc, primary, nil
}

// patch sends the changes from before to after as a merge patch guarded by the resource version.
func (r *KnativeRouter) patch(ctx context.Context, before, after *unstructured.Unstructured) error {
	if equality.Semantic.DeepEqual(before.Object, after.Object) {
		return nil
	}
	err := r.client.Patch(ctx, after, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), client.FieldOwner(r.owner))
	if err != nil {
		return fmt.Errorf("patching knative service %s.%s: %w", after.GetName(), after.GetNamespace(), err)
	}
	return nil
}

// knativeSplit reads spec.traffic when it is exactly the latest revision and the primary revision.
func knativeSplit(ksvc *unstructured.Unstructured, primary string) (primaryWeight, canaryWeight int, ok bool) {
	traffic, _, _ := unstructured.NestedSlice(ksvc.Object, "spec", "traffic")
	if len(traffic) != 2 {
		return 0, 0, false
	}
	var latestSeen, primarySeen bool
	for _, item := range traffic {
		t, _ := item.(map[string]any)
		latest, _, _ := unstructured.NestedBool(t, "latestRevision")
		revision, _, _ := unstructured.NestedString(t, "revisionName")
		configuration, _, _ := unstructured.NestedString(t, "configurationName")
		percent, _, _ := unstructured.NestedInt64(t, "percent")
		switch {
		case configuration != "":
			return 0, 0, false
		case latest && revision == "" && !latestSeen:
			latestSeen, canaryWeight = true, int(percent)
		case !latest && revision == primary && !primarySeen:
			primarySeen, primaryWeight = true, int(percent)
		default:
			return 0, 0, false
		}
	}
	return primaryWeight, canaryWeight, latestSeen && primarySeen
}

func setKnativeTraffic(ksvc *unstructured.Unstructured, primary string, primaryWeight, canaryWeight int) error {
	traffic := []any{
		map[string]any{"latestRevision": true, "percent": int64(canaryWeight)},
		map[string]any{"revisionName": primary, "latestRevision": false, "percent": int64(primaryWeight)},
	}
	return unstructured.SetNestedSlice(ksvc.Object, traffic, "spec", "traffic")
}
