package router

// What each router reads and writes, so that the controller can watch those objects: a hand edit of
// a generated object is corrected, and a canary waiting for a referenced object goes on when it
// appears, without polling.

import (
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// ObjectRef names one object a router reads or writes for a canary. Namespace is empty for a
// cluster-scoped object (Kuma's TrafficRoute).
type ObjectRef struct {
	GroupKind schema.GroupKind
	Namespace string
	Name      string
}

// Watched is implemented by routers whose objects the controller watches.
type Watched interface {
	// WatchedKinds are the kinds (at the version the router uses) of the objects it reads and writes.
	WatchedKinds() []schema.GroupVersionKind
	// WatchedObjects are the objects it reads (references such as spec.ingressRef) and writes for cd.
	// It must depend on cd's spec only; a spec the router refuses may give fewer objects.
	WatchedObjects(cd *flaggerv1.Canary) []ObjectRef
}

// Kinds of objects that are served by every Kubernetes API server (no CustomResourceDefinition).
var builtInGroups = map[string]bool{"": true, networkingv1.GroupName: true}

// IsBuiltIn reports whether a kind is served by every API server, so that it can be watched
// without waiting for a CustomResourceDefinition.
func IsBuiltIn(gvk schema.GroupVersionKind) bool { return builtInGroups[gvk.Group] }

// Kinds of the typed routers; the unstructured ones are declared with their routers.
var (
	istioVirtualServiceGVK  = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"}
	istioDestinationRuleGVK = schema.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"}
	ingressGVK              = networkingv1.SchemeGroupVersion.WithKind("Ingress")
)

func gatewayAPIKind(version, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: version, Kind: kind}
}

// inNamespace names objects of one kind in the canary's namespace.
func inNamespace(cd *flaggerv1.Canary, gvk schema.GroupVersionKind, names ...string) []ObjectRef {
	refs := make([]ObjectRef, 0, len(names))
	for _, n := range names {
		refs = append(refs, ObjectRef{GroupKind: gvk.GroupKind(), Namespace: cd.Namespace, Name: n})
	}
	return refs
}

func (r *IstioRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{istioVirtualServiceGVK, istioDestinationRuleGVK}
}

// WatchedObjects: the VirtualService <svc> and the DestinationRules <svc>-primary and <svc>-canary.
func (r *IstioRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	apex, primary, canary := cd.GetServiceNames()
	return append(inNamespace(cd, istioVirtualServiceGVK, apex), inNamespace(cd, istioDestinationRuleGVK, primary, canary)...)
}

func (r *GatewayAPIRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{gatewayAPIKind(r.version, "HTTPRoute"), gatewayAPIKind("v1", "GRPCRoute")}
}

// WatchedObjects: the HTTPRoute or GRPCRoute <svc> (the router looks at both kinds). The parent
// Gateways are not read: whether a route is accepted is in the route's own status.
func (r *GatewayAPIRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	name, _ := gwObjectMeta(cd)
	return append(inNamespace(cd, gatewayAPIKind(r.version, "HTTPRoute"), name), inNamespace(cd, gatewayAPIKind("v1", "GRPCRoute"), name)...)
}

func (r *GlooRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{glooUpstreamGVK, glooRouteTableGVK}
}

// WatchedObjects: the generated Upstreams and RouteTable, and the Upstream of spec.upstreamRef
// (which may be in another namespace).
func (r *GlooRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	primary, canary := glooUpstreamNames(cd)
	refs := append(inNamespace(cd, glooUpstreamGVK, primary, canary), inNamespace(cd, glooRouteTableGVK, cd.GetServiceName())...)
	if ref := cd.Spec.UpstreamRef; ref != nil && ref.Name != "" {
		ns := ref.Namespace
		if ns == "" {
			ns = cd.Namespace
		}
		refs = append(refs, ObjectRef{GroupKind: glooUpstreamGVK.GroupKind(), Namespace: ns, Name: ref.Name})
	}
	return refs
}

func (r *ContourRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{contourHTTPProxyGVK}
}

// WatchedObjects: the HTTPProxy <svc>.
func (r *ContourRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	return inNamespace(cd, contourHTTPProxyGVK, cd.GetServiceName())
}

func (r *TraefikRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{traefikServiceGVK}
}

// WatchedObjects: the TraefikService <svc>.
func (r *TraefikRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	return inNamespace(cd, traefikServiceGVK, cd.GetServiceName())
}

func (r *NginxRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{ingressGVK}
}

