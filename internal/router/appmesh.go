package router

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// App Mesh gateway annotations set on the apex VirtualService when spec.service.hosts is set.
const (
	AppMeshGatewayExposeAnnotation  = "gateway.appmesh.k8s.aws/expose"
	AppMeshGatewayDomainAnnotation  = "gateway.appmesh.k8s.aws/domain"
	AppMeshGatewayTimeoutAnnotation = "gateway.appmesh.k8s.aws/timeout"
	AppMeshGatewayRetriesAnnotation = "gateway.appmesh.k8s.aws/retries"
)

const (
	appMeshGroup = "appmesh.k8s.aws"
	// appMeshDefaultSelectorLabel is the pod label of the VirtualNodes' podSelector when the router has
	// no SelectorFunc (Flagger's first -selector-labels default).
	appMeshDefaultSelectorLabel = "app"
)

var (
	appMeshVirtualNodeGVK    = schema.GroupVersionKind{Group: appMeshGroup, Version: "v1beta2", Kind: "VirtualNode"}
	appMeshVirtualRouterGVK  = schema.GroupVersionKind{Group: appMeshGroup, Version: "v1beta2", Kind: "VirtualRouter"}
	appMeshVirtualServiceGVK = schema.GroupVersionKind{Group: appMeshGroup, Version: "v1beta2", Kind: "VirtualService"}
	// appMeshRetryEvents are the HTTP retry events of an App Mesh route (httpRetryEvents enum).
	appMeshRetryEvents = []string{"server-error", "gateway-error", "client-error", "stream-error"}
)

// AppMeshRouter routes with AWS App Mesh (appmesh.k8s.aws/v1beta2), provider appmesh:v1beta2:
//
//   - VirtualNodes <svc>-primary and <svc>-canary: one listener (port = service.targetPort when it is a
//     number, else service.port; protocol grpc when service.portName contains "grpc", else http;
//     per-request timeout from service.timeout), DNS service discovery
//     <svc>-primary.<ns>.svc.cluster.local. / <svc>-canary.<ns>.svc.cluster.local., a podSelector on the
//     primary's / target's pods and spec.service.backends as backends (an "arn:aws..." backend is a
//     VirtualService ARN, anything else a VirtualService name).
//   - VirtualRouter <svc>: one http route <svc> (prefix = service.match[0].uri.prefix or "/", timeout,
//     retry policy from service.retries) with the weighted targets <svc>-canary and <svc>-primary.
//     A/B (analysis.match): route <svc>-a (priority 10) matching the analysis headers with the weighted
//     targets, and route <svc>-b (priority 20) sending the rest to <svc>-primary.
//   - VirtualRouter <svc>-canary: route <svc>-canary, 100% to <svc>-canary, for the canary's own DNS name.
//   - VirtualServices <svc> and <svc>-canary, provided by the VirtualRouter of the same name; the apex
//     one carries the App Mesh gateway annotations when service.hosts is set.
//
// The awsName and meshRef the App Mesh webhook sets are kept. Canary, A/B (headers only) and
// blue/green are supported; mirroring and session affinity are not.
//
// NewAppMeshV1beta1 is the router of provider appmesh (App Mesh v1beta1), which cannot work: see there.
type AppMeshRouter struct {
	client   client.Client
	owner    string
	selector SelectorFunc
	// unsupported, when set, is returned as an InvalidSpecError by every call but Finalize.
	unsupported string
}

var (
	_ Interface = (*AppMeshRouter)(nil)
	_ Validator = (*AppMeshRouter)(nil)
)

// NewAppMeshV1beta2 returns the App Mesh router of provider appmesh:v1beta2. Give it the workload
// selector with WithSelector; without one the VirtualNodes select pods by app=<target>-primary and
// app=<target>, as Flagger does for a target selected by app.
func NewAppMeshV1beta2(c client.Client, o Options) *AppMeshRouter {
	return &AppMeshRouter{client: c, owner: o.FieldOwner}
}

