package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func testCanary() *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Status:     flaggerv1.CanaryStatus{LastAppliedSpec: "abc"},
	}
}

func TestCallPostsFlaggerPayload(t *testing.T) {
	var got Payload
	var contentType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		contentType = r.Header.Get("Content-Type")
		if r.Method != http.MethodPost {
			t.Errorf("method = %s, want POST", r.Method)
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("decoding payload: %v", err)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	cd := testCanary()
	hook := flaggerv1.CanaryWebhook{Name: "load-test", URL: srv.URL, Metadata: &map[string]string{"cmd": "hey"}}
	if err := NewCaller().Call(context.Background(), cd, hook, flaggerv1.CanaryPhaseProgressing, Metadata(hook)); err != nil {
		t.Fatalf("a 202 must pass: %v", err)
	}
	want := Payload{Name: "podinfo", Namespace: "test", Phase: "Progressing", Checksum: Checksum(cd), Metadata: map[string]string{"cmd": "hey"}}
	if got.Name != want.Name || got.Namespace != want.Namespace || got.Phase != want.Phase ||
		got.Checksum != want.Checksum || got.Metadata["cmd"] != "hey" {
		t.Errorf("payload = %+v, want %+v", got, want)
	}
	if contentType != "application/json" {
		t.Errorf("content type = %q", contentType)
	}
}

func TestStatusAbove202FailsWithBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "Forbidden: gate closed")
	}))
	defer srv.Close()
	err := NewCaller().Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL}, flaggerv1.CanaryPhaseWaiting, nil)
	if err == nil || err.Error() != "Forbidden: gate closed" {
		t.Fatalf("err = %v, want the response body", err)
	}
}

func TestRetriesUntilSuccess(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	hook := flaggerv1.CanaryWebhook{URL: srv.URL, Retries: 2}
	if err := NewCaller().Call(context.Background(), testCanary(), hook, flaggerv1.CanaryPhaseProgressing, nil); err != nil {
		t.Fatalf("second attempt succeeded, got %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want 2", calls.Load())
	}
}

func TestTimeoutFailsHangingWebhook(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	began := time.Now()
	err := NewCaller().Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL, Timeout: "1s"}, flaggerv1.CanaryPhaseProgressing, nil)
	if err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %s, want about the 1s timeout", took)
	}
}

func TestDisableTLSAcceptsSelfSignedCertificates(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	c := NewCaller()
	if err := c.Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL}, flaggerv1.CanaryPhaseProgressing, nil); err == nil {
		t.Fatal("an unknown certificate authority must fail without disableTLS")
	}
	if err := c.Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL, DisableTLS: true}, flaggerv1.CanaryPhaseProgressing, nil); err != nil {
		t.Fatalf("disableTLS: %v", err)
	}
}

func TestTimeoutDefaults(t *testing.T) {
	for in, want := range map[string]time.Duration{"": DefaultTimeout, "5": DefaultTimeout, "x1": DefaultTimeout, "15s": 15 * time.Second, "1m": time.Minute} {
		if got := Timeout(flaggerv1.CanaryWebhook{Timeout: in}); got != want {
			t.Errorf("Timeout(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestChecksumChangesWithRevisionAndConfigs(t *testing.T) {
	a := testCanary()
	b := testCanary()
	b.Status.LastAppliedSpec = "def"
	c := testCanary()
	c.Status.TrackedConfigs = &map[string]string{"configmap/x": "1"}
	if Checksum(a) == Checksum(b) || Checksum(a) == Checksum(c) {
		t.Error("checksum must change with the revision and the tracked configs")
	}
	if Checksum(a) != Checksum(testCanary()) {
		t.Error("checksum must be stable")
	}
}
