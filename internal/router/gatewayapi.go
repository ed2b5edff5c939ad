package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// GatewayManagedAnnotation records on a generated route the rule filters Pennant generated from the
// Canary and the session affinity cookie names it used, as JSON. On the next write, filters of the
// route that are not in this record (and are not Pennant's mirror or Set-Cookie filters) are the
// user's and are kept.
const GatewayManagedAnnotation = "pennant.dev/gateway-managed"

const (
	gwGatewayGroup = gatewayv1.GroupName
	gwGatewayKind  = "Gateway"
	gwServiceKind  = "Service"
	gwCORSMaxAge   = 5 // the CRD default of corsPolicy maxAge, in seconds
)

var (
	// GEP-2257 durations, the format of HTTPRoute timeouts.
	gwDurationPattern = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)
	gwHTTPMethods     = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)

// GatewayAPIRouter is the router of the gatewayapi:v1 and gatewayapi:v1beta1 providers. It generates,
// in the canary's namespace, an HTTPRoute named after the apex Service (apiVersion
// gateway.networking.k8s.io/<version>) or, for gRPC services, a GRPCRoute (always v1, see gwIsGRPC
// and grpcroute.go):
//
//	spec:
//	  parentRefs: <service.gatewayRefs>
//	  hostnames:  <service.hosts>
//	  rules:
//	  - matches: <service.match, default PathPrefix />   (A/B: analysis.match AND service.match)
//	    filters: <service.headers, service.rewrite, service.corsPolicy, service.mirror>
//	             + RequestMirror to <svc>-canary while mirrored
//	    timeouts: {request: <service.timeout>, backendRequest: <service.backendTimeout>}
//	    backendRefs: [{<svc>-primary:<port>, weight}, {<svc>-canary:<port>, weight}]
//	  - (A/B only) the same matches without the analysis ones, to <svc>-primary only
//
// With analysis.sessionAffinity, the rules and Set-Cookie filters of planAffinity, with the cookies
// of the canary status: while the canary has weight, responses of the canary backend set the run's
// cookie and a first rule sends requests carrying it to the canary (and, with primaryCookieName,
// responses of the primary set a primary cookie that a second rule pins to the primary for one
// analysis interval); once the canary weight is back to 0, the first rule instead expires the cookie
// of the finished run (Max-Age=-1) while routing like the weighted rule.
//
// What Pennant owns on the route: parentRefs, hostnames, the list of rules (a rule a user adds is
// not kept), their matches, backendRefs and timeouts, and the filters it generates. What it keeps when the route already exists (Flagger regenerates the
// route from scratch, issues #1857 and #1888):
//   - every filter of a rule or of a backendRef that Pennant did not generate (ExtensionRef,
//     RequestRedirect, a URLRewrite or CORS filter set by hand, RequestMirror to other backends, ...),
//     in its order, after Pennant's. A filter of a type that can appear only once (URLRewrite, CORS,
//     or RequestRedirect next to a generated URLRewrite) is dropped when the Canary generates one;
//   - the header operations a user added to a RequestHeaderModifier or ResponseHeaderModifier,
//     merged into Pennant's filter of the same type unless Pennant sets the same header;
//   - a rule's name (on the rule of the same role), retry and sessionPersistence;
//   - labels and annotations written by others (AWS Gateway API controller, Flagger issue #1732).
//
// Filters are told apart with GatewayManagedAnnotation. A new rule (e.g. the sticky rule when a canary
// run starts) inherits the user filters of the weighted rule; a route Pennant takes over with a single
// rule lends that rule's filters to all of Pennant's rules.
//
// A route that exists without a controller is taken over: its spec is saved in
// OriginalConfigAnnotation and Finalize restores it and releases the route. A route controlled by
// another object is refused (InvalidSpecError).
type GatewayAPIRouter struct {
	client  client.Client
	owner   string
	version string
	// selector names the target's selector label, for the route's labels (apexLabels).
	selector SelectorFunc
}

var (
	_ Interface             = (*GatewayAPIRouter)(nil)
	_ Validator             = (*GatewayAPIRouter)(nil)
	_ SessionAffinityRouter = (*GatewayAPIRouter)(nil)
)

// NewGatewayAPI returns the Gateway API router writing HTTPRoutes of the given API version, "v1" or
// "v1beta1" (the provider gatewayapi:<version>).
func NewGatewayAPI(c client.Client, o Options, version string) *GatewayAPIRouter {
	return &GatewayAPIRouter{client: c, owner: o.FieldOwner, version: version, selector: o.Selector}
}

func (r *GatewayAPIRouter) provider() string { return "gatewayapi:" + r.version }

// Validate reports, without writing anything, what of the canary's spec the Gateway API cannot
// express: a missing gatewayRefs, matches the route cannot carry, malformed timeouts, CORS and
// session affinity settings, and for a GRPCRoute the HTTP-only settings.
func (r *GatewayAPIRouter) Validate(cd *flaggerv1.Canary) error {
	_, err := r.plan(cd)
	return err
}

// Reconcile creates or updates the route, keeping the weights, mirroring and session cookies it has.
func (r *GatewayAPIRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	p, err := r.plan(cd)
	if err != nil {
		return err
	}
	// Only Reconcile labels the route: SetRoutes must work without the target (the selector reads
	// it), to send the traffic back to the primary when the target is gone.
	if p.labels, err = apexLabels(ctx, r.selector, cd); err != nil {
		return err
	}
	return r.upsertRoute(ctx, p, func(k gwRouteKind, obj client.Object, existing bool) error {
		obs := p.observe(k, obj, existing)
		primaryWeight, canaryWeight := 100, 0
		if obs.weighted != nil {
			primaryWeight, canaryWeight = obs.primaryWeight, obs.canaryWeight
		}
		return p.write(k, obj, obs, primaryWeight, canaryWeight, obs.mirrored)
	})
}

// SetRoutes writes the weights (and the mirror filter, and the session affinity rules) when they
// differ from the route's. The route must exist: Reconcile creates it.
func (r *GatewayAPIRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, mirrored bool) error {
	p, err := r.plan(cd)
	if err != nil {
		return err
	}
	return r.upsertRoute(ctx, p, func(k gwRouteKind, obj client.Object, existing bool) error {
		if !existing {
			return fmt.Errorf("%s %s.%s not found: Reconcile creates it", k.kind(), obj.GetName(), obj.GetNamespace())
		}
		return p.write(k, obj, p.observe(k, obj, existing), primaryWeight, canaryWeight, mirrored)
	})
}

