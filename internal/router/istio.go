package router

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1 "istio.io/api/networking/v1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Names of the routes the Istio router generates. The sticky route name is Flagger's; the primary
// sticky route is Pennant's name for the route Flagger adds for primaryCookieName.
const (
	istioStickyRouteName        = "sticky-route"
	istioPrimaryStickyRouteName = "sticky-route-primary"

	istioMeshGateway = "mesh"
)

// IstioRouter is the router of the istio provider. It generates:
//
//   - DestinationRules <svc>-primary and <svc>-canary (host = that Service, spec.service.trafficPolicy);
//   - VirtualService <svc>: hosts (spec.service.hosts plus <svc>), gateways (default mesh), none of
//     them with spec.service.delegation; one HTTP route with spec.service match, rewrite, timeout,
//     retries, corsPolicy and headers splitting traffic between <svc>-primary and <svc>-canary, or
//     one TCP route when spec.service.appProtocol is tcp.
//
// A/B testing (analysis.match) puts the weights on a route matching the analysis conditions and sends
// everything else to the primary. Mirroring copies the weighted route's traffic to <svc>-canary
// (mirrorPercentage = analysis.mirrorWeight). Session affinity (planAffinity, with the cookies of
// the canary status) adds Set-Cookie response headers to the weighted route's destinations and, ahead
// of it, the routes "sticky-route" (the canary cookie to the canary, or, after the run, expiring it)
// and "sticky-route-primary" (the primary cookie to the primary).
//
// A VirtualService that exists and is controlled by nothing is taken over: its spec is saved as JSON
// in the flagger.kubernetes.io/original-configuration annotation and restored by Finalize.
// Objects controlled by anything else are never touched.
type IstioRouter struct {
	client   client.Client
	owner    client.FieldOwner
	selector SelectorFunc
}

var (
	_ Interface             = (*IstioRouter)(nil)
	_ Validator             = (*IstioRouter)(nil)
	_ SessionAffinityRouter = (*IstioRouter)(nil)
)

// NewIstio returns the Istio router; c must know the networking.istio.io/v1 kinds.
func NewIstio(c client.Client, o Options) *IstioRouter {
	return &IstioRouter{client: c, owner: client.FieldOwner(o.FieldOwner), selector: o.Selector}
}

// Validate rejects a canary spec the Istio router cannot express.
func (r *IstioRouter) Validate(cd *flaggerv1.Canary) error {
	_, err := newIstioConfig(cd)
	return err
}

// Reconcile creates or updates both DestinationRules and the VirtualService. The weights, the
// mirroring and the session affinity cookies of an existing VirtualService are kept.
func (r *IstioRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	k, err := newIstioConfig(cd)
	if err != nil {
		return err
	}
	// Nothing is written unless all three objects may be.
	if err := r.checkOwners(ctx, cd, k); err != nil {
		return err
	}
	for _, host := range []string{k.canary, k.primary} {
		if err := r.reconcileDestinationRule(ctx, cd, host, k.trafficPolicy); err != nil {
			return err
		}
	}
	return r.writeVirtualService(ctx, cd, k, false, func(vs *istionetv1.VirtualService) istioRoutes {
		st, ok := k.observe(vs)
		if !ok {
			st = istioRoutes{primary: 100}
		}
		st.cookies = pickSessionCookies(cd, st.cookies)
		return st
	})
}

// SetRoutes applies the weights (and mirroring, and the session cookies of the canary status) to the
// VirtualService, which Reconcile must have created.
func (r *IstioRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, mirrored bool) error {
	k, err := newIstioConfig(cd)
	if err != nil {
		return err
	}
	return r.writeVirtualService(ctx, cd, k, true, func(vs *istionetv1.VirtualService) istioRoutes {
		current, _ := k.observe(vs)
		return istioRoutes{
			primary: primaryWeight, canary: canaryWeight, mirrored: mirrored && !k.tcp,
			cookies: pickSessionCookies(cd, current.cookies),
		}
	})
}

// SessionCookies reads the session cookies the VirtualService hands out (none when it does not exist).
func (r *IstioRouter) SessionCookies(ctx context.Context, cd *flaggerv1.Canary) (SessionCookies, error) {
	k, err := newIstioConfig(cd)
	if err != nil {
		return SessionCookies{}, err
	}
	vs := &istionetv1.VirtualService{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: cd.Namespace, Name: k.apex}, vs); err != nil {
		return SessionCookies{}, client.IgnoreNotFound(err)
	}
	st, _ := k.observe(vs)
	return st.cookies, nil
}

