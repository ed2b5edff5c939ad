// Package webhooks calls the analysis webhooks of a canary: gates, tests and notifications.
package webhooks

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// DefaultTimeout applies when a webhook has no valid timeout.
const DefaultTimeout = 10 * time.Second

// maxBody bounds how much of a webhook's answer is read into an error message.
const maxBody = 4096

// Payload is the JSON body Flagger posts to webhooks.
type Payload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// Caller posts webhook payloads.
type Caller struct {
	client   *http.Client
	insecure *http.Client
	// waitMin and waitMax shape the backoff between retries (1s and 30s, Flagger's client's
	// defaults); tests shorten them.
	waitMin, waitMax time.Duration
}

// NewCaller returns a Caller with its own HTTP transports.
func NewCaller() *Caller {
	insecure := http.DefaultTransport.(*http.Transport).Clone()
	insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // disableTLS is the user's explicit choice
	return &Caller{
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		insecure: &http.Client{Transport: insecure},
		waitMin:  retryWaitMin,
		waitMax:  retryWaitMax,
	}
}

// Call posts the payload of a canary to a webhook. A status above 202 is a failure whose message
// is the response body. Each attempt is bounded by the webhook's timeout; a failure that may pass
// when repeated (retryableStatus, retryableError) is retried up to hook.retries times after a
// backoff, as Flagger's retrying HTTP client does. A closed gate's 403 is an answer, not a
// failure to get one: it is never retried.
func (c *Caller) Call(ctx context.Context, cd *flaggerv1.Canary, hook flaggerv1.CanaryWebhook, phase flaggerv1.CanaryPhase, metadata map[string]string) error {
	body, err := json.Marshal(Payload{
		Name:      cd.Name,
		Namespace: cd.Namespace,
		Phase:     string(phase),
		Checksum:  Checksum(cd),
		Metadata:  metadata,
	})
	if err != nil {
		return err
	}
	timeout := Timeout(hook)
	for attempt := 0; ; attempt++ {
		a := c.post(ctx, hook, timeout, body)
		if a.err == nil || !a.retry || attempt >= hook.Retries || ctx.Err() != nil {
			return a.failure(attempt + 1)
		}
		timer := time.NewTimer(c.backoff(attempt, a, timeout))
		select {
		case <-ctx.Done():
			timer.Stop()
			return a.failure(attempt + 1)
		case <-timer.C:
		}
	}
}

// outcome is what one POST came to.
type outcome struct {
	err error
	// retry tells whether the failure may pass when repeated.
	retry bool
	// retryAfter is the wait a 429 or 503 answer asked for, when retryAfterSet.
	retryAfter    time.Duration
	retryAfterSet bool
}

// failure is the error of the last attempt; after retries it says how many attempts were made.
func (a outcome) failure(attempts int) error {
	if a.err == nil || attempts == 1 {
		return a.err
	}
	return fmt.Errorf("%w (gave up after %d attempts)", a.err, attempts)
}

func (c *Caller) post(ctx context.Context, hook flaggerv1.CanaryWebhook, timeout time.Duration, body []byte) outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return outcome{err: fmt.Errorf("invalid webhook url %q: %w", RedactURL(hook.URL), RedactError(err, RedactURL))}
	}
	req.Header.Set("Content-Type", "application/json")
	client := c.client
	if hook.DisableTLS {
		client = c.insecure
	}
	resp, err := client.Do(req)
	if err != nil {
		return outcome{err: RedactError(err, RedactURL), retry: retryableError(err)}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode <= http.StatusAccepted {
		return outcome{}
	}
	a := outcome{err: fmt.Errorf("%s", msg), retry: retryableStatus(resp.StatusCode)}
	if len(msg) == 0 {
		a.err = fmt.Errorf("%s", resp.Status)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		a.retryAfter, a.retryAfterSet = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return a
}

// Timeout is the webhook's timeout, 10s when unset or unparsable.
func Timeout(hook flaggerv1.CanaryWebhook) time.Duration {
	if len(hook.Timeout) < 2 {
		return DefaultTimeout
	}
	d, err := time.ParseDuration(hook.Timeout)
	if err != nil || d <= 0 {
		return DefaultTimeout
	}
	return d
}

// Metadata returns the webhook's metadata map (nil-safe).
func Metadata(hook flaggerv1.CanaryWebhook) map[string]string {
	if hook.Metadata == nil {
		return nil
	}
	return *hook.Metadata
}