// GetRoutes reads the weights of the rule splitting between the primary and the canary, and whether
// it mirrors to the canary. Like Flagger, it fails while a parent Gateway has not accepted the
// route's current generation.
func (r *GatewayAPIRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	p, err := r.plan(cd)
	if err != nil {
		return 0, 0, false, err
	}
	k, obj, err := r.getRoute(ctx, p)
	if err != nil {
		return 0, 0, false, err
	}
	if err := gwCheckAccepted(k, obj); err != nil {
		return 0, 0, false, err
	}
	obs := p.observe(k, obj, true)
	if obs.weighted == nil {
		return 0, 0, false, fmt.Errorf("%s %s.%s has no rule splitting traffic between %s and %s",
			k.kind(), obj.GetName(), obj.GetNamespace(), p.primary, p.canary)
	}
	return obs.primaryWeight, obs.canaryWeight, obs.mirrored, nil
}

// SessionCookies reads the session cookies the route hands out (none when it does not exist).
func (r *GatewayAPIRouter) SessionCookies(ctx context.Context, cd *flaggerv1.Canary) (SessionCookies, error) {
	p, err := r.plan(cd)
	if err != nil {
		return SessionCookies{}, err
	}
	k, obj, err := r.getRoute(ctx, p)
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return SessionCookies{}, nil
	}
	if err != nil {
		return SessionCookies{}, err
	}
	return p.observe(k, obj, true).cookies, nil
}

// Finalize restores a route Pennant took over, as the Istio router does: the spec of kubectl's
// last-applied configuration, else the one saved in OriginalConfigAnnotation. The route is released:
// Pennant's owner reference and annotations are removed, so that deleting the Canary does not delete
// it. A route Pennant created is left to garbage collection, and a route controlled by someone else
// (or none at all, or a route kind the API server does not serve) is left alone.
func (r *GatewayAPIRouter) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	p := &gwPlan{cd: cd, version: r.version, grpc: gwIsGRPC(cd.Spec.Service)}
	p.apex, p.primary, p.canary = cd.GetServiceNames()
	_, obj, err := r.getRoute(ctx, p)
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return nil
	case err != nil:
		return err
	case foreignController(obj, cd) != nil:
		return nil
	}
	if gwStoredSpec(obj) == nil {
		return nil
	}
	err = r.upsertRoute(ctx, p, func(k gwRouteKind, obj client.Object, existing bool) error {
		if !existing {
			return errGwNoRoute
		}
		return gwRestore(k, obj, cd)
	})
	if errors.Is(err, errGwNoRoute) {
		return nil
	}
	return err
}

var (
	errGwNoRoute   = errors.New("no route")
	errGwOtherKind = errors.New("the route is of the other kind")
)

// upsertRoute runs upsert on the canary's route. The kind is gwIsGRPC's, unless only a route of
// the other kind exists, controlled by this canary: that one is kept (the kind of an existing route
// sticks, so that a Flagger HTTPRoute of a gRPC service is not replaced under traffic).
func (r *GatewayAPIRouter) upsertRoute(ctx context.Context, p *gwPlan, mutate func(gwRouteKind, client.Object, bool) error) error {
	preferred, other := r.kinds(p)
	cur, obj := preferred, preferred.object(p.cd)
	err := upsert(ctx, r.client, r.owner, p.cd, obj, func(existing bool) error {
		if !existing {
			if found, err := r.controlledRouteExists(ctx, p, other); err != nil {
				return err
			} else if found {
				return errGwOtherKind
			}
		}
		return mutate(preferred, obj, existing)
	})
	if meta.IsNoMatchError(err) {
		if found, ferr := r.controlledRouteExists(ctx, p, other); ferr != nil {
			return ferr
		} else if !found {
			return fmt.Errorf("%s is not served by the API server (install the Gateway API CRDs of the standard channel): %w",
				preferred.kind(), err)
		}
		err = errGwOtherKind
	}
	if errors.Is(err, errGwOtherKind) {
		cur, obj = other, other.object(p.cd)
		err = upsert(ctx, r.client, r.owner, p.cd, obj, func(existing bool) error { return mutate(other, obj, existing) })
	}
	if apierrors.IsInvalid(err) {
		// The API server's validation of the generated route: retrying does not help until the spec
		// (or the route's user filters) change.
		return Invalidf("%s %s.%s was rejected by the API server: %v", cur.kind(), obj.GetName(), obj.GetNamespace(), err)
	}
	return err
}

// getRoute reads the canary's route, of the kind upsertRoute would pick.
func (r *GatewayAPIRouter) getRoute(ctx context.Context, p *gwPlan) (gwRouteKind, client.Object, error) {
	preferred, other := r.kinds(p)
	obj := preferred.object(p.cd)
	err := r.client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	if err == nil {
		return preferred, obj, nil
	}
	if !apierrors.IsNotFound(err) && !meta.IsNoMatchError(err) {
		return nil, nil, fmt.Errorf("%s %s.%s: %w", preferred.kind(), obj.GetName(), obj.GetNamespace(), err)
	}
	alt := other.object(p.cd)
	if aerr := r.client.Get(ctx, client.ObjectKeyFromObject(alt), alt); aerr == nil && gwControlledBy(alt, p.cd) {
		return other, alt, nil
	}
	return nil, nil, fmt.Errorf("%s %s.%s: %w", preferred.kind(), obj.GetName(), obj.GetNamespace(), err)
}

// controlledRouteExists reports whether the route of kind k exists and is controlled by the canary
// (an API server without the kind has none).
func (r *GatewayAPIRouter) controlledRouteExists(ctx context.Context, p *gwPlan, k gwRouteKind) (bool, error) {
	obj := k.object(p.cd)
	err := r.client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
	switch {
	case apierrors.IsNotFound(err) || meta.IsNoMatchError(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%s %s.%s: %w", k.kind(), obj.GetName(), obj.GetNamespace(), err)
	}
	return gwControlledBy(obj, p.cd), nil
}

func gwControlledBy(obj client.Object, cd *flaggerv1.Canary) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == cd.UID
}

// gwStoredSpec is the spec to restore: kubectl's last-applied one, else the one saved at takeover.
func gwStoredSpec(obj client.Object) []byte {
	if raw, ok := obj.GetAnnotations()[kubectlLastAppliedAnnotation]; ok {
		var applied struct {
			Spec json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal([]byte(raw), &applied); err == nil && len(applied.Spec) > 0 {
			return applied.Spec
		}
	}
	if raw, ok := obj.GetAnnotations()[OriginalConfigAnnotation]; ok {
		return []byte(raw)
	}
	return nil
}

// gwRestore puts back the stored spec and releases the route.
func gwRestore(k gwRouteKind, obj client.Object, cd *flaggerv1.Canary) error {
	stored := gwStoredSpec(obj)
	if stored == nil {
		return nil
	}
	if err := k.restore(obj, stored); err != nil {
		return fmt.Errorf("%s %s.%s: cannot restore its saved spec: %w", k.kind(), obj.GetName(), obj.GetNamespace(), err)
	}
	annotations := obj.GetAnnotations()
	for _, key := range []string{OriginalConfigAnnotation, GatewayManagedAnnotation, FluxReconcileAnnotation, HelmDriftDetectionAnnotation} {
		delete(annotations, key)
	}
	obj.SetAnnotations(annotations)
	var refs []metav1.OwnerReference
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID != cd.UID {
			refs = append(refs, ref)
		}
	}
	obj.SetOwnerReferences(refs)
	return nil
}

