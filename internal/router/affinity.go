package router

import (
	"cmp"
	"context"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Session affinity (analysis.sessionAffinity) is Flagger's sticky canary. While the canary gets
// traffic, its responses set a cookie (status.sessionAffinityCookie, "<cookieName>=<random>") and a
// route ahead of the weighted one sends the requests that carry it to the canary, whatever the
// weights; with primaryCookieName the primary's responses set a cookie of their own
// (status.primarySessionAffinityCookie) that pins users to the primary for one analysis interval.
// Once the canary weight is back to 0 the run's cookie becomes status.previousSessionAffinityCookie:
// requests that carry it are routed by weight and get it expired.
//
// This file is the one implementation of that decision: which cookies exist (NextSessionCookies,
// drawn by the controller and kept in the canary status, so a restart keeps them) and which routes
// and Set-Cookie values a split gets (planAffinity). The istio and gatewayapi routers only
// translate the plan into their objects.

const (
	cookieHeader    = "Cookie"
	setCookieHeader = "Set-Cookie"
	// expiredMaxAge deletes a cookie on the client.
	expiredMaxAge      = "Max-Age=-1"
	cookieValueLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	cookieValueLength  = 10
	// minPrimaryCookieAge floors the primary cookie's life, one analysis interval, as the
	// controller floors the interval (Flagger's 10s).
	minPrimaryCookieAge = 10 * time.Second
)

var (
	// cookieNamePattern is RFC 6265's cookie-name (an RFC 7230 token).
	cookieNamePattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	// cookieValuePattern is RFC 6265's cookie-value without quotes: what a value read back from a
	// status or a routing object must be to be used in a header and a regular expression.
	cookieValuePattern = regexp.MustCompile(`^[!#-+\--:<-\[\]-~]+$`)
)

// SessionCookies are a canary's session affinity cookies, each "name=value" or empty. They are kept
// in the canary status under Flagger's field names.
type SessionCookies struct {
	// Canary is handed out by the canary during a run (status.sessionAffinityCookie).
	Canary string
	// Previous is the last run's, expired on the clients that still send it
	// (status.previousSessionAffinityCookie).
	Previous string
	// Primary is handed out by the primary during a run (status.primarySessionAffinityCookie).
	Primary string
}

// SessionCookiesOf reads the cookies of a canary status; malformed ones are dropped.
func SessionCookiesOf(st *flaggerv1.CanaryStatus) SessionCookies {
	return SessionCookies{
		Canary:   wellFormedCookie(st.SessionAffinityCookie),
		Previous: wellFormedCookie(st.PreviousSessionAffinityCookie),
		Primary:  wellFormedCookie(st.PrimarySessionAffinityCookie),
	}
}

// Record writes the cookies into a canary status.
func (c SessionCookies) Record(st *flaggerv1.CanaryStatus) {
	st.SessionAffinityCookie = c.Canary
	st.PreviousSessionAffinityCookie = c.Previous
	st.PrimarySessionAffinityCookie = c.Primary
}

// IsZero is true when there is no cookie.
func (c SessionCookies) IsZero() bool { return c == SessionCookies{} }

// Or fills the cookies c lacks with fallback's well-formed ones.
func (c SessionCookies) Or(fallback SessionCookies) SessionCookies {
	return SessionCookies{
		Canary:   cmp.Or(c.Canary, wellFormedCookie(fallback.Canary)),
		Previous: cmp.Or(c.Previous, wellFormedCookie(fallback.Previous)),
		Primary:  cmp.Or(c.Primary, wellFormedCookie(fallback.Primary)),
	}
}

// SessionAffinityRouter is a router that carries session affinity (istio, gatewayapi). Its routes
// hand out the cookies of the canary status it is given. SessionCookies reads the cookies its
// routing object hands out, for a canary whose status lacks them: a route written before Pennant
// kept them in the status, or a status write lost after the route's.
type SessionAffinityRouter interface {
	SessionCookies(ctx context.Context, cd *flaggerv1.Canary) (SessionCookies, error)
}

// SessionAffinityOf returns the canary's session affinity settings, or nil when they do not apply:
// none configured, or a TCP service (no HTTP headers to carry cookies).
func SessionAffinityOf(cd *flaggerv1.Canary) *flaggerv1.SessionAffinity {
	a := cd.GetAnalysis()
	if a == nil || a.SessionAffinity == nil || strings.EqualFold(cd.Spec.Service.AppProtocol, "tcp") {
		return nil
	}
	return a.SessionAffinity
}

// validateSessionAffinity refuses settings that cannot make a well-formed cookie.
func validateSessionAffinity(sa *flaggerv1.SessionAffinity) error {
	const field = "spec.analysis.sessionAffinity"
	switch {
	case !cookieNamePattern.MatchString(sa.CookieName):
		return Invalidf("%s.cookieName %q is not a valid cookie name", field, sa.CookieName)
	case sa.PrimaryCookieName != "" && !cookieNamePattern.MatchString(sa.PrimaryCookieName):
		return Invalidf("%s.primaryCookieName %q is not a valid cookie name", field, sa.PrimaryCookieName)
	case sa.PrimaryCookieName == sa.CookieName:
		return Invalidf("%s: cookieName and primaryCookieName must differ (both %q)", field, sa.CookieName)
	case sa.MaxAge < 0:
		return Invalidf("%s.maxAge must not be negative, got %d", field, sa.MaxAge)
	case strings.ContainsAny(sa.Domain, "; \t\r\n"):
		return Invalidf("%s.domain %q is not a valid cookie domain", field, sa.Domain)
	case strings.ContainsAny(sa.Path, ";\r\n") || strings.ContainsFunc(sa.Path, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return Invalidf("%s.path %q is not a valid cookie path", field, sa.Path)
	case sa.SameSite != "" && !slices.Contains([]string{"Strict", "Lax", "None"}, sa.SameSite):
		return Invalidf("%s.sameSite must be Strict, Lax or None, got %q", field, sa.SameSite)
	}
	return nil
}

// NextSessionCookies is Flagger's cookie lifecycle for a split about to be applied: while the canary
// gets traffic, the run keeps its cookie or draws one (newValue), and the primary's with
// primaryCookieName; at canary weight 0 the run's cookie becomes the previous one and the primary's
// is dropped. A cookie of a name no longer configured is replaced. Without session affinity there
// are none.
func NextSessionCookies(sa *flaggerv1.SessionAffinity, current SessionCookies, canaryWeight int, newValue func() string) SessionCookies {
	if sa == nil {
		return SessionCookies{}
	}
	next := current
	if canaryWeight == 0 {
		if next.Canary != "" {
			next.Previous = next.Canary
		}
		next.Canary, next.Primary = "", ""
		return next
	}
	if cookieName(next.Canary) != sa.CookieName {
		next.Canary = drawCookie(sa.CookieName, newValue, next.Previous)
	}
	switch {
	case sa.PrimaryCookieName == "":
		next.Primary = ""
	case cookieName(next.Primary) != sa.PrimaryCookieName:
		next.Primary = drawCookie(sa.PrimaryCookieName, newValue, "")
	}
	return next
}

// NewCookieValue is a random cookie value: ten letters, as Flagger draws them. It only has to tell
// runs apart (anyone may send any cookie), so math/rand is enough.
func NewCookieValue() string {
	b := make([]byte, cookieValueLength)
	for i := range b {
		b[i] = cookieValueLetters[rand.IntN(len(cookieValueLetters))]
	}
	return string(b)
}

// drawCookie is a new "name=value" that differs from avoid (the cookie being expired).
func drawCookie(name string, newValue func() string, avoid string) string {
	for range 100 {
		if c := name + "=" + newValue(); c != avoid {
			return c
		}
	}
	return name + "=" + newValue() // a constant newValue (tests): never reached in production
}

// pickSessionCookies are the cookies a route is written with: the status's, and for those the
// status lacks, the ones the routing object already hands out.
func pickSessionCookies(cd *flaggerv1.Canary, observed SessionCookies) SessionCookies {
	return SessionCookiesOf(&cd.Status).Or(observed)
}

// stickyKind is what a sticky route does.
type stickyKind int

const (
	// stickyCanary sends requests with the run's cookie to the canary.
	stickyCanary stickyKind = iota
	// stickyPrimary sends requests with the primary cookie to the primary.
	stickyPrimary
	// stickyExpire routes requests with the last run's cookie by weight and expires the cookie.
	stickyExpire
)

// stickyRoute is a route ahead of the weighted one, for the requests that carry a cookie.
type stickyRoute struct {
	kind stickyKind
	// cookie is the "name=value" the route matches (cookieRegex).
	cookie          string
	primary, canary int
	// setCookie is a Set-Cookie value the route adds to its responses ("" for none).
	setCookie string
}

// affinityPlan is what session affinity adds to a split: the sticky routes, in this order ahead of
// the weighted route, and the Set-Cookie each destination of the weighted route adds to its
// responses ("" for none).
type affinityPlan struct {
	sticky                            []stickyRoute
	primarySetCookie, canarySetCookie string
}

// planAffinity decides the routes of a split with the given cookies. The routers do not draw
// cookies: a canary with weight and no cookie (a spec that gained session affinity since the last
// split) gets none until the controller's next split.
func planAffinity(cd *flaggerv1.Canary, c SessionCookies, primaryWeight, canaryWeight int) affinityPlan {
	sa := SessionAffinityOf(cd)
	if sa == nil {
		return affinityPlan{}
	}
	var p affinityPlan
	if canaryWeight == 0 {
		expired := cmp.Or(c.Previous, c.Canary)
		if expired != "" {
			p.sticky = append(p.sticky, stickyRoute{kind: stickyExpire, cookie: expired,
				primary: primaryWeight, canary: canaryWeight, setCookie: expireCookie(sa, expired)})
		}
		return p
	}
	if c.Canary != "" {
		p.canarySetCookie = buildCookie(sa, c.Canary, canaryCookieAge(sa))
		p.sticky = append(p.sticky, stickyRoute{kind: stickyCanary, cookie: c.Canary, canary: totalWeightPercent})
	}
	if c.Primary != "" && sa.PrimaryCookieName != "" {
		p.primarySetCookie = buildCookie(sa, c.Primary, primaryCookieAge(cd))
		p.sticky = append(p.sticky, stickyRoute{kind: stickyPrimary, cookie: c.Primary, primary: totalWeightPercent})
	}
	return p
}

const totalWeightPercent = 100

// canaryCookieAge is analysis.sessionAffinity.maxAge, Flagger's default 86400 when unset.
func canaryCookieAge(sa *flaggerv1.SessionAffinity) int {
	if sa.MaxAge > 0 {
		return sa.MaxAge
	}
	return flaggerv1.DefaultSessionAffinityMaxAge
}

// primaryCookieAge is one analysis interval, in seconds, floored like the controller's interval.
func primaryCookieAge(cd *flaggerv1.Canary) int {
	return int(cd.GetAnalysisInterval(minPrimaryCookieAge) / time.Second)
}

// buildCookie is the Set-Cookie value handing out a "name=value" cookie with the configured
// attributes.
func buildCookie(sa *flaggerv1.SessionAffinity, cookie string, maxAge int) string {
	parts := []string{cookie, "Max-Age=" + strconv.Itoa(maxAge)}
	parts = append(parts, cookieScope(sa)...)
	if sa.SameSite != "" {
		parts = append(parts, "SameSite="+sa.SameSite)
	}
	if sa.HttpOnly {
		parts = append(parts, "HttpOnly")
	}
	if sa.Secure {
		parts = append(parts, "Secure")
	}
	if sa.Partitioned {
		parts = append(parts, "Partitioned")
	}
	return strings.Join(parts, "; ")
}

// expireCookie is the Set-Cookie value deleting a cookie: a browser deletes only the cookie of the
// same name, domain and path, so those are repeated.
func expireCookie(sa *flaggerv1.SessionAffinity, cookie string) string {
	return strings.Join(append([]string{cookie, expiredMaxAge}, cookieScope(sa)...), "; ")
}

func cookieScope(sa *flaggerv1.SessionAffinity) []string {
	var out []string
	if sa.Domain != "" {
		out = append(out, "Domain="+sa.Domain)
	}
	if sa.Path != "" {
		out = append(out, "Path="+sa.Path)
	}
	return out
}

// cookieRegex is the regular expression a Cookie header carrying the "name=value" cookie matches,
// Flagger's ".*<name>.*<value>.*" with both quoted: a cookie name may hold regex metacharacters
// ('.', '+', '*', '|', ...).
func cookieRegex(cookie string) string {
	name, value, _ := strings.Cut(cookie, "=")
	return ".*" + regexp.QuoteMeta(name) + ".*" + regexp.QuoteMeta(value) + ".*"
}

// cookieRegexName returns the cookie name a Cookie header regex of cookieRegex's form (quoted or,
// as Flagger writes it, not) matches.
func cookieRegexName(regex string) (string, bool) {
	inner, ok := strings.CutPrefix(regex, ".*")
	if !ok {
		return "", false
	}
	if inner, ok = strings.CutSuffix(inner, ".*"); !ok {
		return "", false
	}
	// QuoteMeta escapes every '.' and '*', so the first ".*" left ends the name.
	quoted, _, ok := strings.Cut(inner, ".*")
	if !ok || quoted == "" {
		return "", false
	}
	var name strings.Builder
	for i := 0; i < len(quoted); i++ {
		if quoted[i] == '\\' && i+1 < len(quoted) {
			i++
		}
		name.WriteByte(quoted[i])
	}
	return name.String(), true
}

// cookieOfSetCookie returns the "name=value" of a Set-Cookie value ("" when malformed).
func cookieOfSetCookie(setCookie string) string {
	cookie, _, _ := strings.Cut(setCookie, ";")
	return wellFormedCookie(strings.TrimSpace(cookie))
}

// wellFormedCookie returns cookie when it is "name=value" with an RFC 6265 name and value, else "".
func wellFormedCookie(cookie string) string {
	name, value, ok := strings.Cut(cookie, "=")
	if !ok || !cookieNamePattern.MatchString(name) || !cookieValuePattern.MatchString(value) {
		return ""
	}
	return cookie
}

func cookieName(cookie string) string {
	name, _, _ := strings.Cut(cookie, "=")
	return name
}
