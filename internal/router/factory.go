package router

import (
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Registry maps provider names (spec.provider, -mesh-provider) to their routers.
type Registry map[string]Interface

// NewRegistry returns the routers of every provider Pennant supports, reading through c (the
// manager's cache). selector is the target's selector label: App Mesh's VirtualNodes, Gloo's
// Upstreams and the labels of the routing objects use it.
func NewRegistry(c client.Client, o Options, selector SelectorFunc) Registry {
	return NewRegistryOn(c, c, o, selector)
}

// NewRegistryOn is NewRegistry with the service mesh's objects on another cluster
// (-kubeconfig-service-mesh): the routers for which OnMeshCluster holds use mesh, the Ingress and
// Knative routers kube, as Flagger's do.
func NewRegistryOn(kube, mesh client.Client, o Options, selector SelectorFunc) Registry {
	o.Selector = selector
	return Registry{
		"kubernetes":         Nop{},
		"istio":              NewIstio(mesh, o),
		"gatewayapi:v1":      NewGatewayAPI(mesh, o, "v1"),
		"gatewayapi:v1beta1": NewGatewayAPI(mesh, o, "v1beta1"),
		"gloo":               NewGloo(mesh, o),
		"contour":            NewContour(mesh, o),
		"traefik":            NewTraefik(mesh, o),
		"nginx":              NewNginx(kube, o),
		"skipper":            NewSkipper(kube, o),
		"apisix":             NewAPISIX(mesh, o),
		"knative":            NewKnative(kube, o),
		"linkerd":            NewSMI(mesh, o, SMIv1alpha1),
		"osm":                NewSMI(mesh, o, SMIv1alpha2),
		"smi:v1alpha1":       NewSMI(mesh, o, SMIv1alpha1),
		"smi:v1alpha2":       NewSMI(mesh, o, SMIv1alpha2),
		"smi:v1alpha3":       NewSMI(mesh, o, SMIv1alpha3),
		"kuma":               NewKuma(mesh, o),
		"appmesh":            NewAppMeshV1beta1(mesh, o),
		"appmesh:v1beta2":    NewAppMeshV1beta2(mesh, o).WithSelector(selector),
	}
}

// For returns the router of a provider. Flagger's longer spellings are understood:
// "smi:v1alpha2:<mesh>" (the mesh suffix is ignored) and names starting with "gloo". An unknown
// provider is an InvalidSpecError naming the ones that exist (Flagger silently falls back to Istio).
func (r Registry) For(provider string) (Interface, error) {
	if rt, ok := r[provider]; ok {
		return rt, nil
	}
	if rest, ok := strings.CutPrefix(provider, "smi:"); ok {
		version, _, _ := strings.Cut(rest, ":")
		if rt, ok := r["smi:"+version]; ok {
			return rt, nil
		}
	}
	if strings.HasPrefix(provider, "gloo") {
		if rt, ok := r["gloo"]; ok {
			return rt, nil
		}
	}
	return nil, Invalidf("provider %q is not supported (supported: %s)", provider, strings.Join(slices.Sorted(maps.Keys(r)), ", "))
}
