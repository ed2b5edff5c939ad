package router

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const (
	// KumaMeshAnnotation on the Canary names the Kuma mesh of its TrafficRoute ("default" when absent).
	KumaMeshAnnotation = "kuma.io/mesh"
	kumaDefaultMesh    = "default"
	kumaServiceTag     = "kuma.io/service"
)

var kumaTrafficRouteGVK = schema.GroupVersionKind{Group: "kuma.io", Version: "v1alpha1", Kind: "TrafficRoute"}

// KumaRouter splits traffic with a cluster-scoped Kuma TrafficRoute (kuma.io/v1alpha1) named after the
// apex Service, in the mesh named by the canary's kuma.io/mesh annotation:
//
//	mesh: <kuma.io/mesh or "default">
//	spec:
//	  sources:      [{match: {kuma.io/service: "*"}}]
//	  destinations: [{match: {kuma.io/service: <svc>_<ns>_svc_<port>}}]
//	  conf:
//	    split:
//	    - {weight: <primary>, destination: {kuma.io/service: <svc>-primary_<ns>_svc_<port>}}
//	    - {weight: <canary>,  destination: {kuma.io/service: <svc>-canary_<ns>_svc_<port>}}
//
// A cluster-scoped object cannot be owned by a namespaced Canary, so the TrafficRoute has no owner
// reference (an owner reference to this canary left by Flagger is removed) and is not garbage
// collected with the Canary. As names are cluster-wide, an existing TrafficRoute whose destination
// is a service of another namespace belongs to another canary and is refused. Canary weights only:
// no A/B, blue/green mirroring or session affinity.
type KumaRouter struct {
	client   client.Client
	owner    string
	selector SelectorFunc
}

var _ Interface = (*KumaRouter)(nil)

// NewKuma returns the Kuma TrafficRoute router.
func NewKuma(c client.Client, o Options) *KumaRouter {
	return &KumaRouter{client: c, owner: o.FieldOwner, selector: o.Selector}
}

func (r *KumaRouter) trafficRoute(cd *flaggerv1.Canary) *unstructured.Unstructured {
	return meshObject(kumaTrafficRouteGVK, "", cd.GetServiceName())
}

// kumaService is the kuma.io/service tag Kuma gives the port of a Kubernetes Service.
func kumaService(cd *flaggerv1.Canary, service string) string {
	return fmt.Sprintf("%s_%s_svc_%d", service, cd.Namespace, cd.Spec.Service.Port)
}

// kumaMesh is the mesh named by the canary's kuma.io/mesh annotation, "default" when absent or empty.
func kumaMesh(cd *flaggerv1.Canary) string {
	if m := cd.Annotations[KumaMeshAnnotation]; m != "" {
		return m
	}
	return kumaDefaultMesh
}

// Reconcile creates or updates the TrafficRoute, keeping the weights of an existing route that splits
// between the primary and the canary (a new one sends everything to the primary).
func (r *KumaRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	apex, primary, canary := cd.GetServiceNames()
	labels, err := apexLabels(ctx, r.selector, cd)
	if err != nil {
		return err
	}
	tr := r.trafficRoute(cd)
	return upsert(ctx, r.client, r.owner, cd, tr, func(existing bool) error {
		primaryWeight, canaryWeight := 100, 0
		if existing {
			if err := r.checkNamespace(tr, cd); err != nil {
				return err
			}
			if p, c, ok := kumaWeights(tr, primary, canary); ok {
				primaryWeight, canaryWeight = p, c
			}
		}
		r.stamp(tr, cd, labels)
		tr.Object["mesh"] = kumaMesh(cd)
		spec, _, err := unstructured.NestedMap(tr.Object, "spec")
		if err != nil || spec == nil {
			spec = map[string]any{}
		}
		spec["sources"] = []any{map[string]any{"match": map[string]any{kumaServiceTag: "*"}}}
		spec["destinations"] = []any{map[string]any{"match": map[string]any{kumaServiceTag: kumaService(cd, apex)}}}
		tr.Object["spec"] = spec
		return setKumaSplit(tr, cd, primaryWeight, canaryWeight)
	})
}

// stamp sets the labels (apexLabels) and the generated annotations (without an owner reference).
// Like Flagger, a canary without apex annotations gets the annotation "<port>.service.kuma.io: http"
// on its TrafficRoute.
func (r *KumaRouter) stamp(tr *unstructured.Unstructured, cd *flaggerv1.Canary, labels map[string]string) {
	_, annotations := generatedMetadata(cd)
	if cd.Spec.Service.Apex == nil || cd.Spec.Service.Apex.Annotations == nil {
		annotations[fmt.Sprintf("%d.service.kuma.io", cd.Spec.Service.Port)] = "http"
	}
	tr.SetLabels(merge(tr.GetLabels(), labels))
	tr.SetAnnotations(merge(tr.GetAnnotations(), annotations))
	meshDropEmptyMetadata(tr)
	refs := tr.GetOwnerReferences()
	kept := refs[:0:0]
	for _, ref := range refs {
		if ref.UID != cd.UID {
			kept = append(kept, ref)
		}
	}
	if len(kept) != len(refs) {
		if len(kept) == 0 {
			kept = nil
		}
		tr.SetOwnerReferences(kept)
	}
}

