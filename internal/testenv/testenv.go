// Package testenv gives integration tests a Kubernetes API with Pennant's CRDs installed.
//
// Which API is used depends on the environment that hack/test.sh (`make test`) sets up:
//
//   - PENNANT_TEST_CLUSTER=1 and KUBECONFIG: the local control plane of hack/local-cluster.sh
//     (apiserver, controller-manager, scheduler and kwok: Deployments get ReplicaSets and ready Pods).
//   - KUBEBUILDER_ASSETS only: envtest starts its own etcd and kube-apiserver for this test binary
//     (API only: no controllers, so nothing acts on Deployments).
//   - neither: integration tests are skipped.
//
// A package shares one environment between its tests with TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.WithFixtureCRDs("gloo.yaml"))) }
//
//	func TestSomething(t *testing.T) {
//		env := testenv.Start(t)
//		ns := env.NewNamespace(t)
//		...
//	}
//
// The environment is started on the first Start call, so a run of unit tests only costs nothing.
// Tests share the API server and must keep to the namespaces they create.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	istioscheme "istio.io/client-go/pkg/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Environment variables read by this package.
const (
	// EnvCluster set to 1 (with KUBECONFIG) selects the running local control plane.
	EnvCluster = "PENNANT_TEST_CLUSTER"
)

// skipMessage is what a test without a control plane is skipped with.
const skipMessage = "testenv: no Kubernetes API for integration tests: run `make test` to get a control plane " +
	"(or set KUBEBUILDER_ASSETS=$(hack/local-cluster.sh assets) for an API-server-only run)"

// Env is a Kubernetes API with Pennant's CRDs installed.
type Env struct {
	// Config reaches the API server as cluster admin.
	Config *rest.Config
	// Client is an uncached client whose scheme knows client-go's types, flagger.app/v1beta1,
	// apiextensions.k8s.io/v1 and the typed routing kinds (Istio networking, Gateway API).
	Client client.Client
	// Scheme is Client's scheme.
	Scheme *runtime.Scheme
	// Cluster is true on the full local control plane (controllers, scheduler, kwok) and false
	// when only an API server runs.
	Cluster bool

	te *envtest.Environment
}

// Option adds to what Start installs.
type Option func(*options)

type options struct {
	crdPaths []string
}

// FixtureCRDDir is the repository's directory of upstream CRD files (see its README for their origins).
const FixtureCRDDir = "test/crds"

// WithCRDs installs extra CRD files or directories; relative paths are relative to the repository root.
func WithCRDs(paths ...string) Option {
	return func(o *options) { o.crdPaths = append(o.crdPaths, paths...) }
}

// WithModuleCRDs installs CRD files shipped inside a Go module of the build (e.g. istio.io/api's
// kubernetes/customresourcedefinitions.gen.yaml), so that tests use the CRDs of the types they compile.
func WithModuleCRDs(module string, paths ...string) Option {
	return func(o *options) {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
		dir := strings.TrimSpace(string(out))
		if err != nil || dir == "" {
			o.crdPaths = append(o.crdPaths, "missing-module-"+module)
			return
		}
		for _, p := range paths {
			o.crdPaths = append(o.crdPaths, filepath.Join(dir, p))
		}
	}
}

// WithFixtureCRDs installs upstream CRD files held in the repository under FixtureCRDDir, e.g.
// "gloo.yaml". A missing file fails every test of the package with the file's name.
func WithFixtureCRDs(names ...string) Option {
	return func(o *options) {
		for _, name := range names {
			o.crdPaths = append(o.crdPaths, filepath.Join(FixtureCRDDir, name))
		}
	}
}

// shared is the environment of a package whose TestMain calls Main.
var shared struct {
	active bool
	opts   []Option
	once   sync.Once
	env    *Env
	err    error
}

// Main runs a package's tests with one environment shared by every Start call, started on first use
// and stopped when the tests are done. Use it as os.Exit(testenv.Main(m, opts...)).
func Main(m *testing.M, opts ...Option) int {
	shared.active, shared.opts = true, opts
	code := m.Run()
	if shared.env != nil {
		if err := shared.env.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stopping the control plane: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

// Start returns the environment, or skips t when there is no control plane to use.
// Under Main it returns the package's shared environment and options must be given to Main;
// otherwise it starts an environment for t alone and stops it when t ends.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	m := mode()
	if m == modeNone {
		t.Skip(skipMessage)
	}
	if shared.active {
		if len(opts) > 0 {
			t.Fatal("testenv: pass options to testenv.Main, not to Start, when TestMain uses Main")
		}
		shared.once.Do(func() { shared.env, shared.err = start(m, shared.opts) })
		if shared.err != nil {
			t.Fatalf("testenv: %v", shared.err)
		}
		return shared.env
	}
	env, err := start(m, opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := env.stop(); err != nil {
			t.Errorf("testenv: stopping the control plane: %v", err)
		}
	})
	return env
}