// GetRoutes reads the weights of the route that splits traffic, and whether it is mirrored.
func (r *IstioRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	k, err := newIstioConfig(cd)
	if err != nil {
		return 0, 0, false, err
	}
	vs := &istionetv1.VirtualService{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: cd.Namespace, Name: k.apex}, vs); err != nil {
		return 0, 0, false, fmt.Errorf("VirtualService %s.%s get query error: %w", k.apex, cd.Namespace, err)
	}
	st, ok := k.observe(vs)
	if !ok {
		return 0, 0, false, fmt.Errorf("VirtualService %s.%s does not contain routes for %s and %s", k.apex, cd.Namespace, k.primary, k.canary)
	}
	return st.primary, st.canary, st.mirrored, nil
}

// Finalize restores the spec a taken-over VirtualService had (from kubectl's last-applied
// configuration, else from the original-configuration annotation) and detaches it from the canary
// so that it outlives it. A VirtualService Pennant created is left to garbage collection.
func (r *IstioRouter) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	apex, _, _ := cd.GetServiceNames()
	vs := &istionetv1.VirtualService{}
	err := r.client.Get(ctx, types.NamespacedName{Namespace: cd.Namespace, Name: apex}, vs)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("VirtualService %s.%s get query error: %w", apex, cd.Namespace, err)
	}
	if foreignController(vs, cd) != nil {
		return nil
	}
	original, err := istioStoredSpec(vs)
	if err != nil || original == nil {
		return err
	}
	istioSetSpec(&vs.Spec, original)
	annotations := maps.Clone(vs.Annotations)
	for _, key := range []string{OriginalConfigAnnotation, FluxReconcileAnnotation, HelmDriftDetectionAnnotation} {
		delete(annotations, key)
	}
	vs.SetAnnotations(annotations)
	vs.SetOwnerReferences(slices.DeleteFunc(slices.Clone(vs.OwnerReferences), func(ref metav1.OwnerReference) bool {
		return ref.UID == cd.UID
	}))
	if err := r.client.Update(ctx, vs, r.owner); err != nil {
		return fmt.Errorf("VirtualService %s.%s update error: %w", apex, cd.Namespace, err)
	}
	return nil
}

// istioStoredSpec returns the spec saved before the takeover, or nil when there is none.
func istioStoredSpec(vs *istionetv1.VirtualService) (*networkingv1.VirtualService, error) {
	if raw, ok := vs.Annotations[kubectlLastAppliedAnnotation]; ok {
		applied := &istionetv1.VirtualService{}
		if err := json.Unmarshal([]byte(raw), applied); err != nil {
			return nil, fmt.Errorf("VirtualService %s.%s: cannot read annotation %s: %w", vs.Name, vs.Namespace, kubectlLastAppliedAnnotation, err)
		}
		return istioClone(&applied.Spec), nil
	}
	if raw, ok := vs.Annotations[OriginalConfigAnnotation]; ok {
		spec := &networkingv1.VirtualService{}
		if err := spec.UnmarshalJSON([]byte(raw)); err != nil {
			return nil, fmt.Errorf("VirtualService %s.%s: cannot read annotation %s: %w", vs.Name, vs.Namespace, OriginalConfigAnnotation, err)
		}
		return spec, nil
	}
	return nil, nil
}

// checkOwners fails with an InvalidSpecError when one of the objects exists and is controlled by
// something other than this canary.
func (r *IstioRouter) checkOwners(ctx context.Context, cd *flaggerv1.Canary, k *istioConfig) error {
	objects := []client.Object{
		&istionetv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: k.canary}},
		&istionetv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: k.primary}},
		&istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: k.apex}},
	}
	for _, obj := range objects {
		kind := strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1.")
		err := r.client.Get(ctx, types.NamespacedName{Namespace: cd.Namespace, Name: obj.GetName()}, obj)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return fmt.Errorf("%s %s.%s get query error: %w", kind, obj.GetName(), cd.Namespace, err)
		}
		if ref := foreignController(obj, cd); ref != nil {
			return istioForeign(kind, obj, cd, ref)
		}
	}
	return nil
}

func istioForeign(kind string, obj client.Object, cd *flaggerv1.Canary, ref *metav1.OwnerReference) error {
	return Invalidf("%s %s.%s is controlled by %s %s, not by canary %s", kind, obj.GetName(), obj.GetNamespace(), ref.Kind, ref.Name, cd.Key())
}

