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
// manager's cache). selector gives App Mesh the target's selector label.
func NewRegistry(c client.Client, o Options, selector SelectorFunc) Registry {
	return Registry{
		"kubernetes":         Nop{},
		"istio":              NewIstio(c, o),
		"gatewayapi:v1":      NewGatewayAPI(c, o, "v1"),
		"gatewayapi:v1beta1": NewGatewayAPI(c, o, "v1beta1"),
		"gloo":               NewGloo(c, o),
		"contour":            NewContour(c, o),
		"traefik":            NewTraefik(c, o),
		"nginx":              NewNginx(c, o),
		"skipper":            NewSkipper(c, o),
		"apisix":             NewAPISIX(c, o),
		"knative":            NewKnative(c, o),
		"linkerd":            NewSMI(c, o, SMIv1alpha1),
		"osm":                NewSMI(c, o, SMIv1alpha2),
		"smi:v1alpha1":       NewSMI(c, o, SMIv1alpha1),
		"smi:v1alpha2":       NewSMI(c, o, SMIv1alpha2),
		"smi:v1alpha3":       NewSMI(c, o, SMIv1alpha3),
		"kuma":               NewKuma(c, o),
		"appmesh":            NewAppMeshV1beta1(c, o),
		"appmesh:v1beta2":    NewAppMeshV1beta2(c, o).WithSelector(selector),
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
