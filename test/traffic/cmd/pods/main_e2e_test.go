//go:build e2e

package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pennant/pennant/internal/testenv"
	"github.com/pennant/pennant/test/traffic/podinfo"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// supervisedPod builds pods, starts `pods supervise` as a harness does, creates a bare pod for it and
// waits until the pod answers on its IP. It returns the process, a channel closed at its exit, a
// function returning its exit error then, its stderr, the namespace and the pod's address.
func supervisedPod(t *testing.T, logDir string) (*exec.Cmd, <-chan struct{}, func() error, *strings.Builder, string, string) {
	t.Helper()
	if os.Getenv("PENNANT_NETNS") == "" {
		t.Fatal("pod IPs (10.244.0.0/16) are not local here: run through hack/netns.sh, e.g. " +
			"go mod download && GO_TEST_PKGS=./test/traffic/... GO_TEST_FLAGS=\"-tags e2e -v\" hack/netns.sh hack/test.sh")
	}
	env := testenv.Start(t)
	if !env.Cluster {
		t.Fatal("needs the local control plane (controllers and kwok): run through hack/test.sh")
	}
	ns := env.NewNamespace(t)
	bin := filepath.Join(t.TempDir(), "pods")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	stderr := &strings.Builder{}
	cmd := exec.Command(bin, "supervise", "-kubeconfig", os.Getenv("KUBECONFIG"), "-selector", "app=cli",
		"-namespace", ns, "-log-dir", logDir)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		t.Logf("supervisor's stderr:\n%s", stderr.String())
	})

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cli", Namespace: ns, Labels: map[string]string{"app": "cli"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](5),
			Containers: []corev1.Container{{
				Name: "podinfod", Image: "ghcr.io/stefanprodan/podinfo:6.0.3",
				Ports: []corev1.ContainerPort{{ContainerPort: 9898}},
				Env:   []corev1.EnvVar{{Name: "SHUTDOWN_DELAY", Value: "200ms"}},
			}},
		},
	}
	ctx := context.Background()
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var addr string
	testenv.Eventually(t, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		var p corev1.Pod
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil || p.Status.PodIP == "" {
			return false, fmt.Sprintf("pod without IP yet (%v)", err)
		}
		addr = p.Status.PodIP + ":9898"
		resp, err := httpClient.Get("http://" + addr + "/")
		if err != nil {
			return false, fmt.Sprintf("GET %s: %v", addr, err)
		}
		resp.Body.Close()
		return resp.Header.Get(podinfo.HeaderPodName) == "cli" && resp.Header.Get(podinfo.HeaderVersion) == "6.0.3",
			fmt.Sprintf("GET %s: headers %v", addr, resp.Header)
	})
	return cmd, exited, func() error { <-exited; return waitErr }, stderr, ns, addr
}

var httpClient = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// `pods supervise` serves a bare pod on its IP, writes the pod's output to -log-dir, and on SIGTERM
// stops its child and exits 0.
func TestSuperviseCommandServesAPodAndStopsItsChildOnSIGTERM(t *testing.T) {
	logDir := filepath.Join(t.TempDir(), "logs")
	cmd, exited, exitErr, stderr, ns, addr := supervisedPod(t, logDir)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if err := exitErr(); err != nil {
			t.Fatalf("supervise after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("supervise still runs 30s after SIGTERM")
	}
	if resp, err := httpClient.Get("http://" + addr + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("%s still answers after the supervisor exited", addr)
	}
	for _, want := range []string{"start " + ns + "/cli ip=", "version=6.0.3", "stop " + ns + "/cli"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("supervisor's stderr lacks %q", want)
		}
	}
	logged, err := os.ReadFile(filepath.Join(logDir, ns+"_cli.log"))
	if err != nil || !strings.Contains(string(logged), "serving on "+addr) {
		t.Errorf("pod log %q (%v), want the child's output", logged, err)
	}
}

// A SIGKILLed supervisor leaves no child behind (Pdeathsig).
func TestSuperviseCommandKilledLeavesNoChild(t *testing.T) {
	cmd, exited, _, _, _, addr := supervisedPod(t, t.TempDir())
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		resp, err := httpClient.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil, fmt.Sprintf("%s still answers after the supervisor was SIGKILLed", addr)
	})
}
