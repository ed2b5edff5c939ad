package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

const (
	unrelatedNamespaces = 10
	unrelatedPerKind    = 10000 // Secrets, and as many ConfigMaps
	unrelatedSize       = 10 << 10
	// maxRSSRatio is the target: the controller's RSS with the unrelated objects over its RSS without.
	maxRSSRatio = 1.5
)

// BenchmarkMemoryUnrelatedConfigs measures the resident memory of the real pennant binary, watching
// the whole cluster, without and then with 10,000 Secrets and 10,000 ConfigMaps of 10 KiB that no
// canary references, each time in a fresh process that has listed what it caches. A canary that
// tracks a Secret and a ConfigMap runs in the first of their 10 namespaces, so a tenth of them
// share a namespace with tracked configs. Target: less than 1.5 x the RSS without them.
func BenchmarkMemoryUnrelatedConfigs(b *testing.B) {
	env := testenv.Start(b)
	env.RequireCluster(b)
	bin := buildPennant(b)
	for b.Loop() {
		namespaces := make([]string, unrelatedNamespaces)
		for i := range namespaces {
			namespaces[i] = env.NewNamespace(b)
		}
		s := &setup{ns: namespaces[0], c: env.Client}
		trackingCanary(b, s, bin)
		without, heapWithout := measureRSS(b, env, bin)
		createUnrelatedConfigs(b, env, namespaces)
		with, heapWith := measureRSS(b, env, bin)
		releaseCanary(b, s)
		deleteNamespaces(b, env.Client, namespaces)

		ratio := float64(with) / float64(without)
		b.ReportMetric(float64(without)/(1<<20), "rss-MiB-without")
		b.ReportMetric(float64(with)/(1<<20), "rss-MiB-with")
		b.ReportMetric(ratio, "rss-ratio")
		fmt.Printf("memory: controller RSS %.1f MiB without and %.1f MiB with %d Secrets and %d ConfigMaps of %d KiB "+
			"(Go heap %.1f / %.1f MiB): %.2f x (target < %.1f x)\n",
			float64(without)/(1<<20), float64(with)/(1<<20), unrelatedPerKind, unrelatedPerKind, unrelatedSize>>10,
			float64(heapWithout)/(1<<20), float64(heapWith)/(1<<20), ratio, maxRSSRatio)
		if ratio >= maxRSSRatio {
			b.Errorf("RSS with the unrelated objects is %.2f x the RSS without them, want < %.1f x", ratio, maxRSSRatio)
		}
	}
}

// buildPennant compiles ./cmd/pennant into a temporary directory ($PENNANT_BINARY names a prebuilt one).
func buildPennant(b *testing.B) string {
	b.Helper()
	if prebuilt := os.Getenv("PENNANT_BINARY"); prebuilt != "" {
		return prebuilt
	}
	bin := filepath.Join(b.TempDir(), "pennant")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/pennant/pennant/cmd/pennant").CombinedOutput()
	if err != nil {
		b.Fatalf("go build pennant: %v\n%s", err, out)
	}
	return bin
}

// trackingCanary creates, in s's namespace, a canary whose target references a Secret and a
// ConfigMap, and runs pennant until the canary is initialized (with the -primary copies).
func trackingCanary(b *testing.B, s *setup, bin string) {
	b.Helper()
	d := deployment("podinfo")
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{
		{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-creds"}}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-settings"}}},
	}
	s.create(b,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-creds"}, Data: map[string][]byte{"password": []byte("secret")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-settings"}, Data: map[string]string{"color": "blue"}},
		d, bgCanary("podinfo", "10s", 3))
	stop := runPennant(b, bin)
	defer stop()
	s.waitPhase(b, "podinfo", flaggerv1.CanaryPhaseInitialized, 3*time.Minute)
	s.get(b, "podinfo-creds-primary", &corev1.Secret{})
}

// releaseCanary removes the canary's finalizers, which no pennant runs to remove any more.
func releaseCanary(b *testing.B, s *setup) {
	b.Helper()
	cd := &flaggerv1.Canary{}
	s.get(b, "podinfo", cd)
	cd.Finalizers = nil
	if err := s.c.Update(context.Background(), cd); err != nil {
		b.Errorf("removing the canary's finalizers: %v", err)
	}
}

// measureRSS runs a fresh pennant on the whole cluster ($KUBECONFIG), waits until it is ready and has
// settled, and returns the largest VmRSS of a few samples and the Go heap it reports alongside.
func measureRSS(b *testing.B, env *testenv.Env, bin string) (rss, heap int64) {
	b.Helper()
	before := secretWatches(b, env)
	pid, port, stop := startPennant(b, bin)
	defer stop()
	time.Sleep(15 * time.Second) // the controllers' own informers start after readiness; let them sync
	for range 10 {
		rss = max(rss, vmRSS(b, pid))
		heap = max(heap, goHeap(b, port))
		time.Sleep(time.Second)
	}
	after := secretWatches(b, env)
	fmt.Printf("memory: pennant watches Secrets cluster-wide: %+.0f, in single namespaces: %+.0f\n",
		after["cluster"]-before["cluster"], after["namespace"]-before["namespace"])
	if after["namespace"] <= before["namespace"] {
		b.Errorf("pennant watches no Secrets in the canary's namespace: the measure misses its config cache")
	}
	return rss, heap
}

