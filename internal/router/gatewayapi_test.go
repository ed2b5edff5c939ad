package router

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// gwCanary is podinfo behind the Gateway gateway/public, for app.example.com.
func gwCanary(provider string) *flaggerv1.Canary {
	cd := testCanary(provider)
	cd.Spec.Service.GatewayRefs = []flaggerv1.ParentReference{{Name: "public", Namespace: ptr.To("gateway")}}
	cd.Spec.Service.Hosts = []string{"app.example.com"}
	return cd
}

// gwTestRouter is the router on a client that counts its writes.
type gwTestRouter struct {
	*GatewayAPIRouter
	writes *atomic.Int64
}

type gwCountingClient struct {
	client.Client
	writes *atomic.Int64
}

func (c gwCountingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.writes.Add(1)
	return c.Client.Create(ctx, obj, opts...)
}

func (c gwCountingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.writes.Add(1)
	return c.Client.Update(ctx, obj, opts...)
}

func (c gwCountingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.writes.Add(1)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c gwCountingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.writes.Add(1)
	return c.Client.Delete(ctx, obj, opts...)
}

func newGatewayRouter(e *routerEnv, version string) *gwTestRouter {
	writes := &atomic.Int64{}
	return &gwTestRouter{NewGatewayAPI(gwCountingClient{e.c, writes}, Options{FieldOwner: "pennant"}, version), writes}
}

func (e *routerEnv) gwHTTPRoute(t *testing.T, name string) *gatewayv1.HTTPRoute {
	t.Helper()
	hr := &gatewayv1.HTTPRoute{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: name}, hr); err != nil {
		t.Fatalf("get HTTPRoute %s: %v", name, err)
	}
	return hr
}

func (e *routerEnv) gwGRPCRoute(t *testing.T, name string) *gatewayv1.GRPCRoute {
	t.Helper()
	gr := &gatewayv1.GRPCRoute{}
	if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: e.ns, Name: name}, gr); err != nil {
		t.Fatalf("get GRPCRoute %s: %v", name, err)
	}
	return gr
}

func gwMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sameJSON fails t when got and want do not render to the same JSON.
func gwSameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	if string(g) != string(w) {
		t.Errorf("%s:\ngot  %s\nwant %s", what, g, w)
	}
}

func gwWantRoutes(t *testing.T, r *gwTestRouter, cd *flaggerv1.Canary, primary, canary int, mirrored bool) {
	t.Helper()
	p, c, m, err := r.GetRoutes(context.Background(), cd)
	if err != nil {
		t.Fatalf("GetRoutes: %v", err)
	}
	if p != primary || c != canary || m != mirrored {
		t.Errorf("GetRoutes = %d/%d mirrored %v, want %d/%d mirrored %v", p, c, m, primary, canary, mirrored)
	}
}

// unchanged runs op and fails t if the router wrote anything (the API server would not even bump
// the resourceVersion of an update without change, so the writes are counted).
func gwUnchanged(t *testing.T, r *gwTestRouter, op func() error) {
	t.Helper()
	before := r.writes.Load()
	gwMust(t, op())
	if after := r.writes.Load(); after != before {
		t.Errorf("%d writes although nothing changed", after-before)
	}
}

func gwBackend(name string, weight int32, filters ...gatewayv1.HTTPRouteFilter) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
			Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(9898)),
		},
		Weight: ptr.To(weight),
	}, Filters: filters}
}

func gwPathPrefix(p string) *gatewayv1.HTTPPathMatch {
	return &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To(p)}
}

func gwWeightsOf(rule gatewayv1.HTTPRouteRule) string {
	var parts []string
	for _, b := range rule.BackendRefs {
		parts = append(parts, fmt.Sprintf("%s=%d", b.Name, ptr.Deref(b.Weight, 1)))
	}
	return strings.Join(parts, ",")
}

