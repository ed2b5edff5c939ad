package router

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// DefaultIngressAnnotationsPrefix is the default of -ingress-annotations-prefix.
const DefaultIngressAnnotationsPrefix = "nginx.ingress.kubernetes.io"

// NginxRouter is the router of the nginx provider. It copies the Ingress named by spec.ingressRef
// into <ingress>-canary, whose backends pointing at the apex Service <svc> point at <svc>-canary
// instead, and splits traffic with ingress-nginx's canary annotations under the configured prefix:
//
//   - canary: "true" always, so that ingress-nginx treats the copy as the canary of the original;
//   - canary-weight: the canary's percentage of the traffic (weighted and blue/green rollouts);
//   - A/B testing (analysis.match): canary-by-cookie (the exact value of a "cookie" header match is
//     the cookie name), canary-by-header, canary-by-header-value (exact) and canary-by-header-pattern
//     (regex) from the other header match. ingress-nginx takes one header and one cookie, so when
//     several are listed the last one wins, in match order and then header name order.
//
// The original Ingress is never modified.
type NginxRouter struct {
	client client.Client
	owner  string
	prefix string
}

var (
	_ Interface = (*NginxRouter)(nil)
	_ Validator = (*NginxRouter)(nil)
)

// NewNginx returns the nginx router; o.IngressAnnotationsPrefix defaults to
// nginx.ingress.kubernetes.io.
func NewNginx(c client.Client, o Options) *NginxRouter {
	prefix := strings.TrimSuffix(o.IngressAnnotationsPrefix, "/")
	if prefix == "" {
		prefix = DefaultIngressAnnotationsPrefix
	}
	return &NginxRouter{client: c, owner: o.FieldOwner, prefix: prefix}
}

// Validate requires spec.ingressRef.
func (r *NginxRouter) Validate(cd *flaggerv1.Canary) error {
	return validateIngressRef(cd, "nginx")
}

// Reconcile creates or updates <ingress>-canary from the original Ingress, keeping the canary
// annotations it carries; a new canary Ingress sends no traffic to the canary (weight 0).
func (r *NginxRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	return r.apply(ctx, cd, func(current map[string]string) map[string]string {
		if routing := r.routingAnnotations(current); routing[r.annotation("canary")] != "" {
			return routing
		}
		return r.weighted(0)
	})
}

// SetRoutes sets canary-weight, or for A/B testing the header and cookie matches (all matched
// requests to the canary while canaryWeight > 0, none once it is 0). Mirroring is not supported.
func (r *NginxRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, _, canaryWeight int, _ bool) error {
	want := r.desiredRouting(cd, canaryWeight)
	return r.apply(ctx, cd, func(map[string]string) map[string]string { return want })
}

// GetRoutes reads the canary Ingress: with A/B matches applied the canary gets 100%, otherwise it
// gets canary-weight (0 when absent).
func (r *NginxRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	if err := r.Validate(cd); err != nil {
		return 0, 0, false, err
	}
	ing := &networkingv1.Ingress{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: canaryIngressName(cd)}, ing); err != nil {
		return 0, 0, false, fmt.Errorf("canary ingress %s.%s: %w", canaryIngressName(cd), cd.Namespace, err)
	}
	if nginxIsABTest(cd) {
		_, header := ing.Annotations[r.annotation("canary-by-header")]
		_, cookie := ing.Annotations[r.annotation("canary-by-cookie")]
		if header || cookie {
			return 0, 100, false, nil
		}
	}
	if v, ok := ing.Annotations[r.annotation("canary-weight")]; ok {
		w, err := strconv.Atoi(v)
		if err != nil || w < 0 || w > 100 {
			return 0, 0, false, fmt.Errorf("canary ingress %s.%s: annotation %s=%q is not a percentage",
				ing.Name, ing.Namespace, r.annotation("canary-weight"), v)
		}
		canaryWeight = w
	}
	return 100 - canaryWeight, canaryWeight, false, nil
}

// Finalize does nothing: the canary Ingress is garbage-collected with the Canary and the original
// Ingress was never changed.
func (r *NginxRouter) Finalize(context.Context, *flaggerv1.Canary) error { return nil }

func (r *NginxRouter) annotation(suffix string) string { return r.prefix + "/" + suffix }

// isRoutingAnnotation tells the canary annotations (<prefix>/canary and <prefix>/canary-*).
func (r *NginxRouter) isRoutingAnnotation(key string) bool {
	return strings.HasPrefix(key, r.annotation("canary"))
}

func (r *NginxRouter) routingAnnotations(annotations map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range annotations {
		if r.isRoutingAnnotation(k) {
			out[k] = v
		}
	}
	return out
}

func (r *NginxRouter) weighted(canaryWeight int) map[string]string {
	return map[string]string{
		r.annotation("canary"):        "true",
		r.annotation("canary-weight"): strconv.Itoa(canaryWeight),
	}
}

