package router

import (
	"regexp"
	"strings"
	"testing"

	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// advanceCookies does what the controller does before a split: the cookies of the split are
// decided from the status and recorded in it.
func advanceCookies(cd *flaggerv1.Canary, canaryWeight int) {
	current := SessionCookiesOf(&cd.Status)
	NextSessionCookies(SessionAffinityOf(cd), current, canaryWeight, NewCookieValue).Record(&cd.Status)
}

func TestNextSessionCookiesLifecycle(t *testing.T) {
	sa := &flaggerv1.SessionAffinity{CookieName: "canary", PrimaryCookieName: "primary"}
	values := []string{"AAAAAAAAAA", "AAAAAAAAAA", "BBBBBBBBBB", "CCCCCCCCCC", "DDDDDDDDDD"}
	draw := func() string { v := values[0]; values = values[1:]; return v }

	run := NextSessionCookies(sa, SessionCookies{}, 10, draw)
	if want := (SessionCookies{Canary: "canary=AAAAAAAAAA", Primary: "primary=AAAAAAAAAA"}); run != want {
		t.Fatalf("first step: %+v, want %+v", run, want)
	}
	if next := NextSessionCookies(sa, run, 20, draw); next != run {
		t.Errorf("next step changed the cookies: %+v -> %+v", run, next)
	}
	done := NextSessionCookies(sa, run, 0, draw)
	if want := (SessionCookies{Previous: "canary=AAAAAAAAAA"}); done != want {
		t.Fatalf("after the run: %+v, want %+v", done, want)
	}
	if again := NextSessionCookies(sa, done, 0, draw); again != done {
		t.Errorf("a second split at 0 changed the cookies: %+v", again)
	}
	// The next run draws again and never hands out the cookie being expired.
	values = []string{"AAAAAAAAAA", "BBBBBBBBBB", "CCCCCCCCCC"}
	next := NextSessionCookies(sa, done, 5, draw)
	if want := (SessionCookies{Canary: "canary=BBBBBBBBBB", Previous: "canary=AAAAAAAAAA", Primary: "primary=CCCCCCCCCC"}); next != want {
		t.Errorf("next run: %+v, want %+v", next, want)
	}
	// A renamed cookie is replaced; without session affinity there are none.
	renamed := *sa
	renamed.CookieName = "other"
	values = []string{"EEEEEEEEEE"}
	if got := NextSessionCookies(&renamed, next, 10, draw); got.Canary != "other=EEEEEEEEEE" || got.Primary != next.Primary {
		t.Errorf("renamed cookie: %+v", got)
	}
	if got := NextSessionCookies(nil, next, 10, draw); !got.IsZero() {
		t.Errorf("without session affinity: %+v", got)
	}
}

func TestNewCookieValueIsRandom(t *testing.T) {
	a, b := NewCookieValue(), NewCookieValue()
	if !regexp.MustCompile(`^[A-Za-z]{10}$`).MatchString(a) || a == b {
		t.Errorf("cookie values %q %q, want ten random letters", a, b)
	}
}

func TestSessionCookiesOfDropsMalformedCookies(t *testing.T) {
	st := flaggerv1.CanaryStatus{
		SessionAffinityCookie:         "canary=abc\r\nX-Injected: 1",
		PreviousSessionAffinityCookie: "no-value",
		PrimarySessionAffinityCookie:  "primary=Zz",
	}
	if got, want := SessionCookiesOf(&st), (SessionCookies{Primary: "primary=Zz"}); got != want {
		t.Errorf("SessionCookiesOf = %+v, want %+v", got, want)
	}
}

// The cookie name goes into a regular expression quoted: a name with metacharacters matches only
// itself.
func TestCookieRegexQuotesTheName(t *testing.T) {
	for _, name := range []string{"app.canary", "a+b", "x*y|z"} {
		re := regexp.MustCompile("^" + cookieRegex(name+"=abcdefghij") + "$")
		if !re.MatchString("other=1; " + name + "=abcdefghij") {
			t.Errorf("%s: the regex %q does not match its own cookie", name, re)
		}
		impostor := strings.NewReplacer(".", "X", "+", "", "*", "", "|", "").Replace(name)
		if re.MatchString(impostor + "=abcdefghij") {
			t.Errorf("%s: the regex %q matches the cookie %s", name, re, impostor)
		}
		if got, ok := cookieRegexName(cookieRegex(name + "=abcdefghij")); !ok || got != name {
			t.Errorf("cookieRegexName(%q) = %q, %v", cookieRegex(name+"=v"), got, ok)
		}
	}
	// Flagger's unquoted form is still recognised.
	if got, ok := cookieRegexName(".*flagger-cookie.*abcdefghij.*"); !ok || got != "flagger-cookie" {
		t.Errorf("Flagger's regex: %q, %v", got, ok)
	}
}

func TestPlanAffinity(t *testing.T) {
	cd := &flaggerv1.Canary{Spec: flaggerv1.CanarySpec{Analysis: &flaggerv1.CanaryAnalysis{Interval: "2m",
		SessionAffinity: &flaggerv1.SessionAffinity{CookieName: "c", PrimaryCookieName: "p", Domain: "example.com", Path: "/", Secure: true}}}}
	c := SessionCookies{Canary: "c=AAAAAAAAAA", Primary: "p=BBBBBBBBBB", Previous: "c=ZZZZZZZZZZ"}

	running := planAffinity(cd, c, 70, 30)
	if got, want := running.canarySetCookie, "c=AAAAAAAAAA; Max-Age=86400; Domain=example.com; Path=/; Secure"; got != want {
		t.Errorf("canary Set-Cookie %q, want %q", got, want)
	}
	if got, want := running.primarySetCookie, "p=BBBBBBBBBB; Max-Age=120; Domain=example.com; Path=/; Secure"; got != want {
		t.Errorf("primary Set-Cookie %q, want %q (one analysis interval)", got, want)
	}
	want := []stickyRoute{{kind: stickyCanary, cookie: c.Canary, canary: 100}, {kind: stickyPrimary, cookie: c.Primary, primary: 100}}
	if len(running.sticky) != 2 || running.sticky[0] != want[0] || running.sticky[1] != want[1] {
		t.Errorf("sticky routes during the run %+v, want %+v", running.sticky, want)
	}

	done := planAffinity(cd, SessionCookies{Previous: "c=AAAAAAAAAA"}, 100, 0)
	expire := stickyRoute{kind: stickyExpire, cookie: "c=AAAAAAAAAA", primary: 100, setCookie: "c=AAAAAAAAAA; Max-Age=-1; Domain=example.com; Path=/"}
	if len(done.sticky) != 1 || done.sticky[0] != expire || done.canarySetCookie != "" || done.primarySetCookie != "" {
		t.Errorf("after the run %+v, want only %+v", done, expire)
	}

	cd.Spec.Analysis.Interval = "1s"
	cd.Spec.Analysis.SessionAffinity.MaxAge = 300
	short := planAffinity(cd, c, 70, 30)
	if !strings.Contains(short.primarySetCookie, "Max-Age=10;") || !strings.Contains(short.canarySetCookie, "Max-Age=300;") {
		t.Errorf("Max-Age: primary %q (floored at 10s), canary %q (maxAge)", short.primarySetCookie, short.canarySetCookie)
	}
	cd.Spec.Service.AppProtocol = "tcp"
	if p := planAffinity(cd, c, 70, 30); len(p.sticky) != 0 || p.canarySetCookie != "" {
		t.Errorf("TCP has no session affinity: %+v", p)
	}
}

// Both routers put the sticky routes ahead of the A/B routes too: a user the A/B match sent to the
// canary keeps it through the run.
func TestIstioSessionAffinityWithABTesting(t *testing.T) {
	cd := istioSeedABTest()
	cd.Spec.Analysis.SessionAffinity = &flaggerv1.SessionAffinity{CookieName: "c"}
	k, err := newIstioConfig(cd)
	if err != nil {
		t.Fatal(err)
	}
	vs := k.virtualService(istioRoutes{primary: 0, canary: 100, cookies: SessionCookies{Canary: "c=AAAAAAAAAA"}})
	if len(vs.Http) != 3 || vs.Http[0].Name != istioStickyRouteName {
		t.Fatalf("http routes %v, want the sticky route, the A/B route and the default route", vs.Http)
	}
	if re := vs.Http[0].Match[0].Headers[cookieHeader].GetRegex(); re != cookieRegex("c=AAAAAAAAAA") {
		t.Errorf("sticky match %q", re)
	}
	if set := vs.Http[1].Route[1].GetHeaders().GetResponse().GetAdd()[setCookieHeader]; !strings.HasPrefix(set, "c=AAAAAAAAAA; Max-Age=86400") {
		t.Errorf("the A/B route's canary hands out %q", set)
	}
	obj := &istionetv1.VirtualService{}
	istioSetSpec(&obj.Spec, vs)
	if st, ok := k.observe(obj); !ok || st.canary != 100 || st.cookies.Canary != "c=AAAAAAAAAA" {
		t.Errorf("observe: %+v %v", st, ok)
	}
}

// A status that lacks a cookie takes the routing object's: a route written (a run started) whose
// status write was lost keeps handing out its cookie.
func TestSessionCookiesOr(t *testing.T) {
	status := SessionCookies{Previous: "c=OLDOLDOLDO"}
	route := SessionCookies{Canary: "c=AAAAAAAAAA", Primary: "p=BBBBBBBBBB\r\n", Previous: "c=ZZZZZZZZZZ"}
	if got, want := status.Or(route), (SessionCookies{Canary: "c=AAAAAAAAAA", Previous: "c=OLDOLDOLDO"}); got != want {
		t.Errorf("Or = %+v, want %+v (the status first, malformed cookies dropped)", got, want)
	}
}
