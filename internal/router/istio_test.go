package router

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingv1 "istio.io/api/networking/v1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// istioSeedCanary is the canary of the seed guide (gitops-istio, examples/istio-canary.yaml): podinfo
// behind the public gateway and the mesh, 5% steps up to 50%.
func istioSeedCanary() *flaggerv1.Canary {
	cd := testCanary("istio")
	cd.Spec.Service = flaggerv1.CanaryService{
		Name:          "podinfo",
		Port:          80,
		PortName:      "http",
		PortDiscovery: true,
		Gateways:      []string{"istio-system/public-gateway", "mesh"},
		Hosts:         []string{"app.example.com"},
		TrafficPolicy: &flaggerv1.TrafficPolicy{TLS: &flaggerv1.ClientTLSSettings{Mode: "DISABLE"}},
		Match:         []flaggerv1.HTTPMatchRequest{{URI: &flaggerv1.StringMatch{Prefix: "/"}}},
		Rewrite:       &flaggerv1.HTTPRewrite{URI: "/"},
		Timeout:       "30s",
	}
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "15s", Threshold: 10, MaxWeight: 50, StepWeight: 5}
	return cd
}

// istioSeedABTest is the seed's A/B test (examples/istio-abtest.yaml): ten iterations for Firefox
// users and for users with the type=insider cookie.
func istioSeedABTest() *flaggerv1.Canary {
	cd := istioSeedCanary()
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{
		Interval: "15s", Threshold: 10, Iterations: 10,
		Match: []flaggerv1.ABMatch{
			{Headers: map[string]flaggerv1.StringMatch{"user-agent": {Regex: ".*Firefox.*"}}},
			{Headers: map[string]flaggerv1.StringMatch{"cookie": {Regex: "^(.*?;)?(type=insider)(;.*)?$"}}},
		},
	}
	return cd
}

func istioPrefix(p string) *networkingv1.StringMatch {
	return &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Prefix{Prefix: p}}
}

func istioRegex(r string) *networkingv1.StringMatch {
	return &networkingv1.StringMatch{MatchType: &networkingv1.StringMatch_Regex{Regex: r}}
}

func istioDest(host string, port uint32, weight int32) *networkingv1.HTTPRouteDestination {
	d := &networkingv1.HTTPRouteDestination{Destination: &networkingv1.Destination{Host: host}, Weight: weight}
	if port != 0 {
		d.Destination.Port = &networkingv1.PortSelector{Number: port}
	}
	return d
}

func istioWithSetCookie(d *networkingv1.HTTPRouteDestination, value string) *networkingv1.HTTPRouteDestination {
	d.Headers = &networkingv1.Headers{Response: &networkingv1.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": value}}}
	return d
}

// istioSeedRoute is an HTTP route with the seed canary's service settings.
func istioSeedRoute(match []*networkingv1.HTTPMatchRequest, route ...*networkingv1.HTTPRouteDestination) *networkingv1.HTTPRoute {
	return &networkingv1.HTTPRoute{
		Match:   match,
		Rewrite: &networkingv1.HTTPRewrite{Uri: "/"},
		Timeout: durationpb.New(30 * time.Second),
		Route:   route,
	}
}

func istioSeedSpec(http ...*networkingv1.HTTPRoute) *networkingv1.VirtualService {
	return &networkingv1.VirtualService{
		Hosts:    []string{"app.example.com", "podinfo"},
		Gateways: []string{"istio-system/public-gateway", "mesh"},
		Http:     http,
	}
}

func istioSeedSplit(primary, canary int32) *networkingv1.HTTPRoute {
	return istioSeedRoute([]*networkingv1.HTTPMatchRequest{{Uri: istioPrefix("/")}},
		istioDest("podinfo-primary", 80, primary), istioDest("podinfo-canary", 80, canary))
}

func istioGetVS(t *testing.T, e *routerEnv, name string) *istionetv1.VirtualService {
	t.Helper()
	vs := &istionetv1.VirtualService{}
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, vs); err != nil {
		t.Fatalf("get VirtualService %s: %v", name, err)
	}
	return vs
}

func istioGetDR(t *testing.T, e *routerEnv, name string) *istionetv1.DestinationRule {
	t.Helper()
	dr := &istionetv1.DestinationRule{}
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, dr); err != nil {
		t.Fatalf("get DestinationRule %s: %v", name, err)
	}
	return dr
}

func istioAssertSpec(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, protojson.Format(got), protojson.Format(want))
	}
}

func istioAssertVS(t *testing.T, e *routerEnv, want *networkingv1.VirtualService) *istionetv1.VirtualService {
	t.Helper()
	vs := istioGetVS(t, e, "podinfo")
	istioAssertSpec(t, "VirtualService podinfo", &vs.Spec, want)
	return vs
}

func istioAssertRoutes(t *testing.T, r *IstioRouter, cd *flaggerv1.Canary, primary, canary int, mirrored bool) {
	t.Helper()
	p, c, m, err := r.GetRoutes(context.Background(), cd)
	if err != nil {
		t.Fatalf("GetRoutes: %v", err)
	}
	if p != primary || c != canary || m != mirrored {
		t.Errorf("GetRoutes = %d/%d mirrored=%v, want %d/%d mirrored=%v", p, c, m, primary, canary, mirrored)
	}
}

