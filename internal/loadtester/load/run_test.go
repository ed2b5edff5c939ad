package load

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// target is a loopback HTTP server that counts and records what arrives.
type target struct {
	*httptest.Server
	requests atomic.Int64
	conns    atomic.Int64 // connections opened

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, host, path, body string
	header                   http.Header
	proto                    int
	user, password           string
	basicAuth                bool
}

// newTarget starts a server on 127.0.0.1 whose handler is h (nil: 200 "ok"); tls starts it with TLS
// and HTTP/2 enabled.
func newTarget(t *testing.T, tls bool, h http.HandlerFunc) *target {
	t.Helper()
	tg := &target{}
	tg.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		user, password, ok := r.BasicAuth()
		tg.mu.Lock()
		tg.seen = append(tg.seen, seenRequest{method: r.Method, host: r.Host, path: r.URL.Path, body: string(body),
			header: r.Header.Clone(), proto: r.ProtoMajor, user: user, password: password, basicAuth: ok})
		tg.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	tg.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			tg.conns.Add(1)
		}
	}
	if tls {
		tg.EnableHTTP2 = true
		tg.StartTLS()
	} else {
		tg.Start()
	}
	t.Cleanup(tg.Close)
	return tg
}

func (tg *target) requestsSeen() []seenRequest {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]seenRequest(nil), tg.seen...)
}

// checkNoGoroutinesLeft returns a function that fails t when more goroutines run than when it was
// called, after giving closing connections a moment to end.
func checkNoGoroutinesLeft(t *testing.T) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left behind (%d before the run):\n%s", n-before, before, buf[:runtime.Stack(buf, true)])
		}
	}
}

// runLine parses a hey command line and runs it with a bound on the test's time.
func runLine(t *testing.T, ctx context.Context, line string, m *Metrics) (Report, time.Duration) {
	t.Helper()
	s, err := ParseHey(line)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r, err := Run(ctx, s, m)
	if err != nil {
		t.Fatalf("Run(%q): %v", line, err)
	}
	return r, time.Since(began)
}

func within(got, want, tolerance float64) bool { return got >= want-tolerance && got <= want+tolerance }

// -z 2s -q 20 -c 2: two workers at 20 requests per second each for two seconds is 80 requests.
// Tolerances: the count within 15%, the duration within 10% + 100ms.
func TestRunMeetsRateAndDuration(t *testing.T) {
	tg := newTarget(t, false, nil)
	leaks := checkNoGoroutinesLeft(t)
	r, took := runLine(t, t.Context(), "hey -z 2s -q 20 -c 2 "+tg.URL+"/", nil)
	leaks()
	t.Logf("%d requests in %v\n%s", tg.requests.Load(), took, r)

	if n := tg.requests.Load(); !within(float64(n), 80, 0.15*80) {
		t.Errorf("the server got %d requests, want 80 ± 15%%\n%s", n, r)
	}
	if !within(took.Seconds(), 2, 0.1*2+0.1) {
		t.Errorf("the run took %v, want 2s ± 10%% + 100ms", took)
	}
	if r.Requests != tg.requests.Load() || r.StatusCodes[200] != r.Requests || len(r.Errors) != 0 {
		t.Errorf("report %+v does not match the server's %d requests", r, tg.requests.Load())
	}
	if !within(r.RPS, 40, 0.15*40) || r.Workers != 2 || r.RatePerWorker != 20 {
		t.Errorf("report: %.1f req/s with %d workers at %g/s each, want about 40 req/s from 2 at 20/s", r.RPS, r.Workers, r.RatePerWorker)
	}
}

func TestRunSendsExactlyN(t *testing.T) {
	for _, tc := range []struct {
		flags string
		want  int64
	}{
		{"-n 201 -c 50", 201}, // hey would send 200: it drops n % c
		{"-n 7 -c 50", 7},     // hey would refuse -n below -c
		{"-n 10 -c 1 -q 100", 10},
	} {
		tg := newTarget(t, false, nil)
		leaks := checkNoGoroutinesLeft(t)
		r, _ := runLine(t, t.Context(), "hey "+tc.flags+" "+tg.URL+"/", nil)
		leaks()
		if got := tg.requests.Load(); got != tc.want || r.Requests != tc.want || r.StatusCodes[200] != tc.want {
			t.Errorf("hey %s: the server got %d requests, the report says %d (200: %d), want %d",
				tc.flags, got, r.Requests, r.StatusCodes[200], tc.want)
		}
	}
}

