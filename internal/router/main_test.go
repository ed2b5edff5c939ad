package router

import (
	"context"
	"os"
	"testing"

	istioscheme "istio.io/client-go/pkg/clientset/versioned/scheme"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

// The router tests run against a real API server with the providers' real CRDs: Istio's and the
// Gateway API's from their Go modules, the others from the upstream copies in test/crds.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m,
		testenv.WithModuleCRDs("istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml"),
		testenv.WithModuleCRDs("sigs.k8s.io/gateway-api",
			"config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
			"config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
			"config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml"),
		testenv.WithFixtureCRDs("gloo.yaml", "contour.yaml", "traefik.yaml", "kuma.yaml", "smi-linkerd.yaml",
			"apisix.yaml", "appmesh.yaml", "knative.yaml"),
	))
}

// routerEnv is a test's namespace on the API server and a client that knows the routing types.
type routerEnv struct {
	env *testenv.Env
	ns  string
	c   client.Client
}

func newRouterEnv(t *testing.T) *routerEnv {
	t.Helper()
	env := testenv.Start(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, flaggerv1.AddToScheme, istioscheme.AddToScheme,
		gatewayv1.Install, gatewayv1beta1.Install,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return &routerEnv{env: env, ns: env.NewNamespace(t), c: c}
}

// createCanary stores the canary in the test namespace, so that it has the UID owner references need.
func (e *routerEnv) createCanary(t *testing.T, cd *flaggerv1.Canary) *flaggerv1.Canary {
	t.Helper()
	cd = cd.DeepCopy()
	cd.Namespace = e.ns
	if err := e.c.Create(context.Background(), cd); err != nil {
		t.Fatalf("creating canary: %v", err)
	}
	return cd
}

// testCanary is podinfo in the test namespace with the given provider, a weighted analysis and
// service port 9898.
func testCanary(provider string) *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: flaggerv1.CanarySpec{
			Provider:  provider,
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1.CanaryService{Port: 9898},
			Analysis:  &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 2, StepWeight: 10, MaxWeight: 50},
		},
	}
}
