package router

import (
	istioscheme "istio.io/client-go/pkg/clientset/versioned/scheme"
	"k8s.io/apimachinery/pkg/runtime"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

// AddToScheme registers the typed routing kinds (Istio, Gateway API); the other providers' objects
// are handled as unstructured.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{istioscheme.AddToScheme, gatewayv1.Install, gatewayv1beta1.Install} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}
