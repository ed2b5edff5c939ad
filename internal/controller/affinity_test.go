package controller_test

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "istio.io/api/networking/v1"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Session affinity through a real release: the routing object is recorded at every write and a
// small route evaluator (Istio: first matching route; Gateway API: the spec's match precedence)
// replays a browser against each version. Real proxy traffic is left to a later test.

// stickyCanary is a canary of the provider with session affinity, stepping 20% up to 60%.
func stickyCanary(provider string, sa *flaggerv1.SessionAffinity) *flaggerv1.Canary {
	cd := blueGreenCanary("podinfo", "Deployment", 0)
	cd.Spec.Provider = provider
	cd.Spec.Analysis.StepWeight = 20
	cd.Spec.Analysis.MaxWeight = 60
	cd.Spec.Analysis.SessionAffinity = sa
	return cd
}

func TestIstioSessionAffinityThroughARelease(t *testing.T) {
	f := newRestartableFixture(t)
	stop := f.start()
	sa := &flaggerv1.SessionAffinity{CookieName: "flagger-cookie", PrimaryCookieName: "flagger-primary", MaxAge: 3600, Path: "/"}
	f.create(podinfoDeployment("podinfo", 1), stickyCanary("istio", sa))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	log := recordObjects(f.fixture, &istionetv1.VirtualServiceList{}, "podinfo")

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.1.1")
	cookie := waitRunCookie(f.fixture, sa)
	// A controller restart in the middle of the run keeps the cookie: it is in the status.
	stop()
	f.start()
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	checkCookiesAfterTheRun(t, cd, cookie)

	versions := log.stop()
	route := func(obj client.Object, cookies string) routed {
		return istioRoute(obj.(*istionetv1.VirtualService), cookies)
	}
	replayStickyUser(t, versions, route, "podinfo-canary", sa.CookieName, cookie)
	replayStickyUser(t, versions, route, "podinfo-primary", sa.PrimaryCookieName, "")
}

func TestGatewayAPISessionAffinityThroughARelease(t *testing.T) {
	f := newFixture(t)
	// A cookie name with regex metacharacters: the route's Cookie match must quote it.
	sa := &flaggerv1.SessionAffinity{CookieName: "app.canary+v", MaxAge: 600, Domain: "example.com", Path: "/"}
	cd := stickyCanary("gatewayapi:v1", sa)
	cd.Spec.Service.GatewayRefs = []flaggerv1.ParentReference{{Name: "public"}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	log := recordObjects(f, &gatewayv1.HTTPRouteList{}, "podinfo")

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.1.1")
	cookie := waitRunCookie(f, sa)
	cd = f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	checkCookiesAfterTheRun(t, cd, cookie)

	versions := log.stop()
	route := func(obj client.Object, cookies string) routed {
		return httpRouteRoute(obj.(*gatewayv1.HTTPRoute), cookies)
	}
	replayStickyUser(t, versions, route, "podinfo-canary", sa.CookieName, cookie)
	// A cookie whose name only matches the unquoted regex is not sticky.
	_, value, _ := strings.Cut(cookie, "=")
	for _, obj := range versions {
		if r := route(obj, "appXcanaryv="+value); r.weights["podinfo-canary"] == 100 && r.weights["podinfo-primary"] == 0 &&
			route(obj, "").weights["podinfo-canary"] < 100 {
			t.Fatalf("the cookie appXcanaryv=%s is pinned to the canary: the cookie name is not quoted", value)
		}
	}
}

// waitRunCookie waits for the canary to get traffic and returns the cookie of the run, from the
// status.
func waitRunCookie(f *fixture, sa *flaggerv1.SessionAffinity) string {
	f.t.Helper()
	var cookie string
	testenvEventually(f, func() (bool, string) {
		st := f.canary("podinfo").Status
		cookie = st.SessionAffinityCookie
		return st.CanaryWeight > 0 && cookie != "", fmt.Sprintf("weight %d cookie %q", st.CanaryWeight, cookie)
	})
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(sa.CookieName) + `=[A-Za-z]{10}$`).MatchString(cookie) {
		f.t.Errorf("status.sessionAffinityCookie = %q, want %s=<10 letters>", cookie, sa.CookieName)
	}
	st := f.canary("podinfo").Status
	if sa.PrimaryCookieName != "" && !strings.HasPrefix(st.PrimarySessionAffinityCookie, sa.PrimaryCookieName+"=") {
		f.t.Errorf("status.primarySessionAffinityCookie = %q during the run", st.PrimarySessionAffinityCookie)
	}
	return cookie
}

