package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PrometheusBinary is Debian's Prometheus, which hack/test.sh installs.
const PrometheusBinary = "/usr/bin/prometheus"

// NeedBinary skips the test when binary is missing under a bare `go test`, and fails it under
// `make test` (hack/test.sh installs the Debian packages the tests use).
func NeedBinary(t testing.TB, binary string) {
	t.Helper()
	if _, err := os.Stat(binary); err != nil {
		if os.Getenv(EnvCluster) == "1" {
			t.Fatalf("%s is not installed, though hack/test.sh installs it: %v", binary, err)
		}
		t.Skipf("%s is not installed: run make test (installs it)", binary)
	}
}

// StartPrometheus runs a real Prometheus with config on a free loopback port and a temporary
// storage directory, and stops it when the test ends; it returns its base URL. A port taken in
// the meantime is retried on another, up to three times.
func StartPrometheus(t testing.TB, config string) string {
	t.Helper()
	NeedBinary(t, PrometheusBinary)
	dir := t.TempDir()
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := FreeLoopbackAddr(t)
		var out syncBuffer
		cmd := exec.Command(PrometheusBinary,
			"--config.file="+configFile,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address="+addr,
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", PrometheusBinary, err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		base := "http://" + addr
		if lastErr = waitReady(base, exited, 30*time.Second); lastErr == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("prometheus output:\n%s", out.String())
				}
			})
			return base
		}
		stop()
		t.Logf("prometheus on %s did not start (%v):\n%s", addr, lastErr, out.String())
	}
	t.Fatalf("prometheus did not start: %v", lastErr)
	return ""
}

// FreeLoopbackAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func waitReady(base string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not ready in time")
}

// syncBuffer is a bytes.Buffer safe for a process's output and a test's reads at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