func istioSetRoutes(t *testing.T, r *IstioRouter, cd *flaggerv1.Canary, primary, canary int, mirrored bool) {
	t.Helper()
	if err := r.SetRoutes(context.Background(), cd, primary, canary, mirrored); err != nil {
		t.Fatalf("SetRoutes(%d, %d, %v): %v", primary, canary, mirrored, err)
	}
}

func istioReconcile(t *testing.T, r *IstioRouter, cd *flaggerv1.Canary) {
	t.Helper()
	if err := r.Reconcile(context.Background(), cd); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
}

func istioNewRouter(e *routerEnv) *IstioRouter {
	return NewIstio(e.c, Options{FieldOwner: "pennant"})
}

// istioAssertUnchanged fails when the VirtualService was written since rv.
func istioAssertUnchanged(t *testing.T, e *routerEnv, rv, what string) {
	t.Helper()
	if got := istioGetVS(t, e, "podinfo").ResourceVersion; got != rv {
		t.Errorf("%s wrote the VirtualService (resourceVersion %s -> %s)", what, rv, got)
	}
}

func istioAssertGenerated(t *testing.T, obj client.Object, cd *flaggerv1.Canary) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.UID != cd.UID || ref.Kind != "Canary" || ref.APIVersion != "flagger.app/v1beta1" {
		t.Errorf("%s: controller = %+v, want canary %s", obj.GetName(), ref, cd.Name)
	}
	for _, key := range []string{FluxReconcileAnnotation, HelmDriftDetectionAnnotation} {
		if obj.GetAnnotations()[key] != "disabled" {
			t.Errorf("%s: annotation %s = %q, want disabled", obj.GetName(), key, obj.GetAnnotations()[key])
		}
	}
}

func TestIstioReconcileGeneratesObjects(t *testing.T) {
	e := newRouterEnv(t)
	cd := istioSeedCanary()
	cd.Spec.Service.Apex = &flaggerv1.CustomMetadata{Labels: map[string]string{"tier": "frontend"}, Annotations: map[string]string{"team": "web"}}
	cd = e.createCanary(t, cd)
	r := istioNewRouter(e)
	istioReconcile(t, r, cd)

	for _, host := range []string{"podinfo-canary", "podinfo-primary"} {
		dr := istioGetDR(t, e, host)
		istioAssertSpec(t, "DestinationRule "+host, &dr.Spec, &networkingv1.DestinationRule{
			Host:          host,
			TrafficPolicy: &networkingv1.TrafficPolicy{Tls: &networkingv1.ClientTLSSettings{Mode: networkingv1.ClientTLSSettings_DISABLE}},
		})
		istioAssertGenerated(t, dr, cd)
	}
	vs := istioAssertVS(t, e, istioSeedSpec(istioSeedSplit(100, 0)))
	istioAssertGenerated(t, vs, cd)
	if vs.Labels["tier"] != "frontend" || vs.Annotations["team"] != "web" {
		t.Errorf("apex metadata missing: labels %v, annotations %v", vs.Labels, vs.Annotations)
	}
	if _, ok := vs.Annotations[OriginalConfigAnnotation]; ok {
		t.Errorf("a generated VirtualService has no original configuration to keep")
	}
	istioAssertRoutes(t, r, cd, 100, 0, false)

	istioReconcile(t, r, cd)
	istioAssertUnchanged(t, e, vs.ResourceVersion, "a second Reconcile")
	if dr := istioGetDR(t, e, "podinfo-canary"); dr.Generation != 1 {
		t.Errorf("a second Reconcile updated the DestinationRule (generation %d)", dr.Generation)
	}
}

// TestIstioCanaryWeights walks the seed canary through its analysis: 5% steps to 50%, then promotion.
func TestIstioCanaryWeights(t *testing.T) {
	e := newRouterEnv(t)
	cd := e.createCanary(t, istioSeedCanary())
	r := istioNewRouter(e)
	istioReconcile(t, r, cd)

	for w := 5; w <= 50; w += 5 {
		istioSetRoutes(t, r, cd, 100-w, w, false)
		vs := istioAssertVS(t, e, istioSeedSpec(istioSeedSplit(int32(100-w), int32(w))))
		istioAssertRoutes(t, r, cd, 100-w, w, false)

		// Reconcile keeps the weights; repeating a step writes nothing.
		istioReconcile(t, r, cd)
		istioSetRoutes(t, r, cd, 100-w, w, false)
		istioAssertUnchanged(t, e, vs.ResourceVersion, "Reconcile and a repeated SetRoutes")
	}

	// Promotion: the primary runs the new revision and gets all the traffic back.
	istioSetRoutes(t, r, cd, 100, 0, false)
	istioAssertVS(t, e, istioSeedSpec(istioSeedSplit(100, 0)))
	istioAssertRoutes(t, r, cd, 100, 0, false)
}

