package harness

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Options says where the stack's pieces are. Binaries are built by the caller (hack/e2e.sh, hack/demo.sh
// and the e2e test build them before or after entering the network namespace).
type Options struct {
	// Dir holds the logs, configurations and Prometheus' data.
	Dir string
	// Kubeconfig is the local control plane's (admin) kubeconfig.
	Kubeconfig string
	// Root is the repository's root (CRDs under config/crd/bases and test/crds).
	Root string
	// GatewayAPICRDs is the Gateway API's standard CRD directory (the sigs.k8s.io/gateway-api module's
	// config/crd/standard).
	GatewayAPICRDs string
	// Pennant, Pods, Traefik and Prometheus are the binaries.
	Pennant, Pods, Traefik, Prometheus string
	// PodNamespaces are the namespaces whose pods get a real process each; empty: all.
	PodNamespaces []string
	// PennantArgs are added to the controller's flags.
	PennantArgs []string
	// Logf reports progress; nil: silent.
	Logf func(format string, args ...any)
}

// Stack is the running stack.
type Stack struct {
	opts   Options
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme

	// Web is Traefik's entry point (host:port) for the applications; GatewayPort its port, the
	// Gateway's listener port.
	Web string
	// Admin serves Traefik's /ping and /metrics.
	Admin string
	// PrometheusURL is the Prometheus that pennant reads.
	PrometheusURL string

	Traefik, Prometheus *Process
	Pods                []*Process
	pennantArgs         []string
	pennantMu           sync.Mutex
	pennant             *Process // nil while killed (KillPennant)
	// background runs the harness' own watches until Down.
	background context.Context
	stopWatch  context.CancelFunc
}

// Up installs the CRDs, Traefik's access and Gateway, and starts Traefik, the pod supervisors,
// Prometheus and pennant. On error, what was started is stopped again.
func Up(ctx context.Context, o Options) (s *Stack, err error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	// The harness' own watches log nothing worth reading (their errors end in a failed wait).
	ctrllog.SetLogger(logr.Discard())
	s = &Stack{opts: o}
	s.background, s.stopWatch = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			s.Down()
			s = nil
		}
	}()
	// Absolute: Prometheus reads the file_sd path of its configuration relative to that file.
	if o.Dir, err = filepath.Abs(o.Dir); err != nil {
		return nil, err
	}
	s.opts.Dir = o.Dir
	if err = os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if err = s.connect(); err != nil {
		return nil, err
	}
	o.Logf("installing the flagger.app, traefik.io and Gateway API CRDs")
	if _, err = envtest.InstallCRDs(s.Config, envtest.CRDInstallOptions{
		Paths: []string{
			filepath.Join(o.Root, "config", "crd", "bases"), filepath.Join(o.Root, "test", "crds", "traefik.yaml"),
			o.GatewayAPICRDs,
		},
		ErrorIfPathMissing: true,
	}); err != nil {
		return nil, fmt.Errorf("installing CRDs: %w", err)
	}
	if s.Web, err = freeAddr(); err != nil {
		return nil, err
	}
	if s.Admin, err = freeAddr(); err != nil {
		return nil, err
	}
	steps := []struct {
		what string
		run  func(context.Context) error
	}{
		{"Traefik (Kubernetes CRD and Gateway API providers)", s.startTraefik},
		{"one process per pod (test/traffic/cmd/pods)", s.startPods},
		{"Prometheus (scraping Traefik and the pods)", s.startPrometheus},
		{"pennant", func(ctx context.Context) error { return s.StartPennant(ctx) }},
	}
	for _, step := range steps {
		o.Logf("starting %s", step.what)
		if err = step.run(ctx); err != nil {
			return nil, fmt.Errorf("starting %s: %w", step.what, err)
		}
	}
	return s, nil
}

func (s *Stack) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.opts.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 200, 400
	s.Config = cfg
	s.Scheme = runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, flaggerv1.AddToScheme, gatewayv1.Install} {
		if err := add(s.Scheme); err != nil {
			return err
		}
	}
	s.Client, err = client.New(cfg, client.Options{Scheme: s.Scheme})
	return err
}

// Down stops everything Up started, pennant first (no route is written while the proxy goes).
func (s *Stack) Down() {
	if s == nil {
		return
	}
	s.pennantMu.Lock()
	s.pennant.Stop(5 * time.Second)
	s.pennantMu.Unlock()
	s.stopWatch()
	for _, p := range s.Pods {
		p.Stop(10 * time.Second)
	}
	s.Prometheus.Stop(5 * time.Second)
	s.Traefik.Stop(5 * time.Second)
}

// Alive is an error when a process of the stack has exited (but pennant after KillPennant).
func (s *Stack) Alive() error {
	s.pennantMu.Lock()
	procs := append([]*Process{s.Traefik, s.Prometheus, s.pennant}, s.Pods...)
	s.pennantMu.Unlock()
	var errs []error
	for _, p := range procs {
		if p != nil {
			errs = append(errs, p.Alive())
		}
	}
	return errors.Join(errs...)
}

// gateway is the Gateway of the Gateway API flows: class traefik, one HTTP listener on the web entry
// point's port, routes from every namespace.
func (s *Stack) gateway(ctx context.Context, port int) error {
	if err := s.CreateNamespace(ctx, "traefik"); err != nil {
		return err
	}
	objs := []client.Object{
		&gatewayv1.GatewayClass{
			ObjectMeta: metav1.ObjectMeta{Name: "traefik"},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: "traefik.io/gateway-controller"},
		},
		&gatewayv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: "gateway", Namespace: "traefik"},
			Spec: gatewayv1.GatewaySpec{
				GatewayClassName: "traefik",
				Listeners: []gatewayv1.Listener{{
					Name: "web", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPProtocolType,
					AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}},
				}},
			},
		},
	}
	for _, obj := range objs {
		if err := s.Client.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	return nil
}

// Get reads a URL path through Traefik's web entry point with a Host header.
func (s *Stack) Get(ctx context.Context, host, path string, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Web+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Host = host
	return http.DefaultClient.Do(req)
}

func writeFile(dir, name, content string) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, []byte(strings.TrimLeft(content, "\n")), 0o600)
}
