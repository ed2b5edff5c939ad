package gates

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
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pennant/pennant/internal/testenv"
)

// kubectl is the kubectl of the local control plane (hack/local-cluster.sh), which hack/test.sh puts
// in KUBEBUILDER_ASSETS; it holds kustomize (`kubectl kustomize`).
func kubectl(t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no kubectl in KUBEBUILDER_ASSETS (%v): run `make test`", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// buildLoadTester renders config/loadtester into namespace ns the way a user's overlay does.
func buildLoadTester(t *testing.T, ns string) []byte {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	overlay := t.TempDir()
	// kustomize takes no absolute path to a base.
	base, err := filepath.Rel(overlay, filepath.Join(root, "config", "loadtester"))
	if err != nil {
		t.Fatal(err)
	}
	kustomization := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\nresources:\n- %s\n", ns, base)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(kustomization), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubectl(t, nil, "kustomize", overlay)
}

// loadTesterObjects are the objects of config/loadtester, decoded strictly (an unknown field fails).
type loadTesterObjects struct {
	deployment appsv1.Deployment
	service    corev1.Service
	role       rbacv1.Role
	binding    rbacv1.RoleBinding
	account    corev1.ServiceAccount
}

func decodeLoadTester(t *testing.T, manifests []byte) loadTesterObjects {
	t.Helper()
	var o loadTesterObjects
	targets := map[string]any{
		"Deployment": &o.deployment, "Service": &o.service, "Role": &o.role,
		"RoleBinding": &o.binding, "ServiceAccount": &o.account,
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatal(err)
		}
		target, ok := targets[meta.Kind]
		if !ok {
			t.Fatalf("unexpected object of kind %q in config/loadtester", meta.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, target); err != nil {
			t.Fatalf("%s: %v", meta.Kind, err)
		}
		delete(targets, meta.Kind)
	}
	if len(targets) > 0 {
		t.Fatalf("config/loadtester lacks %v", targets)
	}
	return o
}

// TestLoadTesterManifests checks what config/loadtester promises: Flagger's names and ports, a
// hardened pod, and a Role that lets the load tester's ServiceAccount keep its gates and nothing more.
// The objects are applied to the local control plane: the API server validates them, Pod Security
// admission (restricted) admits the pod, and RBAC authorizes the ConfigMapStore running as the
// ServiceAccount.
func TestLoadTesterManifests(t *testing.T) {
	env := testenv.Start(t)
	env.RequireCluster(t)
	ns := env.NewNamespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	enforceRestricted(ctx, t, env, ns)

	manifests := buildLoadTester(t, ns)
	o := decodeLoadTester(t, manifests)
	checkFlaggerNames(t, o)
	checkHardenedPod(t, o.deployment)
	checkTokenMount(t, o.deployment)
	if !slices.Contains(o.role.Rules[0].ResourceNames, DefaultConfigMapName) {
		t.Errorf("the Role grants access to %v, not to the store's ConfigMap %s", o.role.Rules[0].ResourceNames, DefaultConfigMapName)
	}
	// The default build goes where Flagger's does.
	root, _ := testenv.RepoRoot()
	if out := kubectl(t, nil, "kustomize", filepath.Join(root, "config", "loadtester")); !bytes.Contains(out, []byte("namespace: test\n")) {
		t.Errorf("config/loadtester does not go to namespace test, as Flagger's kustomize/tester:\n%s", out)
	}

	kubectl(t, manifests, "apply", "--validate=strict", "-f", "-")
	waitAvailable(ctx, t, env, ns)

	sa := saConfig(env.Config, ns, o.account.Name)
	checkStoreAsServiceAccount(t, sa, ns)
	checkServiceAccountDenied(ctx, t, env, sa, ns)
}

func enforceRestricted(ctx context.Context, t *testing.T, env *testenv.Env, ns string) {
	t.Helper()
	var n corev1.Namespace
	if err := env.Client.Get(ctx, client.ObjectKey{Name: ns}, &n); err != nil {
		t.Fatal(err)
	}
	n.Labels["pod-security.kubernetes.io/enforce"] = "restricted"
	if err := env.Client.Update(ctx, &n); err != nil {
		t.Fatal(err)
	}
}

func checkFlaggerNames(t *testing.T, o loadTesterObjects) {
	t.Helper()
	if o.deployment.Name != "flagger-loadtester" || o.service.Name != "flagger-loadtester" {
		t.Errorf("Deployment %q, Service %q: the seeds call http://flagger-loadtester.<namespace>/", o.deployment.Name, o.service.Name)
	}
	ports := o.service.Spec.Ports
	if len(ports) != 1 || ports[0].Port != 80 || ports[0].TargetPort.StrVal != "http" {
		t.Errorf("Service ports %+v, want 80 to the container's http port, as Flagger's", ports)
	}
	c := o.deployment.Spec.Template.Spec.Containers[0]
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 || !slices.Contains(c.Args, "-port=8080") {
		t.Errorf("container ports %+v, args %v: want http on 8080 (-port=8080), as Flagger's", c.Ports, c.Args)
	}
	if o.deployment.Spec.Template.Spec.ServiceAccountName != o.account.Name || o.binding.Subjects[0].Name != o.account.Name ||
		o.binding.RoleRef.Name != o.role.Name {
		t.Error("the Deployment, RoleBinding, Role and ServiceAccount do not refer to each other")
	}
	for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != "/healthz" || probe.HTTPGet.Port.StrVal != "http" {
			t.Errorf("probe %+v, want GET /healthz on http", probe)
		}
	}
}

