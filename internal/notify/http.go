package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pennant/pennant/internal/webhooks"
)

// DefaultTimeout bounds one post to a chat service when the sender has no timeout of its own.
const DefaultTimeout = 10 * time.Second

// maxErrorBody bounds how much of a failed answer goes into an error (and from there into events).
const maxErrorBody = 1024

// endpoint posts JSON to one chat service URL, optionally through an HTTP proxy.
type endpoint struct {
	service string // for errors: "slack", "msteams"...
	url     string
	client  *http.Client
	timeout time.Duration
}

func newEndpoint(service, address, proxy string, timeout time.Duration) (endpoint, error) {
	u, err := url.Parse(strings.TrimSpace(address))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The address is a secret (the path of a webhook URL is its credential): never print it.
		return endpoint{}, fmt.Errorf("invalid %s URL: want an absolute http(s) URL", service)
	}
	t, err := transportFor(proxy)
	if err != nil {
		return endpoint{}, fmt.Errorf("%s: %w", service, err)
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return endpoint{service: service, url: u.String(), client: &http.Client{Transport: t}, timeout: timeout}, nil
}

// post sends the payload and returns the answer's body. A status outside 2xx is an error that
// carries the status and the start of the body.
func (e endpoint) post(ctx context.Context, payload any, header http.Header) ([]byte, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("%s: encoding the message: %w", e.service, err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.service, redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: posting the message: %w", e.service, redact(err))
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{Service: e.service, StatusCode: resp.StatusCode, Status: resp.Status, Body: truncate(answer)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", e.service, redact(err))
	}
	return answer, nil
}

// StatusError is a chat service's answer outside 2xx.
type StatusError struct {
	Service    string
	StatusCode int
	Status     string
	Body       string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s: sending the message failed: %s", e.Service, e.Status)
	}
	return fmt.Sprintf("%s: sending the message failed: %s: %s", e.Service, e.Status, e.Body)
}

func truncate(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxErrorBody {
		s = s[:maxErrorBody] + "..."
	}
	return s
}

// redact removes the path and query of the URL in a transport error: webhook URLs embed their
// credentials there, and these errors end up in logs and Kubernetes events.
func redact(err error) error {
	return webhooks.RedactError(err, schemeAndHost)
}

// schemeAndHost keeps only what identifies a chat service's host.
func schemeAndHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(redacted)"
	}
	return u.Scheme + "://" + u.Host
}

var transports sync.Map // proxy address -> *http.Transport

// transportFor returns one shared transport per proxy, so that the senders built for every alert
// reuse connections. An empty proxy uses the environment (HTTPS_PROXY, NO_PROXY...). A proxy
// without a scheme, such as Flagger's documented "my-http-proxy.com", is an http:// proxy.
func transportFor(proxy string) (*http.Transport, error) {
	proxy = strings.TrimSpace(proxy)
	if t, ok := transports.Load(proxy); ok {
		return t.(*http.Transport), nil
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	if proxy != "" {
		raw := proxy
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return nil, errors.New("invalid proxy URL")
		}
		t.Proxy = http.ProxyURL(u)
	}
	actual, _ := transports.LoadOrStore(proxy, t)
	return actual.(*http.Transport), nil
}