// NewAppMeshV1beta1 returns the router of provider appmesh, which generated App Mesh v1beta1 objects
// (appmesh.k8s.aws/v1beta1 Mesh, VirtualNode and VirtualService with spec.service.meshName). No
// CustomResourceDefinition for v1beta1 exists upstream any more (the App Mesh controller serves
// v1beta2 only), so the router refuses every canary with an InvalidSpecError that points to
// appmesh:v1beta2; Finalize succeeds, as there is nothing to revert.
func NewAppMeshV1beta1(c client.Client, o Options) *AppMeshRouter {
	return &AppMeshRouter{client: c, owner: o.FieldOwner, unsupported: `provider "appmesh" generates App Mesh ` +
		`v1beta1 objects (appmesh.k8s.aws/v1beta1), for which no CustomResourceDefinition exists upstream ` +
		`(the App Mesh controller serves appmesh.k8s.aws/v1beta2 only): use provider "appmesh:v1beta2"`}
}

// WithSelector sets the function that reports the target's selector label and value (usually
// workload.Factory.Selector): the VirtualNodes select <label>: <value>-primary and <label>: <value>.
func (r *AppMeshRouter) WithSelector(s SelectorFunc) *AppMeshRouter {
	r.selector = s
	return r
}

// Validate rejects what App Mesh cannot route, before anything is written: provider appmesh
// (v1beta1), A/B matches without any header, header matches App Mesh refuses (name of 1-50
// characters, values up to 255) and retry events other than App Mesh's HTTP ones.
func (r *AppMeshRouter) Validate(cd *flaggerv1.Canary) error {
	if r.unsupported != "" {
		return Invalidf("%s", r.unsupported)
	}
	if a := cd.GetAnalysis(); a != nil && len(a.Match) > 0 {
		headers := 0
		for _, m := range a.Match {
			for name, v := range m.Headers {
				headers++
				if len(name) == 0 || len(name) > 50 {
					return Invalidf("analysis.match header %q: App Mesh header names have 1 to 50 characters", name)
				}
				for _, s := range []string{v.Exact, v.Prefix, v.Suffix, v.Regex} {
					if len(s) > 255 {
						return Invalidf("analysis.match header %q: App Mesh header match values have at most 255 characters", name)
					}
				}
			}
		}
		if headers == 0 {
			return Invalidf("analysis.match has no header match: App Mesh A/B testing routes on headers only")
		}
	}
	if rt := cd.Spec.Service.Retries; rt != nil && rt.RetryOn != "" {
		for _, e := range strings.Split(rt.RetryOn, ",") {
			if !slices.Contains(appMeshRetryEvents, e) {
				return Invalidf("service.retries.retryOn %q: App Mesh retries on %s only", e, strings.Join(appMeshRetryEvents, ", "))
			}
		}
	}
	return nil
}

func appMeshObject(gvk schema.GroupVersionKind, cd *flaggerv1.Canary, name string) *unstructured.Unstructured {
	return meshObject(gvk, cd.Namespace, name)
}

