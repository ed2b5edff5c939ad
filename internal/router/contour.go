package router

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// contourHTTPProxyGVK is the kind the Contour router writes.
var contourHTTPProxyGVK = schema.GroupVersionKind{Group: "projectcontour.io", Version: "v1", Kind: "HTTPProxy"}

// contourDuration is the duration syntax of the HTTPProxy CRD (timeouts, per-try timeouts).
var contourDuration = regexp.MustCompile(`^(((\d*(\.\d*)?h)|(\d*(\.\d*)?m)|(\d*(\.\d*)?s)|(\d*(\.\d*)?ms)|(\d*(\.\d*)?us)|(\d*(\.\d*)?µs)|(\d*(\.\d*)?ns))+|infinity|infinite)$`)

// contourRetryOn are the retryOn values an HTTPProxy accepts (Envoy's retry conditions).
var contourRetryOn = map[string]bool{
	"5xx": true, "gateway-error": true, "reset": true, "reset-before-request": true, "connect-failure": true,
	"envoy-ratelimited": true, "retriable-4xx": true, "refused-stream": true, "retriable-status-codes": true,
	"retriable-headers": true, "http3-post-connect-failure": true, "cancelled": true, "deadline-exceeded": true,
	"internal": true, "resource-exhausted": true, "unavailable": true,
}

// ContourRouter is the contour provider. It generates the HTTPProxy <svc> (projectcontour.io/v1),
// meant to be included by a root HTTPProxy: a route per spec.service.match (default prefix /)
// with the timeout and retry policies of spec.service, sending traffic by weight to the
// <svc>-primary and <svc>-canary Services. Each service sets the l5d-dst-override request header,
// as Flagger does, so that Linkerd meshes route to the right Service. For A/B testing each
// spec.analysis.match gets a route carrying the weights, and the default route sends the rest to
// the primary. spec.ingressClassName is -ingress-class when set.
type ContourRouter struct {
	client       client.Client
	owner        string
	ingressClass string
	selector     SelectorFunc
}

var (
	_ Interface = (*ContourRouter)(nil)
	_ Validator = (*ContourRouter)(nil)
)

// NewContour returns the Contour router; o.IngressClass becomes the HTTPProxy ingressClassName.
func NewContour(c client.Client, o Options) *ContourRouter {
	return &ContourRouter{client: c, owner: o.FieldOwner, ingressClass: o.IngressClass, selector: o.Selector}
}

// Validate rejects matches, timeouts and retry policies an HTTPProxy cannot express.
func (r *ContourRouter) Validate(cd *flaggerv1.Canary) error {
	_, err := r.spec(cd, 100, 0, nil)
	return err
}

// Reconcile creates or updates the HTTPProxy, keeping the current weights.
func (r *ContourRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	return r.object().reconcile(ctx, r.client, r.owner, cd)
}

// SetRoutes sets the weights of the (matched) routes of the HTTPProxy, which must exist.
func (r *ContourRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	return r.object().setRoutes(ctx, r.client, r.owner, cd, primaryWeight, canaryWeight)
}

// GetRoutes reads the weights of the primary and canary services of the first route.
func (r *ContourRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	return r.object().getRoutes(ctx, r.client, cd)
}

// Finalize gives back an HTTPProxy that existed before the canary with its original spec; one the
// canary created is left to the garbage collector.
func (r *ContourRouter) Finalize(ctx context.Context, cd *flaggerv1.Canary) error {
	return edgeRestore(ctx, r.client, r.owner, cd, edgeRef{contourHTTPProxyGVK, cd.GetServiceName()})
}

