package router

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// traefikServiceGVK is the kind the Traefik router writes.
var traefikServiceGVK = schema.GroupVersionKind{Group: "traefik.io", Version: "v1alpha1", Kind: "TraefikService"}

// TraefikRouter is the traefik provider. It generates the TraefikService <svc> (traefik.io/v1alpha1),
// a weighted round robin of the <svc>-primary and <svc>-canary Services on spec.service.port, for
// an IngressRoute to use as its service. As in Flagger, the canary is listed only while its weight
// is above zero: Traefik drops a TraefikService whose Services have no endpoints, which is the
// case of the canary once it is scaled down. Traefik cannot match requests, so A/B testing is
// refused.
type TraefikRouter struct {
	client   client.Client
	owner    string
	selector SelectorFunc
}

var (
	_ Interface = (*TraefikRouter)(nil)
	_ Validator = (*TraefikRouter)(nil)
)

// NewTraefik returns the Traefik router.
func NewTraefik(c client.Client, o Options) *TraefikRouter {
	return &TraefikRouter{client: c, owner: o.FieldOwner, selector: o.Selector}
}

// Validate refuses A/B testing: a TraefikService splits all traffic by weight, so the matched
// share would be all of it.
func (r *TraefikRouter) Validate(cd *flaggerv1.Canary) error {
	if a := cd.GetAnalysis(); a != nil && len(a.Match) > 0 {
		return Invalidf("spec.analysis.match: the traefik provider cannot route by request match (A/B testing); use stepWeight(s) or iterations without match")
	}
	return nil
}

// Reconcile creates or updates the TraefikService, keeping the current weights.
func (r *TraefikRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	return r.object().reconcile(ctx, r.client, r.owner, cd)
}

// SetRoutes sets the weights of the TraefikService, which must exist.
func (r *TraefikRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	return r.object().setRoutes(ctx, r.client, r.owner, cd, primaryWeight, canaryWeight)
}

// GetRoutes reads the primary and canary weights; an absent canary has weight 0.
func (r *TraefikRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	return r.object().getRoutes(ctx, r.client, cd)
}

// Finalize gives back a TraefikService that existed before the canary with its original spec; one
// the canary created is left to the garbage collector.
func (r *TraefikRouter) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	return edgeRestore(ctx, r.client, r.owner, cd, edgeRef{traefikServiceGVK, cd.GetServiceName()})
}

// traefikWeightedService is a weighted round robin member, as written.
type traefikWeightedService struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Port      int64  `json:"port"`
	Weight    int64  `json:"weight"`
}

// traefikSpec is the TraefikService spec with the given weights; the sticky session setting of the
// weighted round robin is kept from the existing object.
func traefikSpec(cd *flaggerv1.Canary, primaryWeight, canaryWeight int, existing *unstructured.Unstructured) (map[string]any, error) {
	_, primary, canary := cd.GetServiceNames()
	port := int64(cd.Spec.Service.Port)
	services := []traefikWeightedService{{Name: primary, Namespace: cd.Namespace, Port: port, Weight: int64(primaryWeight)}}
	if canaryWeight > 0 {
		services = append(services, traefikWeightedService{Name: canary, Namespace: cd.Namespace, Port: port, Weight: int64(canaryWeight)})
	}
	weighted, err := edgeToUnstructured(&struct {
		Services []traefikWeightedService `json:"services"`
	}{services})
	if err != nil {
		return nil, err
	}
	if existing != nil {
		if sticky, ok, _ := unstructured.NestedFieldCopy(existing.Object, "spec", "weighted", "sticky"); ok {
			weighted["sticky"] = sticky
		}
	}
	return map[string]any{"weighted": weighted}, nil
}

// traefikWeights reads the primary and canary weights of a TraefikService.
func traefikWeights(ts *unstructured.Unstructured, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, err error) {
	_, primary, canary := cd.GetServiceNames()
	services, _, _ := unstructured.NestedSlice(ts.Object, "spec", "weighted", "services")
	found := false
	for _, s := range services {
		sm, _ := s.(map[string]any)
		name, _, _ := unstructured.NestedString(sm, "name")
		weight, _, _ := unstructured.NestedInt64(sm, "weight")
		switch name {
		case primary:
			primaryWeight, found = int(weight), true
		case canary:
			canaryWeight = int(weight)
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("TraefikService %s.%s has no weighted service %s", ts.GetName(), ts.GetNamespace(), primary)
	}
	return primaryWeight, canaryWeight, nil
}

// object is the TraefikService, whose spec carries the weights.
func (r *TraefikRouter) object() weightedObject {
	return weightedObject{gvk: traefikServiceGVK, selector: r.selector, spec: traefikSpec, weights: traefikWeights}
}