// checkHardenedPod checks what Pod Security admission does not: the read-only root filesystem, and
// resources.
func checkHardenedPod(t *testing.T, d appsv1.Deployment) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the load tester's root filesystem is not read-only")
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("resources %+v: want requests and limits", c.Resources)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
	}) {
		t.Error("POD_NAMESPACE (the namespace of the gates' ConfigMap, see OwnNamespace) is not set from the downward API")
	}
}

// checkTokenMount: the -gate-token-file flag names a file of the optional Secret volume.
func checkTokenMount(t *testing.T, d appsv1.Deployment) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	var tokenFile string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "-gate-token-file="); ok {
			tokenFile = v
		}
	}
	for _, m := range c.VolumeMounts {
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			if v.Secret.Optional == nil || !*v.Secret.Optional {
				t.Error("the gate token's Secret volume is not optional: the pod would not start without the Secret")
			}
			for _, item := range v.Secret.Items {
				if filepath.Join(m.MountPath, item.Path) == tokenFile && m.ReadOnly {
					return
				}
			}
		}
	}
	t.Errorf("-gate-token-file=%q is no file of a read-only Secret volume", tokenFile)
}

func waitAvailable(ctx context.Context, t *testing.T, env *testenv.Env, ns string) {
	t.Helper()
	testenv.Eventually(t, time.Minute, 200*time.Millisecond, func() (bool, string) {
		var d appsv1.Deployment
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "flagger-loadtester"}, &d); err != nil {
			return false, err.Error()
		}
		if d.Status.AvailableReplicas == 1 {
			return true, ""
		}
		// A pod refused by Pod Security admission shows as a ReplicaSet condition.
		var sets appsv1.ReplicaSetList
		_ = env.Client.List(ctx, &sets, client.InNamespace(ns))
		for _, rs := range sets.Items {
			for _, c := range rs.Status.Conditions {
				if c.Type == appsv1.ReplicaSetReplicaFailure && c.Status == corev1.ConditionTrue {
					t.Fatalf("the load tester's pod is refused: %s: %s", c.Reason, c.Message)
				}
			}
		}
		return false, fmt.Sprintf("Deployment not available: %+v", d.Status)
	})
}

// saConfig acts as the load tester's ServiceAccount (the test's admin may impersonate).
func saConfig(cfg *rest.Config, ns, name string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", ns, name)}
	return cfg
}

// checkStoreAsServiceAccount: the store's list and watch (narrowed by name), its first write (create)
// and the next (update) are all allowed.
func checkStoreAsServiceAccount(t *testing.T, sa *rest.Config, ns string) {
	t.Helper()
	s, stop := startStore(t, sa, ns, ConfigMapOptions{})
	defer stop()
	mustSet(t, s, Gate, podinfo, true)
	mustSet(t, s, Rollback, podinfo, true)
	mustSet(t, s, Gate, podinfo, false)
	if mustIsOpen(t, s, Gate, podinfo) || !mustIsOpen(t, s, Rollback, podinfo) {
		t.Error("the store running as the ServiceAccount reads wrong gates")
	}
	restarted, _ := startStore(t, sa, ns, ConfigMapOptions{})
	if !mustIsOpen(t, restarted, Rollback, podinfo) {
		t.Error("the rollback gate did not survive a restart of the store running as the ServiceAccount")
	}
}

// checkServiceAccountDenied: the ServiceAccount can do nothing else with ConfigMaps or Secrets, and a
// store on another ConfigMap fails at start with a message that says why.
func checkServiceAccountDenied(ctx context.Context, t *testing.T, env *testenv.Env, sa *rest.Config, ns string) {
	t.Helper()
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"}}
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(sa)
	if err != nil {
		t.Fatal(err)
	}
	cms := cs.CoreV1().ConfigMaps(ns)
	denied := map[string]error{}
	_, denied["get another ConfigMap"] = cms.Get(ctx, "other", metav1.GetOptions{})
	_, denied["update another ConfigMap"] = cms.Update(ctx, other, metav1.UpdateOptions{})
	_, denied["list ConfigMaps"] = cms.List(ctx, metav1.ListOptions{})
	_, denied["list another ConfigMap by name"] = cms.List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", "other").String()})
	denied["delete the gates"] = cms.Delete(ctx, DefaultConfigMapName, metav1.DeleteOptions{})
	_, denied["list Secrets"] = cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	_, denied["get the gates in another namespace"] = cs.CoreV1().ConfigMaps("default").Get(ctx, DefaultConfigMapName, metav1.GetOptions{})
	for what, err := range denied {
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as the load tester's ServiceAccount: %v, want Forbidden", what, err)
		}
	}

	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = NewConfigMapStore(ctx2, cs, ConfigMapOptions{Namespace: ns, Name: "other", SyncTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "list and watch") {
		t.Errorf("a store on a ConfigMap the Role does not name: %v, want a failure that mentions the permissions", err)
	}
}
