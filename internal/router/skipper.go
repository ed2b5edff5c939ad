package router

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Skipper annotations and the predicates that put the canary Ingress's routes in front of the
// original's (Weight(100)) or switch them off (False()).
const (
	skipperBackendWeightsAnnotation = "zalando.org/backend-weights"
	skipperPredicateAnnotation      = "zalando.org/skipper-predicate"
	skipperRouteWeight              = "Weight(100)"
	skipperRouteDisabled            = "False()"
)

// SkipperRouter is the router of the skipper provider. It copies the Ingress named by
// spec.ingressRef into <ingress>-canary, where every path whose backend is the apex Service <svc>
// points at <svc>-primary and is repeated, after the rule's other paths, for <svc>-canary. Skipper
// splits the traffic by the zalando.org/backend-weights annotation ({"<svc>-canary":c,
// "<svc>-primary":p}); zalando.org/skipper-predicate starts with Weight(100), so that the canary
// Ingress's routes win over the original's, or with False() once the canary weight is back to 0,
// which hands the traffic back to the original Ingress. The original's own predicate follows.
//
// The original Ingress is never modified; Finalize deletes the canary Ingress.
type SkipperRouter struct {
	client client.Client
	owner  string
}

var (
	_ Interface = (*SkipperRouter)(nil)
	_ Validator = (*SkipperRouter)(nil)
)

// NewSkipper returns the skipper router.
func NewSkipper(c client.Client, o Options) *SkipperRouter {
	return &SkipperRouter{client: c, owner: o.FieldOwner}
}

// Validate requires spec.ingressRef.
func (r *SkipperRouter) Validate(cd *flaggerv1.Canary) error {
	return validateIngressRef(cd, "skipper")
}

// skipperRoutes is the state of the canary Ingress's routes.
type skipperRoutes struct {
	primary, canary int
	disabled        bool
}

// Reconcile creates or updates <ingress>-canary from the original Ingress, keeping its weights; a
// new canary Ingress sends all traffic to the primary.
func (r *SkipperRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	return r.apply(ctx, cd, func(current *networkingv1.Ingress) skipperRoutes {
		if current != nil {
			if p, c, err := skipperWeights(current, cd); err == nil {
				disabled := strings.HasPrefix(current.Annotations[skipperPredicateAnnotation], skipperRouteDisabled)
				return skipperRoutes{primary: p, canary: c, disabled: disabled}
			}
		}
		return skipperRoutes{primary: 100}
	})
}

// SetRoutes sets the backend weights; a canary weight of 0 switches the canary Ingress's routes off.
// Mirroring is not supported.
func (r *SkipperRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	want := skipperRoutes{primary: primaryWeight, canary: canaryWeight, disabled: canaryWeight == 0}
	return r.apply(ctx, cd, func(*networkingv1.Ingress) skipperRoutes { return want })
}

// GetRoutes reads the backend weights of the canary Ingress.
func (r *SkipperRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	if err := r.Validate(cd); err != nil {
		return 0, 0, false, err
	}
	ing := &networkingv1.Ingress{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: canaryIngressName(cd)}, ing); err != nil {
		return 0, 0, false, fmt.Errorf("canary ingress %s.%s: %w", canaryIngressName(cd), cd.Namespace, err)
	}
	primaryWeight, canaryWeight, err = skipperWeights(ing, cd)
	return primaryWeight, canaryWeight, false, err
}

// Finalize deletes the canary Ingress, so that the original Ingress serves the traffic again.
func (r *SkipperRouter) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	if cd.Spec.IngressRef == nil || cd.Spec.IngressRef.Name == "" {
		return nil
	}
	ing := &networkingv1.Ingress{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: canaryIngressName(cd)}
	if err := r.client.Get(ctx, key, ing); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("canary ingress %s.%s: %w", key.Name, key.Namespace, err)
	}
	if ref := foreignController(ing, cd); ref != nil {
		return Invalidf("Ingress %s.%s is controlled by %s %s, not by canary %s", key.Name, key.Namespace, ref.Kind, ref.Name, cd.Key())
	}
	err := r.client.Delete(ctx, ing, client.Preconditions{UID: &ing.UID, ResourceVersion: &ing.ResourceVersion})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting canary ingress %s.%s: %w", key.Name, key.Namespace, err)
	}
	return nil
}