func TestRunSendsTheRequestAsWritten(t *testing.T) {
	tg := newTarget(t, false, nil)
	line := `hey -n 6 -c 2 -host app.example.com -H 'Cookie: type=insider' -H 'X-Canary: "yes"' -m POST ` +
		`-d '{"name":"podinfo","namespace":"test"}' -T application/json -a 'admin:s3cr:et' ` + tg.URL + `/api/echo`
	r, _ := runLine(t, t.Context(), line, nil)
	if r.StatusCodes[200] != 6 {
		t.Fatalf("want 6 responses with 200:\n%s", r)
	}
	seen := tg.requestsSeen()
	if len(seen) != 6 {
		t.Fatalf("the server saw %d requests, want 6", len(seen))
	}
	for _, s := range seen {
		switch {
		case s.method != "POST", s.host != "app.example.com", s.path != "/api/echo":
			t.Errorf("request line: %s %s%s, want POST app.example.com/api/echo", s.method, s.host, s.path)
		case s.body != `{"name":"podinfo","namespace":"test"}`:
			t.Errorf("body %q", s.body)
		case s.header.Get("Content-Type") != "application/json", s.header.Get("Content-Length") != "37" && s.header.Get("Content-Length") != "":
			t.Errorf("Content-Type %q, Content-Length %q", s.header.Get("Content-Type"), s.header.Get("Content-Length"))
		case s.header.Get("Cookie") != "type=insider", s.header.Get("X-Canary") != `"yes"`:
			t.Errorf("headers %v", s.header)
		case s.header.Get("User-Agent") != "hey/0.0.1":
			t.Errorf("User-Agent %q, want hey's", s.header.Get("User-Agent"))
		case !s.basicAuth || s.user != "admin" || s.password != "s3cr:et":
			t.Errorf("basic auth %v %q:%q, want admin:s3cr:et", s.basicAuth, s.user, s.password)
		}
	}
}