// HTTPProxy routes, as written (projectcontour.io/v1).
type (
	contourRoute struct {
		Conditions    []contourCondition    `json:"conditions,omitempty"`
		TimeoutPolicy *contourTimeoutPolicy `json:"timeoutPolicy,omitempty"`
		RetryPolicy   *contourRetryPolicy   `json:"retryPolicy,omitempty"`
		Services      []contourService      `json:"services"`
	}
	contourCondition struct {
		Prefix         string                  `json:"prefix,omitempty"`
		Exact          string                  `json:"exact,omitempty"`
		Regex          string                  `json:"regex,omitempty"`
		Header         *contourHeaderCondition `json:"header,omitempty"`
		QueryParameter *contourQueryCondition  `json:"queryParameter,omitempty"`
	}
	contourHeaderCondition struct {
		Name       string `json:"name"`
		Present    bool   `json:"present,omitempty"`
		NotPresent bool   `json:"notpresent,omitempty"`
		Exact      string `json:"exact,omitempty"`
		NotExact   string `json:"notexact,omitempty"`
		Regex      string `json:"regex,omitempty"`
	}
	contourQueryCondition struct {
		Name    string `json:"name"`
		Present bool   `json:"present,omitempty"`
		Exact   string `json:"exact,omitempty"`
		Prefix  string `json:"prefix,omitempty"`
		Suffix  string `json:"suffix,omitempty"`
		Regex   string `json:"regex,omitempty"`
	}
	contourTimeoutPolicy struct {
		Response string `json:"response,omitempty"`
		Idle     string `json:"idle,omitempty"`
	}
	contourRetryPolicy struct {
		Count                int64    `json:"count"`
		PerTryTimeout        string   `json:"perTryTimeout,omitempty"`
		RetryOn              []string `json:"retryOn,omitempty"`
		RetriableStatusCodes []int64  `json:"retriableStatusCodes,omitempty"`
	}
	contourService struct {
		Name string `json:"name"`
		Port int64  `json:"port"`
		// Weight 0 is left out, as Flagger does: Contour gives a service without a weight none of
		// the traffic when another service of the route has one.
		Weight               int64                 `json:"weight,omitempty"`
		RequestHeadersPolicy *contourHeadersPolicy `json:"requestHeadersPolicy,omitempty"`
	}
	contourHeadersPolicy struct {
		Set []contourHeaderValue `json:"set,omitempty"`
	}
	contourHeaderValue struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
)

// spec is the HTTPProxy spec with the given weights. routes is Pennant's, and ingressClassName
// when -ingress-class is set; the rest (e.g. the virtualhost of a proxy taken over) is kept.
func (r *ContourRouter) spec(cd *flaggerv1.Canary, primaryWeight, canaryWeight int, existing *unstructured.Unstructured) (map[string]any, error) {
	routes, err := contourRoutes(cd, primaryWeight, canaryWeight)
	if err != nil {
		return nil, err
	}
	spec := map[string]any{}
	if existing != nil {
		if s, ok, _ := unstructured.NestedMap(existing.Object, "spec"); ok {
			spec = s
		}
	}
	rs, err := edgeToUnstructured(&struct {
		Routes []contourRoute `json:"routes"`
	}{routes})
	if err != nil {
		return nil, err
	}
	spec["routes"] = rs["routes"]
	if r.ingressClass != "" {
		spec["ingressClassName"] = r.ingressClass
	}
	return spec, nil
}

// contourRoutes builds the routes: the weighted ones, then for A/B the default ones.
func contourRoutes(cd *flaggerv1.Canary, primaryWeight, canaryWeight int) ([]contourRoute, error) {
	timeout, err := contourTimeout(cd)
	if err != nil {
		return nil, err
	}
	retry, err := contourRetry(cd)
	if err != nil {
		return nil, err
	}
	var paths [][]contourCondition
	for _, m := range edgeServiceMatches(cd) {
		conds, err := contourConditions(m, true)
		if err != nil {
			return nil, err
		}
		paths = append(paths, conds)
	}
	if len(paths) == 0 {
		paths = [][]contourCondition{{{Prefix: "/"}}}
	}
	route := func(conds []contourCondition, p, c int) contourRoute {
		return contourRoute{
			Conditions:    conds,
			TimeoutPolicy: timeout,
			RetryPolicy:   retry,
			Services:      contourServices(cd, p, c),
		}
	}
	ab := edgeABMatches(cd)
	var routes []contourRoute
	if len(ab) == 0 {
		for _, conds := range paths {
			routes = append(routes, route(conds, primaryWeight, canaryWeight))
		}
		return routes, nil
	}
	// A/B: the conditions of a route are ANDed, so each service match × analysis match is a route.
	for _, conds := range paths {
		for _, m := range ab {
			abConds, err := contourConditions(m, false)
			if err != nil {
				return nil, err
			}
			routes = append(routes, route(contourMerge(conds, abConds), primaryWeight, canaryWeight))
		}
	}
	for _, conds := range paths {
		routes = append(routes, route(conds, 100, 0))
	}
	return routes, nil
}

