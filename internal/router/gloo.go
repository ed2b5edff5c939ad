package router

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// The Gloo Edge kinds the Gloo router writes.
var (
	glooUpstreamGVK   = schema.GroupVersionKind{Group: "gloo.solo.io", Version: "v1", Kind: "Upstream"}
	glooRouteTableGVK = schema.GroupVersionKind{Group: "gateway.solo.io", Version: "v1", Kind: "RouteTable"}
)

// glooUpstreamNotCopied are the keys of an Upstream spec that are not copied from spec.upstreamRef:
// the upstream type (a generated upstream is always kube) and what Gloo itself writes.
var glooUpstreamNotCopied = []string{
	"kube", "static", "pipe", "aws", "awsEc2", "azure", "consul", "gcp", "ai",
	"discoveryMetadata", "namespacedStatuses",
}

// GlooRouter is the gloo provider (Gloo Edge). It generates, in the canary's namespace:
//
//   - the Upstreams <ns>-<svc>-primaryupstream-<port> and <ns>-<svc>-canaryupstream-<port>: kube
//     upstreams of the <svc>-primary and <svc>-canary Services on spec.service.port, selecting the
//     pods those Services select (kube.selector <label>: <value>-primary and <label>: <value>, as
//     Flagger copies the Services' selectors), carrying the configuration (TLS, circuit breakers, connection and load balancer settings...) of the
//     Upstream named by spec.upstreamRef, if any;
//   - the RouteTable <svc>, which a VirtualService delegates to: one route sending the traffic
//     matched by spec.service.match (by default everything under the parent's path) to both
//     upstreams by weight. For A/B testing the first route matches spec.analysis.match and a
//     second route sends the rest to the primary.
//
// Upstream names keep Flagger's scheme, which the builtin Gloo metric queries rely on.
type GlooRouter struct {
	client   client.Client
	owner    string
	selector SelectorFunc
}

var (
	_ Interface = (*GlooRouter)(nil)
	_ Validator = (*GlooRouter)(nil)
)

// NewGloo returns the Gloo Edge router.
func NewGloo(c client.Client, o Options) *GlooRouter {
	return &GlooRouter{client: c, owner: o.FieldOwner, selector: o.Selector}
}

// glooUpstreamNames returns the names of the generated primary and canary Upstreams.
func glooUpstreamNames(cd *flaggerv1.Canary) (primary, canary string) {
	apex, port := cd.GetServiceName(), cd.Spec.Service.Port
	return fmt.Sprintf("%s-%s-primaryupstream-%d", cd.Namespace, apex, port),
		fmt.Sprintf("%s-%s-canaryupstream-%d", cd.Namespace, apex, port)
}

// Validate rejects a malformed spec.upstreamRef and matches Gloo cannot express.
func (r *GlooRouter) Validate(cd *flaggerv1.Canary) error {
	if ref := cd.Spec.UpstreamRef; ref != nil {
		if ref.Name == "" {
			return Invalidf("spec.upstreamRef.name is required")
		}
		if ref.Kind != "" && ref.Kind != glooUpstreamGVK.Kind {
			return Invalidf("spec.upstreamRef.kind must be %s, not %q", glooUpstreamGVK.Kind, ref.Kind)
		}
		if ref.APIVersion != "" {
			if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != glooUpstreamGVK.Group {
				return Invalidf("spec.upstreamRef.apiVersion must be %s, not %q", glooUpstreamGVK.GroupVersion(), ref.APIVersion)
			}
		}
	}
	_, err := glooRoutes(cd, 100, 0)
	return err
}

// Reconcile creates or updates the two Upstreams and the RouteTable, keeping the current weights.
// Nothing is written when the upstreamRef target is missing or when one of the three objects is
// controlled by someone else.
func (r *GlooRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	config, err := r.upstreamConfig(ctx, cd)
	if err != nil {
		return err
	}
	primaryUpstream, canaryUpstream := glooUpstreamNames(cd)
	apex, primarySvc, canarySvc := cd.GetServiceNames()
	if err := edgeCheckOwners(ctx, r.client, cd,
		edgeRef{glooUpstreamGVK, primaryUpstream}, edgeRef{glooUpstreamGVK, canaryUpstream}, edgeRef{glooRouteTableGVK, apex},
	); err != nil {
		return err
	}
	primaryPods, canaryPods, err := r.podSelectors(ctx, cd)
	if err != nil {
		return err
	}
	for _, u := range []struct {
		name, service string
		pods          map[string]any
	}{{primaryUpstream, primarySvc, primaryPods}, {canaryUpstream, canarySvc, canaryPods}} {
		// No labels: Flagger puts the apex labels on the RouteTable only.
		err := edgeUpsert(ctx, r.client, r.owner, cd, glooUpstreamGVK, u.name, nil, func(existing *unstructured.Unstructured) (map[string]any, error) {
			return glooUpstreamSpec(cd, u.service, u.pods, config, existing), nil
		})
		if err != nil {
			return err
		}
	}
	return r.object().reconcile(ctx, r.client, r.owner, cd)
}

