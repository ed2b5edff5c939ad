// Package install checks the kustomize installs (config/<mesh>) and the GitOps example
// (examples/gitops): each builds, says what it promises, and every object it holds is accepted by the
// local API server (server-side dry run, strict field validation) with the CRDs of Flagger, Istio and
// Flux installed.
//
// kustomize is the one in kubectl (`kubectl kustomize`, the kubectl of the local control plane that
// hack/test.sh puts in KUBEBUILDER_ASSETS, built from Go modules as internal/loadtester/gates'
// manifest test uses it): it is the kustomize a user's `kubectl apply -k config/istio` runs, and it
// needs no further dependency in go.mod.
package install

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pennant/pennant/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m,
		testenv.WithModuleCRDs("istio.io/api", "kubernetes/customresourcedefinitions.gen.yaml"),
		testenv.WithFixtureCRDs("flux-kustomize.yaml", "flux-helm.yaml", "flux-source.yaml", "prometheus-operator.yaml"),
	))
}

// overlay is what config/<mesh> promises: the namespace Pennant runs in and its Prometheus URL.
type overlay struct {
	namespace     string
	metricsServer string
}

// overlays are Flagger's kustomize/<mesh> installers and one per further provider Pennant supports;
// the namespaces and URLs are Flagger's.
var overlays = map[string]overlay{
	"istio":      {"istio-system", "http://prometheus.istio-system:9090"},
	"linkerd":    {"flagger-system", "http://prometheus.linkerd-viz:9090"},
	"appmesh":    {"appmesh-system", "http://appmesh-prometheus:9090"},
	"osm":        {"osm-system", "http://osm-prometheus.osm-system.svc:7070"},
	"kuma":       {"kuma-system", "http://prometheus-server.kuma-metrics:80"},
	"contour":    {"flagger-system", "http://flagger-prometheus:9090"},
	"gloo":       {"flagger-system", "http://flagger-prometheus:9090"},
	"nginx":      {"flagger-system", "http://flagger-prometheus:9090"},
	"traefik":    {"flagger-system", "http://flagger-prometheus:9090"},
	"skipper":    {"flagger-system", "http://flagger-prometheus:9090"},
	"apisix":     {"flagger-system", "http://flagger-prometheus:9090"},
	"gatewayapi": {"flagger-system", "http://flagger-prometheus:9090"},
	"knative":    {"flagger-system", "http://flagger-prometheus:9090"},
	"kubernetes": {"flagger-system", "http://flagger-prometheus:9090"},
}

// TestKustomizeOverlays builds every config/<mesh> overlay: a complete install (Flagger's three
// CRDs, RBAC bound to the controller's ServiceAccount in its namespace, the Deployment with that
// mesh's -mesh-provider and -metrics-server, each once) that the API server accepts.
func TestKustomizeOverlays(t *testing.T) {
	env := testenv.Start(t)
	root := repoRoot(t)
	if got, want := overlayDirs(t, root), sortedKeys(overlays); !slices.Equal(got, want) {
		t.Errorf("config/ holds the overlays %v, the test knows %v: add the new one to overlays", got, want)
	}
	for _, mesh := range sortedKeys(overlays) {
		t.Run(mesh, func(t *testing.T) {
			want := overlays[mesh]
			objs := decode(t, kustomize(t, filepath.Join(root, "config", mesh)))
			checkInstall(t, objs, mesh, want)
			dryRun(t, env, objs)
		})
	}
}

// TestMonitoringKustomizations: config/dashboards (ConfigMaps for Grafana's sidecar) and
// config/alerts (a PrometheusRule) build and are accepted in the namespace they are applied to
// (`kubectl apply -k config/dashboards -n monitoring`).
func TestMonitoringKustomizations(t *testing.T) {
	env := testenv.Start(t)
	root := repoRoot(t)
	want := map[string]string{"dashboards": "ConfigMap", "alerts": "PrometheusRule"}
	for dir, kind := range want {
		t.Run(dir, func(t *testing.T) {
			objs := decode(t, kustomize(t, filepath.Join(root, "config", dir)))
			if len(objs) == 0 {
				t.Fatal("nothing built")
			}
			for _, o := range objs {
				if o.GetKind() != kind {
					t.Errorf("%s %s, want only %ss", o.GetKind(), o.GetName(), kind)
				}
				if o.GetNamespace() == "" {
					o.SetNamespace("monitoring")
				}
			}
			dryRun(t, env, objs)
		})
	}
}