func TestGatewayAPIInitialRouting(t *testing.T) {
	e := newRouterEnv(t)
	cd := gwCanary("gatewayapi:v1")
	svc := &cd.Spec.Service
	svc.Match = []flaggerv1.HTTPMatchRequest{{URI: &flaggerv1.StringMatch{Prefix: "/api"}}}
	svc.Rewrite = &flaggerv1.HTTPRewrite{URI: "/", Type: "ReplacePrefixMatch"}
	svc.Headers = &flaggerv1.Headers{
		Request:  &flaggerv1.HeaderOperations{Set: map[string]string{"X-Pennant": "yes"}, Add: map[string]string{"X-Add": "a"}, Remove: []string{"X-Drop"}},
		Response: &flaggerv1.HeaderOperations{Set: map[string]string{"X-Resp": "r"}},
	}
	svc.Timeout, svc.BackendTimeout = "30s", "10s"
	svc.CorsPolicy = &flaggerv1.CorsPolicy{AllowOrigins: []flaggerv1.StringMatch{{Exact: "https://example.com"}},
		AllowMethods: []string{"GET", "POST"}, AllowHeaders: []string{"X-Api"}, MaxAge: "24h", AllowCredentials: ptr.To(true)}
	svc.Mirror = []flaggerv1.HTTPRequestMirrorFilter{{BackendRef: flaggerv1.BackendObjectReference{Name: "shadow", Port: ptr.To(int32(8080))}}}
	svc.Apex = &flaggerv1.CustomMetadata{Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "apex"}}
	cd = e.createCanary(t, cd)
	r := newGatewayRouter(e, "v1")
	ctx := context.Background()

	gwMust(t, r.Validate(cd))
	gwMust(t, r.Reconcile(ctx, cd))
	hr := e.gwHTTPRoute(t, "podinfo")

	filters := []gatewayv1.HTTPRouteFilter{
		{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Set: []gatewayv1.HTTPHeader{{Name: "X-Pennant", Value: "yes"}}, Add: []gatewayv1.HTTPHeader{{Name: "X-Add", Value: "a"}}, Remove: []string{"X-Drop"}}},
		{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{
			Set: []gatewayv1.HTTPHeader{{Name: "X-Resp", Value: "r"}}}},
		{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{
			Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.PrefixMatchHTTPPathModifier, ReplacePrefixMatch: ptr.To("/")}}},
		{Type: gatewayv1.HTTPRouteFilterCORS, CORS: &gatewayv1.HTTPCORSFilter{
			AllowOrigins: []gatewayv1.CORSOrigin{"https://example.com"}, AllowCredentials: ptr.To(true),
			AllowMethods: []gatewayv1.HTTPMethodWithWildcard{"GET", "POST"}, AllowHeaders: []gatewayv1.HTTPHeaderName{"X-Api"}, MaxAge: 86400}},
		{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{BackendRef: gatewayv1.BackendObjectReference{
			Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: "shadow", Port: ptr.To(gatewayv1.PortNumber(8080))}}},
	}
	want := gatewayv1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
			Group: ptr.To(gatewayv1.Group("gateway.networking.k8s.io")), Kind: ptr.To(gatewayv1.Kind("Gateway")),
			Namespace: ptr.To(gatewayv1.Namespace("gateway")), Name: "public"}}},
		Hostnames: []gatewayv1.Hostname{"app.example.com"},
		Rules: []gatewayv1.HTTPRouteRule{{
			Matches:     []gatewayv1.HTTPRouteMatch{{Path: gwPathPrefix("/api")}},
			Filters:     filters,
			BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo-primary", 100), gwBackend("podinfo-canary", 0)},
			Timeouts:    &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayv1.Duration("30s")), BackendRequest: ptr.To(gatewayv1.Duration("10s"))},
		}},
	}
	gwSameJSON(t, "HTTPRoute spec", hr.Spec, want)
	if hr.Labels["team"] != "a" || hr.Annotations["note"] != "apex" ||
		hr.Annotations[FluxReconcileAnnotation] != "disabled" || hr.Annotations[HelmDriftDetectionAnnotation] != "disabled" {
		t.Errorf("metadata: labels %v annotations %v", hr.Labels, hr.Annotations)
	}
	if _, ok := hr.Annotations[OriginalConfigAnnotation]; ok {
		t.Errorf("a route Pennant created has no original configuration")
	}
	var managed gwManaged
	gwMust(t, json.Unmarshal([]byte(hr.Annotations[GatewayManagedAnnotation]), &managed))
	gwSameJSON(t, "recorded filters", managed.Filters, filters)
	if ref := metav1.GetControllerOf(hr); ref == nil || ref.UID != cd.UID || ref.Kind != "Canary" {
		t.Errorf("controller = %+v", ref)
	}
	gwWantRoutes(t, r, cd, 100, 0, false)
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
}

func TestGatewayAPIWeightSteps(t *testing.T) {
	e := newRouterEnv(t)
	cd := e.createCanary(t, gwCanary("gatewayapi:v1"))
	r := newGatewayRouter(e, "v1")
	ctx := context.Background()
	gwMust(t, r.Reconcile(ctx, cd))
	gwWantRoutes(t, r, cd, 100, 0, false)

	for _, step := range [][2]int{{90, 10}, {80, 20}, {70, 30}, {60, 40}, {50, 50}} {
		gwMust(t, r.SetRoutes(ctx, cd, step[0], step[1], false))
		hr := e.gwHTTPRoute(t, "podinfo")
		if len(hr.Spec.Rules) != 1 {
			t.Fatalf("rules: %d", len(hr.Spec.Rules))
		}
		if got, want := gwWeightsOf(hr.Spec.Rules[0]), fmt.Sprintf("podinfo-primary=%d,podinfo-canary=%d", step[0], step[1]); got != want {
			t.Errorf("weights %s, want %s", got, want)
		}
		gwWantRoutes(t, r, cd, step[0], step[1], false)
		// The same weights again, and a Reconcile, write nothing and keep the weights.
		gwUnchanged(t, r, func() error { return r.SetRoutes(ctx, cd, step[0], step[1], false) })
		gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
	}
	// Promotion: everything back to the primary.
	gwMust(t, r.SetRoutes(ctx, cd, 100, 0, false))
	gwWantRoutes(t, r, cd, 100, 0, false)
	if got := gwWeightsOf(e.gwHTTPRoute(t, "podinfo").Spec.Rules[0]); got != "podinfo-primary=100,podinfo-canary=0" {
		t.Errorf("after promotion: %s", got)
	}
}

func TestGatewayAPIABTesting(t *testing.T) {
	e := newRouterEnv(t)
	cd := gwCanary("gatewayapi:v1")
	cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{URI: &flaggerv1.StringMatch{Prefix: "/api"}}}
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 2, Iterations: 10, Match: []flaggerv1.ABMatch{
		{Headers: map[string]flaggerv1.StringMatch{"x-canary": {Exact: "insider"}}},
		{Headers: map[string]flaggerv1.StringMatch{"cookie": {Regex: "^(.*?;)?(canary=always)(;.*)?$"}}},
	}}
	cd = e.createCanary(t, cd)
	r := newGatewayRouter(e, "v1")
	ctx := context.Background()
	gwMust(t, r.Reconcile(ctx, cd))

	header := func(name, typ, value string) []gatewayv1.HTTPHeaderMatch {
		return []gatewayv1.HTTPHeaderMatch{{Type: ptr.To(gatewayv1.HeaderMatchType(typ)), Name: gatewayv1.HTTPHeaderName(name), Value: value}}
	}
	abMatches := []gatewayv1.HTTPRouteMatch{
		{Path: gwPathPrefix("/api"), Headers: header("x-canary", "Exact", "insider")},
		{Path: gwPathPrefix("/api"), Headers: header("cookie", "RegularExpression", "^(.*?;)?(canary=always)(;.*)?$")},
	}
	check := func(primary, canary int32) {
		t.Helper()
		hr := e.gwHTTPRoute(t, "podinfo")
		want := []gatewayv1.HTTPRouteRule{
			{Matches: abMatches, BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo-primary", primary), gwBackend("podinfo-canary", canary)}},
			{Matches: []gatewayv1.HTTPRouteMatch{{Path: gwPathPrefix("/api")}}, BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo-primary", 100)}},
		}
		gwSameJSON(t, "A/B rules", hr.Spec.Rules, want)
	}
	check(100, 0)
	gwWantRoutes(t, r, cd, 100, 0, false)
	// A/B: the matched traffic goes to the canary, the rest stays on the primary.
	gwMust(t, r.SetRoutes(ctx, cd, 0, 100, false))
	check(0, 100)
	gwWantRoutes(t, r, cd, 0, 100, false)
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
	gwMust(t, r.SetRoutes(ctx, cd, 100, 0, false))
	check(100, 0)
}

func TestGatewayAPIMirroring(t *testing.T) {
	e := newRouterEnv(t)
	cd := gwCanary("gatewayapi:v1")
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 2, Iterations: 5, Mirror: true, MirrorWeight: 50}
	cd = e.createCanary(t, cd)
	r := newGatewayRouter(e, "v1")
	ctx := context.Background()
	gwMust(t, r.Reconcile(ctx, cd))

	gwMust(t, r.SetRoutes(ctx, cd, 100, 0, true))
	hr := e.gwHTTPRoute(t, "podinfo")
	want := []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
		BackendRef: gatewayv1.BackendObjectReference{Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
			Name: "podinfo-canary", Port: ptr.To(gatewayv1.PortNumber(9898))},
		Percent: ptr.To(int32(50)),
	}}}
	gwSameJSON(t, "mirror filter", hr.Spec.Rules[0].Filters, want)
	gwWantRoutes(t, r, cd, 100, 0, true)
	// Reconcile keeps mirroring while it runs.
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
	gwWantRoutes(t, r, cd, 100, 0, true)

	// Blue/green switch: mirroring stops, all traffic to the canary.
	gwMust(t, r.SetRoutes(ctx, cd, 0, 100, false))
	if f := e.gwHTTPRoute(t, "podinfo").Spec.Rules[0].Filters; len(f) != 0 {
		t.Errorf("filters after mirroring: %+v", f)
	}
	gwWantRoutes(t, r, cd, 0, 100, false)
}

