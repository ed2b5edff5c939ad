package crash

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

func TestIsMutatingIgnoresEventsAndLeases(t *testing.T) {
	cases := []struct {
		method, path string
		want         bool
	}{
		{http.MethodGet, "/apis/apps/v1/namespaces/a/deployments", false},
		{http.MethodPut, "/apis/apps/v1/namespaces/a/deployments/podinfo-primary", true},
		{http.MethodPatch, "/apis/flagger.app/v1beta1/namespaces/a/canaries/podinfo/status", true},
		{http.MethodPost, "/api/v1/namespaces/a/events", false},
		{http.MethodPatch, "/apis/events.k8s.io/v1/namespaces/a/events/x", false},
		{http.MethodPut, "/apis/coordination.k8s.io/v1/namespaces/a/leases/pennant", false},
		{http.MethodDelete, "/api/v1/namespaces/a/services/podinfo-canary", true},
	}
	for _, c := range cases {
		if got := isMutating(c.method, c.path); got != c.want {
			t.Errorf("isMutating(%s %s) = %v, want %v", c.method, c.path, got, c.want)
		}
	}
}

// The crash hook fires after the backend applied the N-th mutation and the client never sees its answer.
func TestProxyCrashesAfterTheNthMutationIsApplied(t *testing.T) {
	var applied atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			applied.Add(1)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	p := newCountingProxy(target, http.DefaultTransport)
	front := httptest.NewServer(p)
	defer front.Close()

	var crashedAt int32 = -1
	p.ArmCrash(2, func() { crashedAt = applied.Load() })
	do := func(method string) (int, string) {
		req, _ := http.NewRequest(method, front.URL+"/apis/apps/v1/namespaces/a/deployments/x", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do(http.MethodGet); code != 200 || body != "ok" {
		t.Fatalf("GET: %d %q", code, body)
	}
	if code, _ := do(http.MethodPut); code != 200 {
		t.Fatalf("first PUT: %d", code)
	}
	if crashedAt != -1 {
		t.Fatalf("crashed after the first mutation")
	}
	if code, body := do(http.MethodPatch); code == 200 || body == "ok" {
		t.Fatalf("second PATCH reached the client: %d %q", code, body)
	}
	if crashedAt != 2 {
		t.Fatalf("crash hook ran with %d mutations applied, want 2", crashedAt)
	}
	if got := p.Mutations(); got != 2 {
		t.Fatalf("Mutations() = %d, want 2", got)
	}
}
