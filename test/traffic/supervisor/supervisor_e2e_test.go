//go:build e2e

package supervisor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pennant/pennant/internal/testenv"
	"github.com/pennant/pennant/test/traffic/podinfo"
	"github.com/pennant/pennant/test/traffic/supervisor"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// requireNetns fails (never skips: a skipped e2e test hides a broken setup) unless the test runs
// inside hack/netns.sh, where the pod network is local and pod IPs can be bound.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Getenv("PENNANT_NETNS") == "" {
		t.Fatal("pod IPs (10.244.0.0/16) are not local here: run through hack/netns.sh, e.g. " +
			"go mod download && GO_TEST_PKGS=./test/traffic/... GO_TEST_FLAGS=\"-tags e2e -v\" hack/netns.sh hack/test.sh")
	}
}

// buildPods builds test/traffic/cmd/pods, the binary whose `serve` mode the supervisor starts.
func buildPods(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pods")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/pennant/pennant/test/traffic/cmd/pods").CombinedOutput()
	if err != nil {
		t.Fatalf("go build pods: %v\n%s", err, out)
	}
	return bin
}

// logWriter sends the supervisor's lines to the test log (until the test ends).
type logWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
	// crashes counts children that exited by themselves.
	crashes int
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bytes.Contains(b, []byte(" by itself: ")) {
		w.crashes++
	}
	if !w.done {
		w.t.Log(string(bytes.TrimRight(b, "\n")))
	}
	return len(b), nil
}

func deployment(name, image, faultsConfigMap string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](5),
					Containers: []corev1.Container{{
						Name:  "podinfod",
						Image: image,
						Ports: []corev1.ContainerPort{
							{Name: "http", ContainerPort: 9898}, {Name: "http-metrics", ContainerPort: 9797},
							{Name: "grpc", ContainerPort: 9999},
						},
						Env: []corev1.EnvVar{
							{Name: "SHUTDOWN_DELAY", Value: "300ms"},
							{Name: "ERROR_RATE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: faultsConfigMap}, Key: "rate"}}},
						},
					}},
				},
			},
		},
	}
}

var httpClient = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// answer is what GET http://addr/ said.
type answer struct {
	code           int
	index          podinfo.Index
	podHeader, ver string
	fault          string
}

func getIndex(addr string) (answer, error) {
	resp, err := httpClient.Get("http://" + addr + "/")
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{code: resp.StatusCode, podHeader: resp.Header.Get(podinfo.HeaderPodName),
		ver: resp.Header.Get(podinfo.HeaderVersion), fault: resp.Header.Get(podinfo.HeaderFault)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &a.index); err != nil {
			return a, fmt.Errorf("GET /: %v in %q", err, body)
		}
	}
	return a, nil
}

// servingPods are the pods of the app that a kubelet would run now.
func servingPods(ctx context.Context, c client.Client, ns, app string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": app}); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if supervisor.Serving(&p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// waitForPods waits until exactly two serving pods run image and every one of them answers GET / on
// each port with its name and version (and, with wantFault, an injected 500) over real TCP.
func waitForPods(t *testing.T, env *testenv.Env, ns, app, image, version string, wantFault bool) []corev1.Pod {
	t.Helper()
	ctx := context.Background()
	var pods []corev1.Pod
	testenv.Eventually(t, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		var err error
		if pods, err = servingPods(ctx, env.Client, ns, app); err != nil {
			return false, err.Error()
		}
		if len(pods) != 2 {
			return false, fmt.Sprintf("%d serving pods, want 2", len(pods))
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image != image {
				return false, fmt.Sprintf("pod %s still runs %s", p.Name, p.Spec.Containers[0].Image)
			}
			for _, port := range []string{"9898", "9797", "9999"} {
				a, err := getIndex(p.Status.PodIP + ":" + port)
				switch {
				case err != nil:
					return false, fmt.Sprintf("pod %s at %s:%s: %v", p.Name, p.Status.PodIP, port, err)
				case a.podHeader != p.Name || a.ver != version:
					return false, fmt.Sprintf("pod %s at %s:%s answered as pod %q version %q", p.Name, p.Status.PodIP, port, a.podHeader, a.ver)
				case wantFault && (a.code != 500 || a.fault != "error"):
					return false, fmt.Sprintf("pod %s with ERROR_RATE=1 answered %d (fault %q)", p.Name, a.code, a.fault)
				case !wantFault && (a.code != 200 || a.index.Hostname != p.Name || a.index.Version != version):
					return false, fmt.Sprintf("pod %s answered %d %+v", p.Name, a.code, a.index)
				}
			}
		}
		return true, ""
	})
	return pods
}