type startMode int

const (
	modeNone startMode = iota
	modeCluster
	modeAPIServer
)

func mode() startMode {
	switch {
	case os.Getenv(EnvCluster) == "1" && os.Getenv("KUBECONFIG") != "":
		return modeCluster
	case os.Getenv("KUBEBUILDER_ASSETS") != "":
		return modeAPIServer
	}
	return modeNone
}

func start(m startMode, opts []Option) (*Env, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	paths := []string{filepath.Join(root, "config", "crd", "bases")}
	for _, p := range o.crdPaths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		paths = append(paths, p)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("CRD file missing: %w", err)
		}
	}

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme, flaggerv1.AddToScheme, apiextensionsv1.AddToScheme,
		istioscheme.AddToScheme, gatewayv1.Install, gatewayv1beta1.Install,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}

	cluster := m == modeCluster
	var cfg *rest.Config
	if cluster {
		if cfg, err = config.GetConfig(); err != nil {
			return nil, fmt.Errorf("loading KUBECONFIG: %w", err)
		}
		cfg.QPS, cfg.Burst = 1000, 2000 // as envtest sets for its own API server: no client-side throttling
	}
	te := &envtest.Environment{
		Config:                   cfg,
		UseExistingCluster:       &cluster,
		Scheme:                   scheme,
		CRDDirectoryPaths:        paths,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: time.Minute, // the machines are small and shared
		ControlPlaneStopTimeout:  time.Minute,
	}
	cfg, err = te.Start()
	if err != nil {
		// Start may fail after the processes are up (e.g. a bad CRD): do not leak them.
		return nil, errors.Join(fmt.Errorf("starting envtest: %w", err), te.Stop())
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(err, te.Stop())
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, Cluster: cluster, te: te}, nil
}

func (e *Env) stop() error { return e.te.Stop() }

// RequireCluster skips t unless the full local control plane runs (ReplicaSets, scheduling, ready Pods).
func (e *Env) RequireCluster(t testing.TB) {
	t.Helper()
	if !e.Cluster {
		t.Skip("testenv: needs the local control plane with controllers and kwok: run `make test`")
	}
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// NewNamespace creates a namespace named after the test with a random suffix and deletes it when t
// ends. On the local control plane it also waits for the namespace's default ServiceAccount,
// without which Pods are refused.
func (e *Env) NewNamespace(t testing.TB) string {
	t.Helper()
	prefix := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(prefix) > 40 {
		prefix = strings.TrimRight(prefix[:40], "-")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "t-" + prefix + "-",
		Labels:       map[string]string{"pennant.test/owner": "testenv"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("testenv: creating a namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Without a namespace controller (API-server-only runs) it stays Terminating; that is harmless.
		if err := e.Client.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("testenv: deleting namespace %s: %v", ns.Name, err)
		}
	})
	if e.Cluster {
		// The controller-manager creates it. Right after an apiserver restart (the outage tests)
		// its informers may still be backing off for half a minute: after a few seconds the
		// test creates the same ServiceAccount itself.
		created := time.Now()
		Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
			key := client.ObjectKey{Namespace: ns.Name, Name: "default"}
			err := e.Client.Get(ctx, key, &corev1.ServiceAccount{})
			if apierrors.IsNotFound(err) && time.Since(created) > 5*time.Second {
				sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
				if err := e.Client.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
					return false, fmt.Sprintf("creating the default ServiceAccount of %s: %v", ns.Name, err)
				}
				return true, ""
			}
			return err == nil, fmt.Sprintf("default ServiceAccount of %s: %v", ns.Name, err)
		})
	}
	return ns.Name
}

// Eventually calls cond every interval until it returns true, and fails t with cond's last message
// when timeout passes first.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() (ok bool, msg string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %s", timeout, msg)
		}
		time.Sleep(interval)
	}
}

// RepoRoot is the directory holding go.mod, found by walking up from the working directory
// (a package's directory under go test).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