// desiredRouting maps the weights, or the A/B matches, onto the canary annotations.
func (r *NginxRouter) desiredRouting(cd *flaggerv1.Canary, canaryWeight int) map[string]string {
	if !nginxIsABTest(cd) {
		return r.weighted(canaryWeight)
	}
	out := r.weighted(0)
	if canaryWeight == 0 {
		return out
	}
	var cookie, header, value, pattern string
	for _, m := range cd.GetAnalysis().Match {
		for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
			if v := m.Headers[name]; name == "cookie" {
				cookie = v.Exact
			} else {
				header, value, pattern = name, v.Exact, v.Regex
			}
		}
	}
	for suffix, v := range map[string]string{
		"canary-by-cookie":         cookie,
		"canary-by-header":         header,
		"canary-by-header-value":   value,
		"canary-by-header-pattern": pattern,
	} {
		if v != "" {
			out[r.annotation(suffix)] = v
		}
	}
	return out
}

// apply writes <ingress>-canary: the original's spec with the apex backends switched to
// <svc>-canary, its labels and annotations (less the canary ones), and the canary annotations that
// routing returns from the current ones (nil when the canary Ingress does not exist yet).
func (r *NginxRouter) apply(ctx context.Context, cd *flaggerv1.Canary, routing func(current map[string]string) map[string]string) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	src, err := getSourceIngress(ctx, r.client, cd)
	if err != nil {
		return err
	}
	apex, _, canary := cd.GetServiceNames()
	spec := src.Spec.DeepCopy()
	found := false
	forEachIngressPath(spec, func(_ *networkingv1.HTTPIngressRuleValue, p *networkingv1.HTTPIngressPath) {
		if p.Backend.Service != nil && p.Backend.Service.Name == apex {
			p.Backend.Service.Name = canary
			found = true
		}
	})
	if !found {
		return noIngressBackendError(src, apex, cd)
	}
	ing := newCanaryIngress(cd)
	return upsert(ctx, r.client, r.owner, cd, ing, func(existing bool) error {
		var current map[string]string
		if existing {
			current = ing.Annotations
		}
		annotations := copySourceMetadata(src.Annotations, r.isRoutingAnnotation)
		maps.Copy(annotations, routing(current))
		ing.Labels = copySourceMetadata(src.Labels, nil)
		ing.Annotations = annotations
		ing.Spec = *spec
		setGenerated(ing, cd)
		return nil
	})
}

// validateIngressRef requires spec.ingressRef, which the nginx and skipper providers copy.
func validateIngressRef(cd *flaggerv1.Canary, provider string) error {
	if cd.Spec.IngressRef == nil || cd.Spec.IngressRef.Name == "" {
		return Invalidf("canary %s: the %s provider requires spec.ingressRef", cd.Key(), provider)
	}
	return nil
}

// canaryIngressName is <ingressRef.name>-canary.
func canaryIngressName(cd *flaggerv1.Canary) string {
	return cd.Spec.IngressRef.Name + "-canary"
}

func nginxIsABTest(cd *flaggerv1.Canary) bool {
	a := cd.GetAnalysis()
	return a != nil && len(a.Match) > 0
}

// newCanaryIngress is <ingress>-canary.
func newCanaryIngress(cd *flaggerv1.Canary) *networkingv1.Ingress {
	return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: cd.Namespace, Name: canaryIngressName(cd)}}
}

// getSourceIngress reads the Ingress named by spec.ingressRef.
func getSourceIngress(ctx context.Context, c client.Client, cd *flaggerv1.Canary) (*networkingv1.Ingress, error) {
	src := &networkingv1.Ingress{}
	name := cd.Spec.IngressRef.Name
	if err := c.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, src); err != nil {
		return nil, fmt.Errorf("ingress %s.%s (spec.ingressRef of canary %s): %w", name, cd.Namespace, cd.Key(), err)
	}
	return src, nil
}

// forEachIngressPath calls fn on every HTTP path of spec's rules, in order, by reference.
func forEachIngressPath(spec *networkingv1.IngressSpec, fn func(rule *networkingv1.HTTPIngressRuleValue, path *networkingv1.HTTPIngressPath)) {
	for i := range spec.Rules {
		rule := spec.Rules[i].HTTP
		if rule == nil {
			continue
		}
		for j := range rule.Paths {
			fn(rule, &rule.Paths[j])
		}
	}
}

func noIngressBackendError(src *networkingv1.Ingress, apex string, cd *flaggerv1.Canary) error {
	return Invalidf("ingress %s.%s (spec.ingressRef of canary %s) has no path whose backend is service %s",
		src.Name, src.Namespace, cd.Key(), apex)
}

// copySourceMetadata is the labels or annotations of an object copied into a generated one, without
// the kubectl last-applied configuration, anything of Flux (toolkit.fluxcd.io, which would make
// Flux prune or revert the copy; setGenerated adds back the drift annotations) and the keys drop
// tells (nil: none).
func copySourceMetadata(m map[string]string, drop func(string) bool) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if k == kubectlLastAppliedAnnotation || strings.Contains(k, "toolkit.fluxcd.io") || (drop != nil && drop(k)) {
			continue
		}
		out[k] = v
	}
	return out
}