// waitGone waits until none of pods answers as itself any more (kwok may give its IP to a new pod).
func waitGone(t *testing.T, pods []corev1.Pod) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		for _, p := range pods {
			if a, err := getIndex(p.Status.PodIP + ":9898"); err == nil && a.podHeader == p.Name {
				return false, fmt.Sprintf("old pod %s still answers at %s", p.Name, p.Status.PodIP)
			}
		}
		return true, ""
	})
}

func TestSupervisorRunsOneProcessPerPodThroughARelease(t *testing.T) {
	requireNetns(t)
	env := testenv.Start(t)
	if !env.Cluster {
		t.Fatal("needs the local control plane (controllers and kwok): run through hack/test.sh")
	}
	ns := env.NewNamespace(t)
	bin := buildPods(t)
	ctx := context.Background()
	const app = "podinfo"

	lw := &logWriter{t: t}
	sup, err := supervisor.New(env.Config, supervisor.Options{
		Selector: "app=" + app, Namespace: ns, Binary: bin, Log: lw, MaxGracePeriod: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- sup.Run(runCtx) }()
	stopped := false
	stopSupervisor := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30s of its context ending")
		}
		lw.mu.Lock()
		lw.done = true
		lw.mu.Unlock()
	}
	t.Cleanup(stopSupervisor)

	// Every process the supervisor ever ran, to prove at the end that none is left.
	var pidsMu sync.Mutex
	var pids []int
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		for watchCtx.Err() == nil {
			pidsMu.Lock()
			for _, c := range sup.Children() {
				if c.PID != 0 && !slices.Contains(pids, c.PID) {
					pids = append(pids, c.PID)
				}
			}
			pidsMu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()

	for name, rate := range map[string]string{"faults": "0", "faults-bad": "1"} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string]string{"rate": rate}}
		if err := env.Client.Create(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	d := deployment(app, "ghcr.io/stefanprodan/podinfo:6.0.0", "faults")
	d.Namespace = ns
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	first := waitForPods(t, env, ns, app, "ghcr.io/stefanprodan/podinfo:6.0.0", "6.0.0", false)
	t.Logf("6.0.0 answers on %s and %s", first[0].Status.PodIP, first[1].Status.PodIP)

	// A new image tag: new pods answer with the new version, the old ones stop.
	updateTemplate(t, env, ns, app, func(c *corev1.Container) { c.Image = "ghcr.io/stefanprodan/podinfo:6.0.1" })
	second := waitForPods(t, env, ns, app, "ghcr.io/stefanprodan/podinfo:6.0.1", "6.0.1", false)
	waitGone(t, first)

	// The template now reads ERROR_RATE from another ConfigMap (as Pennant points a primary at
	// <name>-primary): the new pods read it and fail every request.
	updateTemplate(t, env, ns, app, func(c *corev1.Container) {
		c.Env[1].ValueFrom.ConfigMapKeyRef.Name = "faults-bad"
	})
	third := waitForPods(t, env, ns, app, "ghcr.io/stefanprodan/podinfo:6.0.1", "6.0.1", true)
	waitGone(t, second)

	if err := env.Client.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}
	waitGone(t, third)
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		children := sup.Children()
		return len(children) == 0, fmt.Sprintf("children left after the Deployment's deletion: %+v", children)
	})
	stopWatch()
	pidsMu.Lock()
	defer pidsMu.Unlock()
	if len(pids) < 6 {
		t.Errorf("saw %d child processes, want at least 6 (2 pods × 3 releases)", len(pids))
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("child process %d still exists (kill -0: %v)", pid, err)
		}
	}
	stopSupervisor()
	// kwok gives a deleted pod's IP to the next pod at once: its process must not fail to bind
	// because the old pod's process still drains there.
	if lw.crashes != 0 {
		t.Errorf("%d children exited by themselves (e.g. address already in use), want none", lw.crashes)
	}
}

