package router

// Helpers of the routers that write one unstructured object per canary (Gloo, Contour, Traefik).

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// edgeGet reads an object as unstructured.
func edgeGet(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, ns, name string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, u); err != nil {
		return nil, err
	}
	return u, nil
}

// edgeUpsert creates or updates the generated object ref of the canary with upsert: build receives
// the existing object (nil when there is none) and returns the desired spec; labels are added to
// the object's. An object that existed without a controller is taken over: its spec is kept in
// OriginalConfigAnnotation for Finalize.
func edgeUpsert(ctx context.Context, c client.Client, owner string, cd *flaggerv1.Canary, gvk schema.GroupVersionKind, name string,
	labels map[string]string, build func(existing *unstructured.Unstructured) (map[string]any, error),
) error {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	obj.SetNamespace(cd.Namespace)
	obj.SetName(name)
	return upsert(ctx, c, owner, cd, obj, func(existing bool) error {
		var current *unstructured.Unstructured
		if existing {
			current = obj.DeepCopy()
		}
		spec, err := build(current)
		if err != nil {
			return err
		}
		if existing && metav1.GetControllerOf(obj) == nil {
			if err := edgeTakeOver(obj); err != nil {
				return err
			}
		}
		obj.Object["spec"] = spec
		stampGenerated(obj, cd, labels)
		if len(obj.GetLabels()) == 0 {
			// An empty map would differ from the stored object, which has none.
			obj.SetLabels(nil)
		}
		return nil
	})
}

// edgeTakeOver records the spec of an object Pennant did not create, once.
func edgeTakeOver(obj *unstructured.Unstructured) error {
	if _, ok := obj.GetAnnotations()[OriginalConfigAnnotation]; ok {
		return nil
	}
	raw, err := json.Marshal(obj.Object["spec"])
	if err != nil {
		return fmt.Errorf("%s %s.%s: recording the original spec: %w", obj.GetKind(), obj.GetName(), obj.GetNamespace(), err)
	}
	obj.SetAnnotations(merge(obj.GetAnnotations(), map[string]string{OriginalConfigAnnotation: string(raw)}))
	return nil
}

// edgeRestore gives back an object taken over by edgeUpsert: original spec, no canary owner, no
// original-configuration or drift annotations. Objects the canary created are left to the garbage
// collector.
func edgeRestore(ctx context.Context, c client.Client, owner string, cd *flaggerv1.Canary, ref edgeRef) error {
	obj, err := edgeGet(ctx, c, ref.gvk, cd.Namespace, ref.name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s.%s: %w", ref.gvk.Kind, ref.name, cd.Namespace, err)
	}
	raw, ok := obj.GetAnnotations()[OriginalConfigAnnotation]
	if !ok || foreignController(obj, cd) != nil {
		return nil
	}
	var spec any
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return fmt.Errorf("%s %s.%s: annotation %s: %w", ref.gvk.Kind, ref.name, cd.Namespace, OriginalConfigAnnotation, err)
	}
	if spec == nil {
		delete(obj.Object, "spec")
	} else {
		obj.Object["spec"] = spec
	}
	annotations := obj.GetAnnotations()
	for _, k := range []string{OriginalConfigAnnotation, FluxReconcileAnnotation, HelmDriftDetectionAnnotation} {
		delete(annotations, k)
	}
	obj.SetAnnotations(annotations)
	obj.SetOwnerReferences(slices.DeleteFunc(obj.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == cd.UID }))
	return c.Update(ctx, obj, client.FieldOwner(owner))
}

// edgeCheckOwners refuses, before anything is written, objects controlled by someone else.
func edgeCheckOwners(ctx context.Context, c client.Client, cd *flaggerv1.Canary, refs ...edgeRef) error {
	for _, ref := range refs {
		obj, err := edgeGet(ctx, c, ref.gvk, cd.Namespace, ref.name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s.%s: %w", ref.gvk.Kind, ref.name, cd.Namespace, err)
		}
		if r := foreignController(obj, cd); r != nil {
			return Invalidf("%s %s.%s is controlled by %s %s, not by canary %s", ref.gvk.Kind, ref.name, cd.Namespace, r.Kind, r.Name, cd.Key())
		}
	}
	return nil
}

// edgeCheckWeights refuses weights that route nothing.
func edgeCheckWeights(primaryWeight, canaryWeight int) error {
	if primaryWeight < 0 || canaryWeight < 0 || primaryWeight+canaryWeight == 0 {
		return fmt.Errorf("invalid weights primary=%d canary=%d", primaryWeight, canaryWeight)
	}
	return nil
}

// edgeToUnstructured converts a private spec struct to the JSON-like map the API server returns
// (integers as int64), so that unchanged objects compare equal and are not written.
func edgeToUnstructured(v any) (map[string]any, error) {
	return runtime.DefaultUnstructuredConverter.ToUnstructured(v)
}

// edgeKeep copies the spec keys Pennant does not manage from the existing object.
func edgeKeep(spec map[string]any, existing *unstructured.Unstructured, keys ...string) {
	if existing == nil {
		return
	}
	for _, k := range keys {
		if v, ok, _ := unstructured.NestedFieldCopy(existing.Object, "spec", k); ok {
			spec[k] = v
		}
	}
}