// reconcileDestinationRule creates or updates the DestinationRule of one host, writing only on change.
func (r *IstioRouter) reconcileDestinationRule(ctx context.Context, cd *flaggerv1.Canary, host string, policy *networkingv1.TrafficPolicy) error {
	desired := &networkingv1.DestinationRule{Host: host, TrafficPolicy: istioClone(policy)}
	dr := &istionetv1.DestinationRule{}
	err := r.client.Get(ctx, types.NamespacedName{Namespace: cd.Namespace, Name: host}, dr)
	switch {
	case apierrors.IsNotFound(err):
		dr = &istionetv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: host, Namespace: cd.Namespace}}
		istioSetSpec(&dr.Spec, desired)
		stampGenerated(dr, cd, nil)
		if err := r.client.Create(ctx, dr, r.owner); err != nil {
			return fmt.Errorf("DestinationRule %s.%s create error: %w", host, cd.Namespace, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("DestinationRule %s.%s get query error: %w", host, cd.Namespace, err)
	}
	if ref := foreignController(dr, cd); ref != nil {
		return istioForeign("DestinationRule", dr, cd, ref)
	}
	before := dr.ObjectMeta.DeepCopy()
	stampGenerated(dr, cd, nil)
	specChanged := !proto.Equal(&dr.Spec, desired)
	if !specChanged && istioSameMetadata(before, &dr.ObjectMeta) {
		return nil
	}
	if specChanged {
		istioSetSpec(&dr.Spec, desired)
	}
	if err := r.client.Update(ctx, dr, r.owner); err != nil {
		return fmt.Errorf("DestinationRule %s.%s update error: %w", host, cd.Namespace, err)
	}
	return nil
}

// writeVirtualService creates or updates the VirtualService with the routing state routes computes
// from the existing object (nil when there is none), writing only on change. A VirtualService that
// nothing controls is taken over: its spec is saved in the original-configuration annotation first.
func (r *IstioRouter) writeVirtualService(ctx context.Context, cd *flaggerv1.Canary, k *istioConfig, mustExist bool,
	routes func(*istionetv1.VirtualService) istioRoutes) error {
	// SetRoutes (mustExist) adds no labels: Reconcile has, and it must work without the target
	// (the selector reads it), to send the traffic back to the primary when the target is gone.
	var labels map[string]string
	var err error
	if !mustExist {
		if labels, err = apexLabels(ctx, r.selector, cd); err != nil {
			return err
		}
	}
	vs := &istionetv1.VirtualService{}
	err = r.client.Get(ctx, types.NamespacedName{Namespace: cd.Namespace, Name: k.apex}, vs)
	switch {
	case apierrors.IsNotFound(err) && mustExist:
		return fmt.Errorf("VirtualService %s.%s not found: the router has not been reconciled", k.apex, cd.Namespace)
	case apierrors.IsNotFound(err):
		vs = &istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: k.apex, Namespace: cd.Namespace}}
		istioSetSpec(&vs.Spec, k.virtualService(routes(nil)))
		stampGenerated(vs, cd, labels)
		if err := r.writeWithZeroWeights(ctx, vs, true); err != nil {
			return fmt.Errorf("VirtualService %s.%s create error: %w", k.apex, cd.Namespace, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("VirtualService %s.%s get query error: %w", k.apex, cd.Namespace, err)
	}
	if ref := foreignController(vs, cd); ref != nil {
		return istioForeign("VirtualService", vs, cd, ref)
	}
	desired := k.virtualService(routes(vs))
	before := vs.ObjectMeta.DeepCopy()
	if metav1.GetControllerOf(vs) == nil {
		if _, saved := vs.Annotations[OriginalConfigAnnotation]; !saved {
			original, err := vs.Spec.MarshalJSON()
			if err != nil {
				return fmt.Errorf("VirtualService %s.%s: cannot save its spec: %w", k.apex, cd.Namespace, err)
			}
			vs.SetAnnotations(merge(vs.Annotations, map[string]string{OriginalConfigAnnotation: string(original)}))
		}
	}
	stampGenerated(vs, cd, labels)
	specChanged := !proto.Equal(&vs.Spec, desired)
	if !specChanged && istioSameMetadata(before, &vs.ObjectMeta) {
		return nil
	}
	if specChanged {
		istioSetSpec(&vs.Spec, desired)
	}
	if err := r.writeWithZeroWeights(ctx, vs, false); err != nil {
		return fmt.Errorf("VirtualService %s.%s update error: %w", k.apex, cd.Namespace, err)
	}
	return nil
}

