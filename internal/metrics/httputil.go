package metrics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Shared HTTP plumbing for the providers: one client per provider, bounded calls, readable errors.

const (
	// defaultTimeout bounds every call to a backend (Flagger: 5s).
	defaultTimeout = 5 * time.Second
	// maxResponseBytes caps how much of a response is read.
	maxResponseBytes = 16 << 20
	// maxErrorBody caps how much of a response body is quoted in an error.
	maxErrorBody = 512
)

// StatusError is returned when a backend answers with a non-2xx HTTP status.
type StatusError struct {
	// Provider is the MetricTemplate provider type, e.g. "datadog".
	Provider string
	// StatusCode is the HTTP status code.
	StatusCode int
	// Body is the start of the response body.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Provider, e.StatusCode)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Provider, e.StatusCode, e.Body)
}

// newStatusError builds a StatusError quoting at most maxErrorBody bytes of body.
func newStatusError(provider string, code int, body []byte) *StatusError {
	return &StatusError{Provider: provider, StatusCode: code, Body: truncate(string(body))}
}

// truncate shortens s for an error message.
func truncate(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= maxErrorBody {
		return s
	}
	return s[:maxErrorBody] + "…"
}

// newHTTPTransport returns a transport cloned from the default one, optionally skipping TLS
// verification (spec.provider.insecureSkipVerify).
func newHTTPTransport(insecureSkipVerify bool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if insecureSkipVerify {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicitly requested by the template
	}
	return t
}

// newHTTPClient returns a client whose overall timeout backs up the per-call context deadline.
func newHTTPClient(insecureSkipVerify bool, timeout time.Duration) *http.Client {
	return &http.Client{Transport: newHTTPTransport(insecureSkipVerify), Timeout: timeout}
}

// editTransport lets a provider decorate every outgoing request (extra headers, auth) without
// mutating the caller's request, as http.RoundTripper requires.
type editTransport struct {
	base http.RoundTripper
	edit func(*http.Request) error
}

func (t *editTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if err := t.edit(r); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(r)
}

// applyHeaders sets the template's extra headers (spec.provider.headers) on req. Providers set
// their own auth headers afterwards, so those win.
func applyHeaders(req *http.Request, headers map[string][]string) {
	for k, vs := range headers {
		if len(vs) == 0 {
			continue
		}
		if strings.EqualFold(k, "Host") {
			req.Host = vs[0]
			continue
		}
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
}

// doRequest sends req bounded by timeout and returns the body of a 2xx answer. A non-2xx
// answer gives a *StatusError carrying the start of the body.
func doRequest(ctx context.Context, client *http.Client, timeout time.Duration, provider string, req *http.Request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named below, without its query string
		}
		return nil, fmt.Errorf("%s: %s %s: %w", provider, req.Method, redactURL(req.URL), err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: reading response of %s %s: %w", provider, req.Method, redactURL(req.URL), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newStatusError(provider, resp.StatusCode, body)
	}
	return body, nil
}

// redactURL renders u without its query string, which may hold a query or a key.
func redactURL(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	c.User = nil
	return c.String()
}

// RedactAddress is an address fit for an error, event or log: without user info, query string
// or fragment, and "<unparsable address>" when it cannot be parsed (it may hold anything).
func RedactAddress(address string) string {
	u, err := url.Parse(strings.TrimSpace(address))
	if err != nil {
		return "<unparsable address>"
	}
	u.Fragment = ""
	if strings.Contains(u.Opaque, "@") { // "user:password@host" parses as scheme "user", opaque "password@host"
		u.Opaque = "<redacted>"
	}
	return redactURL(u)
}

var whitespace = regexp.MustCompile(`\s+`)

// collapseWhitespace turns every run of whitespace (newlines of a multi-line template included)
// into one space, like Flagger does for PromQL and Graphite queries.
func collapseWhitespace(q string) string {
	return strings.TrimSpace(whitespace.ReplaceAllString(q, " "))
}

// baseURL parses an http(s) address and drops a trailing slash from its path.
func baseURL(provider, address string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(address))
	if err != nil {
		// The parse error quotes the address, which may carry a password: say only that it failed.
		return nil, fmt.Errorf("%s: address %q is not a valid URL", provider, RedactAddress(address))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: address %q is not an absolute http(s) URL", provider, RedactAddress(address))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	u.RawQuery = ""
	u.Fragment = ""
	return u, nil
}

// endpoint returns base with path p appended.
func endpoint(base *url.URL, p string) *url.URL {
	u := *base
	u.Path = base.Path + p
	return &u
}

// credential returns a required secret value; a missing or empty key is an error naming it.
// Tokens and keys lose trailing newlines (a common `echo` mistake that HTTP headers reject).
func credential(provider string, credentials map[string][]byte, key string) (string, error) {
	v := strings.TrimRight(string(credentials[key]), "\r\n")
	if v == "" {
		return "", fmt.Errorf("%s: the credentials secret has no %q key", provider, key)
	}
	return v, nil
}

// optionalCredential returns a secret value or "" when absent.
func optionalCredential(credentials map[string][]byte, key string) string {
	return strings.TrimRight(string(credentials[key]), "\r\n")
}