func TestGatewayAPISessionAffinity(t *testing.T) {
	e := newRouterEnv(t)
	cd := gwCanary("gatewayapi:v1")
	cd.Spec.Service.Headers = &flaggerv1.Headers{Response: &flaggerv1.HeaderOperations{Set: map[string]string{"X-Resp": "r"}}}
	cd.Spec.Analysis.Interval = "30s"
	cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "flagger-cookie", PrimaryCookieName: "flagger-primary", MaxAge: 300}
	cd = e.createCanary(t, cd)
	r := newGatewayRouter(e, "v1")
	ctx := context.Background()
	// split is a SetRoutes with the cookies the controller decides for it in the status.
	split := func(primary, canary int) {
		t.Helper()
		advanceCookies(cd, canary)
		gwMust(t, r.SetRoutes(ctx, cd, primary, canary, false))
	}
	gwMust(t, r.Reconcile(ctx, cd))
	if n := len(e.gwHTTPRoute(t, "podinfo").Spec.Rules); n != 1 {
		t.Fatalf("before the run: %d rules, want 1", n)
	}

	respSet := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier,
		ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Resp", Value: "r"}}}}
	setCookie := func(value string) gatewayv1.HTTPRouteFilter {
		return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier,
			ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: value}}}}
	}
	cookieRule := func(cookie string, filters []gatewayv1.HTTPRouteFilter, primary, canary int32) gatewayv1.HTTPRouteRule {
		name, value, _ := strings.Cut(cookie, "=")
		return gatewayv1.HTTPRouteRule{
			Matches: []gatewayv1.HTTPRouteMatch{{Path: gwPathPrefix("/"), Headers: []gatewayv1.HTTPHeaderMatch{{
				Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "Cookie", Value: ".*" + name + ".*" + value + ".*"}}}},
			Filters:     filters,
			BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo-primary", primary), gwBackend("podinfo-canary", canary)},
		}
	}
	cookieValue := regexp.MustCompile(`^(flagger-cookie|flagger-primary)=[A-Za-z]{10}; Max-Age=`)
	issued := func(hr *gatewayv1.HTTPRoute, backendIndex int) string {
		t.Helper()
		w := hr.Spec.Rules[len(hr.Spec.Rules)-1]
		f := w.BackendRefs[backendIndex].Filters
		if len(f) != 1 || f[0].ResponseHeaderModifier == nil || len(f[0].ResponseHeaderModifier.Add) != 1 {
			t.Fatalf("backend %d filters: %+v", backendIndex, f)
		}
		v := f[0].ResponseHeaderModifier.Add[0].Value
		if !cookieValue.MatchString(v) {
			t.Fatalf("Set-Cookie %q", v)
		}
		cookie, _, _ := strings.Cut(v, ";")
		return cookie
	}

	// The run starts: the canary sets its cookie, which then pins users to it; the primary's cookie
	// pins its users for one interval.
	split(90, 10)
	hr := e.gwHTTPRoute(t, "podinfo")
	canaryCookie, primaryCookie := issued(hr, 1), issued(hr, 0)
	if canaryCookie != cd.Status.SessionAffinityCookie || primaryCookie != cd.Status.PrimarySessionAffinityCookie {
		t.Errorf("cookies handed out %q %q, want the status's %+v", canaryCookie, primaryCookie, SessionCookiesOf(&cd.Status))
	}
	want := []gatewayv1.HTTPRouteRule{
		cookieRule(canaryCookie, []gatewayv1.HTTPRouteFilter{respSet}, 0, 100),
		cookieRule(primaryCookie, []gatewayv1.HTTPRouteFilter{respSet}, 100, 0),
		{Matches: []gatewayv1.HTTPRouteMatch{{Path: gwPathPrefix("/")}}, Filters: []gatewayv1.HTTPRouteFilter{respSet},
			BackendRefs: []gatewayv1.HTTPBackendRef{
				gwBackend("podinfo-primary", 90, setCookie(primaryCookie+"; Max-Age=30")),
				gwBackend("podinfo-canary", 10, setCookie(canaryCookie+"; Max-Age=300")),
			}},
	}
	gwSameJSON(t, "session affinity rules at 10%", hr.Spec.Rules, want)
	gwWantRoutes(t, r, cd, 90, 10, false)
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })

	// A status without cookies (written before Pennant kept them there, or lost) keeps the route's.
	bare := cd.DeepCopy()
	SessionCookies{}.Record(&bare.Status)
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, bare) })
	if got, err := r.SessionCookies(ctx, bare); err != nil || got != (SessionCookies{Canary: canaryCookie, Primary: primaryCookie}) {
		t.Errorf("SessionCookies = %+v, %v", got, err)
	}

	// The next step keeps the cookies.
	split(50, 50)
	hr = e.gwHTTPRoute(t, "podinfo")
	if c, p := issued(hr, 1), issued(hr, 0); c != canaryCookie || p != primaryCookie {
		t.Errorf("cookies changed between steps: %s %s -> %s %s", canaryCookie, primaryCookie, c, p)
	}
	gwWantRoutes(t, r, cd, 50, 50, false)

	// Promotion: the run's cookie is expired on the rule that matches it, no cookie is set anymore.
	split(100, 0)
	hr = e.gwHTTPRoute(t, "podinfo")
	expire := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: &gatewayv1.HTTPHeaderFilter{
		Set: []gatewayv1.HTTPHeader{{Name: "X-Resp", Value: "r"}},
		Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: canaryCookie + "; Max-Age=-1"}}}}
	want = []gatewayv1.HTTPRouteRule{
		cookieRule(canaryCookie, []gatewayv1.HTTPRouteFilter{expire}, 100, 0),
		{Matches: []gatewayv1.HTTPRouteMatch{{Path: gwPathPrefix("/")}}, Filters: []gatewayv1.HTTPRouteFilter{respSet},
			BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo-primary", 100), gwBackend("podinfo-canary", 0)}},
	}
	gwSameJSON(t, "session affinity rules after promotion", hr.Spec.Rules, want)
	gwWantRoutes(t, r, cd, 100, 0, false)
	gwUnchanged(t, r, func() error { return r.SetRoutes(ctx, cd, 100, 0, false) })
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })

	// The next run issues a new cookie.
	split(90, 10)
	if c := issued(e.gwHTTPRoute(t, "podinfo"), 1); c == canaryCookie {
		t.Errorf("a new run reuses the cookie %s", c)
	}
}