// writeWithZeroWeights creates or updates a VirtualService with every route destination's weight
// written, 0 included, as Flagger writes them. The protobuf JSON of Istio's Go types leaves zero
// weights out; the object is sent as unstructured JSON with them put back. Reading is unchanged: an
// absent weight and weight 0 are the same to proto.Equal, so a VirtualService written without the
// zeros (by an earlier Pennant) is not rewritten for them alone.
func (r *IstioRouter) writeWithZeroWeights(ctx context.Context, vs *istionetv1.VirtualService, create bool) error {
	raw, err := json.Marshal(vs)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{}
	// k8s.io/apimachinery's json keeps integers int64, as unstructured objects want them.
	if err := utiljson.Unmarshal(raw, &u.Object); err != nil {
		return err
	}
	u.SetGroupVersionKind(istioVirtualServiceGVK)
	istioExplicitZeroWeights(u.Object)
	if create {
		return r.client.Create(ctx, u, r.owner)
	}
	return r.client.Update(ctx, u, r.owner)
}

// istioExplicitZeroWeights sets weight: 0 on the destinations of the HTTP, TCP and TLS routes of a
// VirtualService (as unstructured) that have none.
func istioExplicitZeroWeights(obj map[string]any) {
	for _, kind := range []string{"http", "tcp", "tls"} {
		routes, _, _ := unstructured.NestedSlice(obj, "spec", kind)
		for _, route := range routes {
			rm, _ := route.(map[string]any)
			dests, _ := rm["route"].([]any)
			for _, d := range dests {
				if dm, ok := d.(map[string]any); ok {
					if _, set := dm["weight"]; !set {
						dm["weight"] = int64(0)
					}
				}
			}
		}
		if len(routes) > 0 {
			_ = unstructured.SetNestedSlice(obj, routes, "spec", kind)
		}
	}
}

func istioSameMetadata(a, b *metav1.ObjectMeta) bool {
	return equality.Semantic.DeepEqual(a.Labels, b.Labels) &&
		equality.Semantic.DeepEqual(a.Annotations, b.Annotations) &&
		equality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences)
}

// istioSetSpec replaces the message dst (a spec embedded by value in an object) with a copy of src.
func istioSetSpec[M proto.Message](dst, src M) {
	proto.Reset(dst)
	proto.Merge(dst, src)
}

func istioClone[M proto.Message](m M) M {
	return proto.Clone(m).(M)
}

func istioCloneAll[M proto.Message](ms []M) []M {
	out := make([]M, 0, len(ms))
	for _, m := range ms {
		out = append(out, istioClone(m))
	}
	return out
}

// istioRoutes is the routing state a VirtualService carries.
type istioRoutes struct {
	primary, canary int
	mirrored        bool
	// cookies are the session affinity cookies the routes hand out.
	cookies SessionCookies
}

// istioConfig is a canary's spec translated into Istio's terms.
type istioConfig struct {
	apex, primary, canary string
	hosts, gateways       []string
	// port is set on the destinations when the ports must be explicit (Flagger's rule: port discovery
	// behind an ingress gateway, or delegation).
	port    *networkingv1.PortSelector
	tcp     bool
	l4Match []*networkingv1.L4MatchAttributes
	match   []*networkingv1.HTTPMatchRequest
	abMatch []*networkingv1.HTTPMatchRequest // nil unless A/B testing
	rewrite *networkingv1.HTTPRewrite
	timeout *durationpb.Duration
	retries *networkingv1.HTTPRetry
	cors    *networkingv1.CorsPolicy
	headers *networkingv1.Headers
	mirror  int
	// cd is the canary, whose session affinity settings planAffinity reads.
	cd            *flaggerv1.Canary
	trafficPolicy *networkingv1.TrafficPolicy
}

