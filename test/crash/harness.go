package crash

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// controller is the real pennant binary running as a child process against the apiserver through a
// countingProxy (plain HTTP on loopback toward pennant, the admin credentials toward the apiserver).
type controller struct {
	t          *testing.T
	binary     string
	kubeconfig string
	args       []string
	Proxy      *countingProxy
	cmd        *exec.Cmd
	exited     chan struct{}
}

// buildPennant compiles ./cmd/pennant into a temporary directory and returns the binary's path
// ($PENNANT_BINARY, when set, names a prebuilt binary to use instead).
func buildPennant(t *testing.T) string {
	t.Helper()
	if prebuilt := os.Getenv("PENNANT_BINARY"); prebuilt != "" {
		return prebuilt
	}
	bin := filepath.Join(t.TempDir(), "pennant")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/pennant/pennant/cmd/pennant").CombinedOutput()
	if err != nil {
		t.Fatalf("go build pennant: %v\n%s", err, out)
	}
	return bin
}

// newController starts a proxy in front of the apiserver named by $KUBECONFIG and prepares pennant
// (not started yet) with a kubeconfig that points at the proxy, scoped to namespace.
func newController(t *testing.T, binary, namespace string, extraArgs ...string) *controller {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatalf("transport: %v", err)
	}
	target, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatalf("apiserver address %q: %v", cfg.Host, err)
	}
	proxy := newCountingProxy(target, transport)
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: proxy, cluster: {server: %q}}]
users: [{name: pennant, user: {}}]
contexts: [{name: proxy, context: {cluster: proxy, user: pennant}}]
current-context: proxy
`, front.URL)
	if err := os.WriteFile(kc, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-kubeconfig=" + kc, "-namespace=" + namespace,
		"-port=" + strconv.Itoa(freePort(t)), "-health-probe-bind-address=127.0.0.1:" + strconv.Itoa(freePort(t))}, extraArgs...)
	c := &controller{t: t, binary: binary, kubeconfig: kc, args: args, Proxy: proxy}
	t.Cleanup(c.Kill)
	return c
}

// Start runs pennant; its output goes to the test log.
func (c *controller) Start() {
	c.t.Helper()
	c.cmd = exec.Command(c.binary, c.args...)
	c.cmd.Stdout, c.cmd.Stderr = testWriter{c.t}, testWriter{c.t}
	if err := c.cmd.Start(); err != nil {
		c.t.Fatalf("start pennant: %v", err)
	}
	exited := make(chan struct{})
	c.exited = exited
	cmd := c.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
}

// Kill SIGKILLs pennant (if running) and waits until it is gone.
func (c *controller) Kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
	c.cmd = nil
}

// CrashAfter arms the proxy to SIGKILL the running pennant right after its n-th mutating request
// from now on, once the apiserver has applied it; the returned channel is closed when the process
// is gone. Start runs a new process afterwards.
func (c *controller) CrashAfter(n int) <-chan struct{} {
	proc, exited := c.cmd.Process, c.exited
	crashed := make(chan struct{})
	c.Proxy.ArmCrash(n, func() {
		_ = proc.Signal(syscall.SIGKILL)
		<-exited
		close(crashed)
	})
	return crashed
}

// Settle waits until pennant has made no mutating request for quiet (at most timeout).
func (c *controller) Settle(quiet, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	last, since := c.Proxy.Mutations(), time.Now()
	for time.Since(since) < quiet && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if n := c.Proxy.Mutations(); n != last {
			last, since = n, time.Now()
		}
	}
}

// Exited is closed when the running pennant process has ended.
func (c *controller) Exited() <-chan struct{} { return c.exited }

// HealthAddress returns the -health-probe-bind-address pennant was given.
func (c *controller) HealthAddress() string {
	for _, a := range c.args {
		if v, ok := cutPrefix(a, "-health-probe-bind-address="); ok {
			return v
		}
	}
	return ""
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Logf("pennant: %s", b); return len(b), nil }

var _ http.Handler = (*countingProxy)(nil)
