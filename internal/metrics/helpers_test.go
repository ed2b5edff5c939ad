package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorded is what a test server saw of one request.
type recorded struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   string
}

// backend is a loopback test server that records every request and answers with a handler.
type backend struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
}

func (b *backend) requests() []recorded {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]recorded(nil), b.reqs...)
}

// last returns the last recorded request, failing the test when there is none.
func (b *backend) last(t *testing.T) recorded {
	t.Helper()
	rs := b.requests()
	if len(rs) == 0 {
		t.Fatal("the server received no request")
	}
	return rs[len(rs)-1]
}

// newBackend starts a loopback server; handler gets the body already read.
func newBackend(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, body string)) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.reqs = append(b.reqs, recorded{
			Method: r.Method,
			Path:   r.URL.Path,
			Query:  r.URL.Query(),
			Header: r.Header.Clone(),
			Body:   string(body),
		})
		b.mu.Unlock()
		handler(w, r, string(body))
	}))
	t.Cleanup(b.Close)
	return b
}

// reply answers every request with status and body.
func reply(status int, contentType, body string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, _ string) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// newHangingServer never answers until the client gives up (or the test ends).
func newHangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		s.Close()
	})
	return s
}

// shortTimeout is the provider timeout used against hanging servers.
const shortTimeout = 150 * time.Millisecond

// expectTimeout runs call against a hanging server and checks it fails quickly.
func expectTimeout(t *testing.T, call func(ctx context.Context) error) {
	t.Helper()
	start := time.Now()
	err := call(context.Background())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("expected an error from a hanging server")
	}
	if elapsed > 3*time.Second {
		t.Fatalf("the call took %s; it must be bounded by the provider timeout", elapsed)
	}
	if errors.Is(err, ErrNoValuesFound) || errors.Is(err, ErrMultipleValuesReturned) {
		t.Fatalf("a timeout must not look like a query result: %v", err)
	}
}

// expectCallerDeadline checks that a caller's context deadline shorter than the provider
// timeout is honoured.
func expectCallerDeadline(t *testing.T, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), shortTimeout)
	defer cancel()
	start := time.Now()
	err := call(ctx)
	if err == nil {
		t.Fatal("expected an error when the caller's context expires")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("the call took %s; the caller's context must bound it", elapsed)
	}
}

func mustErrorIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want errors.Is(%v)", err, target)
	}
}

func mustContain(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

// mustPlainError checks an error is neither a sentinel nor nil (HTTP and decoding failures).
func mustPlainError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error")
	}
	if errors.Is(err, ErrNoValuesFound) || errors.Is(err, ErrMultipleValuesReturned) {
		t.Fatalf("error %v must not be a result sentinel", err)
	}
}

func mustValue(t *testing.T, got float64, err error, want float64) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if got != want {
		t.Fatalf("value = %v, want %v", got, want)
	}
}

func mustEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// mustStatus checks err carries an HTTP status and the start of the body.
func mustStatus(t *testing.T, err error, code int, bodyPart string) {
	t.Helper()
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *StatusError", err)
	}
	if se.StatusCode != code || !strings.Contains(se.Body, bodyPart) {
		t.Fatalf("StatusError = %d %q, want %d containing %q", se.StatusCode, se.Body, code, bodyPart)
	}
}

// responseCase is one backend answer and what RunQuery must make of it: a value, an error that is
// the sentinel is, or a plain error containing msg (with the HTTP status when it is 4xx/5xx).
type responseCase struct {
	name   string
	status int
	body   string
	want   float64
	is     error
	msg    string
}

// runResponseCases serves each case's answer on loopback and checks what RunQuery makes of it.
func runResponseCases(t *testing.T, cases []responseCase, contentType, query string, build func(t *testing.T, url string) Provider) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBackend(t, reply(tc.status, contentType, tc.body))
			v, err := build(t, srv.URL).RunQuery(context.Background(), query)
			switch {
			case tc.is != nil:
				mustErrorIs(t, err, tc.is)
			case tc.msg != "":
				mustPlainError(t, err)
			default:
				mustValue(t, v, err, tc.want)
			}
			if tc.msg != "" {
				mustContain(t, err, tc.msg)
			}
			if tc.status >= 400 {
				mustStatus(t, err, tc.status, tc.msg)
			}
		})
	}
}
