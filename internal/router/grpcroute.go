package router

import (
	"encoding/json"
	"fmt"
	"strings"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// GRPCRoute support (Flagger has none: it writes an HTTPRoute for gRPC services too).
//
// The Gateway API provider routes a canary with a GRPCRoute (gateway.networking.k8s.io/v1, for both
// gatewayapi:v1 and gatewayapi:v1beta1: GRPCRoute has no v1beta1 in the standard channel) when
// gwIsGRPC says so: spec.service.appProtocol is "grpc", or, without appProtocol, the port name is
// "grpc" or "grpc-<suffix>" (not grpc-web). An existing route of the other kind that the canary
// controls (a Flagger HTTPRoute, or a route written before the port was renamed) keeps being used, so
// that the switch never happens under traffic: delete it to switch.
//
// The GRPCRoute has the HTTPRoute's shape and features (canary weights, A/B, B/G mirroring, session
// affinity, user filters kept), with these translations and limits:
//   - a uri match becomes a gRPC method match: exact "/<package.Service>/<Method>" matches the method,
//     prefix "/<package.Service>" (or with a trailing slash) the service, prefix "/" everything; other
//     uri matches, HTTP methods and query parameters are refused;
//   - headers, request mirrors and the session cookie work as for HTTP;
//   - service.timeout, service.backendTimeout, service.rewrite and service.corsPolicy are refused:
//     a GRPCRoute has no timeouts, URL rewrite or CORS filter.

// gwRouteKind adapts one route kind to the HTTPRoute v1 spec that the router works on.
type gwRouteKind interface {
	kind() string
	object(cd *flaggerv1.Canary) client.Object
	// model is the object's spec as an HTTPRoute spec (a GRPCRoute's method matches become paths).
	model(obj client.Object) gatewayv1.HTTPRouteSpec
	setModel(obj client.Object, spec gatewayv1.HTTPRouteSpec) error
	parents(obj client.Object) []gatewayv1.RouteParentStatus
	marshal(obj client.Object) ([]byte, error)
	restore(obj client.Object, spec []byte) error
}

func (r *GatewayAPIRouter) kinds(p *gwPlan) (preferred, other gwRouteKind) {
	var http gwRouteKind = gwHTTPRouteV1{}
	if r.version == "v1beta1" {
		http = gwHTTPRouteV1beta1{}
	}
	if p.grpc {
		return gwGRPCRoute{}, http
	}
	return http, gwGRPCRoute{}
}

func gwObjectMeta(cd *flaggerv1.Canary) (name, namespace string) {
	return cd.GetServiceName(), cd.Namespace
}

type gwHTTPRouteV1 struct{}

func (gwHTTPRouteV1) kind() string { return "HTTPRoute" }
func (gwHTTPRouteV1) object(cd *flaggerv1.Canary) client.Object {
	o := &gatewayv1.HTTPRoute{}
	o.Name, o.Namespace = gwObjectMeta(cd)
	return o
}
func (gwHTTPRouteV1) model(obj client.Object) gatewayv1.HTTPRouteSpec {
	return obj.(*gatewayv1.HTTPRoute).Spec
}
func (gwHTTPRouteV1) setModel(obj client.Object, spec gatewayv1.HTTPRouteSpec) error {
	obj.(*gatewayv1.HTTPRoute).Spec = spec
	return nil
}
func (gwHTTPRouteV1) parents(obj client.Object) []gatewayv1.RouteParentStatus {
	return obj.(*gatewayv1.HTTPRoute).Status.Parents
}
func (gwHTTPRouteV1) marshal(obj client.Object) ([]byte, error) {
	return json.Marshal(obj.(*gatewayv1.HTTPRoute).Spec)
}
func (gwHTTPRouteV1) restore(obj client.Object, data []byte) error {
	var spec gatewayv1.HTTPRouteSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return err
	}
	obj.(*gatewayv1.HTTPRoute).Spec = spec
	return nil
}

type gwHTTPRouteV1beta1 struct{}

func (gwHTTPRouteV1beta1) kind() string { return "HTTPRoute" }
func (gwHTTPRouteV1beta1) object(cd *flaggerv1.Canary) client.Object {
	o := &gatewayv1beta1.HTTPRoute{}
	o.Name, o.Namespace = gwObjectMeta(cd)
	return o
}
func (gwHTTPRouteV1beta1) model(obj client.Object) gatewayv1.HTTPRouteSpec {
	return obj.(*gatewayv1beta1.HTTPRoute).Spec
}
func (gwHTTPRouteV1beta1) setModel(obj client.Object, spec gatewayv1.HTTPRouteSpec) error {
	obj.(*gatewayv1beta1.HTTPRoute).Spec = spec
	return nil
}
func (gwHTTPRouteV1beta1) parents(obj client.Object) []gatewayv1.RouteParentStatus {
	return obj.(*gatewayv1beta1.HTTPRoute).Status.Parents
}
func (gwHTTPRouteV1beta1) marshal(obj client.Object) ([]byte, error) {
	return json.Marshal(obj.(*gatewayv1beta1.HTTPRoute).Spec)
}
func (gwHTTPRouteV1beta1) restore(obj client.Object, data []byte) error {
	var spec gatewayv1beta1.HTTPRouteSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return err
	}
	obj.(*gatewayv1beta1.HTTPRoute).Spec = spec
	return nil
}

