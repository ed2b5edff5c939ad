// Package load is the load tester's built-in HTTP load engine. It understands the `hey` command lines
// that Flagger's docs and users' Canary webhooks write (`hey -z 1m -q 10 -c 2 http://podinfo-canary.test/`)
// and runs them in Go with hey's semantics, so that no external binary and no shell is needed: a hey
// task executes nothing.
//
// Where it deliberately differs from hey v0.1.5 (github.com/rakyll/hey, read for its flags and defaults):
//   - -n runs exactly n requests (hey runs n/c per worker and drops the remainder), and -n smaller than -c
//     is accepted (min(n, c) workers) where hey refuses it.
//   - -a sends the basic credentials (hey 0.1.5 drops them: it replaces the request's headers after
//     setting them), and splits user:password at the first colon.
//   - -H 'Host: x' sets the Host as -host does (-host wins); hey passes it to Go, which ignores it.
//   - -D (body from a file) is refused: a webhook payload must not read the load tester's files.
//   - -o csv is accepted and ignored (the summary is reported instead); any other -o (hey runs it as a Go
//     template) is refused. -cpus is accepted and ignored: GOMAXPROCS is the whole server's.
//   - -x accepts hey's documented host:port as well as a URL (hey needs the URL form). A proxy is
//     supported because it grants nothing new: the target URL itself is already any address.
//   - Malformed values (a non-HTTP URL, a negative -q/-t/-z, arguments after the URL, shell operators)
//     are errors before anything is sent, not a run of failing requests.
//   - In-flight requests when -z elapses get drainTime to finish, then are aborted (counted as errors of
//     kind "aborted"); hey waits for each up to -t.
//
// Like hey: TLS certificates are not verified (canaries are reached by in-cluster names), the proxy
// environment variables are ignored, HTTP/2 only with -h2 (over TLS), redirects followed, the
// User-Agent is "hey/0.0.1" (after -U or a -H User-Agent), Content-Type defaults to text/html, a
// repeated -H of one name keeps the last, and -q is a rate per worker.
package load

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

const (
	// UserAgent is hey's, so that dashboards and mesh rules keyed on it see the same traffic.
	UserAgent = "hey/0.0.1"
	// MaxConcurrency bounds -c: each worker is a goroutine with a connection, in a shared server.
	MaxConcurrency = 1000

	defaultRequests    = 200
	defaultConcurrency = 50
	defaultTimeout     = 20 * time.Second
	defaultContentType = "text/html"
)

// drainTime is how long requests in flight when -z elapses may still take before they are aborted
// (a variable for tests).
var drainTime = 5 * time.Second

// Spec is one load run: what a hey command line asks for.
type Spec struct {
	// URL is the target, http or https.
	URL string
	// Method is the HTTP method, upper case (-m, default GET).
	Method string
	// Header holds the request headers: Content-Type (-T), -H, Accept (-A), User-Agent (-U) and the
	// basic credentials (-a) already applied.
	Header http.Header
	// Host overrides the Host header and the TLS server name (-host); empty: the URL's host.
	Host string
	// Body is sent with every request (-d); its length is the Content-Length.
	Body []byte
	// Requests is the number of requests (-n, default 200); ignored when Duration is set.
	Requests int
	// Duration runs the load for this long instead of a count (-z); zero: use Requests.
	Duration time.Duration
	// Concurrency is the number of workers (-c, default 50), at most MaxConcurrency.
	Concurrency int
	// RatePerWorker limits each worker to this many requests per second (-q); zero: no limit.
	RatePerWorker float64
	// Timeout bounds each request (-t, in seconds, default 20); zero: no timeout.
	Timeout time.Duration
	// DisableKeepAlive opens a connection per request (-disable-keepalive).
	DisableKeepAlive bool
	// DisableCompression sends no Accept-Encoding: gzip (-disable-compression).
	DisableCompression bool
	// DisableRedirects reports a redirect's status instead of following it (-disable-redirects).
	DisableRedirects bool
	// HTTP2 negotiates HTTP/2 over TLS (-h2).
	HTTP2 bool
	// Proxy is an HTTP(S) or SOCKS5 proxy URL (-x); empty: direct (proxy environment variables are
	// ignored, as hey does).
	Proxy string
	// Canary labels the run's metrics; set by the caller from the webhook payload, not by the command.
	Canary types.NamespacedName
	// Observe, when set, is called (from the workers, concurrently) with every request's outcome: a
	// library user's hook, e.g. to tell which backend served each response. Not set by a command.
	Observe func(Observation)
	// Notes explain flags that were accepted but have no effect; they are repeated in the Report.
	Notes []string
}

// workers is the number of goroutines the run uses.
func (s Spec) workers() int {
	if s.Duration <= 0 && s.Requests < s.Concurrency {
		return s.Requests
	}
	return s.Concurrency
}

// validate checks a Spec, whether it came from ParseHey or was built by hand.
func (s Spec) validate() error {
	u, err := url.Parse(s.URL)
	switch {
	case err != nil:
		return fmt.Errorf("URL %q: %v", s.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("URL %q: the scheme must be http or https", s.URL)
	case u.Host == "":
		return fmt.Errorf("URL %q has no host", s.URL)
	case s.Method == "" || strings.ContainsAny(s.Method, " \t\r\n"):
		return fmt.Errorf("method %q is not a valid HTTP method", s.Method)
	case s.Concurrency < 1 || s.Concurrency > MaxConcurrency:
		return fmt.Errorf("-c %d: the concurrency must be between 1 and %d", s.Concurrency, MaxConcurrency)
	case s.Duration < 0:
		return fmt.Errorf("-z %v: the duration cannot be negative", s.Duration)
	case s.Duration == 0 && s.Requests < 1:
		return fmt.Errorf("-n %d: the number of requests must be at least 1", s.Requests)
	case s.RatePerWorker < 0:
		return fmt.Errorf("-q %v: the rate cannot be negative", s.RatePerWorker)
	case s.Timeout < 0:
		return fmt.Errorf("-t %v: the timeout cannot be negative", s.Timeout)
	}
	if s.Proxy != "" {
		if _, err := proxyURL(s.Proxy); err != nil {
			return err
		}
	}
	return nil
}

// proxyURL accepts hey's documented "host:port" and full proxy URLs.
func proxyURL(proxy string) (*url.URL, error) {
	raw := proxy
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-x %q: %v", proxy, err)
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("-x %q: the proxy scheme must be http, https or socks5", proxy)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("-x %q has no host", proxy)
	}
	return u, nil
}

// Observation is one request's outcome, given to Spec.Observe.
type Observation struct {
	// Sent is when the request was sent; Latency how long it took until its body was read.
	Sent    time.Time
	Latency time.Duration
	// Code is the response's status code; zero when Err is set.
	Code int
	// Header is the response's header; nil when Err is set.
	Header http.Header
	// Err is why the request got no response (connection refused or reset, timeout, ...).
	Err error
}