func updateTemplate(t *testing.T, env *testenv.Env, ns, name string, change func(*corev1.Container)) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		var d appsv1.Deployment
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			return false, err.Error()
		}
		change(&d.Spec.Template.Spec.Containers[0])
		err := env.Client.Update(context.Background(), &d)
		return err == nil, fmt.Sprintf("updating Deployment %s: %v", name, err)
	})
}

// A pod waits for the ConfigMap its env refers to, a child that exits by itself is started again,
// and the supervisor stops its children when its context ends.
func TestSupervisorRestartsAChildThatExitsAndStopsAllOnExit(t *testing.T) {
	requireNetns(t)
	env := testenv.Start(t)
	if !env.Cluster {
		t.Fatal("needs the local control plane (controllers and kwok): run through hack/test.sh")
	}
	ns := env.NewNamespace(t)
	bin := buildPods(t)
	ctx := context.Background()
	lw := &logWriter{t: t}
	defer func() { lw.mu.Lock(); lw.done = true; lw.mu.Unlock() }()
	sup, err := supervisor.New(env.Config, supervisor.Options{
		Selector: "app=restart", Namespace: ns, Binary: bin, Log: lw, RestartBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runDone := make(chan error, 1)
	go func() { runDone <- sup.Run(runCtx) }()

	d := deployment("restart", "podinfo:7.0.0", "faults")
	d.Namespace = ns
	d.Spec.Replicas = ptr.To[int32](1)
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	// Like a kubelet, the supervisor does not start a pod whose env refers to a missing ConfigMap,
	// and starts it once the ConfigMap exists.
	testenv.Eventually(t, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		pods, err := servingPods(ctx, env.Client, ns, "restart")
		return err == nil && len(pods) == 1, fmt.Sprintf("serving pods %d (%v)", len(pods), err)
	})
	time.Sleep(500 * time.Millisecond)
	if children := sup.Children(); len(children) != 0 {
		t.Fatalf("children %+v before the ConfigMap ERROR_RATE refers to exists", children)
	}
	if err := env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "faults", Namespace: ns}, Data: map[string]string{"rate": "0"}}); err != nil {
		t.Fatal(err)
	}
	var pid int
	var ip string
	testenv.Eventually(t, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		children := sup.Children()
		if len(children) != 1 || children[0].PID == 0 {
			return false, fmt.Sprintf("children %+v", children)
		}
		pid, ip = children[0].PID, children[0].Addrs[0]
		a, err := getIndex(ip)
		return err == nil && a.ver == "7.0.0", fmt.Sprintf("GET %s: %+v %v", ip, a, err)
	})

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		children := sup.Children()
		if len(children) != 1 || children[0].PID == 0 || children[0].PID == pid {
			return false, fmt.Sprintf("children %+v after killing %d", children, pid)
		}
		a, err := getIndex(ip)
		return err == nil && a.code == 200, fmt.Sprintf("GET %s after the restart: %+v %v", ip, a, err)
	})
	last := sup.Children()[0].PID

	stop()
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
	}
	if n := len(sup.Children()); n != 0 {
		t.Errorf("%d children after Run returned", n)
	}
	if err := syscall.Kill(last, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("child %d survived the supervisor's exit (kill -0: %v)", last, err)
	}
	if _, err := getIndex(ip); err == nil {
		t.Errorf("%s still answers after the supervisor's exit", ip)
	}
}
