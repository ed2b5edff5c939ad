package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pennant/pennant/internal/testenv"
)

// Debian's prometheus package (2.42), which hack/test.sh installs, ships both.
const (
	prometheusBinary = "/usr/bin/prometheus"
	promtoolBinary   = "/usr/bin/promtool"
)

// need skips the test when binary is missing under a bare `go test`, and fails it under `make test`
// (hack/test.sh installs the package).
func need(t *testing.T, binary string) {
	t.Helper()
	if _, err := os.Stat(binary); err != nil {
		if os.Getenv(testenv.EnvCluster) == "1" {
			t.Fatalf("%s is not installed, though hack/test.sh installs it: %v", binary, err)
		}
		t.Skipf("%s is not installed: run make test (installs prometheus)", binary)
	}
}

// promtool runs promtool with args in dir and fails the test with its output when it fails.
func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	need(t, promtoolBinary)
	cmd := exec.Command(promtoolBinary, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// startPrometheus runs a real Prometheus on a free loopback port with a temporary storage
// directory and config (scrape and rule evaluation every second), and stops it when the test ends.
func startPrometheus(t *testing.T, config string) string {
	t.Helper()
	need(t, prometheusBinary)
	dir := t.TempDir()
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeLoopbackAddr(t)
		var out syncBuffer
		cmd := exec.Command(prometheusBinary,
			"--config.file="+configFile,
			"--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address="+addr,
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", prometheusBinary, err)
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

func freeLoopbackAddr(t *testing.T) string {
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

// sample is one series of an instant query's result.
type sample struct {
	labels map[string]string
	value  float64
}

// query runs an instant query with the plain HTTP API.
func query(base, expr string) ([]sample, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", expr, body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: result type %s, want vector", expr, body.Data.ResultType)
	}
	out := make([]sample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: value %q: %v", expr, s, err)
		}
		out = append(out, sample{labels: r.Metric, value: v})
	}
	return out, nil
}

// rulesHealth returns the health and last error of every rule Prometheus evaluated, by name.
func rulesHealth(base string) (map[string]string, error) {
	resp, err := http.Get(base + "/api/v1/rules")
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name           string `json:"name"`
					Health         string `json:"health"`
					LastError      string `json:"lastError"`
					LastEvaluation string `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			out[r.Name] = r.Health + " " + r.LastError
		}
	}
	return out, nil
}

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
