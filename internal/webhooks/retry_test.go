package webhooks

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"

	"github.com/pennant/pennant/internal/testenv"
)

// quickCaller retries after milliseconds instead of seconds; the classes are the production ones.
func quickCaller() *Caller {
	c := NewCaller()
	c.waitMin, c.waitMax = 5*time.Millisecond, 20*time.Millisecond
	return c
}

// countingServer answers every POST with status (and Retry-After, when set) on loopback and counts them.
func countingServer(t *testing.T, status int, retryAfter string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// Flagger's client (go-retryablehttp) retries 429 and the 5xx other than 501, and no other
// answer: a closed gate's 403 is final at once, whatever retries says.
func TestRetriesFollowFlaggersStatusClasses(t *testing.T) {
	const retries = 2
	for _, tc := range []struct {
		status int
		calls  int32
	}{
		{http.StatusTooManyRequests, retries + 1},
		{http.StatusInternalServerError, retries + 1},
		{http.StatusBadGateway, retries + 1},
		{http.StatusServiceUnavailable, retries + 1},
		{http.StatusGatewayTimeout, retries + 1},
		{http.StatusNotImplemented, 1},
		{http.StatusForbidden, 1},
		{http.StatusBadRequest, 1},
		{http.StatusNotFound, 1},
		{http.StatusConflict, 1},
		{http.StatusNoContent, 1}, // above 202: a failure, and final
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv, calls := countingServer(t, tc.status, "")
			hook := flaggerv1.CanaryWebhook{URL: srv.URL, Retries: retries}
			err := quickCaller().Call(context.Background(), testCanary(), hook, flaggerv1.CanaryPhaseProgressing, nil)
			if err == nil {
				t.Fatalf("status %d passed, want a failure", tc.status)
			}
			if got := calls.Load(); got != tc.calls {
				t.Errorf("status %d: %d calls, want %d", tc.status, got, tc.calls)
			}
		})
	}
}

func TestClosedGateIsAskedOnceAndItsBodyIsTheMessage(t *testing.T) {
	srv, calls := countingServer(t, http.StatusForbidden, "")
	hook := flaggerv1.CanaryWebhook{Name: "gate", Type: flaggerv1.ConfirmRolloutHook, URL: srv.URL, Retries: 5}
	err := quickCaller().Call(context.Background(), testCanary(), hook, flaggerv1.CanaryPhaseWaiting, nil)
	if err == nil || err.Error() != "Forbidden" {
		t.Fatalf("err = %v, want the body of the 403", err)
	}
	if calls.Load() != 1 {
		t.Errorf("a closed gate was asked %d times in one call, want 1", calls.Load())
	}
}

func TestNoRetriesByDefault(t *testing.T) {
	srv, calls := countingServer(t, http.StatusServiceUnavailable, "")
	if err := quickCaller().Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL}, flaggerv1.CanaryPhaseProgressing, nil); err == nil {
		t.Fatal("a 503 passed")
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls without retries, want 1", calls.Load())
	}
}

func TestRetryErrorSaysHowManyAttempts(t *testing.T) {
	srv, _ := countingServer(t, http.StatusInternalServerError, "")
	err := quickCaller().Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL, Retries: 2}, flaggerv1.CanaryPhaseProgressing, nil)
	if err == nil || err.Error() != "Internal Server Error (gave up after 3 attempts)" {
		t.Fatalf("err = %v", err)
	}
}

// A refused connection is retried: the webhook that comes up during the backoff answers the retry.
func TestRefusedConnectionIsRetried(t *testing.T) {
	addr := testenv.FreeLoopbackAddr(t)
	c := NewCaller()
	c.waitMin = 300 * time.Millisecond
	var calls atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
	})}
	t.Cleanup(func() { _ = srv.Close() })
	done := make(chan error, 1)
	go func() {
		done <- c.Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: "http://" + addr + "/", Retries: 1}, flaggerv1.CanaryPhaseProgressing, nil)
	}()
	time.Sleep(100 * time.Millisecond) // the first attempt is refused, the retry waits 300ms
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", addr, err)
	}
	go func() { _ = srv.Serve(l) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the retry after a refused connection failed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not return")
	}
	if calls.Load() != 1 {
		t.Errorf("the webhook saw %d calls, want the one retry", calls.Load())
	}
}

func TestRefusedConnectionGivesUpAfterRetries(t *testing.T) {
	hook := flaggerv1.CanaryWebhook{URL: "http://" + testenv.FreeLoopbackAddr(t) + "/", Retries: 2}
	err := quickCaller().Call(context.Background(), testCanary(), hook, flaggerv1.CanaryPhaseProgressing, nil)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("err = %v, want connection refused after 3 attempts", err)
	}
}