// checkNamespace refuses a TrafficRoute whose destination is a service of another namespace: it is
// another canary's (TrafficRoutes are cluster-scoped, so two canaries with the same service name in
// different namespaces would share it).
func (r *KumaRouter) checkNamespace(tr *unstructured.Unstructured, cd *flaggerv1.Canary) error {
	dests, _, _ := unstructured.NestedSlice(tr.Object, "spec", "destinations")
	for _, d := range dests {
		m, _ := d.(map[string]any)
		match, _ := m["match"].(map[string]any)
		service, _ := match[kumaServiceTag].(string)
		parts := strings.Split(service, "_")
		if len(parts) == 4 && parts[2] == "svc" && parts[1] != cd.Namespace {
			return Invalidf("TrafficRoute %s routes %s of namespace %s: it belongs to another canary, not to canary %s "+
				"(TrafficRoutes are cluster-scoped: give this canary another spec.service.name)",
				tr.GetName(), service, parts[1], cd.Key())
		}
	}
	return nil
}

// SetRoutes writes the weights of the primary and canary destinations when they differ from the
// current ones. mirrored is ignored: the TrafficRoute has no mirroring.
func (r *KumaRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	tr := r.trafficRoute(cd)
	return upsert(ctx, r.client, r.owner, cd, tr, func(existing bool) error {
		if !existing {
			return fmt.Errorf("TrafficRoute %s not found: Reconcile creates it", tr.GetName())
		}
		if err := r.checkNamespace(tr, cd); err != nil {
			return err
		}
		return setKumaSplit(tr, cd, primaryWeight, canaryWeight)
	})
}

// GetRoutes reads the weights of the primary and canary destinations.
func (r *KumaRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	_, primary, canary := cd.GetServiceNames()
	tr := r.trafficRoute(cd)
	if err := r.client.Get(ctx, client.ObjectKeyFromObject(tr), tr); err != nil {
		return 0, 0, false, fmt.Errorf("TrafficRoute %s: %w", tr.GetName(), err)
	}
	primaryWeight, canaryWeight, _ = kumaWeights(tr, primary, canary)
	if primaryWeight == 0 && canaryWeight == 0 {
		return 0, 0, false, fmt.Errorf("TrafficRoute %s does not contain routes for %s and %s", tr.GetName(), primary, canary)
	}
	return primaryWeight, canaryWeight, false, nil
}

// Finalize does nothing, as in Flagger: the TrafficRoute is left in place.
func (r *KumaRouter) Finalize(context.Context, *flaggerv1.Canary) error { return nil }

// setKumaSplit sets spec.conf.split to the primary and the canary with the given weights, keeping the
// other fields of spec.conf.
func setKumaSplit(tr *unstructured.Unstructured, cd *flaggerv1.Canary, primaryWeight, canaryWeight int) error {
	_, primary, canary := cd.GetServiceNames()
	conf, _, err := unstructured.NestedMap(tr.Object, "spec", "conf")
	if err != nil || conf == nil {
		conf = map[string]any{}
	}
	conf["split"] = []any{
		map[string]any{"weight": int64(primaryWeight), "destination": map[string]any{kumaServiceTag: kumaService(cd, primary)}},
		map[string]any{"weight": int64(canaryWeight), "destination": map[string]any{kumaServiceTag: kumaService(cd, canary)}},
	}
	return unstructured.SetNestedMap(tr.Object, conf, "spec", "conf")
}

// kumaWeights returns the weights of the split destinations whose kuma.io/service is the primary's
// and the canary's; ok says both were found.
func kumaWeights(tr *unstructured.Unstructured, primary, canary string) (primaryWeight, canaryWeight int, ok bool) {
	split, _, _ := unstructured.NestedSlice(tr.Object, "spec", "conf", "split")
	var foundPrimary, foundCanary bool
	for _, s := range split {
		m, _ := s.(map[string]any)
		dest, _ := m["destination"].(map[string]any)
		service, _ := dest[kumaServiceTag].(string)
		w, isInt := meshInt(m["weight"])
		if !isInt {
			continue
		}
		switch name, _, _ := strings.Cut(service, "_"); name {
		case primary:
			primaryWeight, foundPrimary = w, true
		case canary:
			canaryWeight, foundCanary = w, true
		}
	}
	return primaryWeight, canaryWeight, foundPrimary && foundCanary
}
