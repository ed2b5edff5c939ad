package router

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// ApisixRouteGVK is the kind the apisix provider reads and writes.
var ApisixRouteGVK = schema.GroupVersionKind{Group: "apisix.apache.org", Version: "v2", Kind: "ApisixRoute"}

// apisixCanaryPriority puts the canary route in front of the original one, which has the same match.
const apisixCanaryPriority = 10000

// APISIXRouter is the router of the apisix provider. It copies the ApisixRoute named by
// spec.routeRef into <route>-<svc>-canary, keeping only its first HTTP route with a backend for the
// apex Service <svc>, with priority 10000 and two weighted backends, <svc>-primary and <svc>-canary,
// that take the original backend's port, resolveGranularity and subset. That HTTP route must have
// exactly one backend. Stream routes are not copied.
//
// The original ApisixRoute is never modified; the canary route is garbage-collected with the Canary.
type APISIXRouter struct {
	client client.Client
	owner  string
}

var (
	_ Interface = (*APISIXRouter)(nil)
	_ Validator = (*APISIXRouter)(nil)
)

// NewAPISIX returns the apisix router.
func NewAPISIX(c client.Client, o Options) *APISIXRouter {
	return &APISIXRouter{client: c, owner: o.FieldOwner}
}

// Validate requires spec.routeRef.
func (r *APISIXRouter) Validate(cd *flaggerv1.Canary) error {
	if cd.Spec.RouteRef == nil || cd.Spec.RouteRef.Name == "" {
		return Invalidf("canary %s: the apisix provider requires spec.routeRef", cd.Key())
	}
	return nil
}

// Reconcile creates or updates the canary route from the original, keeping its weights; a new
// canary route sends all traffic to the primary.
func (r *APISIXRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	return r.apply(ctx, cd, func(current *unstructured.Unstructured) (int64, int64) {
		if current != nil {
			if p, c, err := apisixWeights(current, cd); err == nil {
				return int64(p), int64(c)
			}
		}
		return 100, 0
	})
}

// SetRoutes sets the backend weights. Mirroring is not supported.
func (r *APISIXRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	if primaryWeight == 0 && canaryWeight == 0 {
		return fmt.Errorf("canary %s: the primary and canary weights cannot both be 0", cd.Key())
	}
	return r.apply(ctx, cd, func(*unstructured.Unstructured) (int64, int64) {
		return int64(primaryWeight), int64(canaryWeight)
	})
}

// GetRoutes reads the backend weights of the canary route.
func (r *APISIXRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	if err := r.Validate(cd); err != nil {
		return 0, 0, false, err
	}
	route := newApisixRoute(cd.Namespace, apisixCanaryName(cd))
	if err := r.client.Get(ctx, client.ObjectKeyFromObject(route), route); err != nil {
		return 0, 0, false, fmt.Errorf("canary ApisixRoute %s.%s: %w", route.GetName(), cd.Namespace, err)
	}
	primaryWeight, canaryWeight, err = apisixWeights(route, cd)
	return primaryWeight, canaryWeight, false, err
}

// Finalize does nothing: the canary route is garbage-collected with the Canary and the original
// route was never changed.
func (r *APISIXRouter) Finalize(context.Context, *flaggerv1.Canary) error { return nil }

// apply writes the canary route from the original, with the weights that weights returns from the
// current canary route (nil when it does not exist yet).
func (r *APISIXRouter) apply(ctx context.Context, cd *flaggerv1.Canary, weights func(current *unstructured.Unstructured) (primary, canary int64)) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	src := newApisixRoute(cd.Namespace, cd.Spec.RouteRef.Name)
	if err := r.client.Get(ctx, client.ObjectKeyFromObject(src), src); err != nil {
		return fmt.Errorf("ApisixRoute %s.%s (spec.routeRef of canary %s): %w", src.GetName(), cd.Namespace, cd.Key(), err)
	}
	httpRoute, backend, err := apisixSourceRoute(src, cd)
	if err != nil {
		return err
	}
	spec, _, err := unstructured.NestedMap(src.Object, "spec")
	if err != nil {
		return fmt.Errorf("ApisixRoute %s.%s: %w", src.GetName(), src.GetNamespace(), err)
	}
	delete(spec, "stream")

	route := newApisixRoute(cd.Namespace, apisixCanaryName(cd))
	return upsert(ctx, r.client, r.owner, cd, route, func(existing bool) error {
		var current *unstructured.Unstructured
		if existing {
			current = route.DeepCopy()
		}
		p, c := weights(current)
		_, primary, canary := cd.GetServiceNames()
		primaryBackend := runtime.DeepCopyJSON(backend)
		primaryBackend["serviceName"], primaryBackend["weight"] = primary, p
		canaryBackend := map[string]any{"serviceName": canary, "weight": c}
		for _, k := range []string{"servicePort", "resolveGranularity", "subset"} {
			if v, ok := backend[k]; ok {
				canaryBackend[k] = v
			}
		}
		h := runtime.DeepCopyJSON(httpRoute)
		h["priority"] = int64(apisixCanaryPriority)
		h["backends"] = []any{primaryBackend, canaryBackend}
		if _, ok := h["websocket"]; !ok {
			// Flagger's ApisixRoute type always writes websocket; false unless the original sets it.
			h["websocket"] = false
		}
		s := runtime.DeepCopyJSON(spec)
		s["http"] = []any{h}
		if err := unstructured.SetNestedMap(route.Object, s, "spec"); err != nil {
			return err
		}
		route.SetLabels(copySourceMetadata(src.GetLabels(), nil))
		route.SetAnnotations(copySourceMetadata(src.GetAnnotations(), nil))
		setGenerated(route, cd)
		if len(route.GetLabels()) == 0 {
			// An empty map would differ from the stored object, which has none.
			route.SetLabels(nil)
		}
		return nil
	})
}