// Reconcile creates or updates the VirtualNodes, VirtualRouters and VirtualServices, keeping the
// weights of the routers' first routes. Nothing is written when one of the objects is controlled by
// something else.
func (r *AppMeshRouter) Reconcile(ctx context.Context, cd *flaggerv1.Canary) error {
	if err := r.Validate(cd); err != nil {
		return err
	}
	label, value, err := r.podSelector(ctx, cd)
	if err != nil {
		return err
	}
	apex, primary, canary := cd.GetServiceNames()
	objects := []struct {
		obj    *unstructured.Unstructured
		mutate func(u *unstructured.Unstructured, existing bool) error
	}{
		{appMeshObject(appMeshVirtualNodeGVK, cd, primary), r.virtualNode(cd, primary, map[string]any{label: value + "-primary"})},
		{appMeshObject(appMeshVirtualNodeGVK, cd, canary), r.virtualNode(cd, canary, map[string]any{label: value})},
		{appMeshObject(appMeshVirtualRouterGVK, cd, apex), r.virtualRouter(cd, apex, 0)},
		{appMeshObject(appMeshVirtualServiceGVK, cd, apex), r.virtualService(cd, apex)},
		{appMeshObject(appMeshVirtualRouterGVK, cd, canary), r.virtualRouter(cd, canary, 100)},
		{appMeshObject(appMeshVirtualServiceGVK, cd, canary), r.virtualService(cd, canary)},
	}
	all := make([]*unstructured.Unstructured, len(objects))
	for i, o := range objects {
		all[i] = o.obj
	}
	if err := meshCheckNotForeign(ctx, r.client, cd, all...); err != nil {
		return err
	}
	for _, o := range objects {
		if err := upsert(ctx, r.client, r.owner, cd, o.obj, func(existing bool) error {
			meshStampGenerated(o.obj, cd)
			return o.mutate(o.obj, existing)
		}); err != nil {
			return err
		}
	}
	return nil
}

// podSelector is the label and value of the target's pods.
func (r *AppMeshRouter) podSelector(ctx context.Context, cd *flaggerv1.Canary) (label, value string, err error) {
	if r.selector == nil {
		return appMeshDefaultSelectorLabel, cd.Spec.TargetRef.Name, nil
	}
	label, value, _, err = r.selector(ctx, cd)
	return label, value, err
}

// virtualNode sets the spec of the VirtualNode name selecting the pods by matchLabels.
func (r *AppMeshRouter) virtualNode(cd *flaggerv1.Canary, name string, matchLabels map[string]any) func(*unstructured.Unstructured, bool) error {
	return func(vn *unstructured.Unstructured, _ bool) error {
		listener := map[string]any{"portMapping": appMeshPortMapping(cd)}
		if t := appMeshTimeout(cd); t != nil {
			listener["timeout"] = map[string]any{"http": map[string]any{"perRequest": t}}
		}
		spec := appMeshSpec(vn)
		spec["listeners"] = []any{listener}
		spec["serviceDiscovery"] = map[string]any{"dns": map[string]any{
			"hostname": fmt.Sprintf("%s.%s.svc.cluster.local.", name, cd.Namespace),
		}}
		spec["podSelector"] = map[string]any{"matchLabels": matchLabels}
		if backends := appMeshBackends(cd); len(backends) > 0 {
			spec["backends"] = backends
		} else {
			delete(spec, "backends")
		}
		vn.Object["spec"] = spec
		return nil
	}
}

// virtualRouter sets the spec of the VirtualRouter name whose first route sends canaryWeight percent
// to the canary (0 for the apex router, which is also the A/B one; 100 for <svc>-canary). The
// weighted targets of an existing first route are kept.
func (r *AppMeshRouter) virtualRouter(cd *flaggerv1.Canary, name string, canaryWeight int) func(*unstructured.Unstructured, bool) error {
	return func(vr *unstructured.Unstructured, existing bool) error {
		apex, primary, canary := cd.GetServiceNames()
		var keep map[string]any
		if existing {
			keep = appMeshKeptAction(vr, primary, canary)
		}
		prefix := "/"
		if m := cd.Spec.Service.Match; len(m) > 0 && m[0].URI != nil && m[0].URI.Prefix != "" {
			prefix = m[0].URI.Prefix
		}
		route := func(name string, priority int64, match map[string]any, targets []any) map[string]any {
			http := map[string]any{
				"match":  match,
				"action": map[string]any{"weightedTargets": targets},
			}
			if t := appMeshTimeout(cd); t != nil {
				http["timeout"] = map[string]any{"perRequest": t}
			}
			if rp := appMeshRetryPolicy(cd); rp != nil {
				http["retryPolicy"] = rp
			}
			out := map[string]any{"name": name, "httpRoute": http}
			if priority > 0 {
				out["priority"] = priority
			}
			return out
		}
		targets := appMeshTargets(primary, canary, 100-canaryWeight, canaryWeight)
		routes := []any{route(name, 0, map[string]any{"prefix": prefix}, targets)}
		if a := cd.GetAnalysis(); a != nil && len(a.Match) > 0 && canaryWeight == 0 {
			routes = []any{
				route(apex+"-a", 10, map[string]any{"prefix": prefix, "headers": appMeshHeaders(a.Match)}, targets),
				route(apex+"-b", 20, map[string]any{"prefix": prefix}, []any{
					map[string]any{"virtualNodeRef": map[string]any{"name": primary}, "weight": int64(100)},
				}),
			}
		}
		if keep != nil {
			routes[0].(map[string]any)["httpRoute"].(map[string]any)["action"] = keep
		}
		spec := appMeshSpec(vr)
		spec["listeners"] = []any{map[string]any{"portMapping": appMeshPortMapping(cd)}}
		spec["routes"] = routes
		vr.Object["spec"] = spec
		return nil
	}
}