// gwCheckAccepted fails while a parent of the route has not accepted its current generation.
func gwCheckAccepted(k gwRouteKind, obj client.Object) error {
	model := k.model(obj)
	for _, status := range k.parents(obj) {
		if !slices.ContainsFunc(model.ParentRefs, func(ref gatewayv1.ParentReference) bool {
			return gwSameParent(ref, status.ParentRef, obj.GetNamespace())
		}) {
			continue
		}
		for _, c := range status.Conditions {
			if c.Type == string(gatewayv1.RouteConditionAccepted) &&
				(c.Status != metav1.ConditionTrue || c.ObservedGeneration < obj.GetGeneration()) {
				return fmt.Errorf("%s %s.%s parent %s is not ready (status: %s, observed generation: %d, current generation: %d)",
					k.kind(), obj.GetName(), obj.GetNamespace(), status.ParentRef.Name, c.Status, c.ObservedGeneration, obj.GetGeneration())
			}
		}
	}
	return nil
}

func gwSameParent(a, b gatewayv1.ParentReference, namespace string) bool {
	norm := func(ref gatewayv1.ParentReference) gatewayv1.ParentReference {
		if ref.Group == nil {
			ref.Group = ptr.To(gatewayv1.Group(gwGatewayGroup))
		}
		if ref.Kind == nil {
			ref.Kind = ptr.To(gatewayv1.Kind(gwGatewayKind))
		}
		if ref.Namespace == nil {
			ref.Namespace = ptr.To(gatewayv1.Namespace(namespace))
		}
		return ref
	}
	return equality.Semantic.DeepEqual(norm(a), norm(b))
}

// gwPlan is a canary's spec translated to the Gateway API, before looking at the route.
type gwPlan struct {
	cd                    *flaggerv1.Canary
	version               string
	apex, primary, canary string
	port                  int32
	grpc                  bool
	parentRefs            []gatewayv1.ParentReference
	hostnames             []gatewayv1.Hostname
	matches               []gatewayv1.HTTPRouteMatch // service.match, never empty
	abMatches             []gatewayv1.HTTPRouteMatch // analysis.match AND service.match; nil without A/B
	filters               []gatewayv1.HTTPRouteFilter
	timeouts              *gatewayv1.HTTPRouteTimeouts
	mirrorPercent         *int32
	affinity              *flaggerv1.SessionAffinity
	// labels are the route's labels (apexLabels); nil: those of any generated object.
	labels map[string]string
}

