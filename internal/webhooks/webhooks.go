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
}

// NewCaller returns a Caller with its own HTTP transports.
func NewCaller() *Caller {
	insecure := http.DefaultTransport.(*http.Transport).Clone()
	insecure.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // disableTLS is the user's explicit choice
	return &Caller{
		client:   &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		insecure: &http.Client{Transport: insecure},
	}
}

// Call posts the payload of a canary to a webhook, retrying as configured. A status above 202 is a
// failure whose message is the response body.
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
	attempts := max(1, hook.Retries+1)
	for i := range attempts {
		if err = c.post(ctx, hook, body); err == nil || ctx.Err() != nil {
			return err
		}
		if i+1 < attempts {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(backoff(i)):
			}
		}
	}
	return err
}

func (c *Caller) post(ctx context.Context, hook flaggerv1.CanaryWebhook, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout(hook))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("invalid webhook url %q: %w", RedactURL(hook.URL), RedactError(err, RedactURL))
	}
	req.Header.Set("Content-Type", "application/json")
	client := c.client
	if hook.DisableTLS {
		client = c.insecure
	}
	resp, err := client.Do(req)
	if err != nil {
		return RedactError(err, RedactURL)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode > http.StatusAccepted {
		if len(msg) == 0 {
			return fmt.Errorf("%s", resp.Status)
		}
		return fmt.Errorf("%s", msg)
	}
	return nil
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

func backoff(attempt int) time.Duration {
	return min(time.Duration(1<<attempt)*time.Second, 10*time.Second)
}

// Metadata returns the webhook's metadata map (nil-safe).
func Metadata(hook flaggerv1.CanaryWebhook) map[string]string {
	if hook.Metadata == nil {
		return nil
	}
	return *hook.Metadata
}