// contourMerge narrows the service conditions s with the A/B conditions ab; a path in ab wins.
func contourMerge(s, ab []contourCondition) []contourCondition {
	out := make([]contourCondition, 0, len(s)+len(ab))
	abPath := len(ab) > 0 && ab[0].isPath()
	for _, c := range s {
		if !(abPath && c.isPath()) {
			out = append(out, c)
		}
	}
	if abPath {
		out = append([]contourCondition{ab[0]}, out...)
		ab = ab[1:]
	}
	return append(out, ab...)
}

// isPath reports whether the condition matches the path.
func (c contourCondition) isPath() bool { return c.Prefix != "" || c.Exact != "" || c.Regex != "" }

// contourConditions translates an Istio-style match into route conditions: the path (when set, or
// prefix / when defaultPath) first, then one condition per header and query parameter.
func contourConditions(m edgeMatch, defaultPath bool) ([]contourCondition, error) {
	var conds []contourCondition
	switch {
	case m.method != nil, m.authority != nil, m.scheme != nil:
		return nil, Invalidf("%s: contour cannot match on method, authority or scheme", m.field)
	case m.uri != nil && m.ignoreURICase:
		return nil, Invalidf("%s.ignoreUriCase: contour cannot match paths case-insensitively", m.field)
	}
	if m.uri != nil {
		var c contourCondition
		switch kind, v := edgeStringMatch(*m.uri); kind {
		case "prefix", "":
			c.Prefix = v
		case "exact":
			c.Exact = v
		case "regex":
			c.Regex = v
		case "suffix":
			c.Regex = ".*" + regexp.QuoteMeta(v)
		}
		if c.isPath() {
			conds = append(conds, c)
		}
	}
	if len(conds) == 0 && defaultPath {
		conds = append(conds, contourCondition{Prefix: "/"})
	}
	for _, name := range edgeSortedKeys(m.headers) {
		h := &contourHeaderCondition{Name: name}
		switch kind, v := edgeStringMatch(m.headers[name]); kind {
		case "exact":
			h.Exact = v
		case "regex":
			h.Regex = v
		case "prefix":
			h.Regex = regexp.QuoteMeta(v) + ".*"
		case "suffix":
			h.Regex = ".*" + regexp.QuoteMeta(v)
		default:
			h.Present = true
		}
		conds = append(conds, contourCondition{Header: h})
	}
	for _, name := range edgeSortedKeys(m.withoutHeaders) {
		h := &contourHeaderCondition{Name: name}
		switch kind, v := edgeStringMatch(m.withoutHeaders[name]); kind {
		case "exact":
			h.NotExact = v
		case "":
			h.NotPresent = true
		default:
			return nil, Invalidf("%s.withoutHeaders.%s: contour can only exclude a header value exactly, or the header", m.field, name)
		}
		conds = append(conds, contourCondition{Header: h})
	}
	for _, name := range edgeSortedKeys(m.queryParams) {
		q := &contourQueryCondition{Name: name}
		switch kind, v := edgeStringMatch(m.queryParams[name]); kind {
		case "exact":
			q.Exact = v
		case "prefix":
			q.Prefix = v
		case "suffix":
			q.Suffix = v
		case "regex":
			q.Regex = v
		default:
			q.Present = true
		}
		conds = append(conds, contourCondition{QueryParameter: q})
	}
	return conds, nil
}

