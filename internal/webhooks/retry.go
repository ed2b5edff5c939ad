package webhooks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Flagger posts webhooks with hashicorp/go-retryablehttp, RetryMax set to the webhook's retries and
// the rest left at its defaults: the retry classes, the backoff and its bounds below are those.
const (
	retryWaitMin = time.Second
	retryWaitMax = 30 * time.Second
)

// retryableStatus tells whether an answer may change when asked again: 429 and the 5xx other than
// 501 Not Implemented. Any other answer, in particular the 403 of a closed gate, is final.
func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || (code >= 500 && code != http.StatusNotImplemented)
}

// retryableError tells whether a request that got no answer may get one when repeated: a refused
// or reset connection or an attempt that timed out may, a URL with an unsupported scheme, a
// malformed header, a redirect loop or a certificate that does not verify may not.
func retryableError(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var verification *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &verification) || errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return false
	}
	msg := err.Error()
	for _, permanent := range []string{"unsupported protocol scheme", "stopped after", "invalid header"} {
		if strings.Contains(msg, permanent) {
			return false
		}
	}
	return true
}

// backoff is the wait before retry number attempt+1: the Retry-After a 429 or 503 asked for, else
// waitMin doubled at each attempt up to waitMax (1s, 2s, 4s … 30s), as in Flagger. Unlike Flagger,
// no wait is longer than the webhook's timeout: a server asking for an hour cannot hold the
// canary's analysis for an hour.
func (c *Caller) backoff(attempt int, a outcome, timeout time.Duration) time.Duration {
	wait := c.waitMax
	switch {
	case a.retryAfterSet:
		wait = a.retryAfter
	case attempt < 32:
		if w := c.waitMin << attempt; w > 0 && w < c.waitMax {
			wait = w
		}
	}
	return min(wait, timeout)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(time.Duration(1<<62)/time.Second))) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(0, at.Sub(now)), true
}