// plan translates and validates the canary's spec; every problem is an InvalidSpecError.
func (r *GatewayAPIRouter) plan(cd *flaggerv1.Canary) (*gwPlan, error) {
	if r.version != "v1" && r.version != "v1beta1" {
		return nil, fmt.Errorf("gateway API version %q is not supported (v1, v1beta1)", r.version)
	}
	svc := cd.Spec.Service
	if len(svc.GatewayRefs) == 0 {
		return nil, Invalidf("spec.service.gatewayRefs is required for provider %s", r.provider())
	}
	p := &gwPlan{cd: cd, version: r.version, port: svc.Port, grpc: gwIsGRPC(svc)}
	p.apex, p.primary, p.canary = cd.GetServiceNames()
	for _, ref := range svc.GatewayRefs {
		p.parentRefs = append(p.parentRefs, gwParentRef(ref))
	}
	for _, h := range svc.Hosts {
		p.hostnames = append(p.hostnames, gatewayv1.Hostname(h))
	}
	var err error
	if p.matches, err = gwMatches("spec.service.match", svc.Match); err != nil {
		return nil, err
	}
	if len(p.matches) == 0 {
		p.matches = []gatewayv1.HTTPRouteMatch{{}}
	}
	if p.timeouts, err = gwTimeouts(svc); err != nil {
		return nil, err
	}
	if p.filters, err = gwFilters(svc); err != nil {
		return nil, err
	}
	if a := cd.GetAnalysis(); a != nil {
		if err := p.planAnalysis(a); err != nil {
			return nil, err
		}
	}
	for i := range p.matches {
		gwDefaultPath(&p.matches[i])
	}
	if rw := svc.Rewrite; rw != nil && rw.URI != "" && rw.Type == string(gatewayv1.PrefixMatchHTTPPathModifier) {
		// The HTTPRoute CRD: a rule with a replacePrefixMatch rewrite has exactly one PathPrefix match.
		for _, matches := range [][]gatewayv1.HTTPRouteMatch{p.matches, p.abMatches} {
			if matches != nil && (len(matches) != 1 || *matches[0].Path.Type != gatewayv1.PathMatchPathPrefix) {
				return nil, Invalidf("spec.service.rewrite type ReplacePrefixMatch needs exactly one uri prefix match " +
					"(spec.service.match, and with A/B spec.analysis.match): a Gateway API rule cannot rewrite otherwise")
			}
		}
	}
	if p.grpc {
		if err := p.checkGRPC(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *gwPlan) planAnalysis(a *flaggerv1.CanaryAnalysis) error {
	if len(a.Match) > 0 {
		requests := make([]flaggerv1.HTTPMatchRequest, 0, len(a.Match))
		for _, m := range a.Match {
			requests = append(requests, gwABRequest(m))
		}
		ab, err := gwMatches("spec.analysis.match", requests)
		if err != nil {
			return err
		}
		p.abMatches = gwAndMatches(ab, p.matches)
		for i := range p.abMatches {
			gwDefaultPath(&p.abMatches[i])
		}
	}
	if a.MirrorWeight < 0 || a.MirrorWeight > 100 {
		return Invalidf("spec.analysis.mirrorWeight %d is not a percentage", a.MirrorWeight)
	}
	if a.MirrorWeight > 0 && a.MirrorWeight < 100 {
		p.mirrorPercent = ptr.To(int32(a.MirrorWeight))
	}
	if sa := a.SessionAffinity; sa != nil {
		if err := validateSessionAffinity(sa); err != nil {
			return err
		}
		p.affinity = SessionAffinityOf(p.cd)
	}
	return nil
}

// gwIsGRPC is the rule that picks a GRPCRoute over an HTTPRoute: service.appProtocol "grpc" when it is
// set; otherwise the service port name (default http) "grpc" or "grpc-<suffix>", the Istio naming
// convention, except grpc-web (gRPC-Web is HTTP/1.1: HTTPRoute).
func gwIsGRPC(svc flaggerv1.CanaryService) bool {
	if svc.AppProtocol != "" {
		return strings.EqualFold(svc.AppProtocol, "grpc")
	}
	name := strings.ToLower(svc.PortName)
	return (name == "grpc" || strings.HasPrefix(name, "grpc-")) && !strings.HasPrefix(name, "grpc-web")
}

func gwParentRef(ref flaggerv1.ParentReference) gatewayv1.ParentReference {
	out := gatewayv1.ParentReference{
		Group:       ptr.To(gatewayv1.Group(gwGatewayGroup)),
		Kind:        ptr.To(gatewayv1.Kind(gwGatewayKind)),
		Namespace:   (*gatewayv1.Namespace)(ref.Namespace),
		Name:        gatewayv1.ObjectName(ref.Name),
		SectionName: (*gatewayv1.SectionName)(ref.SectionName),
		Port:        (*gatewayv1.PortNumber)(ref.Port),
	}
	if ref.Group != nil {
		out.Group = ptr.To(gatewayv1.Group(*ref.Group))
	}
	if ref.Kind != nil {
		out.Kind = ptr.To(gatewayv1.Kind(*ref.Kind))
	}
	return out
}

// gwABRequest is an A/B match as an Istio request match.
func gwABRequest(m flaggerv1.ABMatch) flaggerv1.HTTPMatchRequest {
	return flaggerv1.HTTPMatchRequest{
		Name: m.Name, URI: m.URI, Scheme: m.Scheme, Method: m.Method, Authority: m.Authority,
		Headers: m.Headers, Port: m.Port, SourceLabels: m.SourceLabels, Gateways: m.Gateways,
		QueryParams: m.QueryParams, IgnoreURICase: m.IgnoreURICase, WithoutHeaders: m.WithoutHeaders,
		SourceNamespace: m.SourceNamespace,
	}
}

// gwMatches converts Istio request matches. Exact, prefix and regex work as in Flagger; header and
// query parameter prefix/suffix and uri suffix become anchored regular expressions. Fields the Gateway
// API cannot match on (Flagger silently drops them, widening the match) are refused.
func gwMatches(field string, requests []flaggerv1.HTTPMatchRequest) ([]gatewayv1.HTTPRouteMatch, error) {
	var out []gatewayv1.HTTPRouteMatch
	for i, req := range requests {
		at := fmt.Sprintf("%s[%d]", field, i)
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"scheme", req.Scheme != nil}, {"authority", req.Authority != nil}, {"port", req.Port != 0},
			{"sourceLabels", len(req.SourceLabels) > 0}, {"gateways", len(req.Gateways) > 0},
			{"withoutHeaders", len(req.WithoutHeaders) > 0}, {"ignoreUriCase", req.IgnoreURICase},
			{"sourceNamespace", req.SourceNamespace != ""},
		} {
			if f.set {
				return nil, Invalidf("%s.%s cannot be matched by a Gateway API route", at, f.name)
			}
		}
		var m gatewayv1.HTTPRouteMatch
		if req.URI != nil {
			path, err := gwPathMatch(at+".uri", *req.URI)
			if err != nil {
				return nil, err
			}
			m.Path = path
		}
		if req.Method != nil {
			method := strings.ToUpper(req.Method.Exact)
			if req.Method.Exact == "" || !slices.Contains(gwHTTPMethods, method) {
				return nil, Invalidf("%s.method must be an exact HTTP method (%s)", at, strings.Join(gwHTTPMethods, ", "))
			}
			m.Method = ptr.To(gatewayv1.HTTPMethod(method))
		}
		for _, name := range gwSortedKeys(req.Headers) {
			typ, value, err := gwStringMatch(fmt.Sprintf("%s.headers[%s]", at, name), req.Headers[name])
			if err != nil {
				return nil, err
			}
			m.Headers = append(m.Headers, gatewayv1.HTTPHeaderMatch{
				Type: ptr.To(gatewayv1.HeaderMatchType(typ)), Name: gatewayv1.HTTPHeaderName(name), Value: value})
		}
		for _, name := range gwSortedKeys(req.QueryParams) {
			typ, value, err := gwStringMatch(fmt.Sprintf("%s.queryParams[%s]", at, name), req.QueryParams[name])
			if err != nil {
				return nil, err
			}
			m.QueryParams = append(m.QueryParams, gatewayv1.HTTPQueryParamMatch{
				Type: ptr.To(gatewayv1.QueryParamMatchType(typ)), Name: gatewayv1.HTTPHeaderName(name), Value: value})
		}
		if !equality.Semantic.DeepEqual(m, gatewayv1.HTTPRouteMatch{}) {
			out = append(out, m)
		}
	}
	return out, nil
}

func gwPathMatch(field string, s flaggerv1.StringMatch) (*gatewayv1.HTTPPathMatch, error) {
	switch {
	case s.Exact != "":
		return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: ptr.To(s.Exact)}, nil
	case s.Prefix != "":
		return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(s.Prefix)}, nil
	case s.Suffix != "":
		return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchRegularExpression),
			Value: ptr.To(".*" + regexp.QuoteMeta(s.Suffix) + "$")}, nil
	case s.Regex != "":
		return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchRegularExpression), Value: ptr.To(s.Regex)}, nil
	}
	return nil, Invalidf("%s is an empty string match", field)
}

// gwStringMatch returns the Gateway API match type (Exact or RegularExpression) and value of a
// header or query parameter match.
func gwStringMatch(field string, s flaggerv1.StringMatch) (string, string, error) {
	switch {
	case s.Exact != "":
		return "Exact", s.Exact, nil
	case s.Prefix != "":
		return "RegularExpression", "^" + regexp.QuoteMeta(s.Prefix) + ".*", nil
	case s.Suffix != "":
		return "RegularExpression", ".*" + regexp.QuoteMeta(s.Suffix) + "$", nil
	case s.Regex != "":
		return "RegularExpression", s.Regex, nil
	}
	return "", "", Invalidf("%s is an empty string match", field)
}

func gwSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// gwDefaultPath sets the CRD default path match (PathPrefix /), which the API server would otherwise
// add and make every comparison with the stored route differ.
func gwDefaultPath(m *gatewayv1.HTTPRouteMatch) {
	if m.Path == nil {
		m.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/")}
	}
}

// gwAndMatches combines every extra match with every base match: a request must satisfy both. The
// extra path and method replace the base ones; headers and query parameters are united, the extra
// one winning on the same name. (Flagger replaces the base headers and query parameters and ignores
// the extra path and method.)
func gwAndMatches(extra, base []gatewayv1.HTTPRouteMatch) []gatewayv1.HTTPRouteMatch {
	var out []gatewayv1.HTTPRouteMatch
	for _, e := range extra {
		for _, b := range base {
			m := *b.DeepCopy()
			if e.Path != nil {
				m.Path = e.Path.DeepCopy()
			}
			if e.Method != nil {
				m.Method = ptr.To(*e.Method)
			}
			for _, h := range e.Headers {
				m.Headers = slices.DeleteFunc(m.Headers, func(x gatewayv1.HTTPHeaderMatch) bool { return strings.EqualFold(string(x.Name), string(h.Name)) })
				m.Headers = append(m.Headers, *h.DeepCopy())
			}
			for _, q := range e.QueryParams {
				m.QueryParams = slices.DeleteFunc(m.QueryParams, func(x gatewayv1.HTTPQueryParamMatch) bool { return x.Name == q.Name })
				m.QueryParams = append(m.QueryParams, *q.DeepCopy())
			}
			out = append(out, m)
		}
	}
	return out
}

