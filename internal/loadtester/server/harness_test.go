package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/loadtester/gates"
	"github.com/pennant/pennant/internal/webhooks"
)

// testServer is a load tester on 127.0.0.1 for one test.
type testServer struct {
	t   *testing.T
	srv *Server
	url string
	hs  *http.Server
}

// testRemoteAddr, set by a test's client only, makes the test server see the request as coming
// from that address: no real non-loopback connection is possible in a test.
const testRemoteAddr = "X-Test-Remote-Addr"

// startServer starts a load tester on 127.0.0.1 with cfg's zero fields defaulted: gates in memory,
// the gates package's authorizer without a token (loopback only), a short timeout.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.Gates == nil {
		cfg.Gates = gates.NewMemoryStore(0)
	}
	if cfg.GateAuthorizer == nil {
		cfg.GateAuthorizer = gates.NewAuthorizer("")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, srv: s, url: "http://" + ln.Addr().String(), hs: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if addr := r.Header.Get(testRemoteAddr); addr != "" {
			r.RemoteAddr = addr
		}
		s.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = ts.hs.Serve(ln) }()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Tasks first: Shutdown waits for the requests of blocking tasks.
	ts.srv.Close()
	_ = ts.hs.Shutdown(ctx)
}

// testCanary is the canary whose webhooks the tests call.
func testCanary() *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Status:     flaggerv1.CanaryStatus{LastAppliedSpec: "5d8f7c9b4"},
	}
}

// call sends a webhook as Pennant's controller does (internal/webhooks), to path on the server.
func (ts *testServer) call(path string, hookType flaggerv1.HookType, metadata map[string]string) error {
	ts.t.Helper()
	hook := flaggerv1.CanaryWebhook{Name: "hook", Type: hookType, URL: ts.url + path, Timeout: "30s"}
	if metadata != nil {
		hook.Metadata = &metadata
	}
	return webhooks.NewCaller().Call(context.Background(), testCanary(), hook, flaggerv1.CanaryPhaseProgressing, webhooks.Metadata(hook))
}

// post sends the controller's payload for the test canary with metadata and returns the answer.
func (ts *testServer) post(path string, metadata map[string]string) (int, string) {
	ts.t.Helper()
	cd := testCanary()
	body, err := json.Marshal(webhooks.Payload{Name: cd.Name, Namespace: cd.Namespace, Phase: "Progressing", Checksum: webhooks.Checksum(cd), Metadata: metadata})
	if err != nil {
		ts.t.Fatal(err)
	}
	return ts.postRaw(path, string(body))
}

// postRaw posts a body as is.
func (ts *testServer) postRaw(path, body string) (int, string) {
	ts.t.Helper()
	resp, err := http.Post(ts.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// fakeHey stands for the hey engine in pure unit tests: it handles lines starting with "hey ",
// counts its runs and blocks each until released (or its context ends).
type fakeHey struct {
	runs    atomic.Int32
	running atomic.Int32
	release chan struct{}
	once    sync.Once
	canary  atomic.Value // types.NamespacedName of the last task
}

func newFakeHey() *fakeHey { return &fakeHey{release: make(chan struct{})} }

func (f *fakeHey) Handles(command string) bool { return strings.HasPrefix(command, "hey ") }

func (f *fakeHey) Prepare(canary types.NamespacedName, command string) (func(ctx context.Context) (string, error), error) {
	f.canary.Store(canary)
	if strings.Contains(command, "-bad") {
		return nil, errors.New("flag provided but not defined: -bad")
	}
	return func(ctx context.Context) (string, error) {
		f.runs.Add(1)
		f.running.Add(1)
		defer f.running.Add(-1)
		select {
		case <-f.release:
			return "Summary: 10 requests", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}, nil
}

func (f *fakeHey) finish() { f.once.Do(func() { close(f.release) }) }

// eventually polls cond until it holds, at most timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesWith lists the pids of processes whose command line holds marker.
func processesWith(t *testing.T, marker string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte(marker)) && !isZombie(e.Name()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid string) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// goroutinesSettle waits until the goroutine count is back to at most base.
func goroutinesSettle(t *testing.T, base int) {
	t.Helper()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), base, buf[:n])
		}
		http.DefaultClient.CloseIdleConnections()
		time.Sleep(20 * time.Millisecond)
	}
}
