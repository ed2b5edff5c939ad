package router

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestUpstreamCRDsServeTheRoutingKinds checks that every provider's real CRD is installed and
// serves the version its router writes.
func TestUpstreamCRDsServeTheRoutingKinds(t *testing.T) {
	e := newRouterEnv(t)
	for _, gvk := range []schema.GroupVersionKind{
		{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
		{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"},
		{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"},
		{Group: "gateway.networking.k8s.io", Version: "v1beta1", Kind: "HTTPRoute"},
		{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "GRPCRoute"},
		{Group: "gloo.solo.io", Version: "v1", Kind: "Upstream"},
		{Group: "gateway.solo.io", Version: "v1", Kind: "RouteTable"},
		{Group: "projectcontour.io", Version: "v1", Kind: "HTTPProxy"},
		{Group: "traefik.io", Version: "v1alpha1", Kind: "TraefikService"},
		{Group: "kuma.io", Version: "v1alpha1", Kind: "TrafficRoute"},
		{Group: "split.smi-spec.io", Version: "v1alpha1", Kind: "TrafficSplit"},
		{Group: "split.smi-spec.io", Version: "v1alpha2", Kind: "TrafficSplit"},
		{Group: "apisix.apache.org", Version: "v2", Kind: "ApisixRoute"},
		{Group: "appmesh.k8s.aws", Version: "v1beta2", Kind: "VirtualRouter"},
		{Group: "serving.knative.dev", Version: "v1", Kind: "Service"},
	} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := e.c.List(context.Background(), list, client.InNamespace(e.ns)); err != nil {
			t.Errorf("%s is not served: %v", gvk, err)
		}
	}
}