// virtualService sets the spec of the VirtualService name, provided by the VirtualRouter name, and
// the gateway annotations of the apex one.
func (r *AppMeshRouter) virtualService(cd *flaggerv1.Canary, name string) func(*unstructured.Unstructured, bool) error {
	return func(vs *unstructured.Unstructured, _ bool) error {
		if name == cd.GetServiceName() {
			gateway := appMeshGatewayAnnotations(cd)
			annotations := vs.GetAnnotations()
			for _, k := range []string{AppMeshGatewayExposeAnnotation, AppMeshGatewayDomainAnnotation,
				AppMeshGatewayTimeoutAnnotation, AppMeshGatewayRetriesAnnotation} {
				_, fromApex := appMeshApexAnnotation(cd, k)
				if _, ok := gateway[k]; !ok && !fromApex {
					delete(annotations, k)
				}
			}
			vs.SetAnnotations(merge(annotations, gateway))
		}
		spec := appMeshSpec(vs)
		spec["provider"] = map[string]any{"virtualRouter": map[string]any{"virtualRouterRef": map[string]any{"name": name}}}
		vs.Object["spec"] = spec
		return nil
	}
}

func appMeshApexAnnotation(cd *flaggerv1.Canary, key string) (string, bool) {
	if cd.Spec.Service.Apex == nil {
		return "", false
	}
	v, ok := cd.Spec.Service.Apex.Annotations[key]
	return v, ok
}

// SetRoutes writes the weighted targets of the apex VirtualRouter's first route (the matched route
// <svc>-a for A/B) when they differ from the current ones. mirrored is ignored: App Mesh has no
// mirroring.
func (r *AppMeshRouter) SetRoutes(ctx context.Context, cd *flaggerv1.Canary, primaryWeight, canaryWeight int, _ bool) error {
	if r.unsupported != "" {
		return Invalidf("%s", r.unsupported)
	}
	apex, primary, canary := cd.GetServiceNames()
	vr := appMeshObject(appMeshVirtualRouterGVK, cd, apex)
	return upsert(ctx, r.client, r.owner, cd, vr, func(existing bool) error {
		if !existing {
			return fmt.Errorf("VirtualRouter %s.%s not found: Reconcile creates it", apex, cd.Namespace)
		}
		routes, _, _ := unstructured.NestedSlice(vr.Object, "spec", "routes")
		if len(routes) == 0 {
			return fmt.Errorf("VirtualRouter %s.%s has no routes", apex, cd.Namespace)
		}
		first, _ := routes[0].(map[string]any)
		http, _ := first["httpRoute"].(map[string]any)
		if http == nil {
			return fmt.Errorf("VirtualRouter %s.%s: the first route is not an HTTP route", apex, cd.Namespace)
		}
		http["action"] = map[string]any{"weightedTargets": appMeshTargets(primary, canary, primaryWeight, canaryWeight)}
		return unstructured.SetNestedSlice(vr.Object, routes, "spec", "routes")
	})
}