// contourServices are the weighted primary and canary Services of a route.
func contourServices(cd *flaggerv1.Canary, primaryWeight, canaryWeight int) []contourService {
	_, primary, canary := cd.GetServiceNames()
	port := int64(cd.Spec.Service.Port)
	service := func(name string, weight int) contourService {
		return contourService{
			Name:   name,
			Port:   port,
			Weight: int64(weight),
			RequestHeadersPolicy: &contourHeadersPolicy{Set: []contourHeaderValue{{
				Name:  "l5d-dst-override",
				Value: fmt.Sprintf("%s.%s.svc.cluster.local:%d", name, cd.Namespace, port),
			}}},
		}
	}
	return []contourService{service(primary, primaryWeight), service(canary, canaryWeight)}
}

// contourTimeout is spec.service.timeout as the response timeout, with Flagger's 5m idle timeout.
func contourTimeout(cd *flaggerv1.Canary) (*contourTimeoutPolicy, error) {
	t := cd.Spec.Service.Timeout
	if t == "" {
		return nil, nil
	}
	if !contourDuration.MatchString(t) {
		return nil, Invalidf("spec.service.timeout: %q is not a duration contour accepts", t)
	}
	return &contourTimeoutPolicy{Response: t, Idle: "5m"}, nil
}

// contourRetry is spec.service.retries: attempts as the retry count (Flagger's mapping), the
// per-try timeout, and the comma-separated retryOn conditions, HTTP status codes included.
func contourRetry(cd *flaggerv1.Canary) (*contourRetryPolicy, error) {
	rt := cd.Spec.Service.Retries
	if rt == nil {
		return nil, nil
	}
	p := &contourRetryPolicy{Count: int64(rt.Attempts), PerTryTimeout: rt.PerTryTimeout}
	if p.PerTryTimeout != "" && !contourDuration.MatchString(p.PerTryTimeout) {
		return nil, Invalidf("spec.service.retries.perTryTimeout: %q is not a duration contour accepts", p.PerTryTimeout)
	}
	seen := map[string]bool{}
	add := func(on string) {
		if !seen[on] {
			seen[on] = true
			p.RetryOn = append(p.RetryOn, on)
		}
	}
	for on := range strings.SplitSeq(rt.RetryOn, ",") {
		on = strings.TrimSpace(on)
		switch code, err := strconv.Atoi(on); {
		case on == "":
		case err == nil && code >= 100 && code <= 599:
			add("retriable-status-codes")
			p.RetriableStatusCodes = append(p.RetriableStatusCodes, int64(code))
		case contourRetryOn[on]:
			add(on)
		default:
			return nil, Invalidf("spec.service.retries.retryOn: contour does not retry on %q", on)
		}
	}
	return p, nil
}

// contourWeights reads the primary and canary weights of the first route of an HTTPProxy.
func contourWeights(proxy *unstructured.Unstructured, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, err error) {
	_, primary, canary := cd.GetServiceNames()
	routes, _, _ := unstructured.NestedSlice(proxy.Object, "spec", "routes")
	if len(routes) == 0 {
		return 0, 0, fmt.Errorf("HTTPProxy %s.%s has no routes", proxy.GetName(), proxy.GetNamespace())
	}
	route, _ := routes[0].(map[string]any)
	services, _, _ := unstructured.NestedSlice(route, "services")
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
		return 0, 0, fmt.Errorf("HTTPProxy %s.%s has no service %s", proxy.GetName(), proxy.GetNamespace(), primary)
	}
	return primaryWeight, canaryWeight, nil
}

// object is the HTTPProxy, whose spec carries the weights.
func (r *ContourRouter) object() weightedObject {
	return weightedObject{gvk: contourHTTPProxyGVK, selector: r.selector, spec: r.spec, weights: contourWeights}
}