func TestGatewayAPIV1beta1(t *testing.T) {
	e := newRouterEnv(t)
	cd := gwCanary("gatewayapi:v1beta1")
	cd.Spec.Service.Timeout = "15s"
	cd = e.createCanary(t, cd)
	r := newGatewayRouter(e, "v1beta1")
	ctx := context.Background()
	gwMust(t, r.Reconcile(ctx, cd))
	gwMust(t, r.SetRoutes(ctx, cd, 70, 30, false))

	hr := &gatewayv1beta1.HTTPRoute{}
	gwMust(t, e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "podinfo"}, hr))
	want := []gatewayv1beta1.HTTPRouteRule{{
		Matches:     []gatewayv1.HTTPRouteMatch{{Path: gwPathPrefix("/")}},
		BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo-primary", 70), gwBackend("podinfo-canary", 30)},
		Timeouts:    &gatewayv1.HTTPRouteTimeouts{Request: ptr.To(gatewayv1.Duration("15s"))},
	}}
	gwSameJSON(t, "v1beta1 rules", hr.Spec.Rules, want)
	if len(hr.Spec.ParentRefs) != 1 || hr.Spec.ParentRefs[0].Name != "public" || hr.Spec.Hostnames[0] != "app.example.com" {
		t.Errorf("parentRefs %+v hostnames %v", hr.Spec.ParentRefs, hr.Spec.Hostnames)
	}
	gwWantRoutes(t, r, cd, 70, 30, false)
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
	gwMust(t, r.SetRoutes(ctx, cd, 100, 0, false))
	gwWantRoutes(t, r, cd, 100, 0, false)
}