// GetRoutes reads the weights of the apex VirtualRouter's first route.
func (r *AppMeshRouter) GetRoutes(ctx context.Context, cd *flaggerv1.Canary) (primaryWeight, canaryWeight int, mirrored bool, err error) {
	if r.unsupported != "" {
		return 0, 0, false, Invalidf("%s", r.unsupported)
	}
	apex, primary, canary := cd.GetServiceNames()
	vr := appMeshObject(appMeshVirtualRouterGVK, cd, apex)
	if err := r.client.Get(ctx, client.ObjectKeyFromObject(vr), vr); err != nil {
		return 0, 0, false, fmt.Errorf("VirtualRouter %s.%s: %w", apex, cd.Namespace, err)
	}
	targets := appMeshFirstTargets(vr)
	if len(targets) != 2 {
		return 0, 0, false, fmt.Errorf("VirtualRouter %s.%s: routes not found", apex, cd.Namespace)
	}
	for _, t := range targets {
		switch t.node {
		case primary:
			primaryWeight = t.weight
		case canary:
			canaryWeight = t.weight
		}
	}
	if primaryWeight == 0 && canaryWeight == 0 {
		return 0, 0, false, fmt.Errorf("VirtualRouter %s.%s does not contain routes for %s and %s", apex, cd.Namespace, primary, canary)
	}
	return primaryWeight, canaryWeight, false, nil
}

// Finalize does nothing, as in Flagger: the objects are garbage collected with the Canary.
func (r *AppMeshRouter) Finalize(context.Context, *flaggerv1.Canary) error { return nil }

// appMeshSpec is the object's spec to change in place (a fresh map for a new object).
func appMeshSpec(u *unstructured.Unstructured) map[string]any {
	spec, ok := u.Object["spec"].(map[string]any)
	if !ok {
		spec = map[string]any{}
	}
	return spec
}

func appMeshPortMapping(cd *flaggerv1.Canary) map[string]any {
	port := cd.Spec.Service.Port
	if cd.Spec.Service.TargetPort.IntVal > 0 {
		port = cd.Spec.Service.TargetPort.IntVal
	}
	protocol := "http"
	if strings.Contains(cd.Spec.Service.PortName, "grpc") {
		protocol = "grpc"
	}
	return map[string]any{"port": int64(port), "protocol": protocol}
}

// appMeshTimeout is service.timeout as an App Mesh duration in milliseconds, nil when unset or unparsable.
func appMeshTimeout(cd *flaggerv1.Canary) map[string]any {
	if cd.Spec.Service.Timeout == "" {
		return nil
	}
	d, err := time.ParseDuration(cd.Spec.Service.Timeout)
	if err != nil {
		return nil
	}
	return map[string]any{"unit": "ms", "value": d.Milliseconds()}
}

// appMeshRetryPolicy is service.retries as an App Mesh retry policy: attempts (default 1),
// perTryTimeout (default 250ms) and retryOn split on commas (default gateway-error).
func appMeshRetryPolicy(cd *flaggerv1.Canary) map[string]any {
	rt := cd.Spec.Service.Retries
	if rt == nil {
		return nil
	}
	timeout := int64(250)
	if d, err := time.ParseDuration(rt.PerTryTimeout); err == nil {
		timeout = d.Milliseconds()
	}
	attempts := int64(1)
	if rt.Attempts > 0 {
		attempts = int64(rt.Attempts)
	}
	events := []any{"gateway-error"}
	if rt.RetryOn != "" {
		events = nil
		for _, e := range strings.Split(rt.RetryOn, ",") {
			events = append(events, e)
		}
	}
	return map[string]any{
		"maxRetries":      attempts,
		"perRetryTimeout": map[string]any{"unit": "ms", "value": timeout},
		"httpRetryEvents": events,
	}
}