func newIstioConfig(cd *flaggerv1.Canary) (*istioConfig, error) {
	svc := cd.Spec.Service
	k := &istioConfig{tcp: strings.EqualFold(svc.AppProtocol, "tcp"), cd: cd}
	k.apex, k.primary, k.canary = cd.GetServiceNames()

	if svc.Delegation {
		if len(svc.Hosts) > 0 || len(svc.Gateways) > 0 {
			return nil, Invalidf("VirtualService %s.%s cannot have hosts and gateways when delegation is enabled", k.apex, cd.Namespace)
		}
	} else {
		k.hosts = slices.Clone(svc.Hosts)
		if !slices.Contains(k.hosts, k.apex) && !slices.Contains(k.hosts, "*") {
			k.hosts = append(k.hosts, k.apex)
		}
		k.gateways = slices.Clone(svc.Gateways)
		if len(k.gateways) == 0 {
			k.gateways = []string{istioMeshGateway}
		}
	}
	if svc.PortDiscovery && (len(svc.Gateways) > 0 && svc.Gateways[0] != istioMeshGateway || svc.Delegation) {
		k.port = &networkingv1.PortSelector{Number: uint32(svc.Port)}
	}

	var err error
	if k.match, err = istioMatches("spec.service.match", svc.Match); err != nil {
		return nil, err
	}
	for _, m := range svc.Match {
		k.l4Match = append(k.l4Match, &networkingv1.L4MatchAttributes{Port: m.Port})
	}
	if rw := svc.Rewrite; rw != nil && (rw.URI != "" || rw.Authority != "") {
		k.rewrite = &networkingv1.HTTPRewrite{Uri: rw.URI, Authority: rw.Authority}
	}
	if k.timeout, err = istioDuration("spec.service.timeout", svc.Timeout); err != nil {
		return nil, err
	}
	if k.retries, err = istioRetries(svc.Retries); err != nil {
		return nil, err
	}
	if k.cors, err = istioCors(svc.CorsPolicy); err != nil {
		return nil, err
	}
	k.headers = istioHeaders(svc.Headers)
	if k.trafficPolicy, err = istioTrafficPolicy(svc.TrafficPolicy); err != nil {
		return nil, err
	}

	a := cd.GetAnalysis()
	if a == nil {
		return k, nil
	}
	if a.MirrorWeight < 0 || a.MirrorWeight > 100 {
		return nil, Invalidf("analysis.mirrorWeight must be between 0 and 100, got %d", a.MirrorWeight)
	}
	k.mirror = a.MirrorWeight
	if len(a.Match) > 0 {
		ab := make([]flaggerv1.HTTPMatchRequest, 0, len(a.Match))
		for _, m := range a.Match {
			ab = append(ab, flaggerv1.HTTPMatchRequest{
				Name: m.Name, URI: m.URI, Scheme: m.Scheme, Method: m.Method, Authority: m.Authority,
				Headers: m.Headers, Port: m.Port, SourceLabels: m.SourceLabels, Gateways: m.Gateways,
				QueryParams: m.QueryParams, IgnoreURICase: m.IgnoreURICase, WithoutHeaders: m.WithoutHeaders,
				SourceNamespace: m.SourceNamespace,
			})
		}
		matches, err := istioMatches("analysis.match", ab)
		if err != nil {
			return nil, err
		}
		if !k.tcp {
			k.abMatch = istioMergeMatches(matches, k.match)
		}
	}
	if sa := a.SessionAffinity; sa != nil {
		if err := validateSessionAffinity(sa); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// virtualService builds the VirtualService spec for a routing state.
func (k *istioConfig) virtualService(st istioRoutes) *networkingv1.VirtualService {
	vs := &networkingv1.VirtualService{Hosts: slices.Clone(k.hosts), Gateways: slices.Clone(k.gateways)}
	if k.tcp {
		vs.Tcp = []*networkingv1.TCPRoute{{
			Match: istioCloneAll(k.l4Match),
			Route: []*networkingv1.RouteDestination{
				{Destination: k.destination(k.primary), Weight: int32(st.primary)},
				{Destination: k.destination(k.canary), Weight: int32(st.canary)},
			},
		}}
		return vs
	}

	weighted := k.httpRoute("", istioCloneAll(k.match), k.split(st.primary, st.canary))
	if st.mirrored {
		weighted.Mirror = &networkingv1.Destination{Host: k.canary}
		if k.mirror > 0 {
			weighted.MirrorPercentage = &networkingv1.Percent{Value: float64(k.mirror)}
		}
	}
	plan := planAffinity(k.cd, st.cookies, st.primary, st.canary)
	for _, d := range weighted.Route {
		switch d.GetDestination().GetHost() {
		case k.primary:
			istioSetCookie(d, plan.primarySetCookie)
		case k.canary:
			istioSetCookie(d, plan.canarySetCookie)
		}
	}
	vs.Http = append(k.stickyRoutes(plan), weighted)
	if k.abMatch != nil {
		weighted.Match = istioCloneAll(k.abMatch)
		vs.Http = append(vs.Http,
			k.httpRoute("", istioCloneAll(k.match), []*networkingv1.HTTPRouteDestination{k.httpDestination(k.primary, 100)}))
	}
	return vs
}

// stickyRoutes translates the session affinity plan's sticky routes.
func (k *istioConfig) stickyRoutes(plan affinityPlan) []*networkingv1.HTTPRoute {
	var out []*networkingv1.HTTPRoute
	for _, s := range plan.sticky {
		name := istioStickyRouteName
		if s.kind == stickyPrimary {
			name = istioPrimaryStickyRouteName
		}
		route := k.httpRoute(name, k.cookieMatch(s.cookie), k.split(s.primary, s.canary))
		if s.setCookie != "" {
			if route.Headers == nil {
				route.Headers = &networkingv1.Headers{}
			}
			if route.Headers.Response == nil {
				route.Headers.Response = &networkingv1.Headers_HeaderOperations{}
			}
			if route.Headers.Response.Add == nil {
				route.Headers.Response.Add = map[string]string{}
			}
			route.Headers.Response.Add[setCookieHeader] = s.setCookie
		}
		out = append(out, route)
	}
	return out
}

// observe reads the routing state of an existing VirtualService; ok is false when it has no route
// to the canary with a weight.
func (k *istioConfig) observe(vs *istionetv1.VirtualService) (st istioRoutes, ok bool) {
	if vs == nil {
		return st, false
	}
	if k.tcp {
		for _, route := range vs.Spec.Tcp {
			if !slices.ContainsFunc(route.Route, func(d *networkingv1.RouteDestination) bool { return d.GetDestination().GetHost() == k.canary }) {
				continue
			}
			for _, d := range route.Route {
				switch d.GetDestination().GetHost() {
				case k.primary:
					st.primary = int(d.Weight)
				case k.canary:
					st.canary = int(d.Weight)
				}
			}
		}
		return st, st.primary != 0 || st.canary != 0
	}
	var weighted *networkingv1.HTTPRoute
	for _, route := range vs.Spec.Http {
		switch route.GetName() {
		case istioStickyRouteName:
			if set := route.GetHeaders().GetResponse().GetAdd()[setCookieHeader]; strings.Contains(set, expiredMaxAge) {
				st.cookies.Previous = cookieOfSetCookie(set)
			}
			continue
		case istioPrimaryStickyRouteName:
			continue
		}
		if slices.ContainsFunc(route.Route, func(d *networkingv1.HTTPRouteDestination) bool { return d.GetDestination().GetHost() == k.canary }) {
			weighted = route
		}
	}
	if weighted == nil {
		return st, false
	}
	for _, d := range weighted.Route {
		set := d.GetHeaders().GetResponse().GetAdd()[setCookieHeader]
		switch d.GetDestination().GetHost() {
		case k.primary:
			st.primary, st.cookies.Primary = int(d.Weight), cookieOfSetCookie(set)
		case k.canary:
			st.canary, st.cookies.Canary = int(d.Weight), cookieOfSetCookie(set)
		}
	}
	st.mirrored = weighted.GetMirror().GetHost() != ""
	return st, st.primary != 0 || st.canary != 0
}

func (k *istioConfig) destination(host string) *networkingv1.Destination {
	return &networkingv1.Destination{Host: host, Port: istioClone(k.port)}
}

func (k *istioConfig) httpDestination(host string, weight int) *networkingv1.HTTPRouteDestination {
	return &networkingv1.HTTPRouteDestination{Destination: k.destination(host), Weight: int32(weight)}
}

// split is the primary and canary destinations, in that order.
func (k *istioConfig) split(primary, canary int) []*networkingv1.HTTPRouteDestination {
	return []*networkingv1.HTTPRouteDestination{k.httpDestination(k.primary, primary), k.httpDestination(k.canary, canary)}
}

// httpRoute is a route with the spec.service settings.
func (k *istioConfig) httpRoute(name string, match []*networkingv1.HTTPMatchRequest, route []*networkingv1.HTTPRouteDestination) *networkingv1.HTTPRoute {
	return &networkingv1.HTTPRoute{
		Name:       name,
		Match:      match,
		Route:      route,
		Rewrite:    istioClone(k.rewrite),
		Timeout:    istioClone(k.timeout),
		Retries:    istioClone(k.retries),
		CorsPolicy: istioClone(k.cors),
		Headers:    istioClone(k.headers),
	}
}

// cookieMatch matches requests carrying a cookie, within spec.service.match.
func (k *istioConfig) cookieMatch(cookie string) []*networkingv1.HTTPMatchRequest {
	m := &networkingv1.HTTPMatchRequest{Headers: map[string]*networkingv1.StringMatch{
		cookieHeader: {MatchType: &networkingv1.StringMatch_Regex{Regex: cookieRegex(cookie)}},
	}}
	return istioMergeMatches([]*networkingv1.HTTPMatchRequest{m}, k.match)
}

// istioMergeMatches combines every analysis condition with every spec.service.match condition: the
// fields the analysis condition sets replace those of the service condition.
func istioMergeMatches(analysis, service []*networkingv1.HTTPMatchRequest) []*networkingv1.HTTPMatchRequest {
	if len(service) == 0 {
		return istioCloneAll(analysis)
	}
	merged := make([]*networkingv1.HTTPMatchRequest, 0, len(analysis)*len(service))
	for _, a := range analysis {
		for _, s := range service {
			m := istioClone(s)
			istioClone(a).ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
				m.ProtoReflect().Set(fd, v)
				return true
			})
			merged = append(merged, m)
		}
	}
	return merged
}