// TestIstioReconcileUpdatesSpec changes the canary and the VirtualService mid-analysis.
func TestIstioReconcileUpdatesSpec(t *testing.T) {
	e := newRouterEnv(t)
	cd := e.createCanary(t, istioSeedCanary())
	r := istioNewRouter(e)
	istioReconcile(t, r, cd)
	istioSetRoutes(t, r, cd, 70, 30, false)

	cd.Spec.Service.Hosts = append(cd.Spec.Service.Hosts, "www.example.com")
	cd.Spec.Service.Retries = &flaggerv1.HTTPRetry{Attempts: 3, PerTryTimeout: "1s", RetryOn: "gateway-error"}
	cd.Spec.Service.TrafficPolicy = &flaggerv1.TrafficPolicy{ConnectionPool: &flaggerv1.ConnectionPoolSettings{
		TCP: &flaggerv1.TCPSettings{MaxConnections: 100, ConnectTimeout: "1m"},
	}}
	istioReconcile(t, r, cd)

	want := istioSeedSpec(istioSeedSplit(70, 30))
	want.Hosts = []string{"app.example.com", "www.example.com", "podinfo"}
	want.Http[0].Retries = &networkingv1.HTTPRetry{Attempts: 3, PerTryTimeout: durationpb.New(time.Second), RetryOn: "gateway-error"}
	vs := istioAssertVS(t, e, want)
	istioAssertSpec(t, "DestinationRule podinfo-primary", &istioGetDR(t, e, "podinfo-primary").Spec, &networkingv1.DestinationRule{
		Host: "podinfo-primary",
		TrafficPolicy: &networkingv1.TrafficPolicy{ConnectionPool: &networkingv1.ConnectionPoolSettings{
			Tcp: &networkingv1.ConnectionPoolSettings_TCPSettings{MaxConnections: 100, ConnectTimeout: durationpb.New(time.Minute)},
		}},
	})

	// Drift on the VirtualService is reverted, the weights are kept.
	vs.Spec.Gateways = append(vs.Spec.Gateways, "istio-system/other-gateway")
	vs.Spec.Http[0].Timeout = durationpb.New(time.Hour)
	if err := e.c.Update(context.Background(), vs); err != nil {
		t.Fatal(err)
	}
	istioReconcile(t, r, cd)
	istioAssertVS(t, e, want)
	istioAssertRoutes(t, r, cd, 70, 30, false)
}

// TestIstioABTesting runs the seed's A/B test: Firefox users and insiders go to the canary.
func TestIstioABTesting(t *testing.T) {
	e := newRouterEnv(t)
	cd := e.createCanary(t, istioSeedABTest())
	r := istioNewRouter(e)

	matched := []*networkingv1.HTTPMatchRequest{
		{Uri: istioPrefix("/"), Headers: map[string]*networkingv1.StringMatch{"user-agent": istioRegex(".*Firefox.*")}},
		{Uri: istioPrefix("/"), Headers: map[string]*networkingv1.StringMatch{"cookie": istioRegex("^(.*?;)?(type=insider)(;.*)?$")}},
	}
	abSpec := func(primary, canary int32) *networkingv1.VirtualService {
		return istioSeedSpec(
			istioSeedRoute(matched, istioDest("podinfo-primary", 80, primary), istioDest("podinfo-canary", 80, canary)),
			istioSeedRoute([]*networkingv1.HTTPMatchRequest{{Uri: istioPrefix("/")}}, istioDest("podinfo-primary", 80, 100)),
		)
	}

	istioReconcile(t, r, cd)
	istioAssertVS(t, e, abSpec(100, 0))
	istioAssertRoutes(t, r, cd, 100, 0, false)

	// Every iteration sends all the matched traffic to the canary, the rest stays on the primary.
	for i := 1; i <= 3; i++ {
		istioSetRoutes(t, r, cd, 0, 100, false)
		istioAssertVS(t, e, abSpec(0, 100))
		istioAssertRoutes(t, r, cd, 0, 100, false)
		istioReconcile(t, r, cd)
		istioAssertVS(t, e, abSpec(0, 100))
	}

	// Promotion.
	istioSetRoutes(t, r, cd, 100, 0, false)
	istioAssertVS(t, e, abSpec(100, 0))
	istioAssertRoutes(t, r, cd, 100, 0, false)

	// Without spec.service.match, the analysis conditions are used as they are.
	cd.Spec.Service.Match = nil
	istioReconcile(t, r, cd)
	vs := istioGetVS(t, e, "podinfo")
	if len(vs.Spec.Http) != 2 || len(vs.Spec.Http[0].Match) != 2 || vs.Spec.Http[0].Match[0].Uri != nil || len(vs.Spec.Http[1].Match) != 0 {
		t.Errorf("A/B routes without service match: %s", protojson.Format(&vs.Spec))
	}
}