func gwTimeouts(svc flaggerv1.CanaryService) (*gatewayv1.HTTPRouteTimeouts, error) {
	if svc.Timeout == "" && svc.BackendTimeout == "" {
		return nil, nil
	}
	t := &gatewayv1.HTTPRouteTimeouts{}
	for _, f := range [][2]string{{"timeout", svc.Timeout}, {"backendTimeout", svc.BackendTimeout}} {
		if f[1] != "" && !gwDurationPattern.MatchString(f[1]) {
			return nil, Invalidf("spec.service.%s %q is not a Gateway API duration (e.g. 30s, 1m30s, 500ms)", f[0], f[1])
		}
	}
	if svc.Timeout != "" {
		t.Request = ptr.To(gatewayv1.Duration(svc.Timeout))
	}
	if svc.BackendTimeout != "" {
		t.BackendRequest = ptr.To(gatewayv1.Duration(svc.BackendTimeout))
	}
	if svc.Timeout != "" && svc.BackendTimeout != "" {
		request, _ := time.ParseDuration(svc.Timeout)
		backend, _ := time.ParseDuration(svc.BackendTimeout)
		if request != 0 && backend > request {
			return nil, Invalidf("spec.service.backendTimeout %s cannot be longer than spec.service.timeout %s", svc.BackendTimeout, svc.Timeout)
		}
	}
	return t, nil
}

// gwFilters are the rule filters generated from the canary's service: header modifiers, URL rewrite,
// CORS and request mirrors, in this order.
func gwFilters(svc flaggerv1.CanaryService) ([]gatewayv1.HTTPRouteFilter, error) {
	var out []gatewayv1.HTTPRouteFilter
	if h := svc.Headers; h != nil {
		if f := gwHeaderFilter(h.Request); f != nil {
			out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: f})
		}
		if f := gwHeaderFilter(h.Response); f != nil {
			out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: f})
		}
	}
	if rw := svc.Rewrite; rw != nil && (rw.URI != "" || rw.Authority != "") {
		f := &gatewayv1.HTTPURLRewriteFilter{}
		if rw.Authority != "" {
			f.Hostname = ptr.To(gatewayv1.PreciseHostname(rw.Authority))
		}
		if rw.URI != "" {
			// As Flagger: ReplacePrefixMatch when asked for, ReplaceFullPath otherwise.
			if rw.Type == string(gatewayv1.PrefixMatchHTTPPathModifier) {
				f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To(rw.URI)}
			} else {
				f.Path = &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To(rw.URI)}
			}
		}
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: f})
	}
	if svc.CorsPolicy != nil {
		cors, err := gwCORS(svc.CorsPolicy)
		if err != nil {
			return nil, err
		}
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterCORS, CORS: cors})
	}
	for _, m := range svc.Mirror {
		ref := gatewayv1.BackendObjectReference{
			Group:     ptr.To(gatewayv1.Group("")),
			Kind:      ptr.To(gatewayv1.Kind(gwServiceKind)),
			Name:      gatewayv1.ObjectName(m.BackendRef.Name),
			Namespace: (*gatewayv1.Namespace)(m.BackendRef.Namespace),
			Port:      (*gatewayv1.PortNumber)(m.BackendRef.Port),
		}
		if m.BackendRef.Group != nil {
			ref.Group = ptr.To(gatewayv1.Group(*m.BackendRef.Group))
		}
		if m.BackendRef.Kind != nil {
			ref.Kind = ptr.To(gatewayv1.Kind(*m.BackendRef.Kind))
		}
		out = append(out, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror,
			RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: ref}})
	}
	return out, nil
}

func gwHeaderFilter(ops *flaggerv1.HeaderOperations) *gatewayv1.HTTPHeaderFilter {
	if ops == nil || len(ops.Set)+len(ops.Add)+len(ops.Remove) == 0 {
		return nil
	}
	f := &gatewayv1.HTTPHeaderFilter{}
	for _, name := range gwSortedKeys(ops.Set) {
		f.Set = append(f.Set, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(name), Value: ops.Set[name]})
	}
	for _, name := range gwSortedKeys(ops.Add) {
		f.Add = append(f.Add, gatewayv1.HTTPHeader{Name: gatewayv1.HTTPHeaderName(name), Value: ops.Add[name]})
	}
	f.Remove = slices.Clone(ops.Remove)
	return f
}

// gwCORS converts Istio's CORS policy. Gateway API origins are exact (or "*", or a "*." wildcard
// host), so prefix and regex origins are refused; maxAge becomes seconds (CRD default 5).
func gwCORS(c *flaggerv1.CorsPolicy) (*gatewayv1.HTTPCORSFilter, error) {
	f := &gatewayv1.HTTPCORSFilter{AllowCredentials: c.AllowCredentials, MaxAge: gwCORSMaxAge}
	for _, o := range c.AllowOrigin {
		f.AllowOrigins = append(f.AllowOrigins, gatewayv1.CORSOrigin(o))
	}
	for i, o := range c.AllowOrigins {
		if o.Exact == "" {
			return nil, Invalidf("spec.service.corsPolicy.allowOrigins[%d]: the Gateway API only matches exact origins", i)
		}
		f.AllowOrigins = append(f.AllowOrigins, gatewayv1.CORSOrigin(o.Exact))
	}
	for _, m := range c.AllowMethods {
		method := strings.ToUpper(m)
		if method != "*" && !slices.Contains(gwHTTPMethods, method) {
			return nil, Invalidf("spec.service.corsPolicy.allowMethods: %q is not an HTTP method", m)
		}
		f.AllowMethods = append(f.AllowMethods, gatewayv1.HTTPMethodWithWildcard(method))
	}
	for _, h := range c.AllowHeaders {
		f.AllowHeaders = append(f.AllowHeaders, gatewayv1.HTTPHeaderName(h))
	}
	for _, h := range c.ExposeHeaders {
		f.ExposeHeaders = append(f.ExposeHeaders, gatewayv1.HTTPHeaderName(h))
	}
	if c.MaxAge != "" {
		d, err := time.ParseDuration(c.MaxAge)
		if err != nil || d < time.Second {
			return nil, Invalidf("spec.service.corsPolicy.maxAge %q is not a duration of at least 1s", c.MaxAge)
		}
		f.MaxAge = int32(d / time.Second)
	}
	return f, nil
}

// gwRole is what a rule of the route is for.
type gwRole int