type gwGRPCRoute struct{}

func (gwGRPCRoute) kind() string { return "GRPCRoute" }
func (gwGRPCRoute) object(cd *flaggerv1.Canary) client.Object {
	o := &gatewayv1.GRPCRoute{}
	o.Name, o.Namespace = gwObjectMeta(cd)
	return o
}
func (gwGRPCRoute) parents(obj client.Object) []gatewayv1.RouteParentStatus {
	return obj.(*gatewayv1.GRPCRoute).Status.Parents
}
func (gwGRPCRoute) marshal(obj client.Object) ([]byte, error) {
	return json.Marshal(obj.(*gatewayv1.GRPCRoute).Spec)
}
func (gwGRPCRoute) restore(obj client.Object, data []byte) error {
	var spec gatewayv1.GRPCRouteSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return err
	}
	obj.(*gatewayv1.GRPCRoute).Spec = spec
	return nil
}

func (gwGRPCRoute) model(obj client.Object) gatewayv1.HTTPRouteSpec {
	spec := obj.(*gatewayv1.GRPCRoute).Spec
	out := gatewayv1.HTTPRouteSpec{CommonRouteSpec: spec.CommonRouteSpec, Hostnames: spec.Hostnames}
	for _, r := range spec.Rules {
		rule := gatewayv1.HTTPRouteRule{Name: r.Name, SessionPersistence: r.SessionPersistence}
		for _, m := range r.Matches {
			rule.Matches = append(rule.Matches, gwMatchOfGRPC(m))
		}
		for _, f := range r.Filters {
			rule.Filters = append(rule.Filters, gwFilterOfGRPC(f))
		}
		for _, b := range r.BackendRefs {
			hb := gatewayv1.HTTPBackendRef{BackendRef: b.BackendRef}
			for _, f := range b.Filters {
				hb.Filters = append(hb.Filters, gwFilterOfGRPC(f))
			}
			rule.BackendRefs = append(rule.BackendRefs, hb)
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

func (gwGRPCRoute) setModel(obj client.Object, spec gatewayv1.HTTPRouteSpec) error {
	o := obj.(*gatewayv1.GRPCRoute)
	out := gatewayv1.GRPCRouteSpec{CommonRouteSpec: spec.CommonRouteSpec, Hostnames: spec.Hostnames}
	for _, r := range spec.Rules {
		if r.Timeouts != nil {
			return Invalidf("a GRPCRoute has no timeouts: remove spec.service.timeout and spec.service.backendTimeout")
		}
		rule := gatewayv1.GRPCRouteRule{Name: r.Name, SessionPersistence: r.SessionPersistence}
		all := false
		for _, m := range r.Matches {
			gm, matchesAll, err := gwGRPCMatch(m)
			if err != nil {
				return err
			}
			all = all || matchesAll
			rule.Matches = append(rule.Matches, gm)
		}
		if all {
			rule.Matches = nil
		}
		for _, f := range r.Filters {
			gf, err := gwGRPCFilter(f)
			if err != nil {
				return err
			}
			rule.Filters = append(rule.Filters, gf)
		}
		for _, b := range r.BackendRefs {
			gb := gatewayv1.GRPCBackendRef{BackendRef: b.BackendRef}
			for _, f := range b.Filters {
				gf, err := gwGRPCFilter(f)
				if err != nil {
					return err
				}
				gb.Filters = append(gb.Filters, gf)
			}
			rule.BackendRefs = append(rule.BackendRefs, gb)
		}
		out.Rules = append(out.Rules, rule)
	}
	o.Spec = out
	return nil
}

// checkGRPC refuses what a GRPCRoute cannot express.
func (p *gwPlan) checkGRPC() error {
	svc := p.cd.Spec.Service
	why := "the service is gRPC (appProtocol grpc or port name grpc[-*]), routed by a GRPCRoute, which has no"
	switch {
	case svc.Timeout != "" || svc.BackendTimeout != "":
		return Invalidf("spec.service.timeout/backendTimeout: %s timeouts", why)
	case svc.Rewrite != nil:
		return Invalidf("spec.service.rewrite: %s URL rewrite", why)
	case svc.CorsPolicy != nil:
		return Invalidf("spec.service.corsPolicy: %s CORS filter", why)
	}
	for _, set := range []struct {
		field   string
		matches []gatewayv1.HTTPRouteMatch
	}{{"spec.service.match", p.matches}, {"spec.analysis.match", p.abMatches}} {
		for _, m := range set.matches {
			if _, _, err := gwGRPCMatch(m); err != nil {
				return Invalidf("%s: %v", set.field, err)
			}
		}
	}
	return nil
}

// gwGRPCMatch converts an HTTP match to a gRPC one; matchesAll is true when it has no condition.
func gwGRPCMatch(m gatewayv1.HTTPRouteMatch) (gatewayv1.GRPCRouteMatch, bool, error) {
	var out gatewayv1.GRPCRouteMatch
	if m.Method != nil {
		return out, false, Invalidf("a GRPCRoute cannot match the HTTP method")
	}
	if len(m.QueryParams) > 0 {
		return out, false, Invalidf("a GRPCRoute cannot match query parameters")
	}
	if p := m.Path; p != nil {
		value := ptr.Deref(p.Value, "/")
		typ := ptr.Deref(p.Type, gatewayv1.PathMatchPathPrefix)
		parts := strings.Split(strings.TrimPrefix(value, "/"), "/")
		switch {
		case typ == gatewayv1.PathMatchPathPrefix && value == "/":
		case typ == gatewayv1.PathMatchExact && strings.HasPrefix(value, "/") && len(parts) == 2 && parts[0] != "" && parts[1] != "":
			out.Method = &gatewayv1.GRPCMethodMatch{Type: ptr.To(gatewayv1.GRPCMethodMatchExact),
				Service: ptr.To(parts[0]), Method: ptr.To(parts[1])}
		case typ == gatewayv1.PathMatchPathPrefix && strings.HasPrefix(value, "/") && parts[0] != "" &&
			(len(parts) == 1 || (len(parts) == 2 && parts[1] == "")):
			out.Method = &gatewayv1.GRPCMethodMatch{Type: ptr.To(gatewayv1.GRPCMethodMatchExact), Service: ptr.To(parts[0])}
		default:
			return out, false, Invalidf("uri %s %q: a GRPCRoute matches exact /<package.Service>/<Method> or prefix /<package.Service>", typ, value)
		}
	}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, gatewayv1.GRPCHeaderMatch{
			Type:  ptr.To(gatewayv1.GRPCHeaderMatchType(ptr.Deref(h.Type, gatewayv1.HeaderMatchExact))),
			Name:  gatewayv1.GRPCHeaderName(h.Name),
			Value: h.Value,
		})
	}
	return out, out.Method == nil && len(out.Headers) == 0, nil
}

// gwMatchOfGRPC is a gRPC match as an HTTP one (method matches as paths; only the headers matter to
// the router, which regenerates matches).
func gwMatchOfGRPC(m gatewayv1.GRPCRouteMatch) gatewayv1.HTTPRouteMatch {
	var out gatewayv1.HTTPRouteMatch
	if mm := m.Method; mm != nil {
		service, method := ptr.Deref(mm.Service, ""), ptr.Deref(mm.Method, "")
		switch {
		case ptr.Deref(mm.Type, gatewayv1.GRPCMethodMatchExact) != gatewayv1.GRPCMethodMatchExact:
			out.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchRegularExpression),
				Value: ptr.To(fmt.Sprintf("/%s/%s", gwOr(service, "[^/]+"), gwOr(method, "[^/]+")))}
		case method == "":
			out.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/" + service)}
		default:
			out.Path = &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: ptr.To(fmt.Sprintf("/%s/%s", service, method))}
		}
	}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, gatewayv1.HTTPHeaderMatch{
			Type:  ptr.To(gatewayv1.HeaderMatchType(ptr.Deref(h.Type, gatewayv1.GRPCHeaderMatchExact))),
			Name:  gatewayv1.HTTPHeaderName(h.Name),
			Value: h.Value,
		})
	}
	return out
}

func gwOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func gwGRPCFilter(f gatewayv1.HTTPRouteFilter) (gatewayv1.GRPCRouteFilter, error) {
	switch f.Type {
	case gatewayv1.HTTPRouteFilterRequestHeaderModifier, gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		gatewayv1.HTTPRouteFilterRequestMirror, gatewayv1.HTTPRouteFilterExtensionRef:
		return gatewayv1.GRPCRouteFilter{
			Type:                   gatewayv1.GRPCRouteFilterType(f.Type),
			RequestHeaderModifier:  f.RequestHeaderModifier,
			ResponseHeaderModifier: f.ResponseHeaderModifier,
			RequestMirror:          f.RequestMirror,
			ExtensionRef:           f.ExtensionRef,
		}, nil
	}
	return gatewayv1.GRPCRouteFilter{}, Invalidf("a GRPCRoute has no %s filter", f.Type)
}

func gwFilterOfGRPC(f gatewayv1.GRPCRouteFilter) gatewayv1.HTTPRouteFilter {
	return gatewayv1.HTTPRouteFilter{
		Type:                   gatewayv1.HTTPRouteFilterType(f.Type),
		RequestHeaderModifier:  f.RequestHeaderModifier,
		ResponseHeaderModifier: f.ResponseHeaderModifier,
		RequestMirror:          f.RequestMirror,
		ExtensionRef:           f.ExtensionRef,
	}
}