// SetRoutes sets the weights of the (matched) route of the RouteTable, which must exist.
func (r *GlooRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	return r.object().setRoutes(ctx, r.client, r.owner, cd, primaryWeight, canaryWeight)
}

// GetRoutes reads the weights of the primary and canary destinations of the first route.
func (r *GlooRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	return r.object().getRoutes(ctx, r.client, cd)
}

// Finalize gives back the objects that existed before the canary (none, unless the RouteTable or
// an Upstream was created by hand) with their original spec.
func (r *GlooRouter) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	primaryUpstream, canaryUpstream := glooUpstreamNames(cd)
	for _, ref := range []edgeRef{{glooRouteTableGVK, cd.GetServiceName()}, {glooUpstreamGVK, primaryUpstream}, {glooUpstreamGVK, canaryUpstream}} {
		if err := edgeRestore(ctx, r.client, r.owner, cd, ref); err != nil {
			return err
		}
	}
	return nil
}

// podSelectors are the kube.selector of the primary and canary Upstreams: the selectors of the
// <svc>-primary and <svc>-canary Services. nil without a SelectorFunc.
func (r *GlooRouter) podSelectors(ctx context.Context, cd *flaggerv1.Canary) (primary, canary map[string]any, err error) {
	if r.selector == nil {
		return nil, nil, nil
	}
	label, value, _, err := r.selector(ctx, cd)
	if err != nil {
		return nil, nil, err
	}
	return map[string]any{label: value + "-primary"}, map[string]any{label: value}, nil
}