// istioSetCookie makes a destination add a Set-Cookie header to its responses (none for "").
func istioSetCookie(d *networkingv1.HTTPRouteDestination, setCookie string) {
	if setCookie == "" {
		return
	}
	d.Headers = &networkingv1.Headers{Response: &networkingv1.Headers_HeaderOperations{
		Add: map[string]string{setCookieHeader: setCookie},
	}}
}

// istioMatches translates Istio request matches written in the canary spec.
func istioMatches(field string, in []flaggerv1.HTTPMatchRequest) ([]*networkingv1.HTTPMatchRequest, error) {
	var out []*networkingv1.HTTPMatchRequest
	for i, m := range in {
		path := fmt.Sprintf("%s[%d]", field, i)
		match := &networkingv1.HTTPMatchRequest{
			Name:            m.Name,
			Port:            m.Port,
			SourceLabels:    maps.Clone(m.SourceLabels),
			Gateways:        slices.Clone(m.Gateways),
			IgnoreUriCase:   m.IgnoreURICase,
			SourceNamespace: m.SourceNamespace,
		}
		var err error
		for _, f := range []struct {
			name string
			in   *flaggerv1.StringMatch
			out  **networkingv1.StringMatch
		}{{"uri", m.URI, &match.Uri}, {"scheme", m.Scheme, &match.Scheme}, {"method", m.Method, &match.Method}, {"authority", m.Authority, &match.Authority}} {
			if f.in != nil {
				if *f.out, err = istioStringMatch(path+"."+f.name, *f.in); err != nil {
					return nil, err
				}
			}
		}
		if match.Headers, err = istioStringMatches(path+".headers", m.Headers); err != nil {
			return nil, err
		}
		if match.QueryParams, err = istioStringMatches(path+".queryParams", m.QueryParams); err != nil {
			return nil, err
		}
		if match.WithoutHeaders, err = istioStringMatches(path+".withoutHeaders", m.WithoutHeaders); err != nil {
			return nil, err
		}
		out = append(out, match)
	}
	return out, nil
}

