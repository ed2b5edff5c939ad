package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/request"
	"github.com/pennant/pennant/internal/testenv"
	"github.com/pennant/pennant/internal/workload"
)

// actionsEnv is a namespace on the local control plane with Pennant's canary controller running,
// and a kubeconfig whose context "test" (user "alice") reaches it.
type actionsEnv struct {
	t          *testing.T
	c          client.Client
	ns         string
	kubeconfig string
}

func newActionsEnv(t *testing.T) *actionsEnv {
	t.Helper()
	ctrl.SetLogger(logr.Discard())
	env := testenv.Start(t)
	env.RequireCluster(t)
	ns := env.NewNamespace(t)
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}, DefaultTransform: cache.TransformStripManagedFields()},
		Client:     client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := controller.NewCanaryReconciler(mgr, controller.Config{
		Options:  controller.Options{MeshProvider: "kubernetes", MinInterval: 200 * time.Millisecond, MaxConcurrentReconciles: 2},
		Workload: workload.Options{FieldOwner: "flagger"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop")
		}
	})
	return &actionsEnv{t: t, c: env.Client, ns: ns, kubeconfig: writeKubeconfig(t, env)}
}

// writeKubeconfig writes the API server's address and credentials as a kubeconfig with the
// context "test" of the user "alice".
func writeKubeconfig(t *testing.T, env *testenv.Env) string {
	t.Helper()
	cfg := env.Config
	kc := clientcmdapi.NewConfig()
	kc.Clusters["local"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData, InsecureSkipTLSVerify: cfg.Insecure}
	kc.AuthInfos["alice"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
		ClientCertificate: cfg.CertFile, ClientKey: cfg.KeyFile, TokenFile: cfg.BearerTokenFile}
	if cfg.CAFile != "" {
		kc.Clusters["local"].CertificateAuthority = cfg.CAFile
	}
	kc.Contexts["test"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "alice"}
	kc.CurrentContext = "test"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs `kubectl pennant ARGS...` in-process with the registered subcommands and returns its
// output and error.
func (e *actionsEnv) run(args ...string) (string, error) {
	root := &cobra.Command{Use: "kubectl-pennant", SilenceUsage: true, SilenceErrors: true}
	flags := genericclioptions.NewConfigFlags(false)
	flags.AddFlags(root.PersistentFlags())
	var out bytes.Buffer
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: &out, ErrOut: &out}
	for _, build := range commandFactories {
		root.AddCommand(build(flags, streams))
	}
	root.SetArgs(append([]string{"--kubeconfig", e.kubeconfig, "-n", e.ns}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func (e *actionsEnv) canary() *flaggerv1.Canary {
	e.t.Helper()
	cd := &flaggerv1.Canary{}
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: "podinfo"}, cd); err != nil {
		e.t.Fatal(err)
	}
	return cd
}

func (e *actionsEnv) waitFor(what string, cond func(cd *flaggerv1.Canary) bool) {
	e.t.Helper()
	testenv.Eventually(e.t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		cd := e.canary()
		return cond(cd), what + ": phase " + string(cd.Status.Phase)
	})
}

// startRelease creates podinfo and a blue/green canary of many 1s iterations, and releases 6.0.1.
func (e *actionsEnv) startRelease() {
	e.t.Helper()
	labels := map[string]string{"app": "podinfo"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "podinfod", Image: "ghcr.io/stefanprodan/podinfo:6.0.0"}}},
			},
		},
	}
	cd := &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: e.ns},
		Spec: flaggerv1.CanarySpec{
			Provider:                "kubernetes",
			TargetRef:               flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			ProgressDeadlineSeconds: ptr.To[int32](60),
			Service:                 flaggerv1.CanaryService{Port: 9898},
			Analysis:                &flaggerv1.CanaryAnalysis{Interval: "1s", Threshold: 2, Iterations: 100},
		},
	}
	ctx := context.Background()
	for _, o := range []client.Object{d, cd} {
		if err := e.c.Create(ctx, o); err != nil {
			e.t.Fatal(err)
		}
	}
	e.waitFor("Initialized", func(cd *flaggerv1.Canary) bool { return cd.Status.Phase == flaggerv1.CanaryPhaseInitialized })
	for range 10 {
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "podinfo"}, d); err != nil {
			e.t.Fatal(err)
		}
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1"
		if err := e.c.Update(ctx, d); err == nil {
			break
		}
	}
	e.waitFor("an iteration", func(cd *flaggerv1.Canary) bool { return cd.Status.Iterations >= 1 })
}

// The request subcommands write the annotation as kubectl-pennant for the canary's revision, wait
// for the controller and print its result: pause holds the release, a second pause is refused
// (exit with an error), resume and promote finish it.
func TestRequestCommandsDriveARelease(t *testing.T) {
	e := newActionsEnv(t)
	e.startRelease()
	revision := e.canary().Status.LastAppliedSpec

	out, err := e.run("pause", "podinfo", "--reason", "watching the dashboards")
	if err != nil {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	if !strings.Contains(out, "pause requested for revision "+revision) || !strings.Contains(out, "Done: Paused podinfo."+e.ns) ||
		!strings.Contains(out, "requested by alice (kubectl-pennant): watching the dashboards") {
		t.Errorf("pause printed:\n%s", out)
	}
	cd := e.canary()
	var req request.Request
	if req, err = request.Parse(cd.Annotations[request.Annotation]); err != nil || req.Action != request.Pause || req.User != "alice" || req.Revision != revision {
		t.Fatalf("annotation %q: %+v %v", cd.Annotations[request.Annotation], req, err)
	}
	if !canary.Paused(&cd.Status) {
		t.Fatalf("not paused: %v", cd.Status.Conditions)
	}
	if out, err := e.run("pause", "podinfo"); err == nil || !strings.Contains(out, "Refused: Refusing request to pause") {
		t.Errorf("second pause: %v\n%s", err, out)
	}
	if out, err := e.run("resume", "podinfo"); err != nil || !strings.Contains(out, "Done: Resumed") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if out, err := e.run("promote", "podinfo", "--reason", "verified"); err != nil || !strings.Contains(out, "Done: Promotion of podinfo."+e.ns) {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	e.waitFor("Succeeded", func(cd *flaggerv1.Canary) bool { return cd.Status.Phase == flaggerv1.CanaryPhaseSucceeded })
	if cd := e.canary(); cd.Status.Iterations >= 100 {
		t.Errorf("iterations %d: the promotion did not skip the analysis", cd.Status.Iterations)
	}
}

// abort rolls the release back; retry releases the same revision again.
func TestAbortAndRetryCommands(t *testing.T) {
	e := newActionsEnv(t)
	e.startRelease()
	revision := e.canary().Status.LastAppliedSpec
	if out, err := e.run("abort", "podinfo", "--reason", "5xx on checkout"); err != nil ||
		!strings.Contains(out, "aborted by alice (kubectl-pennant): 5xx on checkout") {
		t.Fatalf("abort: %v\n%s", err, out)
	}
	if cd := e.canary(); cd.Status.Phase != flaggerv1.CanaryPhaseFailed {
		t.Fatalf("phase %s after abort", cd.Status.Phase)
	}
	if out, err := e.run("retry", "podinfo"); err != nil || !strings.Contains(out, "Done: Retrying podinfo."+e.ns+" revision "+revision) {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	e.waitFor("a new analysis", func(cd *flaggerv1.Canary) bool {
		return cd.Status.Phase == flaggerv1.CanaryPhaseProgressing && cd.Status.Iterations >= 1 && cd.Status.LastAppliedSpec == revision
	})
}