// appMeshBackends is spec.service.backends as VirtualNode backends.
func appMeshBackends(cd *flaggerv1.Canary) []any {
	var out []any
	for _, b := range cd.Spec.Service.Backends {
		vs := map[string]any{"virtualServiceRef": map[string]any{"name": b}}
		if strings.HasPrefix(b, "arn:aws") {
			vs = map[string]any{"virtualServiceARN": b}
		}
		out = append(out, map[string]any{"virtualService": vs})
	}
	return out
}

// appMeshHeaders is the header match of the A/B route: the headers of every analysis match, each
// match's headers in name order.
func appMeshHeaders(matches []flaggerv1.ABMatch) []any {
	var out []any
	for _, m := range matches {
		names := make([]string, 0, len(m.Headers))
		for name := range m.Headers {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			v := m.Headers[name]
			match := map[string]any{}
			for k, s := range map[string]string{"exact": v.Exact, "prefix": v.Prefix, "suffix": v.Suffix, "regex": v.Regex} {
				if s != "" {
					match[k] = s
				}
			}
			out = append(out, map[string]any{"name": name, "match": match})
		}
	}
	return out
}

func appMeshTargets(primary, canary string, primaryWeight, canaryWeight int) []any {
	return []any{
		map[string]any{"virtualNodeRef": map[string]any{"name": canary}, "weight": int64(canaryWeight)},
		map[string]any{"virtualNodeRef": map[string]any{"name": primary}, "weight": int64(primaryWeight)},
	}
}

type appMeshTarget struct {
	node   string
	weight int
}

// appMeshFirstTargets reads the weighted targets of the router's first HTTP route.
func appMeshFirstTargets(vr *unstructured.Unstructured) []appMeshTarget {
	routes, _, _ := unstructured.NestedSlice(vr.Object, "spec", "routes")
	if len(routes) == 0 {
		return nil
	}
	first, _ := routes[0].(map[string]any)
	targets, _, _ := unstructured.NestedSlice(first, "httpRoute", "action", "weightedTargets")
	var out []appMeshTarget
	for _, t := range targets {
		m, _ := t.(map[string]any)
		node, _, _ := unstructured.NestedString(m, "virtualNodeRef", "name")
		w, _ := meshInt(m["weight"])
		out = append(out, appMeshTarget{node: node, weight: w})
	}
	return out
}

// appMeshKeptAction is the action of the router's first route when it weighs exactly the primary
// and the canary, to be kept by Reconcile; nil otherwise.
func appMeshKeptAction(vr *unstructured.Unstructured, primary, canary string) map[string]any {
	targets := appMeshFirstTargets(vr)
	if len(targets) != 2 {
		return nil
	}
	nodes := []string{targets[0].node, targets[1].node}
	if !slices.Contains(nodes, primary) || !slices.Contains(nodes, canary) {
		return nil
	}
	var primaryWeight, canaryWeight int
	for _, t := range targets {
		if t.node == primary {
			primaryWeight = t.weight
		} else {
			canaryWeight = t.weight
		}
	}
	return map[string]any{"weightedTargets": appMeshTargets(primary, canary, primaryWeight, canaryWeight)}
}

// appMeshGatewayAnnotations are the App Mesh gateway annotations of the apex VirtualService: set when
// service.hosts is, with the hosts joined by commas (each followed by one, as Flagger writes them).
func appMeshGatewayAnnotations(cd *flaggerv1.Canary) map[string]string {
	out := map[string]string{}
	if len(cd.Spec.Service.Hosts) == 0 {
		return out
	}
	out[AppMeshGatewayExposeAnnotation] = "true"
	out[AppMeshGatewayDomainAnnotation] = strings.Join(cd.Spec.Service.Hosts, ",") + ","
	if cd.Spec.Service.Timeout != "" {
		out[AppMeshGatewayTimeoutAnnotation] = cd.Spec.Service.Timeout
	}
	if rt := cd.Spec.Service.Retries; rt != nil && rt.Attempts > 0 {
		out[AppMeshGatewayRetriesAnnotation] = strconv.Itoa(int(rt.Attempts))
	}
	return out
}
