package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/loadtester/load"
)

// The seed's hey load tests, sent as the controller sends them, run in the built-in engine with
// running commands off: the requests reach the application as the line asks.
func TestSeedHeyLinesRunBuiltInWithExecOff(t *testing.T) {
	var requests atomic.Int32
	var mu sync.Mutex
	var hosts, canaryHeaders []string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		mu.Lock()
		hosts = append(hosts, r.Host)
		canaryHeaders = append(canaryHeaders, r.Header.Get("X-Canary"))
		mu.Unlock()
	}))
	defer app.Close()
	reg := prometheus.NewRegistry()
	ts := startServer(t, Config{Registry: reg, Engines: []Engine{HeyEngine{Metrics: load.NewMetrics(reg)}}})

	// Seed 003's A/B load test, shortened from -z 1m, as a rollout webhook without a type (cmd).
	line := "hey -z 1s -q 5 -c 2 -H 'X-Canary: insider' -host app.example.com " + app.URL
	if err := ts.call("/", flaggerv1.RolloutHook, map[string]string{"cmd": line}); err != nil {
		t.Fatalf("the seed's load test: %v", err)
	}
	eventually(t, 10*time.Second, "the load test sent its requests", func() bool { return requests.Load() >= 8 })
	time.Sleep(1500 * time.Millisecond) // the run is over
	mu.Lock()
	for i := range hosts {
		if hosts[i] != "app.example.com" || canaryHeaders[i] != "insider" {
			t.Fatalf("request %d: Host %q X-Canary %q, want app.example.com and insider", i, hosts[i], canaryHeaders[i])
		}
	}
	mu.Unlock()
	if n := requests.Load(); n > 12 {
		t.Errorf("%d requests for 2 workers at 5 req/s for 1s, want about 10", n)
	}

	// A bash hey task blocks and can return its report.
	code, body := ts.post("/", map[string]string{"type": "bash", "cmd": "hey -n 20 -c 2 " + app.URL, "returnCmdOutput": "true"})
	if code != http.StatusOK || !strings.Contains(body, "requests:     20") || !strings.Contains(body, "200: 20") {
		t.Fatalf("bash hey: %d %q", code, body)
	}
	if code, body := ts.post("/", map[string]string{"cmd": "hey -z 1s -D /etc/passwd " + app.URL}); code != http.StatusBadRequest {
		t.Errorf("a hey line reading a file: %d %q, want 400", code, body)
	}

	// A line from a YAML block scalar (cmd: |) ends with a line break: still one hey command. A
	// second command after it is refused, as the engine runs no shell.
	code, body = ts.post("/", map[string]string{"type": "bash", "cmd": "hey -n 4 -c 2 " + app.URL + "\n", "returnCmdOutput": "true"})
	if code != http.StatusOK || !strings.Contains(body, "requests:     4") {
		t.Errorf("a hey line ending with a line break: %d %q", code, body)
	}
	code, body = ts.post("/", map[string]string{"cmd": "hey -n 4 -c 2 " + app.URL + "\ncurl " + app.URL})
	if code != http.StatusBadRequest || !strings.Contains(body, "a line break separates commands in sh") {
		t.Errorf("a hey line and a second command: %d %q, want 400", code, body)
	}
}
