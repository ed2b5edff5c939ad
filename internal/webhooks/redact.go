package webhooks

import (
	"errors"
	"net/url"
	"strings"
)

// RedactURL returns a URL fit for events and logs: userinfo is dropped and query values are
// replaced, since both commonly carry tokens. An unparsable URL is not printed at all.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(redacted)"
	}
	u.User = nil
	if strings.Contains(u.Opaque, "@") {
		// "user:password@host" without a scheme parses as scheme "user", opaque "password@host".
		u.Opaque = "(redacted)"
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"redacted"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment = ""
	return u.String()
}

// RedactError rewrites the URL of a transport error (*url.Error, whose text embeds the full URL)
// with redactURL; other errors are returned unchanged.
func RedactError(err error, redactURL func(string) string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		c := *ue
		c.URL = redactURL(ue.URL)
		return &c
	}
	return err
}