// TestIstioMirroring runs a blue/green analysis with traffic mirroring.
func TestIstioMirroring(t *testing.T) {
	e := newRouterEnv(t)
	cd := istioSeedCanary()
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "15s", Threshold: 10, Iterations: 10, Mirror: true, MirrorWeight: 50}
	cd = e.createCanary(t, cd)
	r := istioNewRouter(e)
	istioReconcile(t, r, cd)
	istioAssertRoutes(t, r, cd, 100, 0, false)

	mirrored := istioSeedSplit(100, 0)
	mirrored.Mirror = &networkingv1.Destination{Host: "podinfo-canary"}
	mirrored.MirrorPercentage = &networkingv1.Percent{Value: 50}
	istioSetRoutes(t, r, cd, 100, 0, true)
	vs := istioAssertVS(t, e, istioSeedSpec(mirrored))
	istioAssertRoutes(t, r, cd, 100, 0, true)
	istioReconcile(t, r, cd)
	istioAssertUnchanged(t, e, vs.ResourceVersion, "Reconcile of a mirrored VirtualService")

	// Without mirrorWeight the whole traffic is copied.
	cd.Spec.Analysis.MirrorWeight = 0
	istioSetRoutes(t, r, cd, 100, 0, true)
	mirrored.MirrorPercentage = nil
	istioAssertVS(t, e, istioSeedSpec(mirrored))

	// End of the iterations: all traffic to the canary, no more copies.
	istioSetRoutes(t, r, cd, 0, 100, false)
	istioAssertVS(t, e, istioSeedSpec(istioSeedSplit(0, 100)))
	istioAssertRoutes(t, r, cd, 0, 100, false)
}