func istioStringMatches(field string, in map[string]flaggerv1.StringMatch) (map[string]*networkingv1.StringMatch, error) {
	if in == nil {
		return nil, nil
	}
	out := make(map[string]*networkingv1.StringMatch, len(in))
	for key, m := range in {
		sm, err := istioStringMatch(field+"."+key, m)
		if err != nil {
			return nil, err
		}
		out[key] = sm
	}
	return out, nil
}

// istioStringMatch translates a string match; Istio has no suffix match and takes one kind at most.
func istioStringMatch(field string, m flaggerv1.StringMatch) (*networkingv1.StringMatch, error) {
	if m.Suffix != "" {
		return nil, Invalidf("%s: Istio does not support suffix matching", field)
	}
	out := &networkingv1.StringMatch{}
	set := 0
	if m.Exact != "" {
		out.MatchType, set = &networkingv1.StringMatch_Exact{Exact: m.Exact}, set+1
	}
	if m.Prefix != "" {
		out.MatchType, set = &networkingv1.StringMatch_Prefix{Prefix: m.Prefix}, set+1
	}
	if m.Regex != "" {
		out.MatchType, set = &networkingv1.StringMatch_Regex{Regex: m.Regex}, set+1
	}
	if set > 1 {
		return nil, Invalidf("%s: only one of exact, prefix and regex may be set", field)
	}
	return out, nil
}