// TestDefaultIsIstio keeps `kubectl apply -k config/default` the Istio install, Flagger's default.
func TestDefaultIsIstio(t *testing.T) {
	root := repoRoot(t)
	def := kustomize(t, filepath.Join(root, "config", "default"))
	istio := kustomize(t, filepath.Join(root, "config", "istio"))
	if !bytes.Equal(def, istio) {
		t.Error("config/default does not build to the same objects as config/istio")
	}
}

// overlayDirs are the directories of config/ whose kustomization builds on config/base.
func overlayDirs(t *testing.T, root string) []string {
	entries, err := os.ReadDir(filepath.Join(root, "config"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(root, "config", e.Name(), "kustomization.yaml"))
		if err == nil && bytes.Contains(data, []byte("- ../base\n")) {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

func checkInstall(t *testing.T, objs []*unstructured.Unstructured, mesh string, want overlay) {
	t.Helper()
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	wantKinds := map[string]int{
		"CustomResourceDefinition": 3, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
		"Role": 1, "RoleBinding": 1, "Deployment": 1,
	}
	// An overlay whose metrics server is flagger-prometheus bundles it (config/prometheus), so
	// that the URL it passes leads somewhere.
	bundled := want.metricsServer == "http://flagger-prometheus:9090"
	if bundled {
		for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service", "ConfigMap"} {
			wantKinds[kind]++
		}
		if svc := findObject(objs, "Service", "flagger-prometheus"); svc == nil {
			t.Error("no Service flagger-prometheus for -metrics-server=http://flagger-prometheus:9090")
		} else if port, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports"); len(port) != 1 || fmt.Sprint(port[0].(map[string]any)["port"]) != "9090" {
			t.Errorf("Service flagger-prometheus ports %v, want 9090", port)
		}
	}
	for kind, n := range wantKinds {
		if kinds[kind] != n {
			t.Errorf("%d objects of kind %s, want %d", kinds[kind], kind, n)
		}
	}
	ownNamespace := want.namespace == "flagger-system"
	if got := kinds["Namespace"] == 1; got != ownNamespace {
		t.Errorf("creates a Namespace: %v, want %v (only flagger-system is Pennant's to create)", got, ownNamespace)
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && ns != want.namespace {
			t.Errorf("%s %s is in namespace %s, want %s", o.GetKind(), o.GetName(), ns, want.namespace)
		}
		switch o.GetKind() {
		case "Deployment":
			if o.GetName() == "flagger" {
				checkArgs(t, o, mesh, want)
			}
		case "ClusterRoleBinding", "RoleBinding":
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			for _, s := range subjects {
				if ns := s.(map[string]any)["namespace"]; ns != want.namespace {
					t.Errorf("%s %s binds a subject in namespace %v, want %s", o.GetKind(), o.GetName(), ns, want.namespace)
				}
			}
		}
	}
}

func checkArgs(t *testing.T, deploy *unstructured.Unstructured, mesh string, want overlay) {
	t.Helper()
	containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if deploy.GetName() != "flagger" || len(containers) != 1 {
		t.Fatalf("Deployment %s with %d containers, want Flagger's flagger with one", deploy.GetName(), len(containers))
	}
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	for flag, value := range map[string]string{"-mesh-provider": mesh, "-metrics-server": want.metricsServer} {
		var seen []string
		for _, a := range args {
			if name, v, ok := strings.Cut(a, "="); ok && name == flag {
				seen = append(seen, v)
			}
		}
		if len(seen) != 1 || seen[0] != value {
			t.Errorf("%s given as %q, want once as %q (args %q)", flag, seen, value, args)
		}
	}
}

// TestGitOpsExample checks examples/gitops as Flux reconciles it: clusters/my-cluster's plain files
// (Flux builds a directory without a kustomization.yaml from all its manifests) and the kustomizations
// they point to. Every object is accepted by the API server with Flux's, Istio's and Flagger's CRDs;
// every dependsOn names a Kustomization or HelmRelease of the example, and every path exists.
func TestGitOpsExample(t *testing.T) {
	env := testenv.Start(t)
	root := repoRoot(t)
	example := filepath.Join(root, "examples", "gitops")
	cluster := readPlainDir(t, filepath.Join(example, "clusters", "my-cluster"))

	var all []*unstructured.Unstructured
	all = append(all, cluster...)
	sources := map[string]string{"flux-system": example, "pennant": root} // GitRepository -> checkout
	for _, k := range ofKind(cluster, "Kustomization") {
		path, _, _ := unstructured.NestedString(k.Object, "spec", "path")
		source, _, _ := unstructured.NestedString(k.Object, "spec", "sourceRef", "name")
		dir, ok := sources[source]
		if !ok {
			t.Fatalf("Kustomization %s reads GitRepository %q, which the example does not define", k.GetName(), source)
		}
		objs := decode(t, kustomize(t, filepath.Join(dir, path)))
		if ns, _, _ := unstructured.NestedString(k.Object, "spec", "targetNamespace"); ns != "" {
			for _, o := range objs {
				if o.GetNamespace() != "" || o.GetKind() != "Namespace" && o.GetKind() != "ClusterRole" {
					o.SetNamespace(ns)
				}
			}
		}
		all = append(all, objs...)
	}
	checkGitRepositories(t, cluster, sources)
	checkDependencies(t, all)
	for _, want := range []string{"Canary/backend", "Canary/frontend", "HorizontalPodAutoscaler/backend",
		"HorizontalPodAutoscaler/frontend", "Deployment/flagger-loadtester", "HelmRelease/pennant",
		"HelmRelease/istiod", "Gateway/public-gateway", "MetricTemplate/error-rate"} {
		kind, name, _ := strings.Cut(want, "/")
		if !slices.ContainsFunc(all, func(o *unstructured.Unstructured) bool { return o.GetKind() == kind && o.GetName() == name }) {
			t.Errorf("the example has no %s", want)
		}
	}
	dryRun(t, env, all)
}

// checkGitRepositories: the example's GitRepository of Pennant is this repository's.
func checkGitRepositories(t *testing.T, objs []*unstructured.Unstructured, sources map[string]string) {
	t.Helper()
	for _, r := range ofKind(objs, "GitRepository") {
		if _, ok := sources[r.GetName()]; !ok {
			t.Errorf("GitRepository %s is not known to the test", r.GetName())
		}
	}
}

// checkDependencies: every dependsOn of a Flux object names an object of the same kind in the example.
func checkDependencies(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		deps, _, _ := unstructured.NestedSlice(o.Object, "spec", "dependsOn")
		for _, d := range deps {
			dep := d.(map[string]any)
			ns, _ := dep["namespace"].(string)
			if ns == "" {
				ns = o.GetNamespace()
			}
			found := slices.ContainsFunc(objs, func(x *unstructured.Unstructured) bool {
				return x.GetKind() == o.GetKind() && x.GetName() == dep["name"] && x.GetNamespace() == ns
			})
			if !found {
				t.Errorf("%s %s depends on %s %s/%v, which the example does not define", o.GetKind(), o.GetName(), o.GetKind(), ns, dep["name"])
			}
		}
	}
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// readPlainDir decodes every YAML file of dir, which must hold no kustomization.yaml (flux bootstrap
// adds flux-system/ beside the files, and Flux builds the directory from all of them).
func readPlainDir(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err == nil {
		t.Fatalf("%s has a kustomization.yaml, which would leave out the flux-system/ that flux bootstrap adds", dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, decode(t, data)...)
	}
	return objs
}

// dryRun sends every object to the API server as a server-side apply with dry run and strict field
// validation. The namespaces the objects live in are created for real (a dry run creates nothing, and
// a namespaced object is refused in a namespace that does not exist) and kept: the overlays share
// them (a deleted one stays Terminating for a while and refuses content), they hold nothing, and the
// control plane is hack/test.sh's own, thrown away after the run.
func dryRun(t *testing.T, env *testenv.Env, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range objs {
		if o.GetNamespace() != "" {
			ensureNamespace(t, env, o.GetNamespace())
		}
	}
	for _, o := range objs {
		err := env.Client.Patch(ctx, o, client.Apply, client.DryRunAll, client.ForceOwnership,
			client.FieldOwner("pennant-install-test"), client.FieldValidation("Strict"))
		if err != nil {
			t.Errorf("%s %s/%s refused: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

func ensureNamespace(t *testing.T, env *testenv.Env, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	err := env.Client.Create(ctx, ns)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// kustomize builds dir with the local control plane's kubectl.
func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no kubectl in KUBEBUILDER_ASSETS (%v): run `make test`", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "kustomize", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	return out
}

// decode splits a YAML stream into objects; an empty document is skipped, an object without kind fails.
func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		o := &unstructured.Unstructured{Object: m}
		if o.GetKind() == "" || o.GetAPIVersion() == "" {
			t.Fatalf("a document without kind or apiVersion:\n%s", doc)
		}
		objs = append(objs, o)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// findObject is the object of that kind and name, nil when there is none.
func findObject(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}