func checkCookiesAfterTheRun(t *testing.T, cd *flaggerv1.Canary, cookie string) {
	t.Helper()
	st := cd.Status
	if st.SessionAffinityCookie != "" || st.PrimarySessionAffinityCookie != "" || st.PreviousSessionAffinityCookie != cookie {
		t.Errorf("status cookies after the run: current %q primary %q previous %q, want the run's %q as the previous",
			st.SessionAffinityCookie, st.PrimarySessionAffinityCookie, st.PreviousSessionAffinityCookie, cookie)
	}
}

// replayStickyUser replays, against every recorded version of the routing object, a user who is
// sent to backend by the split and gets its cookie. From then on the user must stay on backend at
// every weight step (with the cookie the status recorded, when want is set), and once the run is
// over be routed like everyone and have the cookie expired.
func replayStickyUser(t *testing.T, versions []client.Object, route func(client.Object, string) routed, backend, cookieName, want string) {
	t.Helper()
	other := "podinfo-primary"
	if backend == other {
		other = "podinfo-canary"
	}
	user := browser{}
	var pinnedAt []string
	got, over := "", false
	for i, obj := range versions {
		everyone := route(obj, "")
		running := everyone.weights["podinfo-canary"] > 0
		if got == "" {
			if running && everyone.weights[backend] > 0 {
				user.receive(everyone.setCookies[backend])
				if got = user.jar[cookieName]; got == "" {
					t.Fatalf("version %d: a response of %s sets no %s cookie (Set-Cookie %q)", i, backend, cookieName, everyone.setCookies[backend])
				}
				got = cookieName + "=" + got
				if want != "" && got != want {
					t.Errorf("%s hands out %s, the status records %s", backend, got, want)
				}
			}
			continue
		}
		r := route(obj, user.header())
		if running {
			if r.weights[backend] != 100 || r.weights[other] != 0 {
				t.Errorf("version %d (split %v): the user with %s is routed %v, want all to %s", i, everyone.weights, got, r.weights, backend)
			}
			pinnedAt = append(pinnedAt, fmt.Sprint(everyone.weights["podinfo-canary"]))
			user.receive(r.setCookies[backend])
			continue
		}
		if len(user.jar) == 0 {
			continue
		}
		over = true
		if !maps.Equal(r.weights, everyone.weights) {
			t.Errorf("after the run the user with %s is routed %v, want the split %v", got, r.weights, everyone.weights)
		}
		for b, w := range r.weights {
			if w > 0 {
				user.receive(r.setCookies[b])
			}
		}
		if _, kept := user.jar[cookieName]; kept && backend == "podinfo-canary" {
			t.Errorf("after the run the cookie %s is not expired (Set-Cookie %v)", got, r.setCookies)
		}
	}
	if got == "" {
		t.Fatalf("%s never got traffic in %d versions of the routing object", backend, len(versions))
	}
	// The run went 20, 40, 60 (the cookie is handed out at 20), then back to 0.
	if want := []string{"40", "60"}; !slices.Equal(slices.Compact(pinnedAt), want) {
		t.Errorf("the user with %s was checked at canary weights %v, want every later step %v", got, pinnedAt, want)
	}
	if backend == "podinfo-canary" && !over {
		t.Errorf("no version of the routing object after the run")
	}
}