// edgeMatch is a request match of spec.service.match or spec.analysis.match.
type edgeMatch struct {
	field                                string // for messages, e.g. spec.analysis.match[0]
	uri, method, authority, scheme       *flaggerv1.StringMatch
	headers, withoutHeaders, queryParams map[string]flaggerv1.StringMatch
	ignoreURICase                        bool
}

// edgeServiceMatches returns spec.service.match. The mesh-only fields (port, sourceLabels,
// gateways, sourceNamespace) mean nothing at an ingress and are ignored.
func edgeServiceMatches(cd *flaggerv1.Canary) []edgeMatch {
	var out []edgeMatch
	for i, m := range cd.Spec.Service.Match {
		out = append(out, edgeMatch{
			field: fmt.Sprintf("spec.service.match[%d]", i),
			uri:   m.URI, method: m.Method, authority: m.Authority, scheme: m.Scheme,
			headers: m.Headers, withoutHeaders: m.WithoutHeaders, queryParams: m.QueryParams,
			ignoreURICase: m.IgnoreURICase,
		})
	}
	return out
}

// edgeABMatches returns spec.analysis.match (A/B testing), sourceLabels ignored.
func edgeABMatches(cd *flaggerv1.Canary) []edgeMatch {
	a := cd.GetAnalysis()
	if a == nil {
		return nil
	}
	var out []edgeMatch
	for i, m := range a.Match {
		out = append(out, edgeMatch{
			field: fmt.Sprintf("spec.analysis.match[%d]", i),
			uri:   m.URI, method: m.Method, authority: m.Authority, scheme: m.Scheme,
			headers: m.Headers, withoutHeaders: m.WithoutHeaders, queryParams: m.QueryParams,
			ignoreURICase: m.IgnoreURICase,
		})
	}
	return out
}

// edgeStringMatch returns the kind (exact, prefix, suffix, regex, or "" for an empty match) and
// value of an Istio string match; the first field set wins.
func edgeStringMatch(s flaggerv1.StringMatch) (kind, value string) {
	switch {
	case s.Exact != "":
		return "exact", s.Exact
	case s.Prefix != "":
		return "prefix", s.Prefix
	case s.Suffix != "":
		return "suffix", s.Suffix
	case s.Regex != "":
		return "regex", s.Regex
	}
	return "", ""
}

// edgeSortedKeys returns the keys of a match map in order, so that generated objects are stable.
func edgeSortedKeys(m map[string]flaggerv1.StringMatch) []string {
	return slices.Sorted(maps.Keys(m))
}

// weightedObject is a routing object named after the apex Service whose spec carries the primary
// and canary weights: Gloo's RouteTable, Contour's HTTPProxy, Traefik's TraefikService.
type weightedObject struct {
	gvk schema.GroupVersionKind
	// selector is the target's selector label, for the object's labels (see apexLabels).
	selector SelectorFunc
	// spec builds the desired spec for the weights, from the existing object when there is one.
	spec func(cd *flaggerv1.Canary, primaryWeight, canaryWeight int, existing *unstructured.Unstructured) (map[string]any, error)
	// weights reads the weights of an object.
	weights func(obj *unstructured.Unstructured, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, err error)
}

// reconcile creates or updates the object, keeping its current weights (100/0 for a new one).
func (w weightedObject) reconcile(ctx context.Context, c client.Client, owner string, cd *flaggerv1.Canary) error {
	labels, err := apexLabels(ctx, w.selector, cd)
	if err != nil {
		return err
	}
	return edgeUpsert(ctx, c, owner, cd, w.gvk, cd.GetServiceName(), labels, func(existing *unstructured.Unstructured) (map[string]any, error) {
		primaryWeight, canaryWeight := 100, 0
		if existing != nil {
			if p, c, err := w.weights(existing, cd); err == nil {
				primaryWeight, canaryWeight = p, c
			}
		}
		return w.spec(cd, primaryWeight, canaryWeight, existing)
	})
}

// setRoutes sets the weights of the object, which must exist.
func (w weightedObject) setRoutes(ctx context.Context, c client.Client, owner string, cd *flaggerv1.Canary, primaryWeight, canaryWeight int) error {
	if err := edgeCheckWeights(primaryWeight, canaryWeight); err != nil {
		return fmt.Errorf("%s %s.%s: %w", w.gvk.Kind, cd.GetServiceName(), cd.Namespace, err)
	}
	// No labels added: reconcile has, and setting the weights must work without the target (the
	// selector reads it), to send the traffic back to the primary when the target is gone.
	return edgeUpsert(ctx, c, owner, cd, w.gvk, cd.GetServiceName(), nil, func(existing *unstructured.Unstructured) (map[string]any, error) {
		if existing == nil {
			return nil, fmt.Errorf("%s %s.%s not found: the router has not reconciled it yet", w.gvk.Kind, cd.GetServiceName(), cd.Namespace)
		}
		return w.spec(cd, primaryWeight, canaryWeight, existing)
	})
}

// getRoutes reads the weights of the object; these providers do not mirror.
func (w weightedObject) getRoutes(ctx context.Context, c client.Client, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	obj, err := edgeGet(ctx, c, w.gvk, cd.Namespace, cd.GetServiceName())
	if err != nil {
		return 0, 0, false, fmt.Errorf("%s %s.%s: %w", w.gvk.Kind, cd.GetServiceName(), cd.Namespace, err)
	}
	primaryWeight, canaryWeight, err = w.weights(obj, cd)
	return primaryWeight, canaryWeight, false, err
}