// apply writes <ingress>-canary: the original's spec with the primary and canary paths, its labels
// and annotations, and the routes that routes returns from the current canary Ingress (nil when it
// does not exist yet).
func (r *SkipperRouter) apply(ctx context.Context, cd *flaggerv1.Canary, routes func(current *networkingv1.Ingress) skipperRoutes) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	src, err := getSourceIngress(ctx, r.client, cd)
	if err != nil {
		return err
	}
	spec, err := skipperSpec(src, cd)
	if err != nil {
		return err
	}
	ing := newCanaryIngress(cd)
	return upsert(ctx, r.client, r.owner, cd, ing, func(existing bool) error {
		var current *networkingv1.Ingress
		if existing {
			current = ing.DeepCopy()
		}
		annotations, err := skipperAnnotations(src.Annotations, routes(current), cd)
		if err != nil {
			return err
		}
		ing.Labels = copySourceMetadata(src.Labels, nil)
		ing.Annotations = annotations
		ing.Spec = *spec
		setGenerated(ing, cd)
		return nil
	})
}

// skipperSpec is the original Ingress's spec with each path to the apex Service switched to
// <svc>-primary and repeated for <svc>-canary at the end of its rule.
func skipperSpec(src *networkingv1.Ingress, cd *flaggerv1.Canary) (*networkingv1.IngressSpec, error) {
	apex, primary, canary := cd.GetServiceNames()
	spec := src.Spec.DeepCopy()
	found := false
	added := map[*networkingv1.HTTPIngressRuleValue][]networkingv1.HTTPIngressPath{}
	var rules []*networkingv1.HTTPIngressRuleValue
	forEachIngressPath(spec, func(rule *networkingv1.HTTPIngressRuleValue, p *networkingv1.HTTPIngressPath) {
		if p.Backend.Service == nil || p.Backend.Service.Name != apex {
			return
		}
		found = true
		p.Backend.Service.Name = primary
		c := *p.DeepCopy()
		c.Backend.Service.Name = canary
		if _, ok := added[rule]; !ok {
			rules = append(rules, rule)
		}
		added[rule] = append(added[rule], c)
	})
	if !found {
		return nil, noIngressBackendError(src, apex, cd)
	}
	for _, rule := range rules {
		rule.Paths = append(rule.Paths, added[rule]...)
	}
	return spec, nil
}

// skipperAnnotations are the original's annotations with the backend weights and the predicate
// (Weight(100) or False(), then the original's predicate).
func skipperAnnotations(src map[string]string, routes skipperRoutes, cd *flaggerv1.Canary) (map[string]string, error) {
	_, primary, canary := cd.GetServiceNames()
	weights, err := json.Marshal(map[string]int{primary: routes.primary, canary: routes.canary})
	if err != nil {
		return nil, err
	}
	out := copySourceMetadata(src, nil)
	out[skipperBackendWeightsAnnotation] = string(weights)
	first := skipperRouteWeight
	if routes.disabled {
		first = skipperRouteDisabled
	}
	out[skipperPredicateAnnotation] = skipperPredicate(src[skipperPredicateAnnotation], first)
	return out, nil
}

// skipperPredicate puts first in front of the predicates of raw, dropping the ones Pennant manages.
func skipperPredicate(raw, first string) string {
	predicates := []string{first}
	for _, p := range strings.Split(raw, "&&") {
		p = strings.TrimSpace(p)
		if p == "" || p == skipperRouteWeight || p == skipperRouteDisabled {
			continue
		}
		predicates = append(predicates, p)
	}
	return strings.Join(predicates, " && ")
}

// skipperWeights reads the primary and canary weights of a canary Ingress.
func skipperWeights(ing *networkingv1.Ingress, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, err error) {
	_, primary, canary := cd.GetServiceNames()
	raw, ok := ing.Annotations[skipperBackendWeightsAnnotation]
	if !ok {
		return 0, 0, fmt.Errorf("canary ingress %s.%s has no %s annotation", ing.Name, ing.Namespace, skipperBackendWeightsAnnotation)
	}
	var weights map[string]int
	if err := json.Unmarshal([]byte(raw), &weights); err != nil {
		return 0, 0, fmt.Errorf("canary ingress %s.%s: annotation %s: %w", ing.Name, ing.Namespace, skipperBackendWeightsAnnotation, err)
	}
	p, okP := weights[primary]
	c, okC := weights[canary]
	if !okP || !okC {
		return 0, 0, fmt.Errorf("canary ingress %s.%s: annotation %s=%s has no weight for %s and %s",
			ing.Name, ing.Namespace, skipperBackendWeightsAnnotation, raw, primary, canary)
	}
	return p, c, nil
}