const (
	gwRoleOther         gwRole = iota
	gwRoleWeighted             // primary/canary split (the A/B rule with A/B)
	gwRoleDefault              // A/B: the rest of the traffic, to the primary
	gwRoleStickyCanary         // session affinity: the canary cookie to the canary, or expiring it
	gwRoleStickyPrimary        // session affinity: the primary cookie to the primary
	gwRoleStickyStale          // a sticky rule of cookies no longer configured
)

// gwManaged is GatewayManagedAnnotation.
type gwManaged struct {
	Filters []gatewayv1.HTTPRouteFilter `json:"filters,omitempty"`
	Cookies []string                    `json:"cookies,omitempty"`
}

// gwObserved is what Pennant reads back from an existing route.
type gwObserved struct {
	plan                        *gwPlan
	rules                       []gatewayv1.HTTPRouteRule
	roles                       []gwRole
	weighted                    *gatewayv1.HTTPRouteRule
	primaryWeight, canaryWeight int
	mirrored                    bool
	cookies                     SessionCookies // those the route hands out
	managed                     gwManaged
	cookieNames                 []string // configured and recorded
}

func (p *gwPlan) observe(k gwRouteKind, obj client.Object, existing bool) *gwObserved {
	obs := &gwObserved{plan: p}
	if !existing {
		return obs
	}
	_ = json.Unmarshal([]byte(obj.GetAnnotations()[GatewayManagedAnnotation]), &obs.managed)
	if sa := p.affinity; sa != nil {
		obs.cookieNames = append(obs.cookieNames, sa.CookieName)
		if sa.PrimaryCookieName != "" {
			obs.cookieNames = append(obs.cookieNames, sa.PrimaryCookieName)
		}
	}
	obs.cookieNames = append(obs.cookieNames, obs.managed.Cookies...)
	obs.rules = k.model(obj).Rules
	for i := range obs.rules {
		role := p.roleOf(obs.rules[i], obs.managed.Cookies)
		obs.roles = append(obs.roles, role)
		if role == gwRoleWeighted {
			obs.weighted = &obs.rules[i]
		}
	}
	if w := obs.weighted; w != nil {
		for _, b := range w.BackendRefs {
			switch string(b.Name) {
			case p.primary:
				obs.primaryWeight = int(ptr.Deref(b.Weight, 1))
				obs.cookies.Primary = p.issuedCookie(b.Filters, p.primaryCookieName())
			case p.canary:
				obs.canaryWeight = int(ptr.Deref(b.Weight, 1))
				obs.cookies.Canary = p.issuedCookie(b.Filters, p.canaryCookieName())
			}
		}
		obs.mirrored = slices.ContainsFunc(w.Filters, p.isCanaryMirror)
	}
	for i, role := range obs.roles {
		if role == gwRoleStickyCanary && gwExpires(obs.rules[i].Filters) {
			obs.cookies.Previous = p.issuedCookie(obs.rules[i].Filters, p.canaryCookieName())
		}
	}
	return obs
}

func (p *gwPlan) canaryCookieName() string {
	if p.affinity == nil {
		return ""
	}
	return p.affinity.CookieName
}

func (p *gwPlan) primaryCookieName() string {
	if p.affinity == nil {
		return ""
	}
	return p.affinity.PrimaryCookieName
}

// roleOf classifies a rule of an existing route.
func (p *gwPlan) roleOf(rule gatewayv1.HTTPRouteRule, recordedCookies []string) gwRole {
	if name, ok := gwStickyCookie(rule); ok {
		switch {
		case name == p.canaryCookieName():
			return gwRoleStickyCanary
		case name == p.primaryCookieName():
			return gwRoleStickyPrimary
		case slices.Contains(recordedCookies, name):
			return gwRoleStickyStale
		}
	}
	var primary, canary bool
	for _, b := range rule.BackendRefs {
		primary = primary || string(b.Name) == p.primary
		canary = canary || string(b.Name) == p.canary
	}
	switch {
	case primary && canary:
		return gwRoleWeighted
	case primary && len(rule.BackendRefs) == 1:
		return gwRoleDefault
	}
	return gwRoleOther
}

// gwStickyCookie returns the cookie name of a sticky rule: one matching the Cookie header against
// cookieRegex's form (or Flagger's, unquoted).
func gwStickyCookie(rule gatewayv1.HTTPRouteRule) (string, bool) {
	for _, m := range rule.Matches {
		for _, h := range m.Headers {
			if !strings.EqualFold(string(h.Name), cookieHeader) || ptr.Deref(h.Type, gatewayv1.HeaderMatchExact) != gatewayv1.HeaderMatchRegularExpression {
				continue
			}
			if name, ok := cookieRegexName(h.Value); ok {
				return name, true
			}
		}
	}
	return "", false
}

// gwExpires reports whether the filters expire a cookie (the sticky rule after a run).
func gwExpires(filters []gatewayv1.HTTPRouteFilter) bool {
	return slices.ContainsFunc(filters, func(f gatewayv1.HTTPRouteFilter) bool {
		return f.ResponseHeaderModifier != nil && slices.ContainsFunc(f.ResponseHeaderModifier.Add, func(h gatewayv1.HTTPHeader) bool {
			return strings.EqualFold(string(h.Name), setCookieHeader) && strings.Contains(h.Value, expiredMaxAge)
		})
	})
}

// issuedCookie returns "name=value" of a Set-Cookie response header for the cookie name among filters.
func (p *gwPlan) issuedCookie(filters []gatewayv1.HTTPRouteFilter, name string) string {
	if name == "" {
		return ""
	}
	for _, f := range filters {
		if f.Type != gatewayv1.HTTPRouteFilterResponseHeaderModifier || f.ResponseHeaderModifier == nil {
			continue
		}
		for _, h := range slices.Concat(f.ResponseHeaderModifier.Add, f.ResponseHeaderModifier.Set) {
			if strings.EqualFold(string(h.Name), setCookieHeader) && strings.HasPrefix(h.Value, name+"=") {
				return cookieOfSetCookie(h.Value)
			}
		}
	}
	return ""
}

func (p *gwPlan) isCanaryMirror(f gatewayv1.HTTPRouteFilter) bool {
	if f.Type != gatewayv1.HTTPRouteFilterRequestMirror || f.RequestMirror == nil {
		return false
	}
	ref := f.RequestMirror.BackendRef
	return string(ref.Name) == p.canary && ptr.Deref(ref.Kind, gwServiceKind) == gwServiceKind &&
		(ref.Namespace == nil || string(*ref.Namespace) == p.cd.Namespace)
}

// gwRule is a rule Pennant generates, with its role.
type gwRule struct {
	role gwRole
	rule gatewayv1.HTTPRouteRule
}