func TestGRPCRoute(t *testing.T) {
	e := newRouterEnv(t)
	cd := gwCanary("gatewayapi:v1")
	cd.Spec.Service.PortName = "grpc"
	cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{URI: &flaggerv1.StringMatch{Prefix: "/podinfo.v1.Echo"}}}
	cd.Spec.Service.Headers = &flaggerv1.Headers{Request: &flaggerv1.HeaderOperations{Set: map[string]string{"x-env": "prod"}}}
	cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "sticky"}
	cd = e.createCanary(t, cd)
	r := newGatewayRouter(e, "v1")
	ctx := context.Background()
	gwMust(t, r.Validate(cd))
	gwMust(t, r.Reconcile(ctx, cd))

	gr := e.gwGRPCRoute(t, "podinfo")
	grpcBackend := func(name string, weight int32, filters ...gatewayv1.GRPCRouteFilter) gatewayv1.GRPCBackendRef {
		return gatewayv1.GRPCBackendRef{BackendRef: gwBackend(name, weight).BackendRef, Filters: filters}
	}
	service := gatewayv1.GRPCRouteMatch{Method: &gatewayv1.GRPCMethodMatch{Type: ptr.To(gatewayv1.GRPCMethodMatchExact), Service: ptr.To("podinfo.v1.Echo")}}
	reqSet := gatewayv1.GRPCRouteFilter{Type: gatewayv1.GRPCRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "x-env", Value: "prod"}}}}
	want := gatewayv1.GRPCRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
			Group: ptr.To(gatewayv1.Group("gateway.networking.k8s.io")), Kind: ptr.To(gatewayv1.Kind("Gateway")),
			Namespace: ptr.To(gatewayv1.Namespace("gateway")), Name: "public"}}},
		Hostnames: []gatewayv1.Hostname{"app.example.com"},
		Rules: []gatewayv1.GRPCRouteRule{{
			Matches: []gatewayv1.GRPCRouteMatch{service}, Filters: []gatewayv1.GRPCRouteFilter{reqSet},
			BackendRefs: []gatewayv1.GRPCBackendRef{grpcBackend("podinfo-primary", 100), grpcBackend("podinfo-canary", 0)},
		}},
	}
	gwSameJSON(t, "GRPCRoute spec", gr.Spec, want)
	if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "podinfo"}, &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
		t.Errorf("a gRPC canary has an HTTPRoute too (err %v)", err)
	}

	advanceCookies(cd, 20)
	gwMust(t, r.SetRoutes(ctx, cd, 80, 20, false))
	gwWantRoutes(t, r, cd, 80, 20, false)
	gr = e.gwGRPCRoute(t, "podinfo")
	if len(gr.Spec.Rules) != 2 {
		t.Fatalf("session affinity on gRPC: %d rules, want 2", len(gr.Spec.Rules))
	}
	sticky, weighted := gr.Spec.Rules[0], gr.Spec.Rules[1]
	if h := sticky.Matches[0].Headers; len(h) != 1 || h[0].Name != "Cookie" || !strings.HasPrefix(h[0].Value, ".*sticky.*") ||
		ptr.Deref(sticky.Matches[0].Method.Service, "") != "podinfo.v1.Echo" {
		t.Errorf("sticky match %+v", sticky.Matches)
	}
	if f := weighted.BackendRefs[1].Filters; len(f) != 1 || !strings.HasPrefix(f[0].ResponseHeaderModifier.Add[0].Value, "sticky=") {
		t.Errorf("canary backend filters %+v", f)
	}
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
	gwUnchanged(t, r, func() error { return r.SetRoutes(ctx, cd, 80, 20, false) })
	gwMust(t, r.SetRoutes(ctx, cd, 100, 0, true))
	gwWantRoutes(t, r, cd, 100, 0, true)

	t.Run("HTTP-only settings are refused", func(t *testing.T) {
		for name, mutate := range map[string]func(*flaggerv1.Canary){
			"timeout": func(cd *flaggerv1.Canary) { cd.Spec.Service.Timeout = "5s" },
			"rewrite": func(cd *flaggerv1.Canary) { cd.Spec.Service.Rewrite = &flaggerv1.HTTPRewrite{URI: "/"} },
			"query": func(cd *flaggerv1.Canary) {
				cd.Spec.Service.Match[0].QueryParams = map[string]flaggerv1.StringMatch{"a": {Exact: "b"}}
			},
			"regex method": func(cd *flaggerv1.Canary) { cd.Spec.Service.Match[0].URI = &flaggerv1.StringMatch{Regex: "/a.*"} },
		} {
			bad := cd.DeepCopy()
			mutate(bad)
			if err := r.Validate(bad); !IsInvalidSpec(err) {
				t.Errorf("%s: Validate = %v, want an InvalidSpecError", name, err)
			}
		}
	})

	t.Run("the kind of an existing route sticks", func(t *testing.T) {
		// A canary whose HTTPRoute exists (Flagger's, for a gRPC service) keeps it when its port is gRPC.
		e := newRouterEnv(t)
		cd := e.createCanary(t, gwCanary("gatewayapi:v1"))
		gwMust(t, r.Reconcile(ctx, cd))
		cd.Spec.Service.AppProtocol = "grpc"
		gwMust(t, r.Reconcile(ctx, cd))
		gwMust(t, r.SetRoutes(ctx, cd, 60, 40, false))
		if got := gwWeightsOf(e.gwHTTPRoute(t, "podinfo").Spec.Rules[0]); got != "podinfo-primary=60,podinfo-canary=40" {
			t.Errorf("HTTPRoute weights %s", got)
		}
		gwWantRoutes(t, r, cd, 60, 40, false)
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: "podinfo"}, &gatewayv1.GRPCRoute{}); !apierrors.IsNotFound(err) {
			t.Errorf("a GRPCRoute was created next to the HTTPRoute (err %v)", err)
		}
	})
}

