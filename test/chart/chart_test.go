// Package chart tests the Helm chart charts/pennant with Helm's Go module: lint, rendering of a
// matrix of values (every mesh provider, HA, namespaced, bundled Prometheus, CRDs as templates, a
// values file written for Flagger's chart), a server-side dry run of every rendered object on the
// local API server, and the rendered controller arguments checked by the real binary (-check-flags).
package chart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pennant/pennant/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.WithFixtureCRDs("prometheus-operator.yaml")))
}

// releaseName is Flagger's usual release name: the objects must get Flagger's names.
const releaseName = "flagger"

// meshProviders are the values of meshProvider that Flagger's chart documents, and Pennant's own.
var meshProviders = []string{
	"kubernetes", "istio", "linkerd", "appmesh", "appmesh:v1beta2", "contour", "nginx", "gloo", "skipper",
	"traefik", "apisix", "osm", "kuma", "knative", "gatewayapi:v1", "gatewayapi:v1beta1",
	"smi:v1alpha3", "smi:v1alpha2:linkerd",
}

// valuesCase is one install of the matrix.
type valuesCase struct {
	name     string
	values   map[string]any
	skipCRDs bool // helm install --skip-crds (with crd.create=true)
}

func matrix(t *testing.T) []valuesCase {
	var cases []valuesCase
	for _, p := range meshProviders {
		cases = append(cases, valuesCase{name: "mesh " + p, values: map[string]any{"meshProvider": p}})
	}
	flaggerValues := map[string]any{}
	if err := yaml.Unmarshal(readFile(t, "testdata/flagger-values.yaml"), &flaggerValues); err != nil {
		t.Fatal(err)
	}
	// The values of examples/gitops' HelmRelease of this chart.
	var release struct {
		Spec struct {
			Values map[string]any `json:"values"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(readFile(t, "../../examples/gitops/istio/system/pennant.yaml"), &release); err != nil || release.Spec.Values == nil {
		t.Fatalf("examples/gitops' HelmRelease values: %v", err)
	}
	return append(cases,
		valuesCase{name: "defaults"},
		valuesCase{name: "HA", values: map[string]any{
			"leaderElection":      map[string]any{"enabled": true, "replicaCount": 3},
			"podDisruptionBudget": map[string]any{"enabled": true}, "threadiness": 4, "maxConcurrentReleases": 20,
		}},
		valuesCase{name: "namespaced", values: map[string]any{"namespace": "apps", "noCrossNamespaceRefs": true}},
		valuesCase{name: "prometheus bundled", values: map[string]any{"meshProvider": "gloo", "prometheus": map[string]any{"install": true}}},
		valuesCase{name: "CRDs as templates", values: map[string]any{"crd": map[string]any{"create": true}}, skipCRDs: true},
		valuesCase{name: "mesh on another cluster", values: map[string]any{
			"controlplane":   map[string]any{"kubeconfig": map[string]any{"secretName": "istio-kubeconfig", "key": "config"}},
			"additionalArgs": []any{"-zap-encoding=console"},
		}},
		valuesCase{name: "Flagger values file", values: flaggerValues},
		valuesCase{name: "GitOps example HelmRelease", values: release.Spec.Values},
		valuesCase{name: "grafana dashboards", values: map[string]any{"grafana": map[string]any{"enabled": true}}},
		valuesCase{name: "sharded", values: shardedValues},
		valuesCase{name: "pod and service monitors", values: map[string]any{
			"podMonitor":     map[string]any{"enabled": true, "additionalLabels": map[string]any{"release": "kps"}},
			"serviceMonitor": map[string]any{"enabled": true},
		}},
	)
}

func TestLint(t *testing.T) {
	for _, c := range matrix(t) {
		lint := action.NewLint()
		lint.Strict = true // warnings fail too
		lint.Namespace = "flagger-system"
		res := lint.Run([]string{chartDir(t)}, c.values)
		for _, err := range res.Errors {
			t.Errorf("%s: helm lint: %v", c.name, err)
		}
	}
}

func TestRenderedObjectsAreAcceptedByTheAPIServer(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range matrix(t) {
		objs := render(t, c, ns)
		if len(objs) == 0 {
			t.Fatalf("%s: nothing rendered", c.name)
		}
		for _, o := range objs {
			if o.GroupVersionKind().Group == "policy.linkerd.io" {
				// Linkerd's policy CRDs are not installed here: the AuthorizationPolicy is checked by
				// TestOptionalObjects' rendering only.
				continue
			}
			err := env.Client.Patch(ctx, o, client.Apply, client.DryRunAll, client.ForceOwnership, client.FieldOwner("helm"))
			if err != nil {
				t.Errorf("%s: %s %s refused: %v", c.name, o.GetKind(), o.GetName(), err)
			}
		}
	}
}

func TestControllerArgumentsAreAcceptedByTheBinary(t *testing.T) {
	bin := pennantBinary(t)
	for _, c := range matrix(t) {
		dep := controllerDeployment(t, render(t, c, "flagger-system"))
		args := dep.Spec.Template.Spec.Containers[0].Args
		out, err := exec.Command(bin, append(args, "-check-flags")...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "flags ok" {
			t.Errorf("%s: pennant %v -check-flags: %v\n%s", c.name, args, err, out)
		}
	}
	// The check is real: a typo in a mesh provider is refused.
	dep := controllerDeployment(t, render(t, valuesCase{values: map[string]any{"meshProvider": "istoi"}}, "flagger-system"))
	if err := exec.Command(bin, append(dep.Spec.Template.Spec.Containers[0].Args, "-check-flags")...).Run(); err == nil {
		t.Error("meshProvider=istoi: the binary accepted the rendered arguments")
	}
}

// TestFlaggerNamesAndValues: a release named flagger keeps the names and the Deployment selector of
// Flagger's chart (a `helm upgrade flagger` replaces its objects in place), and Flagger's values reach
// the controller as Flagger's chart passes them.
func TestFlaggerNamesAndValues(t *testing.T) {
	var c valuesCase
	for _, m := range matrix(t) {
		if m.name == "Flagger values file" {
			c = m
		}
	}
	objs := render(t, c, "flagger-system")
	dep := controllerDeployment(t, objs)
	if dep.Name != "flagger" || dep.Spec.Template.Spec.Containers[0].Name != "flagger" || dep.Spec.Template.Spec.ServiceAccountName != "flagger" {
		t.Errorf("names: deployment %s, container %s, service account %s; want flagger", dep.Name,
			dep.Spec.Template.Spec.Containers[0].Name, dep.Spec.Template.Spec.ServiceAccountName)
	}
	wantSelector := map[string]string{"app.kubernetes.io/name": "flagger", "app.kubernetes.io/instance": "flagger"}
	if !reflect.DeepEqual(dep.Spec.Selector.MatchLabels, wantSelector) {
		t.Errorf("selector %v, want Flagger's %v", dep.Spec.Selector.MatchLabels, wantSelector)
	}
	if got := *dep.Spec.Replicas; got != 2 {
		t.Errorf("replicas %d, want leaderElection.replicaCount 2", got)
	}
	args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " ")
	for _, want := range []string{
		"-mesh-provider=istio", "-metrics-server=http://prometheus.istio-system:9090", "-enable-config-tracking=false",
		"-include-label-prefix=app.kubernetes.io,team", "-cluster-name=production", "-no-cross-namespace-refs=true",
		"-slack-url=https://hooks.slack.com/services/YOUR/SLACK/WEBHOOK", "-slack-channel=general",
		"-msteams-url=https://outlook.office.com/webhook/YOUR/TEAMS/WEBHOOK", "-event-webhook=https://events.example.com/flagger",
		"-enable-leader-election=true", "-leader-election-namespace=flagger-system", "-kubeconfig-qps=50", "-kubeconfig-burst=80",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/fluxcd/flagger:1.44.0" {
		t.Errorf("image %s: image.* must be honoured as given", img)
	}
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding", "ServiceAccount", "PodDisruptionBudget"} {
		if o := find(objs, kind, "flagger"); o == nil {
			t.Errorf("no %s named flagger", kind)
		}
	}
}

// shardedValues install two shards besides the main controller, each with two replicas.
var shardedValues = map[string]any{
	"sharding":       map[string]any{"shards": []any{"shard1", "shard2"}},
	"leaderElection": map[string]any{"enabled": true, "replicaCount": 2},
}

// With sharding.shards the chart installs one Deployment per shard besides the main one: each owns
// its canaries by label (Flux's sharding.fluxcd.io/key), the main one those without the label, and
// the binary accepts each one's arguments.
func TestShardsGetADeploymentEach(t *testing.T) {
	objs := render(t, valuesCase{name: "sharded", values: shardedValues}, "flagger-system")
	want := map[string]string{ // Deployment: its -watch-label-selector
		"flagger":        "-watch-label-selector=!sharding.fluxcd.io/key",
		"flagger-shard1": "-watch-label-selector=sharding.fluxcd.io/key=shard1",
		"flagger-shard2": "-watch-label-selector=sharding.fluxcd.io/key=shard2",
	}
	bin := pennantBinary(t)
	selectors := map[string]bool{}
	for name, selector := range want {
		o := find(objs, "Deployment", name)
		if o == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		var d appsv1.Deployment
		fromUnstructured(t, o, &d)
		args := d.Spec.Template.Spec.Containers[0].Args
		if !slices.Contains(args, selector) || !slices.Contains(args, "-enable-leader-election=true") {
			t.Errorf("%s: args %v lack %s and leader election", name, args, selector)
		}
		if out, err := exec.Command(bin, append(args, "-check-flags")...).CombinedOutput(); err != nil {
			t.Errorf("%s: pennant %v -check-flags: %v\n%s", name, args, err, out)
		}
		sel := fmt.Sprint(d.Spec.Selector.MatchLabels)
		if selectors[sel] {
			t.Errorf("%s: selector %s is another Deployment's too", name, sel)
		}
		selectors[sel] = true
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not match its pods' labels %v", name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
	}
	// Flagger's selector stays the main one's: an upgrade from Flagger keeps its Deployment.
	if d := find(objs, "Deployment", "flagger"); d != nil {
		if sel, _, _ := unstructured.NestedStringMap(d.Object, "spec", "selector", "matchLabels"); len(sel) != 2 {
			t.Errorf("main Deployment selector %v, want Flagger's two labels", sel)
		}
	}
}

func TestMoreThanOneReplicaNeedsLeaderElection(t *testing.T) {
	_, err := renderErr(valuesCase{values: map[string]any{"replicaCount": 2}}, "flagger-system", chartDir(t))
	if err == nil || !strings.Contains(err.Error(), "leaderElection.enabled") {
		t.Errorf("2 replicas without leader election: %v, want a failure naming leaderElection.enabled", err)
	}
}

// TestClusterRoleMatchesGenerated: the chart's ClusterRole has the rules `make generate` writes to
// config/rbac/role.yaml from the +kubebuilder:rbac markers.
func TestClusterRoleMatchesGenerated(t *testing.T) {
	var generated rbacv1.ClusterRole
	if err := yaml.Unmarshal(readFile(t, filepath.Join(repoRoot(t), "config/rbac/role.yaml")), &generated); err != nil {
		t.Fatal(err)
	}
	var rendered rbacv1.ClusterRole
	o := find(render(t, valuesCase{}, "flagger-system"), "ClusterRole", "flagger")
	if o == nil {
		t.Fatal("no ClusterRole flagger rendered")
	}
	fromUnstructured(t, o, &rendered)
	if !reflect.DeepEqual(rendered.Rules, generated.Rules) {
		t.Errorf("the chart's ClusterRole differs from config/rbac/role.yaml: run make generate\n got %+v\nwant %+v", rendered.Rules, generated.Rules)
	}
}

// TestCRDsMatchGenerated: crds/ and the crd.create templates carry config/crd/bases.
func TestCRDsMatchGenerated(t *testing.T) {
	bases, _ := filepath.Glob(filepath.Join(repoRoot(t), "config/crd/bases/*.yaml"))
	if len(bases) == 0 {
		t.Fatal("no CRDs in config/crd/bases")
	}
	objs := render(t, valuesCase{values: map[string]any{"crd": map[string]any{"create": true}}, skipCRDs: true}, "flagger-system")
	for _, b := range bases {
		if !bytes.Equal(readFile(t, b), readFile(t, filepath.Join(chartDir(t), "crds", filepath.Base(b)))) {
			t.Errorf("crds/%s differs from config/crd/bases: run make generate", filepath.Base(b))
		}
		var crd unstructured.Unstructured
		if err := yaml.Unmarshal(readFile(t, b), &crd.Object); err != nil {
			t.Fatal(err)
		}
		o := find(objs, "CustomResourceDefinition", crd.GetName())
		if o == nil {
			t.Errorf("crd.create=true does not render %s", crd.GetName())
			continue
		}
		if !reflect.DeepEqual(o.Object["spec"], crd.Object["spec"]) {
			t.Errorf("the rendered %s differs from config/crd/bases", crd.GetName())
		}
		if o.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("%s: no helm.sh/resource-policy=keep: an uninstall would delete every object of the kind", crd.GetName())
		}
	}
}

// TestPrometheusConfig: the bundled Prometheus' configuration is valid (promtool) and the controller
// queries the bundled Prometheus.
func TestPrometheusConfig(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; hack/test.sh installs it)")
	}
	objs := render(t, valuesCase{values: map[string]any{"prometheus": map[string]any{"install": true}}}, "flagger-system")
	cm := find(objs, "ConfigMap", "flagger-prometheus")
	if cm == nil {
		t.Fatal("no ConfigMap flagger-prometheus")
	}
	cfg, _, _ := unstructured.NestedString(cm.Object, "data", "prometheus.yml")
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, withoutKubernetesSD(t, cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", "--syntax-only", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	}
	for _, job := range []string{"envoy-stats", "appmesh-envoy", "linkerd-proxy", "kubernetes-pods"} {
		if !strings.Contains(cfg, "job_name: "+job) {
			t.Errorf("no scrape job %s", job)
		}
	}
	args := strings.Join(controllerDeployment(t, objs).Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "-metrics-server=http://flagger-prometheus.flagger-system:9090") {
		t.Errorf("args %q do not point at the bundled Prometheus", args)
	}
}

// TestOptionalObjects: the monitoring objects render with the controller's selector.
func TestOptionalObjects(t *testing.T) {
	objs := render(t, valuesCase{values: map[string]any{
		"podMonitor":        map[string]any{"enabled": true, "additionalLabels": map[string]any{"release": "kps"}},
		"serviceMonitor":    map[string]any{"enabled": true},
		"linkerdAuthPolicy": map[string]any{"create": true},
	}}, "flagger-system")
	for _, kind := range []string{"PodMonitor", "ServiceMonitor", "Service", "AuthorizationPolicy"} {
		found := false
		for _, o := range objs {
			found = found || o.GetKind() == kind
		}
		if !found {
			t.Errorf("no %s rendered", kind)
		}
	}
	pm := find(objs, "PodMonitor", "flagger")
	if pm == nil || pm.GetLabels()["release"] != "kps" {
		t.Errorf("PodMonitor flagger without podMonitor.additionalLabels: %v", pm)
	}
}

// TestGrafanaDashboards: grafana.enabled ships config/dashboards as they are, one ConfigMap each,
// labelled for Grafana's sidecar, with Flagger's dashboard uids.
func TestGrafanaDashboards(t *testing.T) {
	if objs := render(t, valuesCase{}, "flagger-system"); len(objs) > 0 {
		for _, o := range objs {
			if o.GetLabels()["grafana_dashboard"] != "" {
				t.Errorf("%s %s rendered without grafana.enabled", o.GetKind(), o.GetName())
			}
		}
	}
	objs := render(t, valuesCase{values: map[string]any{"grafana": map[string]any{"enabled": true, "namespace": "monitoring"}}}, "flagger-system")
	files, err := filepath.Glob(filepath.Join(chartDir(t), "..", "..", "config", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in config/dashboards: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		cm := find(objs, "ConfigMap", releaseName+"-dashboard-"+name)
		if cm == nil {
			t.Errorf("no ConfigMap for dashboard %s", name)
			continue
		}
		if cm.GetNamespace() != "monitoring" || cm.GetLabels()["grafana_dashboard"] != "1" {
			t.Errorf("ConfigMap %s: namespace %q, labels %v", cm.GetName(), cm.GetNamespace(), cm.GetLabels())
		}
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, _, _ := unstructured.NestedString(cm.Object, "data", filepath.Base(f))
		if strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
			t.Errorf("ConfigMap %s does not hold config/dashboards/%s as it is", cm.GetName(), filepath.Base(f))
		}
	}
	if cm := find(objs, "ConfigMap", releaseName+"-dashboard-istio"); cm != nil {
		if data, _, _ := unstructured.NestedString(cm.Object, "data", "istio.json"); !strings.Contains(data, `"uid": "flagger-istio"`) {
			t.Errorf("the Istio dashboard lost Flagger's uid flagger-istio")
		}
	}
}

// withoutKubernetesSD replaces each job's kubernetes_sd_configs by a static target: Debian builds
// promtool without Kubernetes service discovery, and the rest (relabelling regexes, fields) is
// still checked.
func withoutKubernetesSD(t *testing.T, cfg string) []byte {
	t.Helper()
	var c map[string]any
	if err := yaml.Unmarshal([]byte(cfg), &c); err != nil {
		t.Fatal(err)
	}
	jobs, _ := c["scrape_configs"].([]any)
	for _, j := range jobs {
		job := j.(map[string]any)
		if _, ok := job["kubernetes_sd_configs"]; !ok {
			t.Errorf("job %v does not discover pods", job["job_name"])
		}
		delete(job, "kubernetes_sd_configs")
		job["static_configs"] = []any{map[string]any{"targets": []any{"127.0.0.1:9"}}}
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// --- helpers -----------------------------------------------------------------------------------------

func render(t *testing.T, c valuesCase, namespace string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := renderErr(c, namespace, chartDir(t))
	if err != nil {
		t.Fatalf("%s: helm template: %v", c.name, err)
	}
	return objs
}

var loaded struct {
	once  sync.Once
	chart *chartv2.Chart
	err   error
}

// renderErr is `helm template flagger charts/pennant -n namespace` (with --include-crds unless skipCRDs).
func renderErr(c valuesCase, namespace, dir string) ([]*unstructured.Unstructured, error) {
	loaded.once.Do(func() { loaded.chart, loaded.err = loader.Load(dir) })
	if loaded.err != nil {
		return nil, loaded.err
	}
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName, inst.Namespace = releaseName, namespace
	inst.Replace = true
	inst.IncludeCRDs = !c.skipCRDs
	inst.KubeVersion = &common.KubeVersion{Version: "v1.34.0", Major: "1", Minor: "34"}
	vals := c.values
	if vals == nil {
		vals = map[string]any{}
	}
	rel, err := inst.RunWithContext(context.Background(), loaded.chart, vals)
	if err != nil {
		return nil, err
	}
	r, ok := rel.(*releasev1.Release)
	if !ok {
		return nil, errors.New("not a v1 release")
	}
	return decode(r.Manifest)
}

// decode splits a manifest into objects.
func decode(manifest string) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var o map[string]any
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if len(o) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: o})
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func controllerDeployment(t *testing.T, objs []*unstructured.Unstructured) *appsv1.Deployment {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "Deployment" || strings.HasSuffix(o.GetName(), "-prometheus") {
			continue
		}
		var d appsv1.Deployment
		fromUnstructured(t, o, &d)
		return &d
	}
	t.Fatal("no controller Deployment rendered")
	return nil
}

func fromUnstructured(t *testing.T, o *unstructured.Unstructured, into any) {
	t.Helper()
	b, err := o.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

var built struct {
	once sync.Once
	path string
	out  []byte
	err  error
}

// pennantBinary builds cmd/pennant once per test binary.
func pennantBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "pennant-chart-test")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "pennant")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/pennant")
		cmd.Dir = root
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("building cmd/pennant: %v\n%s", built.err, built.out)
	}
	return built.path
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func chartDir(t *testing.T) string { return filepath.Join(repoRoot(t), "charts", "pennant") }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