// WatchedObjects: the Ingress of spec.ingressRef and its copy <ingress>-canary.
func (r *NginxRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef { return ingressObjects(cd) }

func (r *SkipperRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{ingressGVK}
}

// WatchedObjects: the Ingress of spec.ingressRef and its copy <ingress>-canary.
func (r *SkipperRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef { return ingressObjects(cd) }

func ingressObjects(cd *flaggerv1.Canary) []ObjectRef {
	if cd.Spec.IngressRef == nil || cd.Spec.IngressRef.Name == "" {
		return nil
	}
	return inNamespace(cd, ingressGVK, cd.Spec.IngressRef.Name, canaryIngressName(cd))
}

func (r *APISIXRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{ApisixRouteGVK}
}

// WatchedObjects: the ApisixRoute of spec.routeRef and its canary copy.
func (r *APISIXRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	if cd.Spec.RouteRef == nil || cd.Spec.RouteRef.Name == "" {
		return nil
	}
	return inNamespace(cd, ApisixRouteGVK, cd.Spec.RouteRef.Name, apisixCanaryName(cd))
}

func (r *KnativeRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{KnativeServiceGVK}
}

// WatchedObjects: the Knative Service of spec.targetRef, whose traffic the router splits.
func (r *KnativeRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	return inNamespace(cd, KnativeServiceGVK, cd.Spec.TargetRef.Name)
}

func (r *SMIRouter) WatchedKinds() []schema.GroupVersionKind {
	if r.Validate(nil) != nil {
		return nil
	}
	return []schema.GroupVersionKind{r.trafficSplit(&flaggerv1.Canary{}).GroupVersionKind()}
}

// WatchedObjects: the TrafficSplit <svc>.
func (r *SMIRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	return inNamespace(cd, r.trafficSplit(cd).GroupVersionKind(), cd.GetServiceName())
}

func (r *KumaRouter) WatchedKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{kumaTrafficRouteGVK}
}

// WatchedObjects: the cluster-scoped TrafficRoute <svc>.
func (r *KumaRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	return []ObjectRef{{GroupKind: kumaTrafficRouteGVK.GroupKind(), Name: cd.GetServiceName()}}
}

// WatchedKinds of provider appmesh (v1beta1) is empty: that router refuses every canary.
func (r *AppMeshRouter) WatchedKinds() []schema.GroupVersionKind {
	if r.unsupported != "" {
		return nil
	}
	return []schema.GroupVersionKind{appMeshVirtualNodeGVK, appMeshVirtualRouterGVK, appMeshVirtualServiceGVK}
}

// WatchedObjects: the VirtualNodes <svc>-primary and <svc>-canary, the VirtualRouters and
// VirtualServices <svc> and <svc>-canary.
func (r *AppMeshRouter) WatchedObjects(cd *flaggerv1.Canary) []ObjectRef {
	if r.unsupported != "" {
		return nil
	}
	apex, primary, canary := cd.GetServiceNames()
	refs := inNamespace(cd, appMeshVirtualNodeGVK, primary, canary)
	refs = append(refs, inNamespace(cd, appMeshVirtualRouterGVK, apex, canary)...)
	return append(refs, inNamespace(cd, appMeshVirtualServiceGVK, apex, canary)...)
}

// WatchedKinds lists, without repeats and sorted, the kinds the registry's routers read and write:
// mesh are those of the routers that work on the service mesh's cluster (-kubeconfig-service-mesh),
// kube those of the routers that work on the cluster of the workloads (Ingresses, Knative Services).
func (r Registry) WatchedKinds() (kube, mesh []schema.GroupVersionKind) {
	for _, rt := range r {
		w, ok := rt.(Watched)
		if !ok {
			continue
		}
		if OnMeshCluster(rt) {
			mesh = append(mesh, w.WatchedKinds()...)
		} else {
			kube = append(kube, w.WatchedKinds()...)
		}
	}
	return sortedKinds(kube), sortedKinds(mesh)
}

// OnMeshCluster reports whether a router works on the service mesh's cluster, as Flagger's routers
// of a provider do: all but the Ingress (nginx, skipper) and Knative routers, and kubernetes's,
// which writes nothing.
func OnMeshCluster(rt Interface) bool {
	switch rt.(type) {
	case *NginxRouter, *SkipperRouter, *KnativeRouter, Nop:
		return false
	}
	return true
}

func sortedKinds(kinds []schema.GroupVersionKind) []schema.GroupVersionKind {
	slices.SortFunc(kinds, func(a, b schema.GroupVersionKind) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(kinds)
}

var (
	_ Watched = (*IstioRouter)(nil)
	_ Watched = (*GatewayAPIRouter)(nil)
	_ Watched = (*GlooRouter)(nil)
	_ Watched = (*ContourRouter)(nil)
	_ Watched = (*TraefikRouter)(nil)
	_ Watched = (*NginxRouter)(nil)
	_ Watched = (*SkipperRouter)(nil)
	_ Watched = (*APISIXRouter)(nil)
	_ Watched = (*KnativeRouter)(nil)
	_ Watched = (*SMIRouter)(nil)
	_ Watched = (*KumaRouter)(nil)
	_ Watched = (*AppMeshRouter)(nil)
)