func (p *gwPlan) backend(name string, weight int, filters ...gatewayv1.HTTPRouteFilter) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{
		BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{
				Group: ptr.To(gatewayv1.Group("")),
				Kind:  ptr.To(gatewayv1.Kind(gwServiceKind)),
				Name:  gatewayv1.ObjectName(name),
				Port:  ptr.To(gatewayv1.PortNumber(p.port)),
			},
			Weight: ptr.To(int32(weight)),
		},
		Filters: filters,
	}
}

func gwSetCookieFilter(value string) gatewayv1.HTTPRouteFilter {
	return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: setCookieHeader, Value: value}}}}
}

func gwCookieMatch(cookie string) gatewayv1.HTTPRouteMatch {
	return gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{
		Type:  ptr.To(gatewayv1.HeaderMatchRegularExpression),
		Name:  cookieHeader,
		Value: cookieRegex(cookie),
	}}}
}

// generatedRules are Pennant's rules for the weights, in Flagger's order: sticky rules, the weighted
// rule, the A/B default rule.
func (p *gwPlan) generatedRules(primaryWeight, canaryWeight int, mirrored bool, c SessionCookies) []gwRule {
	base := func() []gatewayv1.HTTPRouteFilter {
		out := make([]gatewayv1.HTTPRouteFilter, 0, len(p.filters))
		for _, f := range p.filters {
			out = append(out, *f.DeepCopy())
		}
		return out
	}
	rule := func(matches []gatewayv1.HTTPRouteMatch, filters []gatewayv1.HTTPRouteFilter, backends ...gatewayv1.HTTPBackendRef) gatewayv1.HTTPRouteRule {
		if len(filters) == 0 {
			filters = nil
		}
		return gatewayv1.HTTPRouteRule{Matches: matches, Filters: filters, BackendRefs: backends, Timeouts: p.timeouts.DeepCopy()}
	}
	weightedMatches := p.matches
	if p.abMatches != nil {
		weightedMatches = p.abMatches
	}
	weightedFilters := base()
	if mirrored {
		mirror := &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind(gwServiceKind)),
			Name: gatewayv1.ObjectName(p.canary), Port: ptr.To(gatewayv1.PortNumber(p.port)),
		}, Percent: p.mirrorPercent}
		weightedFilters = append(weightedFilters, gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: mirror})
	}
	affinity := planAffinity(p.cd, c, primaryWeight, canaryWeight)
	var primaryFilters, canaryFilters []gatewayv1.HTTPRouteFilter
	if affinity.canarySetCookie != "" {
		canaryFilters = append(canaryFilters, gwSetCookieFilter(affinity.canarySetCookie))
	}
	if affinity.primarySetCookie != "" {
		primaryFilters = append(primaryFilters, gwSetCookieFilter(affinity.primarySetCookie))
	}
	weighted := rule(gwCopyMatches(weightedMatches), weightedFilters,
		p.backend(p.primary, primaryWeight, primaryFilters...), p.backend(p.canary, canaryWeight, canaryFilters...))

	var out []gwRule
	for _, s := range affinity.sticky {
		role, filters := gwRoleStickyCanary, base()
		if s.kind == stickyPrimary {
			role = gwRoleStickyPrimary
		}
		if s.setCookie != "" {
			filters = gwMergeFilters(filters, []gatewayv1.HTTPRouteFilter{gwSetCookieFilter(s.setCookie)})
		}
		out = append(out, gwRule{role, rule(p.stickyMatches(s.cookie), filters,
			p.backend(p.primary, s.primary), p.backend(p.canary, s.canary))})
	}
	out = append(out, gwRule{gwRoleWeighted, weighted})
	if p.abMatches != nil {
		out = append(out, gwRule{gwRoleDefault, rule(gwCopyMatches(p.matches), base(), p.backend(p.primary, 100))})
	}
	return out
}

func (p *gwPlan) stickyMatches(cookie string) []gatewayv1.HTTPRouteMatch {
	return gwAndMatches([]gatewayv1.HTTPRouteMatch{gwCookieMatch(cookie)}, p.matches)
}

func gwCopyMatches(in []gatewayv1.HTTPRouteMatch) []gatewayv1.HTTPRouteMatch {
	out := make([]gatewayv1.HTTPRouteMatch, 0, len(in))
	for _, m := range in {
		out = append(out, *m.DeepCopy())
	}
	return out
}

// write sets the desired state on obj (the existing route or a new one).
func (p *gwPlan) write(k gwRouteKind, obj client.Object, obs *gwObserved, primaryWeight, canaryWeight int, mirrored bool) error {
	takenOver := obj.GetResourceVersion() != "" && metav1.GetControllerOf(obj) == nil
	var original []byte
	if takenOver {
		if _, saved := obj.GetAnnotations()[OriginalConfigAnnotation]; !saved {
			var err error
			if original, err = k.marshal(obj); err != nil {
				return err
			}
		}
	}
	generated := p.generatedRules(primaryWeight, canaryWeight, mirrored, pickSessionCookies(p.cd, obs.cookies))
	rules := make([]gatewayv1.HTTPRouteRule, 0, len(generated))
	for _, g := range generated {
		rules = append(rules, obs.keepUserSettings(g))
	}
	model := k.model(obj)
	model.ParentRefs = p.parentRefs
	model.Hostnames = p.hostnames
	model.Rules = rules
	if err := k.setModel(obj, model); err != nil {
		return err
	}
	if p.labels != nil {
		stampGenerated(obj, p.cd, p.labels)
	} else {
		setGenerated(obj, p.cd)
	}
	annotations := obj.GetAnnotations()
	if original != nil {
		annotations[OriginalConfigAnnotation] = string(original)
	}
	managed := gwManaged{Filters: p.filters}
	if sa := p.affinity; sa != nil {
		managed.Cookies = append(managed.Cookies, sa.CookieName)
		if sa.PrimaryCookieName != "" {
			managed.Cookies = append(managed.Cookies, sa.PrimaryCookieName)
		}
	}
	if len(managed.Filters)+len(managed.Cookies) == 0 {
		delete(annotations, GatewayManagedAnnotation)
	} else {
		record, err := json.Marshal(managed)
		if err != nil {
			return err
		}
		annotations[GatewayManagedAnnotation] = string(record)
	}
	obj.SetAnnotations(annotations)
	return nil
}

// source is the existing rule whose user settings a generated rule of the role keeps: the rule of the
// same role, else the weighted rule, else the only rule of a route Pennant takes over.
func (obs *gwObserved) source(role gwRole) (rule *gatewayv1.HTTPRouteRule, sameRole bool) {
	for i, r := range obs.roles {
		if r == role {
			return &obs.rules[i], true
		}
	}
	if obs.weighted != nil {
		return obs.weighted, false
	}
	if len(obs.rules) == 1 && obs.roles[0] == gwRoleOther {
		return &obs.rules[0], false
	}
	return nil, false
}

