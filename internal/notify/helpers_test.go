package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// request is what a test server received.
type request struct {
	Method     string
	Path       string
	RequestURI string
	Host       string
	Header     http.Header
	Body       []byte
}

// JSON decodes the body into a generic value, failing the test when it is not JSON.
func (r request) JSON(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return v
}

// server is an httptest server on 127.0.0.1 that records every request and answers status/answer.
func server(t *testing.T, status int, answer string) (*httptest.Server, <-chan request) {
	t.Helper()
	got := make(chan request, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- request{Method: r.Method, Path: r.URL.Path, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: body}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// hanging is a server that never answers: each handler waits until its client goes away.
func hanging(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	arrived := make(chan struct{}, 64)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice when the client hangs up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv, arrived
}

func receive(t *testing.T, c <-chan request) request {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request arrived")
	}
	return request{}
}

func none(t *testing.T, c <-chan request) {
	t.Helper()
	select {
	case r := <-c:
		t.Fatalf("unexpected request %s %s: %s", r.Method, r.Path, r.Body)
	default:
	}
}

// path walks a decoded JSON value: strings index objects, ints index arrays.
func path(t *testing.T, v any, keys ...any) any {
	t.Helper()
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q", v, k)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("no key %q in %v", k, m)
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("%v: no index %d", v, k)
			}
			v = a[k]
		}
	}
	return v
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

func testMessage(severity flaggerv1.AlertSeverity) Message {
	return Message{
		Name: "podinfo", Namespace: "test", Text: "New revision detected, progressing canary analysis.",
		Severity: severity,
		Fields:   []Field{{Name: "Cluster", Value: "prod-eu"}, {Name: "Target", Value: "Deployment/podinfo.test"}},
	}
}

func testCanary() *flaggerv1.Canary {
	return &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: flaggerv1.CanarySpec{
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Analysis:  &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, StepWeight: 10, MaxWeight: 50},
		},
		Status: flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseProgressing, LastAppliedSpec: "abc"},
	}
}