func TestGatewayAPIKeepsUserFilters(t *testing.T) {
	e := newRouterEnv(t)
	cd := gwCanary("gatewayapi:v1")
	cd.Spec.Service.Headers = &flaggerv1.Headers{Request: &flaggerv1.HeaderOperations{Set: map[string]string{"X-Pennant": "1"}}}
	cd = e.createCanary(t, cd)
	r := newGatewayRouter(e, "v1")
	ctx := context.Background()
	gwMust(t, r.Reconcile(ctx, cd))

	// The user adds an ExtensionRef filter, a URLRewrite, a header to Pennant's modifier, a filter on
	// the primary backend and a rule name.
	extension := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterExtensionRef,
		ExtensionRef: &gatewayv1.LocalObjectReference{Group: "auth.example.com", Kind: "BasicAuth", Name: "team"}}
	rewrite := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterURLRewrite,
		URLRewrite: &gatewayv1.HTTPURLRewriteFilter{Hostname: ptr.To(gatewayv1.PreciseHostname("internal.example.com"))}}
	backendFilter := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-Backend", Value: "primary"}}}}
	hr := e.gwHTTPRoute(t, "podinfo")
	rule := &hr.Spec.Rules[0]
	rule.Name = ptr.To(gatewayv1.SectionName("main"))
	rule.Filters[0].RequestHeaderModifier.Set = append(rule.Filters[0].RequestHeaderModifier.Set, gatewayv1.HTTPHeader{Name: "X-User", Value: "u"})
	rule.Filters = append(rule.Filters, extension, rewrite)
	rule.BackendRefs[0].Filters = []gatewayv1.HTTPRouteFilter{backendFilter}
	gwMust(t, e.c.Update(ctx, hr))

	reqHeaders := func(h ...gatewayv1.HTTPHeader) gatewayv1.HTTPRouteFilter {
		return gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier, RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: h}}
	}
	check := func(what string, filters []gatewayv1.HTTPRouteFilter, primary, canary int32) {
		t.Helper()
		got := e.gwHTTPRoute(t, "podinfo")
		want := []gatewayv1.HTTPRouteRule{{
			Name:        ptr.To(gatewayv1.SectionName("main")),
			Matches:     []gatewayv1.HTTPRouteMatch{{Path: gwPathPrefix("/")}},
			Filters:     filters,
			BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo-primary", primary, backendFilter), gwBackend("podinfo-canary", canary)},
		}}
		gwSameJSON(t, what, got.Spec.Rules, want)
	}
	userSet := []gatewayv1.HTTPRouteFilter{reqHeaders(gatewayv1.HTTPHeader{Name: "X-Pennant", Value: "1"}, gatewayv1.HTTPHeader{Name: "X-User", Value: "u"}), extension, rewrite}
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
	check("after Reconcile", userSet, 100, 0)
	gwMust(t, r.SetRoutes(ctx, cd, 90, 10, false))
	check("after SetRoutes", userSet, 90, 10)
	gwMust(t, r.SetRoutes(ctx, cd, 100, 0, true))
	mirror := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
		BackendRef: gatewayv1.BackendObjectReference{Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
			Name: "podinfo-canary", Port: ptr.To(gatewayv1.PortNumber(9898))}}}
	check("while mirroring", []gatewayv1.HTTPRouteFilter{userSet[0], mirror, extension, rewrite}, 100, 0)
	gwMust(t, r.SetRoutes(ctx, cd, 100, 0, false))
	check("after mirroring", userSet, 100, 0)

	// The canary changes its header: Pennant's value changes, the user's header stays.
	cd.Spec.Service.Headers.Request.Set["X-Pennant"] = "2"
	gwMust(t, r.Reconcile(ctx, cd))
	check("after a header change", []gatewayv1.HTTPRouteFilter{
		reqHeaders(gatewayv1.HTTPHeader{Name: "X-Pennant", Value: "2"}, gatewayv1.HTTPHeader{Name: "X-User", Value: "u"}), extension, rewrite}, 100, 0)
	// The canary drops its headers: only the user's remain.
	cd.Spec.Service.Headers = nil
	gwMust(t, r.Reconcile(ctx, cd))
	check("without canary headers", []gatewayv1.HTTPRouteFilter{reqHeaders(gatewayv1.HTTPHeader{Name: "X-User", Value: "u"}), extension, rewrite}, 100, 0)
	// A rewrite in the canary replaces the user's (a rule has one URLRewrite).
	cd.Spec.Service.Rewrite = &flaggerv1.HTTPRewrite{URI: "/v2"}
	gwMust(t, r.Reconcile(ctx, cd))
	generatedRewrite := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterURLRewrite, URLRewrite: &gatewayv1.HTTPURLRewriteFilter{
		Path: &gatewayv1.HTTPPathModifier{Type: gatewayv1.FullPathHTTPPathModifier, ReplaceFullPath: ptr.To("/v2")}}}
	check("with a canary rewrite", []gatewayv1.HTTPRouteFilter{generatedRewrite, reqHeaders(gatewayv1.HTTPHeader{Name: "X-User", Value: "u"}), extension}, 100, 0)

	// Session affinity starts: the new sticky rule inherits the weighted rule's user filters.
	cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "c"}
	advanceCookies(cd, 10)
	gwMust(t, r.SetRoutes(ctx, cd, 90, 10, false))
	rules := e.gwHTTPRoute(t, "podinfo").Spec.Rules
	if len(rules) != 2 {
		t.Fatalf("rules %d", len(rules))
	}
	gwSameJSON(t, "sticky rule filters", rules[0].Filters, []gatewayv1.HTTPRouteFilter{generatedRewrite, reqHeaders(gatewayv1.HTTPHeader{Name: "X-User", Value: "u"}), extension})
	if rules[0].Name != nil || ptr.Deref(rules[1].Name, "") != "main" {
		t.Errorf("rule names %v %v: the name stays on the weighted rule", rules[0].Name, rules[1].Name)
	}
}

func TestGatewayAPIBadInput(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	for _, version := range []string{"v1", "v1beta1"} {
		cd := testCanary("gatewayapi:" + version)
		cd.Name = "no-gateway-" + version
		cd.Spec.TargetRef.Name = cd.Name
		cd = e.createCanary(t, cd)
		r := newGatewayRouter(e, version)
		err := r.Validate(cd)
		want := "spec.service.gatewayRefs is required for provider gatewayapi:" + version
		if !IsInvalidSpec(err) || err.Error() != want {
			t.Errorf("Validate = %v, want InvalidSpecError %q", err, want)
		}
		if err := r.Reconcile(ctx, cd); !IsInvalidSpec(err) {
			t.Errorf("Reconcile = %v, want an InvalidSpecError", err)
		}
		if err := r.SetRoutes(ctx, cd, 90, 10, false); !IsInvalidSpec(err) {
			t.Errorf("SetRoutes = %v, want an InvalidSpecError", err)
		}
		if err := e.c.Get(ctx, client.ObjectKey{Namespace: e.ns, Name: cd.Name}, &gatewayv1.HTTPRoute{}); !apierrors.IsNotFound(err) {
			t.Errorf("something was written for an invalid canary (err %v)", err)
		}
	}

	r := newGatewayRouter(e, "v1")
	for name, mutate := range map[string]func(*flaggerv1.Canary){
		"sourceLabels": func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{SourceLabels: map[string]string{"a": "b"}}}
		},
		"withoutHeaders": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.Match = []flaggerv1.ABMatch{{WithoutHeaders: map[string]flaggerv1.StringMatch{"a": {Exact: "b"}}}}
		},
		"empty header match": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.Match = []flaggerv1.ABMatch{{Headers: map[string]flaggerv1.StringMatch{"a": {}}}}
		},
		"regex method": func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{Method: &flaggerv1.StringMatch{Regex: "G.*"}}}
		},
		"timeout format":    func(cd *flaggerv1.Canary) { cd.Spec.Service.Timeout = "1.5s" },
		"backend > request": func(cd *flaggerv1.Canary) { cd.Spec.Service.Timeout, cd.Spec.Service.BackendTimeout = "5s", "10s" },
		"regex CORS origin": func(cd *flaggerv1.Canary) {
			cd.Spec.Service.CorsPolicy = &flaggerv1.CorsPolicy{AllowOrigins: []flaggerv1.StringMatch{{Regex: ".*"}}}
		},
		"same cookie names": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "a", PrimaryCookieName: "a"}
		},
		"cookie name": func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "a b"}
		},
		"mirror weight range": func(cd *flaggerv1.Canary) { cd.Spec.Analysis.MirrorWeight = 101 },
		"prefix rewrite with two A/B matches": func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Rewrite = &flaggerv1.HTTPRewrite{URI: "/", Type: "ReplacePrefixMatch"}
			cd.Spec.Analysis.Match = []flaggerv1.ABMatch{
				{Headers: map[string]flaggerv1.StringMatch{"a": {Exact: "1"}}}, {Headers: map[string]flaggerv1.StringMatch{"b": {Exact: "2"}}}}
		},
	} {
		cd := gwCanary("gatewayapi:v1")
		mutate(cd)
		if err := r.Validate(cd); !IsInvalidSpec(err) {
			t.Errorf("%s: Validate = %v, want an InvalidSpecError", name, err)
		}
	}

	t.Run("a route the API server rejects", func(t *testing.T) {
		// A header name the Gateway API refuses: the API server's answer is reported as an invalid spec.
		cd := gwCanary("gatewayapi:v1")
		cd.Name, cd.Spec.TargetRef.Name = "rejected", "rejected"
		cd.Spec.Service.Headers = &flaggerv1.Headers{Request: &flaggerv1.HeaderOperations{Set: map[string]string{"bad header": "x"}}}
		cd = e.createCanary(t, cd)
		if err := r.Reconcile(ctx, cd); !IsInvalidSpec(err) || !strings.Contains(err.Error(), "rejected by the API server") {
			t.Errorf("Reconcile = %v, want an InvalidSpecError from the API server", err)
		}
	})
}