// browser keeps cookies as a browser does (one path and domain: names are enough).
type browser struct{ jar map[string]string }

func (b *browser) header() string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(b.jar)) {
		parts = append(parts, name+"="+b.jar[name])
	}
	return strings.Join(parts, "; ")
}

// receive applies Set-Cookie values: Max-Age <= 0 deletes the cookie.
func (b *browser) receive(setCookies []string) {
	if b.jar == nil {
		b.jar = map[string]string{}
	}
	for _, sc := range setCookies {
		attrs := strings.Split(sc, ";")
		name, value, ok := strings.Cut(strings.TrimSpace(attrs[0]), "=")
		if !ok {
			continue
		}
		b.jar[name] = value
		for _, a := range attrs[1:] {
			if k, v, _ := strings.Cut(strings.TrimSpace(a), "="); strings.EqualFold(k, "Max-Age") {
				if n, err := strconv.Atoi(v); err == nil && n <= 0 {
					delete(b.jar, name)
				}
			}
		}
	}
}

// routed is where a request goes: the weights of the destinations of the route it matched, and the
// Set-Cookie values of a response of each destination.
type routed struct {
	weights    map[string]int
	setCookies map[string][]string
}

// fullMatch is Envoy's (RE2) regex header match: the whole value.
func fullMatch(re, s string) bool {
	ok, err := regexp.MatchString(`^(?:`+re+`)$`, s)
	return err == nil && ok
}

// istioRoute evaluates a VirtualService for a GET / with the Cookie header: its first HTTP route
// whose match (any of them; none matches all) fits.
func istioRoute(vs *istionetv1.VirtualService, cookies string) routed {
	headers := map[string]string{"cookie": cookies}
	stringMatch := func(m *networkingv1.StringMatch, v string) bool {
		switch {
		case m.GetExact() != "":
			return v == m.GetExact()
		case m.GetPrefix() != "":
			return strings.HasPrefix(v, m.GetPrefix())
		case m.GetRegex() != "":
			return fullMatch(m.GetRegex(), v)
		}
		return true
	}
	matches := func(m *networkingv1.HTTPMatchRequest) bool {
		if m.GetUri() != nil && !stringMatch(m.GetUri(), "/") {
			return false
		}
		for name, sm := range m.GetHeaders() {
			if !stringMatch(sm, headers[strings.ToLower(name)]) {
				return false
			}
		}
		return true
	}
	for _, route := range vs.Spec.Http {
		if len(route.Match) > 0 && !slices.ContainsFunc(route.Match, matches) {
			continue
		}
		out := routed{weights: map[string]int{}, setCookies: map[string][]string{}}
		for _, d := range route.Route {
			host := d.GetDestination().GetHost()
			out.weights[host] = int(d.Weight)
			for _, h := range []*networkingv1.Headers{route.GetHeaders(), d.GetHeaders()} {
				if v := h.GetResponse().GetAdd()["Set-Cookie"]; v != "" {
					out.setCookies[host] = append(out.setCookies[host], v)
				}
			}
		}
		return out
	}
	return routed{}
}