func TestIstioSessionAffinity(t *testing.T) {
	e := newRouterEnv(t)
	cd := testCanary("istio")
	cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{
		CookieName: "canary-cookie", PrimaryCookieName: "primary-cookie", MaxAge: 300,
		Domain: "flagger.app", Path: "/app", SameSite: "Strict", HttpOnly: true, Secure: true, Partitioned: true,
	}
	cd = e.createCanary(t, cd)
	r := istioNewRouter(e)
	// split is a SetRoutes with the cookies the controller decides for it in the status.
	split := func(primary, canary int) {
		t.Helper()
		advanceCookies(cd, canary)
		istioSetRoutes(t, r, cd, primary, canary, false)
	}
	istioReconcile(t, r, cd)

	spec := func(http ...*networkingv1.HTTPRoute) *networkingv1.VirtualService {
		return &networkingv1.VirtualService{Hosts: []string{"podinfo"}, Gateways: []string{"mesh"}, Http: http}
	}
	route := func(name string, match []*networkingv1.HTTPMatchRequest, dests ...*networkingv1.HTTPRouteDestination) *networkingv1.HTTPRoute {
		return &networkingv1.HTTPRoute{Name: name, Match: match, Route: dests}
	}
	cookieMatch := func(cookie string) []*networkingv1.HTTPMatchRequest {
		name, value, _ := strings.Cut(cookie, "=")
		return []*networkingv1.HTTPMatchRequest{{Headers: map[string]*networkingv1.StringMatch{
			"Cookie": istioRegex(".*" + name + ".*" + value + ".*"),
		}}}
	}
	istioAssertVS(t, e, spec(route("", nil, istioDest("podinfo-primary", 0, 100), istioDest("podinfo-canary", 0, 0))))

	// readCookies returns the cookies the weighted route hands out.
	readCookies := func(vs *istionetv1.VirtualService) (canary, primary string) {
		t.Helper()
		weighted := vs.Spec.Http[len(vs.Spec.Http)-1]
		primary, _, _ = strings.Cut(weighted.Route[0].GetHeaders().GetResponse().GetAdd()["Set-Cookie"], ";")
		canary, _, _ = strings.Cut(weighted.Route[1].GetHeaders().GetResponse().GetAdd()["Set-Cookie"], ";")
		return canary, primary
	}
	cookieValue := regexp.MustCompile(`^[a-zA-Z]{10}$`)
	running := func(canaryCookie, primaryCookie string, primary, canary int32) *networkingv1.VirtualService {
		return spec(
			route("sticky-route", cookieMatch(canaryCookie), istioDest("podinfo-primary", 0, 0), istioDest("podinfo-canary", 0, 100)),
			route("sticky-route-primary", cookieMatch(primaryCookie), istioDest("podinfo-primary", 0, 100), istioDest("podinfo-canary", 0, 0)),
			route("",
				nil,
				istioWithSetCookie(istioDest("podinfo-primary", 0, primary), primaryCookie+"; Max-Age=60; Domain=flagger.app; Path=/app; SameSite=Strict; HttpOnly; Secure; Partitioned"),
				istioWithSetCookie(istioDest("podinfo-canary", 0, canary), canaryCookie+"; Max-Age=300; Domain=flagger.app; Path=/app; SameSite=Strict; HttpOnly; Secure; Partitioned"),
			),
		)
	}

	// First step: the canary hands out the status's cookie, the primary its own for one interval (1m).
	split(90, 10)
	canaryCookie, primaryCookie := readCookies(istioGetVS(t, e, "podinfo"))
	for cookie, name := range map[string]string{canaryCookie: "canary-cookie", primaryCookie: "primary-cookie"} {
		n, v, _ := strings.Cut(cookie, "=")
		if n != name || !cookieValue.MatchString(v) {
			t.Fatalf("cookie %q, want %s=<10 letters>", cookie, name)
		}
	}
	if canaryCookie != cd.Status.SessionAffinityCookie || primaryCookie != cd.Status.PrimarySessionAffinityCookie {
		t.Errorf("cookies handed out %q %q, want the status's %q %q", canaryCookie, primaryCookie,
			cd.Status.SessionAffinityCookie, cd.Status.PrimarySessionAffinityCookie)
	}
	istioAssertVS(t, e, running(canaryCookie, primaryCookie, 90, 10))
	istioAssertRoutes(t, r, cd, 90, 10, false)

	// Reconcile keeps the sticky routes; the next steps keep the cookies.
	istioReconcile(t, r, cd)
	istioAssertVS(t, e, running(canaryCookie, primaryCookie, 90, 10))
	// A status without cookies (written before Pennant kept them there, or lost) keeps the route's.
	bare := cd.DeepCopy()
	SessionCookies{}.Record(&bare.Status)
	istioReconcile(t, r, bare)
	istioAssertVS(t, e, running(canaryCookie, primaryCookie, 90, 10))
	if got, err := r.SessionCookies(context.Background(), bare); err != nil || got != (SessionCookies{Canary: canaryCookie, Primary: primaryCookie}) {
		t.Errorf("SessionCookies = %+v, %v", got, err)
	}
	split(50, 50)
	istioAssertVS(t, e, running(canaryCookie, primaryCookie, 50, 50))
	istioAssertRoutes(t, r, cd, 50, 50, false)

	// Promotion: the run's cookie is expired on the clients that send it, the primary cookie is gone.
	finished := spec(
		&networkingv1.HTTPRoute{
			Name: "sticky-route", Match: cookieMatch(canaryCookie),
			Route:   []*networkingv1.HTTPRouteDestination{istioDest("podinfo-primary", 0, 100), istioDest("podinfo-canary", 0, 0)},
			Headers: &networkingv1.Headers{Response: &networkingv1.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": canaryCookie + "; Max-Age=-1; Domain=flagger.app; Path=/app"}}},
		},
		route("", nil, istioDest("podinfo-primary", 0, 100), istioDest("podinfo-canary", 0, 0)),
	)
	split(100, 0)
	if got := SessionCookiesOf(&cd.Status); got != (SessionCookies{Previous: canaryCookie}) {
		t.Errorf("status cookies after the run %+v, want the run's as the previous one", got)
	}
	vs := istioAssertVS(t, e, finished)
	istioAssertRoutes(t, r, cd, 100, 0, false)
	istioReconcile(t, r, cd)
	split(100, 0)
	istioAssertUnchanged(t, e, vs.ResourceVersion, "Reconcile and SetRoutes after the run")

	// The next run hands out a new cookie.
	split(95, 5)
	next, nextPrimary := readCookies(istioGetVS(t, e, "podinfo"))
	if next == canaryCookie || !strings.HasPrefix(next, "canary-cookie=") {
		t.Errorf("next run's cookie %q, want a new canary-cookie (last run: %q)", next, canaryCookie)
	}
	istioAssertVS(t, e, running(next, nextPrimary, 95, 5))

	// Without session affinity the sticky routes go away.
	cd.Spec.Analysis.SessionAffinity = nil
	istioReconcile(t, r, cd)
	istioAssertVS(t, e, spec(route("", nil, istioDest("podinfo-primary", 0, 95), istioDest("podinfo-canary", 0, 5))))
}

func TestIstioTCP(t *testing.T) {
	e := newRouterEnv(t)
	cd := testCanary("istio")
	cd.Spec.Service.AppProtocol = "tcp"
	cd.Spec.Service.PortDiscovery = true
	cd.Spec.Service.Gateways = []string{"istio/public-gateway", "mesh"}
	cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{Port: 9898}}
	cd = e.createCanary(t, cd)
	r := istioNewRouter(e)

	tcpSpec := func(primary, canary int32) *networkingv1.VirtualService {
		dest := func(host string, w int32) *networkingv1.RouteDestination {
			return &networkingv1.RouteDestination{Destination: &networkingv1.Destination{Host: host, Port: &networkingv1.PortSelector{Number: 9898}}, Weight: w}
		}
		return &networkingv1.VirtualService{
			Hosts:    []string{"podinfo"},
			Gateways: []string{"istio/public-gateway", "mesh"},
			Tcp: []*networkingv1.TCPRoute{{
				Match: []*networkingv1.L4MatchAttributes{{Port: 9898}},
				Route: []*networkingv1.RouteDestination{dest("podinfo-primary", primary), dest("podinfo-canary", canary)},
			}},
		}
	}
	istioReconcile(t, r, cd)
	istioAssertVS(t, e, tcpSpec(100, 0))
	istioAssertRoutes(t, r, cd, 100, 0, false)

	istioSetRoutes(t, r, cd, 60, 40, false)
	istioAssertVS(t, e, tcpSpec(60, 40))
	istioAssertRoutes(t, r, cd, 60, 40, false)
	istioReconcile(t, r, cd)
	istioAssertVS(t, e, tcpSpec(60, 40))

	// TCP routes cannot mirror.
	istioSetRoutes(t, r, cd, 100, 0, true)
	istioAssertVS(t, e, tcpSpec(100, 0))
	istioAssertRoutes(t, r, cd, 100, 0, false)
}