func TestGatewayAPIForeignOwner(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, gwCanary("gatewayapi:v1"))
	owner := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "someone", Namespace: e.ns}}
	gwMust(t, e.c.Create(ctx, owner))
	hr := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}},
		Spec: gatewayv1.HTTPRouteSpec{Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("other", 1)}}}},
	}
	gwMust(t, e.c.Create(ctx, hr))
	r := newGatewayRouter(e, "v1")
	err := r.Reconcile(ctx, cd)
	if !IsInvalidSpec(err) || !strings.Contains(err.Error(), "ConfigMap someone") {
		t.Fatalf("Reconcile = %v, want an InvalidSpecError naming the owner", err)
	}
	if err := r.SetRoutes(ctx, cd, 50, 50, false); !IsInvalidSpec(err) {
		t.Errorf("SetRoutes = %v, want an InvalidSpecError", err)
	}
	if got := e.gwHTTPRoute(t, "podinfo"); got.ResourceVersion != hr.ResourceVersion {
		t.Errorf("the foreign route was written")
	}
	gwMust(t, r.Finalize(ctx, cd))
	if got := e.gwHTTPRoute(t, "podinfo"); got.ResourceVersion != hr.ResourceVersion {
		t.Errorf("Finalize wrote the foreign route")
	}
}

func TestGatewayAPITakeoverAndFinalize(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, gwCanary("gatewayapi:v1"))
	// The user's own route for podinfo, with an authentication filter.
	extension := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterExtensionRef,
		ExtensionRef: &gatewayv1.LocalObjectReference{Group: "auth.example.com", Kind: "BasicAuth", Name: "team"}}
	hr := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns, Labels: map[string]string{"app": "podinfo"}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public", Namespace: ptr.To(gatewayv1.Namespace("gateway"))}}},
			Rules: []gatewayv1.HTTPRouteRule{{Filters: []gatewayv1.HTTPRouteFilter{extension},
				BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo", 1)}}},
		},
	}
	gwMust(t, e.c.Create(ctx, hr))
	original := hr.Spec.DeepCopy()
	r := newGatewayRouter(e, "v1")

	gwMust(t, r.Reconcile(ctx, cd))
	got := e.gwHTTPRoute(t, "podinfo")
	if ref := metav1.GetControllerOf(got); ref == nil || ref.UID != cd.UID {
		t.Fatalf("the route was not taken over: %+v", got.OwnerReferences)
	}
	var saved gatewayv1.HTTPRouteSpec
	gwMust(t, json.Unmarshal([]byte(got.Annotations[OriginalConfigAnnotation]), &saved))
	gwSameJSON(t, "saved original", saved, original)
	if gwWeightsOf(got.Spec.Rules[0]) != "podinfo-primary=100,podinfo-canary=0" {
		t.Errorf("rules %+v", got.Spec.Rules)
	}
	gwSameJSON(t, "the user's filter kept on the taken over route", got.Spec.Rules[0].Filters, []gatewayv1.HTTPRouteFilter{extension})
	gwMust(t, r.SetRoutes(ctx, cd, 80, 20, false))
	gwMust(t, r.Reconcile(ctx, cd))
	if s := e.gwHTTPRoute(t, "podinfo").Annotations[OriginalConfigAnnotation]; s != got.Annotations[OriginalConfigAnnotation] {
		t.Errorf("the original configuration changed: %s", s)
	}

	gwMust(t, r.Finalize(ctx, cd))
	restored := e.gwHTTPRoute(t, "podinfo")
	gwSameJSON(t, "restored spec", restored.Spec, original)
	if len(restored.OwnerReferences) != 0 || restored.Labels["app"] != "podinfo" {
		t.Errorf("owners %v labels %v", restored.OwnerReferences, restored.Labels)
	}
	for _, key := range []string{OriginalConfigAnnotation, GatewayManagedAnnotation, FluxReconcileAnnotation} {
		if _, ok := restored.Annotations[key]; ok {
			t.Errorf("annotation %s left after Finalize", key)
		}
	}

	t.Run("kubectl's last-applied configuration wins", func(t *testing.T) {
		e := newRouterEnv(t)
		cd := e.createCanary(t, gwCanary("gatewayapi:v1"))
		applied := hr.DeepCopy()
		applied.ObjectMeta = metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns}
		applied.Spec.Hostnames = []gatewayv1.Hostname{"kubectl.example.com"}
		raw, _ := json.Marshal(applied)
		route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns,
			Annotations: map[string]string{kubectlLastAppliedAnnotation: string(raw)}}, Spec: *original.DeepCopy()}
		gwMust(t, e.c.Create(ctx, route))
		gwMust(t, r.Reconcile(ctx, cd))
		gwMust(t, r.Finalize(ctx, cd))
		gwSameJSON(t, "restored spec", e.gwHTTPRoute(t, "podinfo").Spec, applied.Spec)
	})

	t.Run("a route Pennant created is left to garbage collection", func(t *testing.T) {
		e := newRouterEnv(t)
		cd := e.createCanary(t, gwCanary("gatewayapi:v1"))
		gwMust(t, r.Reconcile(ctx, cd))
		gwUnchanged(t, r, func() error { return r.Finalize(ctx, cd) })
		gwMust(t, r.Finalize(ctx, e.createCanary(t, func() *flaggerv1.Canary {
			c := gwCanary("gatewayapi:v1")
			c.Name, c.Spec.TargetRef.Name = "absent", "absent"
			return c
		}())))
	})
}