// keepUserSettings adds to a generated rule what the user set on its source rule.
func (obs *gwObserved) keepUserSettings(g gwRule) gatewayv1.HTTPRouteRule {
	out := g.rule
	src, sameRole := obs.source(g.role)
	if src == nil {
		return out
	}
	if sameRole {
		out.Name = src.Name
	}
	out.Retry = src.Retry.DeepCopy()
	out.SessionPersistence = src.SessionPersistence.DeepCopy()
	out.Filters = gwMergeFilters(out.Filters, obs.userFilters(src.Filters, obs.managed.Filters))
	for i := range out.BackendRefs {
		b := &out.BackendRefs[i]
		for _, sb := range src.BackendRefs {
			if sb.Name == b.Name && ptr.Deref(sb.Kind, gwServiceKind) == gwServiceKind && sb.Namespace == nil {
				b.Filters = gwMergeFilters(b.Filters, obs.userFilters(sb.Filters, nil))
				break
			}
		}
	}
	return out
}

// userFilters are the filters of an existing rule (or backendRef) that Pennant did not write: not in
// the recorded generated ones, not the mirror to the canary, not a Set-Cookie of a session cookie.
// Header modifiers are compared header by header, so that what a user added to Pennant's modifier is
// kept.
func (obs *gwObserved) userFilters(existing, recorded []gatewayv1.HTTPRouteFilter) []gatewayv1.HTTPRouteFilter {
	pending := slices.Clone(recorded)
	var out []gatewayv1.HTTPRouteFilter
	for _, f := range existing {
		if obs.plan.isCanaryMirror(f) {
			continue
		}
		if hf := gwHeaderFilterOf(f); hf != nil {
			var rec *gatewayv1.HTTPHeaderFilter
			if i := slices.IndexFunc(pending, func(r gatewayv1.HTTPRouteFilter) bool { return r.Type == f.Type }); i >= 0 {
				rec = gwHeaderFilterOf(pending[i])
			}
			if rest := obs.withoutManagedHeaders(hf, rec); rest != nil {
				out = append(out, gwWithHeaderFilter(f.Type, rest))
			}
			continue
		}
		if i := slices.IndexFunc(pending, func(r gatewayv1.HTTPRouteFilter) bool { return equality.Semantic.DeepEqual(r, f) }); i >= 0 {
			pending = slices.Delete(pending, i, i+1)
			continue
		}
		out = append(out, *f.DeepCopy())
	}
	return out
}

func (obs *gwObserved) withoutManagedHeaders(f, recorded *gatewayv1.HTTPHeaderFilter) *gatewayv1.HTTPHeaderFilter {
	if recorded == nil {
		recorded = &gatewayv1.HTTPHeaderFilter{}
	}
	managed := func(h gatewayv1.HTTPHeader, rec []gatewayv1.HTTPHeader) bool {
		if slices.ContainsFunc(rec, func(r gatewayv1.HTTPHeader) bool {
			return strings.EqualFold(string(r.Name), string(h.Name)) && r.Value == h.Value
		}) {
			return true
		}
		return strings.EqualFold(string(h.Name), setCookieHeader) && slices.ContainsFunc(obs.cookieNames, func(n string) bool {
			return strings.HasPrefix(h.Value, n+"=")
		})
	}
	out := &gatewayv1.HTTPHeaderFilter{}
	for _, h := range f.Set {
		if !managed(h, recorded.Set) {
			out.Set = append(out.Set, h)
		}
	}
	for _, h := range f.Add {
		if !managed(h, recorded.Add) {
			out.Add = append(out.Add, h)
		}
	}
	for _, name := range f.Remove {
		if !slices.ContainsFunc(recorded.Remove, func(r string) bool { return strings.EqualFold(r, name) }) {
			out.Remove = append(out.Remove, name)
		}
	}
	if len(out.Set)+len(out.Add)+len(out.Remove) == 0 {
		return nil
	}
	return out
}

func gwHeaderFilterOf(f gatewayv1.HTTPRouteFilter) *gatewayv1.HTTPHeaderFilter {
	switch f.Type {
	case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
		return f.RequestHeaderModifier
	case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
		return f.ResponseHeaderModifier
	}
	return nil
}

func gwWithHeaderFilter(t gatewayv1.HTTPRouteFilterType, hf *gatewayv1.HTTPHeaderFilter) gatewayv1.HTTPRouteFilter {
	f := gatewayv1.HTTPRouteFilter{Type: t}
	if t == gatewayv1.HTTPRouteFilterRequestHeaderModifier {
		f.RequestHeaderModifier = hf
	} else {
		f.ResponseHeaderModifier = hf
	}
	return f
}

// gwMergeFilters appends user filters to generated ones. A user header modifier is merged into the
// generated one of its type, header by header, the generated header winning on the same name. A user
// filter of a type that may appear once and that Pennant generates is dropped; an exact duplicate of a
// generated filter too.
func gwMergeFilters(generated, user []gatewayv1.HTTPRouteFilter) []gatewayv1.HTTPRouteFilter {
	out := generated
	has := func(t gatewayv1.HTTPRouteFilterType) int {
		return slices.IndexFunc(out, func(f gatewayv1.HTTPRouteFilter) bool { return f.Type == t })
	}
	for _, u := range user {
		switch u.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier, gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			if i := has(u.Type); i >= 0 {
				out[i] = gwWithHeaderFilter(u.Type, gwMergeHeaders(gwHeaderFilterOf(out[i]), gwHeaderFilterOf(u)))
				continue
			}
		case gatewayv1.HTTPRouteFilterURLRewrite, gatewayv1.HTTPRouteFilterCORS:
			if has(u.Type) >= 0 {
				continue
			}
		case gatewayv1.HTTPRouteFilterRequestRedirect:
			if has(gatewayv1.HTTPRouteFilterURLRewrite) >= 0 {
				continue
			}
		}
		if slices.ContainsFunc(out, func(f gatewayv1.HTTPRouteFilter) bool { return equality.Semantic.DeepEqual(f, u) }) {
			continue
		}
		out = append(out, u)
	}
	return out
}

func gwMergeHeaders(g, u *gatewayv1.HTTPHeaderFilter) *gatewayv1.HTTPHeaderFilter {
	out := g.DeepCopy()
	if u == nil {
		return out
	}
	taken := func(name string) bool {
		same := func(h gatewayv1.HTTPHeader) bool { return strings.EqualFold(string(h.Name), name) }
		return slices.ContainsFunc(out.Set, same) || slices.ContainsFunc(out.Add, same) ||
			slices.ContainsFunc(out.Remove, func(r string) bool { return strings.EqualFold(r, name) })
	}
	for _, h := range u.Set {
		if !taken(string(h.Name)) {
			out.Set = append(out.Set, h)
		}
	}
	for _, h := range u.Add {
		if !taken(string(h.Name)) {
			out.Add = append(out.Add, h)
		}
	}
	for _, name := range u.Remove {
		if !taken(name) {
			out.Remove = append(out.Remove, name)
		}
	}
	return out
}