// A certificate that does not verify will not verify on a retry either (go-retryablehttp stops too).
func TestUnverifiedCertificateIsNotRetried(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	err := quickCaller().Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL, Retries: 3}, flaggerv1.CanaryPhaseProgressing, nil)
	if err == nil {
		t.Fatal("an unknown certificate authority passed")
	}
	if strings.Contains(err.Error(), "gave up after") || conns.Load() != 1 {
		t.Errorf("err = %v after %d connections: a certificate error was retried", err, conns.Load())
	}
}

func TestUnsupportedSchemeIsNotRetried(t *testing.T) {
	err := quickCaller().Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: "ftp://127.0.0.1/", Retries: 3}, flaggerv1.CanaryPhaseProgressing, nil)
	if err == nil || strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("err = %v, want one attempt", err)
	}
}

// An attempt that times out is retried, each attempt getting the whole timeout, as in Flagger.
func TestTimedOutAttemptIsRetried(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			select { // the first attempt hangs until the caller gives up on it
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	defer close(release)
	hook := flaggerv1.CanaryWebhook{URL: srv.URL, Timeout: "300ms", Retries: 1}
	if err := quickCaller().Call(context.Background(), testCanary(), hook, flaggerv1.CanaryPhaseProgressing, nil); err != nil {
		t.Fatalf("the retry after a timed-out attempt failed: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d calls, want 2", calls.Load())
	}
}

// Retry-After is honoured on 429 and 503, as in Flagger; it waits no longer than the webhook's
// timeout, where Flagger would wait as long as it is told.
func TestRetryAfterIsHonouredWithinTheTimeout(t *testing.T) {
	t.Run("short Retry-After is waited", func(t *testing.T) {
		srv, calls := countingServer(t, http.StatusTooManyRequests, "1")
		began := time.Now()
		_ = quickCaller().Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL, Retries: 1}, flaggerv1.CanaryPhaseProgressing, nil)
		if took := time.Since(began); took < time.Second {
			t.Errorf("retried after %s, want the 1s Retry-After", took)
		}
		if calls.Load() != 2 {
			t.Errorf("%d calls, want 2", calls.Load())
		}
	})
	t.Run("an hour is cut to the timeout", func(t *testing.T) {
		srv, calls := countingServer(t, http.StatusServiceUnavailable, "3600")
		began := time.Now()
		_ = quickCaller().Call(context.Background(), testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL, Timeout: "500ms", Retries: 1}, flaggerv1.CanaryPhaseProgressing, nil)
		if took := time.Since(began); took > 3*time.Second {
			t.Errorf("took %s, want about the 500ms timeout", took)
		}
		if calls.Load() != 2 {
			t.Errorf("%d calls, want 2", calls.Load())
		}
	})
}

func TestCancelStopsRetrying(t *testing.T) {
	srv, calls := countingServer(t, http.StatusServiceUnavailable, "")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c := NewCaller() // 1s before the first retry: the cancel comes first
	began := time.Now()
	if err := c.Call(ctx, testCanary(), flaggerv1.CanaryWebhook{URL: srv.URL, Retries: 5}, flaggerv1.CanaryPhaseProgressing, nil); err == nil {
		t.Fatal("a 503 passed")
	}
	if took := time.Since(began); took > 900*time.Millisecond {
		t.Errorf("took %s after the context ended", took)
	}
	if calls.Load() != 1 {
		t.Errorf("%d calls, want 1", calls.Load())
	}
}

func TestBackoffIsFlaggers(t *testing.T) {
	c := NewCaller()
	none := outcome{err: errors.New("x")}
	for attempt, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		if got := c.backoff(attempt, none, time.Hour); got != want {
			t.Errorf("backoff(%d) = %s, want %s", attempt, got, want)
		}
	}
	if got := c.backoff(100, none, time.Hour); got != 30*time.Second {
		t.Errorf("backoff(100) = %s, want 30s", got)
	}
	if got := c.backoff(3, none, 5*time.Second); got != 5*time.Second {
		t.Errorf("backoff(3) with a 5s timeout = %s, want 5s", got)
	}
	asked := outcome{err: errors.New("x"), retryAfter: 2 * time.Second, retryAfterSet: true}
	if got := c.backoff(4, asked, time.Hour); got != 2*time.Second {
		t.Errorf("Retry-After 2s: %s", got)
	}
	zero := outcome{err: errors.New("x"), retryAfterSet: true}
	if got := c.backoff(4, zero, time.Hour); got != 0 {
		t.Errorf("Retry-After 0: %s", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"3":                             3 * time.Second,
		" 0 ":                           0,
		"Sun, 01 Mar 2026 12:00:07 GMT": 7 * time.Second,
		"Sun, 01 Mar 2026 11:00:00 GMT": 0,
	} {
		if got, ok := parseRetryAfter(in, now); !ok || got != want {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "soon"} {
		if _, ok := parseRetryAfter(in, now); ok {
			t.Errorf("parseRetryAfter(%q) accepted", in)
		}
	}
}