// istioDuration parses a Go duration for a field Istio requires to be at least 1ms.
func istioDuration(field, s string) (*durationpb.Duration, error) {
	if s == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Millisecond {
		return nil, Invalidf("%s: %q is not a duration of at least 1ms", field, s)
	}
	return durationpb.New(d), nil
}

func istioRetries(in *flaggerv1.HTTPRetry) (*networkingv1.HTTPRetry, error) {
	if in == nil {
		return nil, nil
	}
	perTry, err := istioDuration("spec.service.retries.perTryTimeout", in.PerTryTimeout)
	if err != nil {
		return nil, err
	}
	return &networkingv1.HTTPRetry{Attempts: in.Attempts, PerTryTimeout: perTry, RetryOn: in.RetryOn}, nil
}

func istioCors(in *flaggerv1.CorsPolicy) (*networkingv1.CorsPolicy, error) {
	if in == nil {
		return nil, nil
	}
	out := &networkingv1.CorsPolicy{
		AllowOrigin:   slices.Clone(in.AllowOrigin),
		AllowMethods:  slices.Clone(in.AllowMethods),
		AllowHeaders:  slices.Clone(in.AllowHeaders),
		ExposeHeaders: slices.Clone(in.ExposeHeaders),
	}
	for i, o := range in.AllowOrigins {
		m, err := istioStringMatch(fmt.Sprintf("spec.service.corsPolicy.allowOrigins[%d]", i), o)
		if err != nil {
			return nil, err
		}
		out.AllowOrigins = append(out.AllowOrigins, m)
	}
	var err error
	if out.MaxAge, err = istioDuration("spec.service.corsPolicy.maxAge", in.MaxAge); err != nil {
		return nil, err
	}
	if in.AllowCredentials != nil {
		out.AllowCredentials = wrapperspb.Bool(*in.AllowCredentials)
	}
	return out, nil
}

func istioHeaders(in *flaggerv1.Headers) *networkingv1.Headers {
	if in == nil {
		return nil
	}
	ops := func(o *flaggerv1.HeaderOperations) *networkingv1.Headers_HeaderOperations {
		if o == nil {
			return nil
		}
		return &networkingv1.Headers_HeaderOperations{Set: maps.Clone(o.Set), Add: maps.Clone(o.Add), Remove: slices.Clone(o.Remove)}
	}
	return &networkingv1.Headers{Request: ops(in.Request), Response: ops(in.Response)}
}

// istioDurationFields are the TrafficPolicy fields holding durations, which the canary spec writes as
// Go durations (1m) and protobuf JSON wants in seconds (60s).
var istioDurationFields = map[string]bool{
	"ttl": true, "warmupDurationSecs": true, "connectTimeout": true, "idleTimeout": true,
	"interval": true, "baseEjectionTime": true,
}

// istioTrafficPolicy translates spec.service.trafficPolicy, whose JSON follows Istio's schema.
func istioTrafficPolicy(in *flaggerv1.TrafficPolicy) (*networkingv1.TrafficPolicy, error) {
	if in == nil {
		return nil, nil
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("spec.service.trafficPolicy: %w", err)
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("spec.service.trafficPolicy: %w", err)
	}
	if err := istioNormalizeDurations("spec.service.trafficPolicy", tree); err != nil {
		return nil, err
	}
	if raw, err = json.Marshal(tree); err != nil {
		return nil, fmt.Errorf("spec.service.trafficPolicy: %w", err)
	}
	out := &networkingv1.TrafficPolicy{}
	if err := protojson.Unmarshal(raw, out); err != nil {
		return nil, Invalidf("spec.service.trafficPolicy is not a valid Istio traffic policy: %v", err)
	}
	return out, nil
}

func istioNormalizeDurations(path string, node any) error {
	switch n := node.(type) {
	case map[string]any:
		for key, v := range n {
			s, isString := v.(string)
			if !isString || !istioDurationFields[key] {
				if err := istioNormalizeDurations(path+"."+key, v); err != nil {
					return err
				}
				continue
			}
			d, err := time.ParseDuration(s)
			if err != nil || d < time.Millisecond {
				return Invalidf("%s.%s: %q is not a duration of at least 1ms", path, key, s)
			}
			n[key] = strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
		}
	case []any:
		for i, v := range n {
			if err := istioNormalizeDurations(fmt.Sprintf("%s[%d]", path, i), v); err != nil {
				return err
			}
		}
	}
	return nil
}
