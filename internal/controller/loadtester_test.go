package controller_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/loadtester/gates"
	"github.com/pennant/pennant/internal/loadtester/server"
)

// loadTester is Pennant's load tester serving on 127.0.0.1, in this process.
type loadTester struct {
	url string
}

func startLoadTester(t *testing.T, exec server.ExecPolicy) *loadTester {
	t.Helper()
	s, err := server.New(server.Config{
		Gates:          gates.NewMemoryStore(0),
		GateAuthorizer: gates.NewAuthorizer(""),
		Exec:           exec,
		Timeout:        30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	})
	return &loadTester{url: "http://" + ln.Addr().String()}
}

// post sends a body to the load tester as `kubectl exec ... curl -d` does, from loopback.
func (lt *loadTester) post(t *testing.T, path, body string) int {
	t.Helper()
	resp, err := http.Post(lt.url+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A confirm-rollout webhook on the load tester's /gate/check holds the release in Waiting until
// someone opens the gate with /gate/open.
func TestLoadTesterGateHoldsReleaseUntilOpened(t *testing.T) {
	f := newFixture(t)
	lt := startLoadTester(t, server.ExecPolicy{})
	cd := blueGreenCanary("podinfo", "Deployment", 1)
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "approval", Type: flaggerv1.ConfirmRolloutHook, URL: lt.url + "/gate/check"}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseWaiting, phaseTimeout)
	f.waitEvent("Warning Halt "+f.key("podinfo")+" advancement waiting for approval approval", 5*time.Second)
	time.Sleep(2 * time.Second)
	if got := f.canary("podinfo").Status.Phase; got != flaggerv1.CanaryPhaseWaiting {
		t.Fatalf("phase = %q while the gate is closed, want Waiting", got)
	}
	// Another canary's gate opens nothing for this one.
	if code := lt.post(t, "/gate/open", `{"name":"other","namespace":"`+f.ns+`"}`); code != http.StatusAccepted {
		t.Fatalf("/gate/open answered %d", code)
	}
	time.Sleep(1500 * time.Millisecond)
	if got := f.canary("podinfo").Status.Phase; got != flaggerv1.CanaryPhaseWaiting {
		t.Fatalf("phase = %q after another canary's gate opened, want Waiting", got)
	}

	if code := lt.post(t, "/gate/open", `{"name":"podinfo","namespace":"`+f.ns+`"}`); code != http.StatusAccepted {
		t.Fatalf("/gate/open answered %d", code)
	}
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("primary image = %q, want 6.0.1", got)
	}
}

// A pre-rollout bash conformance test on the load tester (curl -f, allowed by -exec-allow) that
// fails fails the release.
func TestLoadTesterPreRolloutConformanceTestFailsRelease(t *testing.T) {
	f := newFixture(t)
	var asked atomic.Int32
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		http.Error(w, "broken canary", http.StatusInternalServerError)
	}))
	t.Cleanup(app.Close)
	lt := startLoadTester(t, server.ExecPolicy{Allow: true, Prefixes: server.ParsePrefixes("curl")})
	cd := blueGreenCanary("podinfo", "Deployment", 3)
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{
		Name: "acceptance-test", Type: flaggerv1.PreRolloutHook, URL: lt.url + "/", Timeout: "15s",
		Metadata: &map[string]string{"type": "bash", "cmd": "curl -sf -m 5 " + app.URL + "/token"},
	}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitEvent("Warning Halt "+f.key("podinfo")+" advancement pre-rollout check acceptance-test failed", phaseTimeout)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	if asked.Load() == 0 {
		t.Fatal("the conformance test never reached the application")
	}
	found := false
	for _, e := range f.events() {
		found = found || strings.Contains(e, "exit status 22")
	}
	if !found {
		t.Errorf("no event carries curl's failure (exit status 22):\n%s", strings.Join(f.events(), "\n"))
	}
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.0" {
		t.Errorf("primary image = %q after a failed release, want 6.0.0", got)
	}
}