// httpRouteRoute evaluates an HTTPRoute for a GET / with the Cookie header, with the Gateway API's
// precedence among the matches that fit: exact path, then the longest prefix, then a method match,
// then the most header matches, then the most query matches, then the order of the rules.
func httpRouteRoute(hr *gatewayv1.HTTPRoute, cookies string) routed {
	type candidate struct {
		rule          *gatewayv1.HTTPRouteRule
		exact, prefix int
		method        bool
		headers, qs   int
		index         int
	}
	var best *candidate
	better := func(a, b *candidate) bool {
		switch {
		case a.exact != b.exact:
			return a.exact > b.exact
		case a.prefix != b.prefix:
			return a.prefix > b.prefix
		case a.method != b.method:
			return a.method
		case a.headers != b.headers:
			return a.headers > b.headers
		case a.qs != b.qs:
			return a.qs > b.qs
		}
		return a.index < b.index
	}
	for i := range hr.Spec.Rules {
		rule := &hr.Spec.Rules[i]
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for _, m := range matches {
			c := &candidate{rule: rule, index: i}
			path, typ := "/", gatewayv1.PathMatchPathPrefix
			if m.Path != nil {
				path, typ = ptr.Deref(m.Path.Value, "/"), ptr.Deref(m.Path.Type, gatewayv1.PathMatchPathPrefix)
			}
			switch typ {
			case gatewayv1.PathMatchExact:
				if path != "/" {
					continue
				}
				c.exact = 1
			case gatewayv1.PathMatchPathPrefix:
				if path != "/" {
					continue
				}
				c.prefix = len(path)
			default:
				if !fullMatch(path, "/") {
					continue
				}
			}
			if m.Method != nil {
				if *m.Method != gatewayv1.HTTPMethodGet {
					continue
				}
				c.method = true
			}
			fits := true
			for _, h := range m.Headers {
				v := ""
				if strings.EqualFold(string(h.Name), "Cookie") {
					v = cookies
				}
				if ptr.Deref(h.Type, gatewayv1.HeaderMatchExact) == gatewayv1.HeaderMatchRegularExpression {
					fits = fits && fullMatch(h.Value, v)
				} else {
					fits = fits && v == h.Value
				}
			}
			if !fits || len(m.QueryParams) > 0 {
				continue
			}
			c.headers = len(m.Headers)
			if best == nil || better(c, best) {
				best = c
			}
		}
	}
	if best == nil {
		return routed{}
	}
	addSetCookies := func(dst []string, filters []gatewayv1.HTTPRouteFilter) []string {
		for _, f := range filters {
			if f.Type != gatewayv1.HTTPRouteFilterResponseHeaderModifier || f.ResponseHeaderModifier == nil {
				continue
			}
			for _, h := range slices.Concat(f.ResponseHeaderModifier.Set, f.ResponseHeaderModifier.Add) {
				if strings.EqualFold(string(h.Name), "Set-Cookie") {
					dst = append(dst, h.Value)
				}
			}
		}
		return dst
	}
	out := routed{weights: map[string]int{}, setCookies: map[string][]string{}}
	for _, b := range best.rule.BackendRefs {
		name := string(b.Name)
		out.weights[name] = int(ptr.Deref(b.Weight, 1))
		out.setCookies[name] = addSetCookies(addSetCookies(nil, best.rule.Filters), b.Filters)
	}
	return out
}

// objectLog records every version of one named object of a list type, from a watch.
type objectLog struct {
	mu       sync.Mutex
	versions []client.Object
	cancel   context.CancelFunc
	done     chan struct{}
}

func recordObjects(f *fixture, list client.ObjectList, name string) *objectLog {
	f.t.Helper()
	wc, err := client.NewWithWatch(f.env.Config, client.Options{Scheme: f.env.Scheme})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*phaseTimeout)
	w, err := wc.Watch(ctx, list, client.InNamespace(f.ns))
	if err != nil {
		cancel()
		f.t.Fatal(err)
	}
	l := &objectLog{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.ResultChan():
				if !ok {
					return
				}
				obj, isObj := ev.Object.(client.Object)
				if (ev.Type == watch.Added || ev.Type == watch.Modified) && isObj && obj.GetName() == name {
					l.mu.Lock()
					l.versions = append(l.versions, obj.DeepCopyObject().(client.Object))
					l.mu.Unlock()
				}
			}
		}
	}()
	f.t.Cleanup(func() { l.stop() })
	return l
}

// stop ends the recording (after a moment for the last events) and returns the versions in order.
func (l *objectLog) stop() []client.Object {
	time.Sleep(300 * time.Millisecond)
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.versions)
}
