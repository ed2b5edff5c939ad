package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Annotations that stop Flux and Helm from reverting what the routers change on generated objects.
const (
	FluxReconcileAnnotation      = "kustomize.toolkit.fluxcd.io/reconcile"
	HelmDriftDetectionAnnotation = "helm.toolkit.fluxcd.io/driftDetection"
	// OriginalConfigAnnotation keeps the spec of a routing object Pennant took over, for revert.
	OriginalConfigAnnotation = "flagger.kubernetes.io/original-configuration"
)

// Options are the router settings taken from flags.
type Options struct {
	// FieldOwner is the field manager of every write.
	FieldOwner string
	// IngressAnnotationsPrefix is -ingress-annotations-prefix (nginx.ingress.kubernetes.io).
	IngressAnnotationsPrefix string
	// IngressClass is -ingress-class (Contour HTTPProxy ingressClassName).
	IngressClass string
	// Selector reports the target's selector label and value (workload.Factory.Selector; NewRegistry
	// sets it). The routing objects that stand for the apex Service carry the selector label, and
	// Gloo's Upstreams select pods with it. Without one (unit tests) neither is written.
	Selector SelectorFunc
}

// InvalidSpecError is a canary spec the router cannot work with (e.g. a missing ingressRef); it is
// reported on the canary and not retried until the spec changes.
type InvalidSpecError struct{ Message string }

func (e *InvalidSpecError) Error() string { return e.Message }

// Invalidf returns an InvalidSpecError.
func Invalidf(format string, args ...any) error {
	return &InvalidSpecError{Message: fmt.Sprintf(format, args...)}
}

// IsInvalidSpec reports whether err is an InvalidSpecError.
func IsInvalidSpec(err error) bool {
	var e *InvalidSpecError
	return errors.As(err, &e)
}

// Validator is implemented by routers that can tell before writing anything that a canary's spec
// cannot work with them.
type Validator interface {
	Validate(cd *flaggerv1.Canary) error
}

// generatedMetadata returns the labels and annotations of a generated routing object: the apex
// metadata of the canary plus the Flux and Helm drift annotations.
func generatedMetadata(cd *flaggerv1.Canary) (labels, annotations map[string]string) {
	labels, annotations = map[string]string{}, map[string]string{}
	if apex := cd.Spec.Service.Apex; apex != nil {
		maps.Copy(labels, apex.Labels)
		maps.Copy(annotations, apex.Annotations)
	}
	for k := range labels {
		if strings.Contains(k, "toolkit.fluxcd.io") {
			delete(labels, k)
		}
	}
	annotations[FluxReconcileAnnotation] = "disabled"
	annotations[HelmDriftDetectionAnnotation] = "disabled"
	return labels, annotations
}

// setGenerated stamps generated metadata and the canary's owner reference on an object.
func setGenerated(obj client.Object, cd *flaggerv1.Canary) {
	labels, _ := generatedMetadata(cd)
	stampGenerated(obj, cd, labels)
}

// stampGenerated adds labels, the Flux and Helm drift annotations (with the apex annotations) and
// the canary's owner reference to an object. Labels are added, never removed: a label someone else
// put on the object stays.
func stampGenerated(obj client.Object, cd *flaggerv1.Canary, labels map[string]string) {
	_, annotations := generatedMetadata(cd)
	obj.SetLabels(merge(obj.GetLabels(), labels))
	obj.SetAnnotations(merge(obj.GetAnnotations(), annotations))
	setOwner(obj, cd)
}

// apexLabels are the labels of the routing object that stands for the apex Service (Istio's
// VirtualService, Gloo's RouteTable, Contour's HTTPProxy, the TraefikService, Kuma's TrafficRoute):
// those of the apex Service itself, spec.service.apex.labels plus the target's selector label set
// to the apex name (app: podinfo). Flagger puts the same there. The objects behind the primary and
// canary Services (DestinationRules, Gloo Upstreams) get no labels, as in Flagger.
func apexLabels(ctx context.Context, selector SelectorFunc, cd *flaggerv1.Canary) (map[string]string, error) {
	labels, _ := generatedMetadata(cd)
	if selector == nil {
		return labels, nil
	}
	label, _, _, err := selector(ctx, cd)
	if err != nil {
		return nil, err
	}
	if label != "" { // a Service target selects no pods of its own: it has no selector label
		labels[label] = cd.GetServiceName()
	}
	return labels, nil
}

// setOwner makes the canary the controller of obj, keeping other (non-controller) owners.
func setOwner(obj client.Object, cd *flaggerv1.Canary) {
	refs := []metav1.OwnerReference{cd.OwnerReference()}
	for _, r := range obj.GetOwnerReferences() {
		if r.UID != cd.UID && (r.Controller == nil || !*r.Controller) {
			refs = append(refs, r)
		}
	}
	obj.SetOwnerReferences(refs)
}

// merge overlays src on dst; an empty result is nil, so that an object without labels keeps none
// (an empty map would differ from the stored object and cause a write on every pass).
func merge(dst, src map[string]string) map[string]string {
	if len(dst) == 0 && len(src) == 0 {
		return dst
	}
	out := maps.Clone(dst)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, src)
	return out
}

// foreignController returns the controller owner of obj when it is not this canary.
func foreignController(obj client.Object, cd *flaggerv1.Canary) *metav1.OwnerReference {
	for _, r := range obj.GetOwnerReferences() {
		if r.Controller != nil && *r.Controller && r.UID != cd.UID {
			return &r
		}
	}
	return nil
}

// upsert creates obj, or updates the existing object of that name with mutate, writing only when
// something changed. An object controlled by something other than this canary is never touched:
// that is an InvalidSpecError naming its owner. mutate receives the current object (or the empty
// obj on create) and must set its desired state.
func upsert(ctx context.Context, c client.Client, owner string, cd *flaggerv1.Canary, obj client.Object, mutate func(existing bool) error) error {
	key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	err := c.Get(ctx, key, obj)
	switch {
	case apierrors.IsNotFound(err):
		if err := mutate(false); err != nil {
			return err
		}
		return c.Create(ctx, obj, client.FieldOwner(owner))
	case err != nil:
		return err
	}
	if ref := foreignController(obj, cd); ref != nil {
		return Invalidf("%s %s.%s is controlled by %s %s, not by canary %s", kindOf(c, obj), key.Name, key.Namespace, ref.Kind, ref.Name, cd.Key())
	}
	before := obj.DeepCopyObject()
	if err := mutate(true); err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(before, obj) {
		return nil
	}
	return c.Update(ctx, obj, client.FieldOwner(owner))
}

// kindOf names an object's kind for messages; typed objects read from the API have no TypeMeta.
func kindOf(c client.Client, obj client.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	if gvk, err := apiutil.GVKForObject(obj, c.Scheme()); err == nil {
		return gvk.Kind
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", obj), "*")
}
