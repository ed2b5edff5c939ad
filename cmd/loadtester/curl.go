package main

// The load tester's image has no curl package, yet Flagger's users open gates and send test traffic
// from inside the pod with curl (`kubectl exec deploy/flagger-loadtester -- curl -d '{...}'
// localhost:8080/gate/open`, `watch curl http://podinfo-canary:9898/status/500`). Started under the
// name curl (the image links /usr/bin/curl to the binary), the load tester is a small curl that
// understands the options those commands use, with curl's exit codes.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// curl's exit codes that scripts test for.
const (
	curlOK            = 0
	curlUsage         = 2
	curlMalformedURL  = 3
	curlResolve       = 6
	curlConnect       = 7
	curlWrite         = 23
	curlHTTPError     = 22
	curlTimeout       = 28
	curlTooManyRedirs = 47
	curlOther         = 56
)

// curlRequest is what the command line asks for.
type curlRequest struct {
	url                         string
	method                      string
	data                        []string
	headers                     []string
	output                      string
	silent, showError, fail     bool
	include, location, insecure bool
	head                        bool
	maxTime, connectTimeout     time.Duration
}

// runCurl runs one curl command line and returns curl's exit code.
func runCurl(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	req, err := parseCurl(args)
	if err != nil {
		fmt.Fprintf(stderr, "curl: %v\n", err)
		return curlUsage
	}
	code, err := req.do(ctx, stdout, stderr)
	if err != nil && (!req.silent || req.showError) {
		fmt.Fprintf(stderr, "curl: (%d) %v\n", code, err)
	}
	return code
}

// parseCurl reads curl's options; an option it does not know is an error rather than ignored, so
// that a command never does less than its author meant.
func parseCurl(args []string) (*curlRequest, error) {
	r := &curlRequest{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("option %s: requires parameter", a)
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case a == "-d" || a == "--data" || a == "--data-raw" || a == "--data-binary" || a == "--data-ascii":
			var v string
			if v, err = value(); err == nil {
				if strings.HasPrefix(v, "@") && a != "--data-raw" {
					return nil, fmt.Errorf("option %s: reading data from a file (%s) is not supported", a, v)
				}
				r.data = append(r.data, v)
			}
		case a == "-X" || a == "--request":
			r.method, err = value()
		case a == "-H" || a == "--header":
			var v string
			if v, err = value(); err == nil {
				r.headers = append(r.headers, v)
			}
		case a == "-o" || a == "--output":
			r.output, err = value()
		case a == "-m" || a == "--max-time":
			r.maxTime, err = curlSeconds(value())
		case a == "--connect-timeout":
			r.connectTimeout, err = curlSeconds(value())
		case a == "--silent":
			r.silent = true
		case a == "--show-error":
			r.showError = true
		case a == "--fail":
			r.fail = true
		case a == "--include":
			r.include = true
		case a == "--location":
			r.location = true
		case a == "--insecure":
			r.insecure = true
		case a == "--head":
			r.head = true
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 1 && curlShortFlags(r, a[1:]):
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return nil, fmt.Errorf("option %s: is unknown", a)
		case r.url != "":
			return nil, fmt.Errorf("only one URL is supported (%s and %s)", r.url, a)
		default:
			r.url = a
		}
		if err != nil {
			return nil, err
		}
	}
	if r.url == "" {
		return nil, errors.New("no URL specified")
	}
	return r, nil
}

// curlShortFlags sets a group of boolean short options such as -sSf; false when one is not boolean.
func curlShortFlags(r *curlRequest, group string) bool {
	set := map[rune]*bool{'s': &r.silent, 'S': &r.showError, 'f': &r.fail, 'i': &r.include, 'L': &r.location, 'k': &r.insecure, 'I': &r.head}
	for _, c := range group {
		if set[c] == nil {
			return false
		}
	}
	for _, c := range group {
		*set[c] = true
	}
	return true
}

func curlSeconds(s string, err error) (time.Duration, error) {
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("expected a number of seconds, got %q", s)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// do sends the request and writes the answer; it returns curl's exit code and the error behind it.
func (r *curlRequest) do(ctx context.Context, stdout, stderr io.Writer) (int, error) {
	target := r.url
	if !strings.Contains(target, "://") {
		target = "http://" + target // curl's default scheme
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return curlMalformedURL, fmt.Errorf("URL rejected: %s", r.url)
	}
	if r.maxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.maxTime)
		defer cancel()
	}
	req, err := r.newRequest(ctx, u)
	if err != nil {
		return curlUsage, err
	}
	resp, err := r.client().Do(req)
	if err != nil {
		return curlErrorCode(err), err
	}
	defer resp.Body.Close()
	if r.fail && resp.StatusCode >= 400 {
		return curlHTTPError, fmt.Errorf("The requested URL returned error: %d", resp.StatusCode)
	}
	return r.write(resp, stdout)
}

func (r *curlRequest) newRequest(ctx context.Context, u *url.URL) (*http.Request, error) {
	method := r.method
	var body io.Reader
	switch {
	case method != "":
	case r.head:
		method = http.MethodHead
	case len(r.data) > 0:
		method = http.MethodPost
	default:
		method = http.MethodGet
	}
	if len(r.data) > 0 {
		body = strings.NewReader(strings.Join(r.data, "&"))
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "curl/pennant-loadtester")
	req.Header.Set("Accept", "*/*")
	if len(r.data) > 0 {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range r.headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("header %q: expected Name: value", h)
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if strings.EqualFold(name, "Host") {
			req.Host = value
			continue
		}
		req.Header.Set(name, value)
	}
	return req, nil
}

func (r *curlRequest) client() *http.Client {
	dialer := &net.Dialer{Timeout: r.connectTimeout}
	if r.connectTimeout == 0 {
		dialer.Timeout = 5 * time.Minute // curl's default connect timeout
	}
	transport := &http.Transport{
		DialContext:     dialer.DialContext,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: r.insecure}, //nolint:gosec // only with -k, as curl
	}
	c := &http.Client{Transport: transport}
	if !r.location {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c
}

// write copies the answer (headers first with -i) to stdout or the -o file.
func (r *curlRequest) write(resp *http.Response, stdout io.Writer) (int, error) {
	out := stdout
	if r.output != "" && r.output != "-" {
		f, err := os.Create(r.output)
		if err != nil {
			return curlWrite, err
		}
		defer f.Close()
		out = f
	}
	if r.include || r.head {
		fmt.Fprintf(out, "%s %s\r\n", resp.Proto, resp.Status)
		if err := resp.Header.Write(out); err != nil {
			return curlWrite, err
		}
		fmt.Fprint(out, "\r\n")
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		return curlErrorCode(err), err
	}
	return curlOK, nil
}

// curlErrorCode maps a Go client error to curl's exit code.
func curlErrorCode(err error) int {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || os.IsTimeout(err):
		return curlTimeout
	case errors.As(err, &dnsErr):
		return curlResolve
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return curlConnect
	case strings.Contains(err.Error(), "stopped after 10 redirects"):
		return curlTooManyRedirs
	default:
		return curlOther
	}
}