// secretWatches is the apiserver's count of running watches of Secrets, by scope (cluster, namespace).
func secretWatches(b *testing.B, env *testenv.Env) map[string]float64 {
	b.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(string(apiserverMetrics(b, env)), "\n") {
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `resource="secrets"`) ||
			!strings.Contains(line, `verb="WATCH"`) {
			continue
		}
		for _, scope := range []string{"cluster", "namespace"} {
			if strings.Contains(line, `scope="`+scope+`"`) {
				v, _ := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
				out[scope] += v
			}
		}
	}
	return out
}

// apiserverMetrics is the API server's /metrics exposition.
func apiserverMetrics(b *testing.B, env *testenv.Env) []byte {
	b.Helper()
	rc, err := rest.RESTClientFor(withCodecs(env.Config))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := rc.Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatalf("apiserver metrics: %v", err)
	}
	return raw
}

func withCodecs(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.GroupVersion = &schema.GroupVersion{}
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	return cfg
}

// runPennant starts pennant and waits until it is ready; stop ends it.
func runPennant(b *testing.B, bin string) (stop func()) {
	_, _, stop = startPennant(b, bin)
	return stop
}

// startPennant runs pennant on the whole cluster ($KUBECONFIG), with the default flags and args,
// and waits until it is ready. It returns its pid, its metrics port and how to stop it.
func startPennant(b *testing.B, bin string, args ...string) (pid, port int, stop func()) {
	b.Helper()
	port, probePort := freePort(b), freePort(b)
	cmd := exec.Command(bin, append([]string{"-kubeconfig=" + os.Getenv("KUBECONFIG"), "-mesh-provider=kubernetes", "-log-level=info",
		"-port=" + strconv.Itoa(port), "-health-probe-bind-address=127.0.0.1:" + strconv.Itoa(probePort)}, args...)...)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if path := os.Getenv("BENCH_PENNANT_LOG"); path != "" {
		// Kept for a look at what the controller did (BENCH_PENNANT_LOG=/tmp/pennant.log).
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = f.Close() })
		cmd.Stdout, cmd.Stderr = io.MultiWriter(logs, f), io.MultiWriter(logs, f)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting pennant: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	}
	b.Cleanup(stop)
	ready := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	testenv.Eventually(b, 3*time.Minute, 200*time.Millisecond, func() (bool, string) {
		select {
		case <-exited:
			b.Fatalf("pennant exited before it was ready:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(ready)
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, "readyz: " + resp.Status
	})
	return cmd.Process.Pid, port, stop
}

// vmRSS reads a process's resident set size from /proc, in bytes.
func vmRSS(b *testing.B, pid int) int64 { return procStatusBytes(b, pid, "VmRSS") }

// procStatusBytes reads a size field (VmRSS, VmHWM) of a process's /proc status, in bytes.
func procStatusBytes(b *testing.B, pid int, field string) int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("reading pennant's %s: %v", field, err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("%s line %q: %v", field, line, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// goHeap is go_memstats_heap_inuse_bytes from pennant's /metrics (0 when it cannot be read).
func goHeap(b *testing.B, port int) int64 {
	b.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	return 0
}

// createUnrelatedConfigs creates the Secrets and ConfigMaps of 10 KiB, spread over namespaces, with
// a client of its own that is allowed a high request rate.
func createUnrelatedConfigs(b *testing.B, env *testenv.Env, namespaces []string) {
	b.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	objs := make(chan client.Object)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for o := range objs {
				if err := create(c, o); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range unrelatedPerKind {
		ns, name := namespaces[i%len(namespaces)], fmt.Sprintf("unrelated-%05d", i)
		objs <- &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data: map[string][]byte{"blob": randomBytes(b, unrelatedSize)}}
		objs <- &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Data: map[string]string{"blob": base64.StdEncoding.EncodeToString(randomBytes(b, unrelatedSize*3/4))}}
	}
	close(objs)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatalf("creating the unrelated objects: %v", err)
	default:
	}
	fmt.Printf("memory: created %d Secrets and %d ConfigMaps of %d KiB in %s\n", unrelatedPerKind, unrelatedPerKind,
		unrelatedSize>>10, time.Since(began).Round(100*time.Millisecond))
}

// create retries what a loaded apiserver may refuse for a moment.
func create(c client.Client, o client.Object) error {
	var err error
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = c.Create(ctx, o)
		cancel()
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("%s/%s: %w", o.GetNamespace(), o.GetName(), err)
}

func randomBytes(b *testing.B, n int) []byte {
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		b.Fatal(err)
	}
	return p
}

// deleteNamespaces deletes the namespaces now (NewNamespace's cleanup would only at the end) and
// waits, within limits, until the namespace controller has removed their contents.
func deleteNamespaces(b *testing.B, c client.Client, namespaces []string) {
	b.Helper()
	ctx := context.Background()
	for _, name := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := c.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
			b.Errorf("deleting namespace %s: %v", name, err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, name := range namespaces {
		for time.Now().Before(deadline) {
			err := c.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{})
			if apierrors.IsNotFound(err) {
				break
			}
			time.Sleep(time.Second)
		}
	}
}

func freePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