func TestRunCountsTimeoutsAsErrors(t *testing.T) {
	tg := newTarget(t, false, func(w http.ResponseWriter, r *http.Request) {
		select { // hangs until the client gives up, 10s at most
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	leaks := checkNoGoroutinesLeft(t)
	r, took := runLine(t, t.Context(), "hey -n 4 -c 2 -t 1 "+tg.URL+"/", nil)
	leaks()
	if r.Requests != 4 || r.Errors["timeout"] != 4 || r.Responses() != 0 {
		t.Errorf("want 4 requests, all timeouts:\n%s", r)
	}
	if !strings.Contains(r.ErrorSamples["timeout"], "Client.Timeout exceeded") {
		t.Errorf("timeout sample %q", r.ErrorSamples["timeout"])
	}
	if took < 2*time.Second || took > 3*time.Second {
		t.Errorf("two rounds of 1s timeouts took %v, want 2-3s", took)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	tg := newTarget(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(50 * time.Millisecond):
		}
	})
	s, err := ParseHey("hey -z 1m -c 4 " + tg.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	leaks := checkNoGoroutinesLeft(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	r, err := Run(ctx, s, nil)
	took := time.Since(began)
	leaks()
	if !errors.Is(err, context.DeadlineExceeded) || !r.Cancelled {
		t.Errorf("Run = %v, cancelled %v; want the context's error and a cancelled report", err, r.Cancelled)
	}
	if took > time.Second {
		t.Errorf("Run took %v after a cancel at 300ms", took)
	}
	if r.StatusCodes[200] < 4 {
		t.Errorf("the report so far should count the responses before the cancel:\n%s", r)
	}

	r, err = Run(ctx, s, nil) // already cancelled: nothing sent
	if !errors.Is(err, context.DeadlineExceeded) || r.Requests != 0 {
		t.Errorf("Run on a cancelled context = %v, %d requests", err, r.Requests)
	}
}

func TestRunAbortsRequestsStillInFlightAfterTheDuration(t *testing.T) {
	defer func(d time.Duration) { drainTime = d }(drainTime)
	drainTime = 300 * time.Millisecond
	tg := newTarget(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	leaks := checkNoGoroutinesLeft(t)
	r, took := runLine(t, t.Context(), "hey -z 500ms -c 2 -t 0 "+tg.URL+"/", nil)
	leaks()
	if took > 500*time.Millisecond+drainTime+300*time.Millisecond {
		t.Errorf("a -z 500ms run with hanging requests took %v, want at most the duration and drainTime", took)
	}
	if r.Errors["aborted"] != 2 || r.Requests != 2 {
		t.Errorf("want the two hanging requests counted as aborted:\n%s", r)
	}
}

func TestRunCountsStatusCodesAndErrorKinds(t *testing.T) {
	var n atomic.Int64
	tg := newTarget(t, false, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	r, _ := runLine(t, t.Context(), "hey -n 30 -c 3 "+tg.URL+"/", nil)
	if r.StatusCodes[200] != 20 || r.StatusCodes[503] != 10 || r.Requests != 30 {
		t.Errorf("want 20 × 200 and 10 × 503:\n%s", r)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String() + "/"
	_ = l.Close()
	r, _ = runLine(t, t.Context(), "hey -n 3 -c 1 "+closedURL, nil)
	if r.Errors["connection refused"] != 3 || !strings.Contains(r.ErrorSamples["connection refused"], "refused") {
		t.Errorf("want 3 refused connections:\n%s", r)
	}
}

func TestRunTransportFlags(t *testing.T) {
	t.Run("keep-alive", func(t *testing.T) {
		tg := newTarget(t, false, nil)
		runLine(t, t.Context(), "hey -n 20 -c 2 "+tg.URL+"/", nil)
		// Go's transport may dial a spare connection when a worker's own is not back in the idle pool yet.
		if c := tg.conns.Load(); c > 4 {
			t.Errorf("2 workers opened %d connections for 20 requests, want them kept alive", c)
		}
		tg = newTarget(t, false, nil)
		runLine(t, t.Context(), "hey -n 20 -c 2 -disable-keepalive "+tg.URL+"/", nil)
		if c := tg.conns.Load(); c != 20 {
			t.Errorf("-disable-keepalive: %d connections for 20 requests", c)
		}
	})
	t.Run("redirects", func(t *testing.T) {
		tg := newTarget(t, false, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/old" {
				http.Redirect(w, r, "/new", http.StatusFound)
			}
		})
		if r, _ := runLine(t, t.Context(), "hey -n 2 -c 1 "+tg.URL+"/old", nil); r.StatusCodes[200] != 2 {
			t.Errorf("redirects should be followed:\n%s", r)
		}
		if r, _ := runLine(t, t.Context(), "hey -n 2 -c 1 -disable-redirects "+tg.URL+"/old", nil); r.StatusCodes[302] != 2 {
			t.Errorf("-disable-redirects should report the 302:\n%s", r)
		}
	})
	t.Run("compression", func(t *testing.T) {
		tg := newTarget(t, false, nil)
		runLine(t, t.Context(), "hey -n 1 -c 1 "+tg.URL+"/", nil)
		runLine(t, t.Context(), "hey -n 1 -c 1 -disable-compression "+tg.URL+"/", nil)
		seen := tg.requestsSeen()
		if seen[0].header.Get("Accept-Encoding") != "gzip" || seen[1].header.Get("Accept-Encoding") != "" {
			t.Errorf("Accept-Encoding %q then %q, want gzip then none", seen[0].header.Get("Accept-Encoding"), seen[1].header.Get("Accept-Encoding"))
		}
	})
	t.Run("h2 over TLS with an unverified certificate", func(t *testing.T) {
		tg := newTarget(t, true, nil)
		if r, _ := runLine(t, t.Context(), "hey -n 2 -c 1 "+tg.URL+"/", nil); r.StatusCodes[200] != 2 {
			t.Fatalf("https with a self-signed certificate:\n%s", r)
		}
		runLine(t, t.Context(), "hey -n 2 -c 1 -h2 "+tg.URL+"/", nil)
		seen := tg.requestsSeen()
		if seen[0].proto != 1 || seen[2].proto != 2 {
			t.Errorf("HTTP/%d without -h2 and HTTP/%d with it, want 1 and 2", seen[0].proto, seen[2].proto)
		}
	})
	t.Run("proxy", func(t *testing.T) {
		proxy := newTarget(t, false, nil) // answers as the proxy, for any absolute URL
		r, _ := runLine(t, t.Context(), "hey -n 2 -c 1 -x "+strings.TrimPrefix(proxy.URL, "http://")+" http://podinfo.invalid/x", nil)
		seen := proxy.requestsSeen()
		if r.StatusCodes[200] != 2 || len(seen) != 2 || seen[0].host != "podinfo.invalid" || seen[0].path != "/x" {
			t.Errorf("the proxy saw %+v:\n%s", seen, r)
		}
	})
}

func TestRunRefusesAnInvalidSpec(t *testing.T) {
	for _, s := range []Spec{
		{URL: "http://a/", Method: "GET", Concurrency: 0, Requests: 1},
		{URL: "unix:///x", Method: "GET", Concurrency: 1, Requests: 1},
		{URL: "http://a/", Method: "GET", Concurrency: 1, Requests: 1, Proxy: "ftp://p"},
	} {
		if _, err := Run(t.Context(), s, nil); err == nil {
			t.Errorf("Run(%+v) ran", s)
		}
	}
}

func TestReportString(t *testing.T) {
	r := Report{
		Method: "GET", URL: "http://podinfo-canary.test:9898/", Workers: 2, RatePerWorker: 10,
		Elapsed: 60 * time.Second, Requests: 1200, StatusCodes: map[int]int64{200: 1190, 503: 8},
		Errors: map[string]int64{"timeout": 2}, ErrorSamples: map[string]string{"timeout": "Get ...: Client.Timeout exceeded"},
		Latency: Latency{Mean: 3 * time.Millisecond, P50: 2500 * time.Microsecond, P90: 4 * time.Millisecond,
			P95: 5 * time.Millisecond, P99: 12345 * time.Microsecond, Max: 1500 * time.Millisecond},
		RPS: 20, Notes: []string{"-o csv ignored: the built-in engine reports a summary"},
	}
	want := `hey (built-in engine): GET http://podinfo-canary.test:9898/, 2 workers, 10 req/s per worker
  requests:     1200 in 1m0s, 20.0 req/s
  status codes: 200: 1190, 503: 8
  errors:       timeout: 2
    timeout, e.g.: Get ...: Client.Timeout exceeded
  latency:      p50 2.5ms, p90 4ms, p95 5ms, p99 12.35ms, max 1.5s, mean 3ms
  note: -o csv ignored: the built-in engine reports a summary
`
	if got := r.String(); got != want {
		t.Errorf("Report.String():\n%s\nwant:\n%s", got, want)
	}
	empty := Report{Method: "GET", URL: "http://a/", Workers: 1, Cancelled: true}.String()
	if !strings.Contains(empty, "no rate limit, cancelled before the end") || !strings.Contains(empty, "status codes: none") ||
		strings.Contains(empty, "latency") {
		t.Errorf("empty report:\n%s", empty)
	}
}

// The basic credentials go out as a header; a URL's user info also works, as in Go's client.
func TestRunBasicAuthFromTheURL(t *testing.T) {
	tg := newTarget(t, false, nil)
	runLine(t, t.Context(), "hey -n 1 -c 1 http://u:p@"+strings.TrimPrefix(tg.URL, "http://")+"/", nil)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))
	if got := tg.requestsSeen()[0].header.Get("Authorization"); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
}

func TestRunObservesEveryRequest(t *testing.T) {
	var n atomic.Int64
	tg := newTarget(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", map[bool]string{true: "b", false: "a"}[n.Add(1)%2 == 0])
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String() + "/"
	_ = l.Close()

	var mu sync.Mutex
	backends, failures := map[string]int{}, 0
	observe := func(o Observation) {
		mu.Lock()
		defer mu.Unlock()
		if o.Err != nil {
			failures++
			return
		}
		if o.Code != 200 || o.Sent.IsZero() || o.Latency <= 0 {
			t.Errorf("observation %+v", o)
		}
		backends[o.Header.Get("X-Backend")]++
	}
	for _, url := range []string{tg.URL + "/", closedURL} {
		s, err := ParseHey("hey -n 20 -c 2 " + url)
		if err != nil {
			t.Fatal(err)
		}
		s.Observe = observe
		if _, err := Run(t.Context(), s, nil); err != nil {
			t.Fatal(err)
		}
	}
	if backends["a"] != 10 || backends["b"] != 10 || failures != 20 {
		t.Errorf("observed backends %v and %d failures, want 10 a, 10 b and 20 failures", backends, failures)
	}
}