// upstreamConfig returns the spec of the spec.upstreamRef Upstream (nil without a ref). The ref
// may point to another namespace and defaults to the canary's.
func (r *GlooRouter) upstreamConfig(ctx context.Context, cd *flaggerv1.Canary) (map[string]any, error) {
	ref := cd.Spec.UpstreamRef
	if ref == nil {
		return nil, nil
	}
	ns := ref.Namespace
	if ns == "" {
		ns = cd.Namespace
	}
	u, err := edgeGet(ctx, r.client, glooUpstreamGVK, ns, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, Invalidf("spec.upstreamRef: Upstream %s.%s not found", ref.Name, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("spec.upstreamRef: Upstream %s.%s: %w", ref.Name, ns, err)
	}
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	return spec, nil
}

// glooUpstreamSpec is a kube upstream of service on the canary port, selecting pods (when not nil),
// with the configuration copied from config. What Gloo's function discovery adds to an existing
// upstream is kept.
func glooUpstreamSpec(cd *flaggerv1.Canary, service string, pods, config map[string]any, existing *unstructured.Unstructured) map[string]any {
	spec := map[string]any{}
	if config != nil {
		spec = runtime.DeepCopyJSON(config)
	}
	for _, k := range glooUpstreamNotCopied {
		delete(spec, k)
	}
	kube := map[string]any{
		"serviceName":      service,
		"serviceNamespace": cd.Namespace,
		"servicePort":      int64(cd.Spec.Service.Port),
	}
	if pods != nil {
		kube["selector"] = pods
	}
	if existing != nil {
		if v, ok, _ := unstructured.NestedFieldCopy(existing.Object, "spec", "kube", "serviceSpec"); ok {
			kube["serviceSpec"] = v
		}
		for _, k := range []string{"discoveryMetadata", "namespacedStatuses"} {
			if v, ok, _ := unstructured.NestedFieldCopy(existing.Object, "spec", k); ok {
				spec[k] = v
			}
		}
	}
	spec["kube"] = kube
	return spec
}

// Gloo RouteTable routes, as written (gateway.solo.io/v1).
type (
	glooRoute struct {
		Matchers                []glooMatcher   `json:"matchers,omitempty"`
		InheritablePathMatchers *bool           `json:"inheritablePathMatchers,omitempty"`
		RouteAction             glooRouteAction `json:"routeAction"`
	}
	glooMatcher struct {
		Prefix          string             `json:"prefix,omitempty"`
		Exact           string             `json:"exact,omitempty"`
		Regex           string             `json:"regex,omitempty"`
		CaseSensitive   *bool              `json:"caseSensitive,omitempty"`
		Headers         []glooValueMatcher `json:"headers,omitempty"`
		QueryParameters []glooValueMatcher `json:"queryParameters,omitempty"`
		Methods         []string           `json:"methods,omitempty"`
	}
	glooValueMatcher struct {
		Name        string `json:"name"`
		Value       string `json:"value,omitempty"`
		Regex       bool   `json:"regex,omitempty"`
		InvertMatch bool   `json:"invertMatch,omitempty"`
	}
	glooRouteAction struct {
		Multi glooMulti `json:"multi"`
	}
	glooMulti struct {
		Destinations []glooWeightedDestination `json:"destinations"`
	}
	glooWeightedDestination struct {
		Destination glooDestination `json:"destination"`
		// Weight 0 is left out, as Flagger writes it (an unset weight is 0 to Gloo's API).
		Weight int64 `json:"weight,omitempty"`
	}
	glooDestination struct {
		Upstream glooResourceRef `json:"upstream"`
	}
	glooResourceRef struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
)

// hasPath reports whether the matcher sets a path.
func (m glooMatcher) hasPath() bool { return m.Prefix != "" || m.Exact != "" || m.Regex != "" }

// glooRouteTableSpec is the RouteTable spec with the given weights; the keys Pennant does not
// manage (weight, namespacedStatuses) are kept from the existing object.
func glooRouteTableSpec(cd *flaggerv1.Canary, primaryWeight, canaryWeight int, existing *unstructured.Unstructured) (map[string]any, error) {
	routes, err := glooRoutes(cd, primaryWeight, canaryWeight)
	if err != nil {
		return nil, err
	}
	spec, err := edgeToUnstructured(&struct {
		Routes []glooRoute `json:"routes"`
	}{routes})
	if err != nil {
		return nil, err
	}
	edgeKeep(spec, existing, "weight", "namespacedStatuses")
	return spec, nil
}

// glooRoutes builds the routes. Without a path in their matchers, routes inherit the path of the
// parent (the VirtualService route that delegates to the table), as Flagger's do; with one
// (spec.service.match[].uri), the path must lie under the parent's.
func glooRoutes(cd *flaggerv1.Canary, primaryWeight, canaryWeight int) ([]glooRoute, error) {
	var base []glooMatcher
	for _, m := range edgeServiceMatches(cd) {
		gm, err := glooMatcherFor(m)
		if err != nil {
			return nil, err
		}
		base = append(base, gm)
	}
	route := func(matchers []glooMatcher, p, c int) glooRoute {
		inherit := !slices.ContainsFunc(matchers, glooMatcher.hasPath)
		primary, canary := glooUpstreamNames(cd)
		return glooRoute{
			Matchers:                matchers,
			InheritablePathMatchers: &inherit,
			RouteAction: glooRouteAction{Multi: glooMulti{Destinations: []glooWeightedDestination{
				{Destination: glooDestination{Upstream: glooResourceRef{Name: primary, Namespace: cd.Namespace}}, Weight: int64(p)},
				{Destination: glooDestination{Upstream: glooResourceRef{Name: canary, Namespace: cd.Namespace}}, Weight: int64(c)},
			}}},
		}
	}
	ab := edgeABMatches(cd)
	if len(ab) == 0 {
		return []glooRoute{route(base, primaryWeight, canaryWeight)}, nil
	}
	// A/B: every service match combined with every analysis match (Gloo ORs the matchers of a
	// route), then the rest of the traffic to the primary.
	paths := base
	if len(paths) == 0 {
		paths = []glooMatcher{{}}
	}
	var matched []glooMatcher
	for _, p := range paths {
		for _, m := range ab {
			gm, err := glooMatcherFor(m)
			if err != nil {
				return nil, err
			}
			matched = append(matched, glooMerge(p, gm))
		}
	}
	return []glooRoute{route(matched, primaryWeight, canaryWeight), route(base, 100, 0)}, nil
}

// glooMerge narrows the service matcher s with the A/B matcher ab; a path or method in ab wins.
func glooMerge(s, ab glooMatcher) glooMatcher {
	out := s
	if ab.hasPath() {
		out.Prefix, out.Exact, out.Regex, out.CaseSensitive = ab.Prefix, ab.Exact, ab.Regex, ab.CaseSensitive
	}
	out.Headers = append(slices.Clone(s.Headers), ab.Headers...)
	out.QueryParameters = append(slices.Clone(s.QueryParameters), ab.QueryParameters...)
	if len(ab.Methods) > 0 {
		out.Methods = ab.Methods
	}
	return out
}

// glooMatcherFor translates an Istio-style match into a Gloo matcher.
func glooMatcherFor(m edgeMatch) (glooMatcher, error) {
	var gm glooMatcher
	if m.authority != nil || m.scheme != nil {
		return gm, Invalidf("%s: gloo cannot match on authority or scheme", m.field)
	}
	if m.uri != nil {
		switch kind, v := edgeStringMatch(*m.uri); kind {
		case "prefix", "":
			gm.Prefix = v
		case "exact":
			gm.Exact = v
		case "regex":
			gm.Regex = v
		case "suffix":
			gm.Regex = ".*" + regexp.QuoteMeta(v)
		}
		if m.ignoreURICase {
			gm.CaseSensitive = ptr.To(false)
		}
	}
	if m.method != nil {
		kind, v := edgeStringMatch(*m.method)
		if kind != "exact" {
			return gm, Invalidf("%s.method: gloo only matches methods exactly", m.field)
		}
		gm.Methods = []string{v}
	}
	for _, name := range edgeSortedKeys(m.headers) {
		gm.Headers = append(gm.Headers, glooValueMatcherFor(name, m.headers[name], false))
	}
	for _, name := range edgeSortedKeys(m.withoutHeaders) {
		gm.Headers = append(gm.Headers, glooValueMatcherFor(name, m.withoutHeaders[name], true))
	}
	for _, name := range edgeSortedKeys(m.queryParams) {
		gm.QueryParameters = append(gm.QueryParameters, glooValueMatcherFor(name, m.queryParams[name], false))
	}
	return gm, nil
}

// glooValueMatcherFor matches a header or query parameter: exactly, by RE2 regex (prefix and
// suffix become regexes) or, for an empty match, by presence.
func glooValueMatcherFor(name string, s flaggerv1.StringMatch, invert bool) glooValueMatcher {
	vm := glooValueMatcher{Name: name, InvertMatch: invert}
	switch kind, v := edgeStringMatch(s); kind {
	case "exact":
		vm.Value = v
	case "regex":
		vm.Value, vm.Regex = v, true
	case "prefix":
		vm.Value, vm.Regex = regexp.QuoteMeta(v)+".*", true
	case "suffix":
		vm.Value, vm.Regex = ".*"+regexp.QuoteMeta(v), true
	}
	return vm
}

// glooWeights reads the primary and canary weights of the first route of a RouteTable.
func glooWeights(rt *unstructured.Unstructured, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, err error) {
	primary, canary := glooUpstreamNames(cd)
	routes, _, _ := unstructured.NestedSlice(rt.Object, "spec", "routes")
	if len(routes) == 0 {
		return 0, 0, fmt.Errorf("RouteTable %s.%s has no routes", rt.GetName(), rt.GetNamespace())
	}
	route, _ := routes[0].(map[string]any)
	dests, _, _ := unstructured.NestedSlice(route, "routeAction", "multi", "destinations")
	found := false
	for _, d := range dests {
		dm, _ := d.(map[string]any)
		name, _, _ := unstructured.NestedString(dm, "destination", "upstream", "name")
		weight, _, _ := unstructured.NestedInt64(dm, "weight")
		switch name {
		case primary:
			primaryWeight, found = int(weight), true
		case canary:
			canaryWeight = int(weight)
		}
	}
	if !found {
		return 0, 0, fmt.Errorf("RouteTable %s.%s has no destination %s", rt.GetName(), rt.GetNamespace(), primary)
	}
	return primaryWeight, canaryWeight, nil
}

// ---- Helpers shared by the Gloo, Contour and Traefik routers ("edge" routers). ----

// edgeRef names a routing object in the canary's namespace.
type edgeRef struct {
	gvk  schema.GroupVersionKind
	name string
}

// object is the RouteTable, whose routes carry the weights.
func (r *GlooRouter) object() weightedObject {
	return weightedObject{gvk: glooRouteTableGVK, selector: r.selector, spec: glooRouteTableSpec, weights: glooWeights}
}