func TestIstioDelegation(t *testing.T) {
	e := newRouterEnv(t)
	cd := testCanary("istio")
	cd.Spec.Service.Delegation = true
	cd.Spec.Service.PortDiscovery = true
	cd = e.createCanary(t, cd)
	r := istioNewRouter(e)
	istioReconcile(t, r, cd)
	istioSetRoutes(t, r, cd, 80, 20, false)
	istioAssertVS(t, e, &networkingv1.VirtualService{Http: []*networkingv1.HTTPRoute{{
		Route: []*networkingv1.HTTPRouteDestination{istioDest("podinfo-primary", 9898, 80), istioDest("podinfo-canary", 9898, 20)},
	}}})
	istioAssertRoutes(t, r, cd, 80, 20, false)

	// A delegate cannot have hosts or gateways: nothing is written.
	bad := testCanary("istio")
	bad.Name = "other"
	bad.Spec.Service.Name = "other"
	bad.Spec.Service.Delegation = true
	bad.Spec.Service.Gateways = []string{"istio-system/public-gateway"}
	bad = e.createCanary(t, bad)
	if err := r.Validate(bad); !IsInvalidSpec(err) {
		t.Errorf("Validate = %v, want an InvalidSpecError", err)
	}
	if err := r.Reconcile(context.Background(), bad); !IsInvalidSpec(err) {
		t.Errorf("Reconcile = %v, want an InvalidSpecError", err)
	}
	for _, obj := range []client.Object{&istionetv1.VirtualService{}, &istionetv1.DestinationRule{}} {
		name := "other"
		if _, ok := obj.(*istionetv1.DestinationRule); ok {
			name = "other-canary"
		}
		if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s exists after an invalid spec (err %v)", obj, name, err)
		}
	}
}

// TestIstioTakeoverAndFinalize takes over a VirtualService written by hand and gives it back.
func TestIstioTakeoverAndFinalize(t *testing.T) {
	ctx := context.Background()
	e := newRouterEnv(t)
	cd := e.createCanary(t, istioSeedCanary())
	original := &networkingv1.VirtualService{
		Hosts:    []string{"app.example.com"},
		Gateways: []string{"istio-system/public-gateway"},
		Http: []*networkingv1.HTTPRoute{{
			Match: []*networkingv1.HTTPMatchRequest{{Uri: istioPrefix("/")}},
			Route: []*networkingv1.HTTPRouteDestination{istioDest("podinfo", 80, 0)},
		}},
	}
	handWritten := &istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{
		Name: "podinfo", Namespace: e.ns, Labels: map[string]string{"owner": "me"},
	}}
	istioSetSpec(&handWritten.Spec, original)
	if err := e.c.Create(ctx, handWritten); err != nil {
		t.Fatal(err)
	}
	r := istioNewRouter(e)

	istioReconcile(t, r, cd)
	vs := istioAssertVS(t, e, istioSeedSpec(istioSeedSplit(100, 0)))
	istioAssertGenerated(t, vs, cd)
	saved := &networkingv1.VirtualService{}
	if err := protojson.Unmarshal([]byte(vs.Annotations[OriginalConfigAnnotation]), saved); err != nil {
		t.Fatalf("annotation %s: %v", OriginalConfigAnnotation, err)
	}
	istioAssertSpec(t, "saved original configuration", saved, original)

	// The analysis runs; the saved spec is never replaced.
	istioSetRoutes(t, r, cd, 50, 50, false)
	istioReconcile(t, r, cd)
	vs = istioAssertVS(t, e, istioSeedSpec(istioSeedSplit(50, 50)))
	istioAssertSpec(t, "saved original configuration", saved, original)
	if got := vs.Annotations[OriginalConfigAnnotation]; got != istioGetVS(t, e, "podinfo").Annotations[OriginalConfigAnnotation] {
		t.Errorf("annotation changed to %s", got)
	}

	// revertOnDeletion: the original spec comes back and the canary lets go of the VirtualService.
	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	vs = istioAssertVS(t, e, original)
	if ref := metav1.GetControllerOf(vs); ref != nil {
		t.Errorf("restored VirtualService still controlled by %+v", ref)
	}
	for _, key := range []string{OriginalConfigAnnotation, FluxReconcileAnnotation, HelmDriftDetectionAnnotation} {
		if _, ok := vs.Annotations[key]; ok {
			t.Errorf("restored VirtualService keeps annotation %s", key)
		}
	}
	if vs.Labels["owner"] != "me" {
		t.Errorf("restored VirtualService lost its labels: %v", vs.Labels)
	}
	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatalf("second Finalize: %v", err)
	}
	istioAssertUnchanged(t, e, vs.ResourceVersion, "a second Finalize")
}