func TestGatewayAPIGetRoutesWaitsForAcceptance(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := e.createCanary(t, gwCanary("gatewayapi:v1"))
	r := newGatewayRouter(e, "v1")
	gwMust(t, r.Reconcile(ctx, cd))
	hr := e.gwHTTPRoute(t, "podinfo")
	setAccepted := func(status metav1.ConditionStatus, generation int64) {
		t.Helper()
		hr := e.gwHTTPRoute(t, "podinfo")
		hr.Status.Parents = []gatewayv1.RouteParentStatus{{
			ParentRef:      gatewayv1.ParentReference{Name: "public", Namespace: ptr.To(gatewayv1.Namespace("gateway"))},
			ControllerName: "example.com/gateway",
			Conditions: []metav1.Condition{{Type: "Accepted", Status: status, Reason: "Test", ObservedGeneration: generation,
				LastTransitionTime: metav1.Now()}},
		}}
		gwMust(t, e.c.Status().Update(ctx, hr))
	}
	setAccepted(metav1.ConditionFalse, hr.Generation)
	if _, _, _, err := r.GetRoutes(ctx, cd); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("GetRoutes = %v, want not ready", err)
	}
	setAccepted(metav1.ConditionTrue, hr.Generation)
	gwWantRoutes(t, r, cd, 100, 0, false)
	gwMust(t, r.SetRoutes(ctx, cd, 90, 10, false))
	if _, _, _, err := r.GetRoutes(ctx, cd); err == nil {
		t.Errorf("GetRoutes accepted a generation the gateway has not seen")
	}
}

// A route written by Flagger for this canary (controlled by it, without Pennant's record) converges to
// Pennant's shape without duplicating the filters both generate.
func TestGatewayAPIConvergesFlaggerRoute(t *testing.T) {
	e := newRouterEnv(t)
	ctx := context.Background()
	cd := gwCanary("gatewayapi:v1")
	cd.Spec.Service.Headers = &flaggerv1.Headers{Request: &flaggerv1.HeaderOperations{Set: map[string]string{"X-A": "1"}}}
	cd.Spec.Service.Mirror = []flaggerv1.HTTPRequestMirrorFilter{{BackendRef: flaggerv1.BackendObjectReference{Name: "shadow", Port: ptr.To(int32(80))}}}
	cd = e.createCanary(t, cd)
	headers := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestHeaderModifier,
		RequestHeaderModifier: &gatewayv1.HTTPHeaderFilter{Set: []gatewayv1.HTTPHeader{{Name: "X-A", Value: "1"}}}}
	shadow := gatewayv1.HTTPRouteFilter{Type: gatewayv1.HTTPRouteFilterRequestMirror, RequestMirror: &gatewayv1.HTTPRequestMirrorFilter{
		BackendRef: gatewayv1.BackendObjectReference{Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
			Name: "shadow", Port: ptr.To(gatewayv1.PortNumber(80))}}}
	flagger := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns, OwnerReferences: []metav1.OwnerReference{cd.OwnerReference()}},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "public", Namespace: ptr.To(gatewayv1.Namespace("gateway"))}}},
			Hostnames:       []gatewayv1.Hostname{"app.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches:     []gatewayv1.HTTPRouteMatch{{Path: gwPathPrefix("/")}},
				Filters:     []gatewayv1.HTTPRouteFilter{headers, shadow},
				BackendRefs: []gatewayv1.HTTPBackendRef{gwBackend("podinfo-primary", 70), gwBackend("podinfo-canary", 30)},
			}},
		},
	}
	gwMust(t, e.c.Create(ctx, flagger))
	r := newGatewayRouter(e, "v1")
	gwMust(t, r.Reconcile(ctx, cd))
	got := e.gwHTTPRoute(t, "podinfo")
	gwSameJSON(t, "filters", got.Spec.Rules[0].Filters, []gatewayv1.HTTPRouteFilter{headers, shadow})
	if _, ok := got.Annotations[OriginalConfigAnnotation]; ok {
		t.Errorf("a route this canary controls is not taken over")
	}
	gwWantRoutes(t, r, cd, 70, 30, false)
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
}

// The cookie name goes into the sticky rule's regular expression quoted: "app.canary+v" must not
// match "appXcanaryv".
func TestGatewayAPISessionAffinityQuotesTheCookieName(t *testing.T) {
	e := newRouterEnv(t)
	cd := gwCanary("gatewayapi:v1")
	cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "app.canary+v"}
	cd = e.createCanary(t, cd)
	r := newGatewayRouter(e, "v1")
	ctx := context.Background()
	gwMust(t, r.Reconcile(ctx, cd))
	cd.Status.SessionAffinityCookie = "app.canary+v=abcdefghij"
	gwMust(t, r.SetRoutes(ctx, cd, 80, 20, false))
	rules := e.gwHTTPRoute(t, "podinfo").Spec.Rules
	if len(rules) != 2 || len(rules[0].Matches) != 1 || len(rules[0].Matches[0].Headers) != 1 {
		t.Fatalf("rules %+v, want the sticky rule and the weighted one", rules)
	}
	h := rules[0].Matches[0].Headers[0]
	if want := `.*app\.canary\+v.*abcdefghij.*`; h.Value != want {
		t.Errorf("sticky Cookie match %q, want %q", h.Value, want)
	}
	re := regexp.MustCompile("^(?:" + h.Value + ")$")
	if !re.MatchString("a=1; app.canary+v=abcdefghij") || re.MatchString("appXcanaryv=abcdefghij") {
		t.Errorf("the match %q does not match exactly the cookie app.canary+v", h.Value)
	}
	// The next write still knows the rule as the sticky one.
	gwUnchanged(t, r, func() error { return r.SetRoutes(ctx, cd, 80, 20, false) })
	gwUnchanged(t, r, func() error { return r.Reconcile(ctx, cd) })
}