// apisixSourceRoute finds the first HTTP route of the original with a backend for the apex Service
// and returns it with a copy of that backend, its only one.
func apisixSourceRoute(src *unstructured.Unstructured, cd *flaggerv1.Canary) (httpRoute, backend map[string]any, err error) {
	apex := cd.GetServiceName()
	routes, _, err := unstructured.NestedSlice(src.Object, "spec", "http")
	if err != nil {
		return nil, nil, fmt.Errorf("ApisixRoute %s.%s: %w", src.GetName(), src.GetNamespace(), err)
	}
	if len(routes) == 0 {
		return nil, nil, Invalidf("ApisixRoute %s.%s (spec.routeRef of canary %s) has no HTTP routes", src.GetName(), src.GetNamespace(), cd.Key())
	}
	for _, item := range routes {
		h, _ := item.(map[string]any)
		backends, _, _ := unstructured.NestedSlice(h, "backends")
		if !apisixHasBackend(backends, apex) {
			continue
		}
		if len(backends) != 1 {
			return nil, nil, Invalidf("ApisixRoute %s.%s (spec.routeRef of canary %s): HTTP route %v has %d backends, the apisix provider supports exactly one",
				src.GetName(), src.GetNamespace(), cd.Key(), h["name"], len(backends))
		}
		b, _ := backends[0].(map[string]any)
		return h, b, nil
	}
	return nil, nil, Invalidf("ApisixRoute %s.%s (spec.routeRef of canary %s) has no HTTP route with a backend for service %s",
		src.GetName(), src.GetNamespace(), cd.Key(), apex)
}

func apisixHasBackend(backends []any, service string) bool {
	for _, b := range backends {
		if m, ok := b.(map[string]any); ok && m["serviceName"] == service {
			return true
		}
	}
	return false
}

// apisixWeights reads the weights of the primary and canary backends of a canary route.
func apisixWeights(route *unstructured.Unstructured, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, err error) {
	_, primary, canary := cd.GetServiceNames()
	routes, _, err := unstructured.NestedSlice(route.Object, "spec", "http")
	if err != nil {
		return 0, 0, fmt.Errorf("canary ApisixRoute %s.%s: %w", route.GetName(), route.GetNamespace(), err)
	}
	for _, item := range routes {
		h, _ := item.(map[string]any)
		backends, _, _ := unstructured.NestedSlice(h, "backends")
		if !apisixHasBackend(backends, primary) {
			continue
		}
		weights := map[string]int64{}
		for _, b := range backends {
			m, _ := b.(map[string]any)
			name, _ := m["serviceName"].(string)
			if w, ok := m["weight"].(int64); ok {
				weights[name] = w
			}
		}
		p, okP := weights[primary]
		c, okC := weights[canary]
		if !okP || !okC {
			break
		}
		return int(p), int(c), nil
	}
	return 0, 0, fmt.Errorf("canary ApisixRoute %s.%s has no HTTP route with weighted backends %s and %s",
		route.GetName(), route.GetNamespace(), primary, canary)
}

func newApisixRoute(namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ApisixRouteGVK)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// apisixCanaryName is <routeRef.name>-<svc>-canary.
func apisixCanaryName(cd *flaggerv1.Canary) string {
	return fmt.Sprintf("%s-%s-canary", cd.Spec.RouteRef.Name, cd.GetServiceName())
}