// TestIstioFinalize covers what Finalize does without an original-configuration annotation.
func TestIstioFinalize(t *testing.T) {
	ctx := context.Background()
	e := newRouterEnv(t)
	cd := e.createCanary(t, testCanary("istio"))
	r := istioNewRouter(e)

	if err := r.Finalize(ctx, cd); err != nil {
		t.Errorf("Finalize without a VirtualService: %v", err)
	}

	// A VirtualService Pennant generated has nothing to restore: garbage collection removes it.
	istioReconcile(t, r, cd)
	vs := istioGetVS(t, e, "podinfo")
	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	istioAssertUnchanged(t, e, vs.ResourceVersion, "Finalize of a generated VirtualService")

	// kubectl's last applied configuration wins, as in Flagger.
	vs.Annotations[kubectlLastAppliedAnnotation] = `{"apiVersion":"networking.istio.io/v1beta1","kind":"VirtualService",` +
		`"metadata":{"name":"podinfo"},"spec":{"hosts":["podinfo"],"http":[{"route":[{"destination":{"host":"podinfo"}}]}]}}`
	if err := e.c.Update(ctx, vs); err != nil {
		t.Fatal(err)
	}
	if err := r.Finalize(ctx, cd); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	istioAssertVS(t, e, &networkingv1.VirtualService{
		Hosts: []string{"podinfo"},
		Http:  []*networkingv1.HTTPRoute{{Route: []*networkingv1.HTTPRouteDestination{istioDest("podinfo", 0, 0)}}},
	})
}

// TestIstioForeignOwner: objects controlled by something else are never written.
func TestIstioForeignOwner(t *testing.T) {
	ctx := context.Background()
	e := newRouterEnv(t)
	cd := e.createCanary(t, testCanary("istio"))
	r := istioNewRouter(e)
	foreign := []metav1.OwnerReference{{
		APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "podinfo", UID: "0d1c2b3a", Controller: ptr.To(true),
	}}
	owned := &istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns, OwnerReferences: foreign}}
	istioSetSpec(&owned.Spec, &networkingv1.VirtualService{Hosts: []string{"podinfo"}})
	if err := e.c.Create(ctx, owned); err != nil {
		t.Fatal(err)
	}

	err := r.Reconcile(ctx, cd)
	if !IsInvalidSpec(err) || !strings.Contains(err.Error(), "Rollout podinfo") {
		t.Errorf("Reconcile = %v, want an InvalidSpecError naming Rollout podinfo", err)
	}
	if err := r.SetRoutes(ctx, cd, 50, 50, false); !IsInvalidSpec(err) {
		t.Errorf("SetRoutes = %v, want an InvalidSpecError", err)
	}
	istioAssertUnchanged(t, e, owned.ResourceVersion, "Reconcile and SetRoutes")
	istioAssertVS(t, e, &networkingv1.VirtualService{Hosts: []string{"podinfo"}})
	for _, name := range []string{"podinfo-canary", "podinfo-primary"} {
		err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: name}, &istionetv1.DestinationRule{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("DestinationRule %s written next to a foreign VirtualService (err %v)", name, err)
		}
	}
	if err := r.Finalize(ctx, cd); err != nil {
		t.Errorf("Finalize = %v", err)
	}
	istioAssertUnchanged(t, e, owned.ResourceVersion, "Finalize")

	// A foreign DestinationRule stops everything too.
	other := testCanary("istio")
	other.Name, other.Spec.Service.Name = "other", "other"
	other = e.createCanary(t, other)
	dr := &istionetv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "other-primary", Namespace: e.ns, OwnerReferences: foreign}}
	istioSetSpec(&dr.Spec, &networkingv1.DestinationRule{Host: "other-primary"})
	if err := e.c.Create(ctx, dr); err != nil {
		t.Fatal(err)
	}
	if err := r.Reconcile(ctx, other); !IsInvalidSpec(err) {
		t.Errorf("Reconcile = %v, want an InvalidSpecError", err)
	}
	for _, obj := range []client.Object{
		&istionetv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "other-canary"}},
		&istionetv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
	} {
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: obj.GetName()}, obj); !apierrors.IsNotFound(err) {
			t.Errorf("%s written next to a foreign DestinationRule (err %v)", obj.GetName(), err)
		}
	}
}

func TestIstioValidate(t *testing.T) {
	r := NewIstio(nil, Options{})
	tests := []struct {
		name   string
		change func(cd *flaggerv1.Canary)
		valid  bool
	}{
		{"seed canary", func(*flaggerv1.Canary) {}, true},
		{"seed A/B test", func(cd *flaggerv1.Canary) { cd.Spec.Analysis = istioSeedABTest().Spec.Analysis }, true},
		{"deprecated canaryAnalysis", func(cd *flaggerv1.Canary) { cd.Spec.CanaryAnalysis, cd.Spec.Analysis = cd.Spec.Analysis, nil }, true},
		{"session affinity", func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "canary", PrimaryCookieName: "primary"}
		}, true},
		{"same cookie names", func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "flagger", PrimaryCookieName: "flagger"}
		}, false},
		{"no cookie name", func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{}
		}, false},
		{"cookie name with a separator", func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "a=b"}
		}, false},
		{"cookie domain with a separator", func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "c", Domain: "a; Secure"}
		}, false},
		{"suffix match", func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Match = []flaggerv1.HTTPMatchRequest{{URI: &flaggerv1.StringMatch{Suffix: ".js"}}}
		}, false},
		{"two kinds of match", func(cd *flaggerv1.Canary) {
			cd.Spec.Analysis = istioSeedABTest().Spec.Analysis
			cd.Spec.Analysis.Match[0].Headers["x"] = flaggerv1.StringMatch{Exact: "a", Prefix: "b"}
		}, false},
		{"bad timeout", func(cd *flaggerv1.Canary) { cd.Spec.Service.Timeout = "soon" }, false},
		{"zero per-try timeout", func(cd *flaggerv1.Canary) {
			cd.Spec.Service.Retries = &flaggerv1.HTTPRetry{Attempts: 3, PerTryTimeout: "0s"}
		}, false},
		{"bad traffic policy duration", func(cd *flaggerv1.Canary) {
			cd.Spec.Service.TrafficPolicy = &flaggerv1.TrafficPolicy{OutlierDetection: &flaggerv1.OutlierDetection{Interval: "often"}}
		}, false},
		{"two load balancers", func(cd *flaggerv1.Canary) {
			cd.Spec.Service.TrafficPolicy = &flaggerv1.TrafficPolicy{LoadBalancer: &flaggerv1.LoadBalancerSettings{
				Simple: "ROUND_ROBIN", ConsistentHash: &flaggerv1.ConsistentHashLB{UseSourceIP: true},
			}}
		}, false},
		{"delegation with hosts", func(cd *flaggerv1.Canary) { cd.Spec.Service.Delegation = true }, false},
		{"mirror weight over 100", func(cd *flaggerv1.Canary) { cd.Spec.Analysis.MirrorWeight = 150 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cd := istioSeedCanary()
			tt.change(cd)
			err := r.Validate(cd)
			if tt.valid && err != nil {
				t.Errorf("Validate = %v, want nil", err)
			}
			if !tt.valid && !IsInvalidSpec(err) {
				t.Errorf("Validate = %v, want an InvalidSpecError", err)
			}
		})
	}
}

func TestIstioTrafficPolicy(t *testing.T) {
	got, err := istioTrafficPolicy(&flaggerv1.TrafficPolicy{
		LoadBalancer: &flaggerv1.LoadBalancerSettings{
			ConsistentHash:     &flaggerv1.ConsistentHashLB{HTTPCookie: &flaggerv1.HTTPCookie{Name: "user", TTL: "1h"}},
			WarmupDurationSecs: "90s",
		},
		ConnectionPool: &flaggerv1.ConnectionPoolSettings{HTTP: &flaggerv1.HTTPSettings{
			HTTP1MaxPendingRequests: 10, IdleTimeout: "1m30s", H2UpgradePolicy: "UPGRADE",
		}},
		OutlierDetection: &flaggerv1.OutlierDetection{
			Consecutive5xxErrors: ptr.To[uint32](5), Interval: "10s", BaseEjectionTime: "1m", MaxEjectionPercent: 50,
			SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailures: ptr.To[uint32](2),
		},
		TLS: &flaggerv1.ClientTLSSettings{Mode: "ISTIO_MUTUAL", Sni: "podinfo.test"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &networkingv1.TrafficPolicy{
		LoadBalancer: &networkingv1.LoadBalancerSettings{
			LbPolicy: &networkingv1.LoadBalancerSettings_ConsistentHash{ConsistentHash: &networkingv1.LoadBalancerSettings_ConsistentHashLB{
				HashKey: &networkingv1.LoadBalancerSettings_ConsistentHashLB_HttpCookie{
					HttpCookie: &networkingv1.LoadBalancerSettings_ConsistentHashLB_HTTPCookie{Name: "user", Ttl: durationpb.New(time.Hour)},
				},
			}},
			WarmupDurationSecs: durationpb.New(90 * time.Second),
		},
		ConnectionPool: &networkingv1.ConnectionPoolSettings{Http: &networkingv1.ConnectionPoolSettings_HTTPSettings{
			Http1MaxPendingRequests: 10, IdleTimeout: durationpb.New(90 * time.Second),
			H2UpgradePolicy: networkingv1.ConnectionPoolSettings_HTTPSettings_UPGRADE,
		}},
		OutlierDetection: &networkingv1.OutlierDetection{
			Consecutive_5XxErrors: wrapperspb.UInt32(5), Interval: durationpb.New(10 * time.Second),
			BaseEjectionTime: durationpb.New(time.Minute), MaxEjectionPercent: 50,
			SplitExternalLocalOriginErrors: true, ConsecutiveLocalOriginFailures: wrapperspb.UInt32(2),
		},
		Tls: &networkingv1.ClientTLSSettings{Mode: networkingv1.ClientTLSSettings_ISTIO_MUTUAL, Sni: "podinfo.test"},
	}
	istioAssertSpec(t, "trafficPolicy", got, want)
}
