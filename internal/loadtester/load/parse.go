package load

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/pennant/pennant/internal/loadtester/shellwords"
)

// IsHey reports whether a command line runs hey: its first word is `hey` or a path ending in /hey.
// A line that starts with hey but does not parse still counts, so that ParseHey explains what is wrong
// instead of the line being handed to a process runner.
func IsHey(command string) bool {
	first := ""
	if line, err := shellwords.Split(command); err == nil {
		if len(line.Words) > 0 {
			first = line.Words[0]
		}
	} else if fields := strings.Fields(command); len(fields) > 0 {
		first = strings.Trim(fields[0], `'"`)
	}
	return first != "" && path.Base(first) == "hey"
}

// heyFlags are the values of hey's flags, with hey's defaults.
type heyFlags struct {
	method, body, bodyFile, accept, contentType, auth, host, userAgent, output, deprecatedH string
	concurrency, requests, timeoutSeconds, cpus                                             int
	rate                                                                                    float64
	duration                                                                                time.Duration
	h2, disableCompression, disableKeepAlive, disableRedirects                              bool
	proxy                                                                                   string
	headers                                                                                 repeated
}

// repeated collects a flag given several times (-H).
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ", ") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// newHeyFlagSet declares hey v0.1.5's flags and defaults (from its main.go).
func newHeyFlagSet(f *heyFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("hey", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, not printed
	fs.StringVar(&f.method, "m", "GET", "HTTP method")
	fs.StringVar(&f.deprecatedH, "h", "", "deprecated by hey: use -H")
	fs.Var(&f.headers, "H", "header, repeatable")
	fs.StringVar(&f.body, "d", "", "request body")
	fs.StringVar(&f.bodyFile, "D", "", "request body file (refused)")
	fs.StringVar(&f.accept, "A", "", "Accept header")
	fs.StringVar(&f.contentType, "T", defaultContentType, "Content-Type")
	fs.StringVar(&f.auth, "a", "", "basic auth user:password")
	fs.StringVar(&f.host, "host", "", "Host header")
	fs.StringVar(&f.userAgent, "U", "", "User-Agent prefix")
	fs.StringVar(&f.output, "o", "", "output type")
	fs.IntVar(&f.concurrency, "c", defaultConcurrency, "workers")
	fs.IntVar(&f.requests, "n", defaultRequests, "requests")
	fs.Float64Var(&f.rate, "q", 0, "rate per worker")
	fs.IntVar(&f.timeoutSeconds, "t", int(defaultTimeout/time.Second), "timeout in seconds")
	fs.DurationVar(&f.duration, "z", 0, "duration")
	fs.BoolVar(&f.h2, "h2", false, "HTTP/2")
	fs.IntVar(&f.cpus, "cpus", 0, "CPUs (ignored)")
	fs.BoolVar(&f.disableCompression, "disable-compression", false, "")
	fs.BoolVar(&f.disableKeepAlive, "disable-keepalive", false, "")
	fs.BoolVar(&f.disableRedirects, "disable-redirects", false, "")
	fs.StringVar(&f.proxy, "x", "", "proxy")
	return fs
}

// ParseHey parses a hey command line (its first word is hey) into a Spec. The line is split into words
// like a shell would (see heyWords) but no shell runs; flags are read as hey reads them (Go's flag
// syntax: -c 5, -c=5, --c 5), and they come before the single URL.
func ParseHey(command string) (Spec, error) {
	words, err := heyWords(command)
	if err != nil {
		return Spec{}, fmt.Errorf("hey command line: %w", err)
	}
	if len(words) == 0 || path.Base(words[0]) != "hey" {
		return Spec{}, errors.New("hey command line: it does not start with hey")
	}
	var f heyFlags
	fs := newHeyFlagSet(&f)
	if err := fs.Parse(words[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Spec{}, errors.New("hey command line: -help asks for usage, not a load run")
		}
		return Spec{}, fmt.Errorf("hey command line: %w", err)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	spec, err := f.spec(fs.Args(), set)
	if err != nil {
		return Spec{}, fmt.Errorf("hey command line: %w", err)
	}
	return spec, nil
}

// spec turns parsed flags and the remaining arguments into a validated Spec.
func (f *heyFlags) spec(args []string, set map[string]bool) (Spec, error) {
	switch {
	case len(args) == 0:
		return Spec{}, errors.New("no URL: hey needs one after its flags")
	case len(args) > 1 && strings.HasPrefix(args[1], "-"):
		return Spec{}, fmt.Errorf("%q after the URL: flags must come before the URL (hey stops reading flags there)", args[1])
	case len(args) > 1:
		return Spec{}, fmt.Errorf("unexpected arguments after the URL %q: %q", args[0], args[1:])
	case f.deprecatedH != "":
		return Spec{}, errors.New("-h is deprecated by hey and not supported: use -H 'Name: value'")
	case f.bodyFile != "":
		return Spec{}, errors.New("-D (body from a file) is not supported: the load tester reads no files for a webhook; use -d")
	case f.output != "" && f.output != "csv":
		return Spec{}, fmt.Errorf("-o %q: only -o csv is accepted (and ignored: the summary is reported)", f.output)
	case f.timeoutSeconds < 0:
		return Spec{}, fmt.Errorf("-t %d: the timeout cannot be negative (0 means none)", f.timeoutSeconds)
	}
	s := Spec{
		URL:                args[0],
		Method:             strings.ToUpper(f.method),
		Host:               f.host,
		Requests:           f.requests,
		Duration:           f.duration,
		Concurrency:        f.concurrency,
		RatePerWorker:      f.rate,
		Timeout:            time.Duration(f.timeoutSeconds) * time.Second,
		DisableKeepAlive:   f.disableKeepAlive,
		DisableCompression: f.disableCompression,
		DisableRedirects:   f.disableRedirects,
		HTTP2:              f.h2,
		Proxy:              f.proxy,
	}
	if f.body != "" {
		s.Body = []byte(f.body)
	}
	if err := f.applyHeaders(&s); err != nil {
		return Spec{}, err
	}
	if f.output == "csv" {
		s.Notes = append(s.Notes, "-o csv ignored: the built-in engine reports a summary")
	}
	if set["cpus"] {
		s.Notes = append(s.Notes, "-cpus ignored: the built-in engine shares the load tester's CPUs")
	}
	if err := s.validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// headerLine is hey's -H syntax: a name of word characters and dashes, a colon, a non-empty value.
var headerLine = regexp.MustCompile(`^([\w-]+):\s*(.*)$`)

// applyHeaders builds the headers in hey's order: Content-Type, then -H (each replacing an earlier one
// of the same name), then -A, then the User-Agent; -a comes last, and -H Host becomes the Host.
func (f *heyFlags) applyHeaders(s *Spec) error {
	h := http.Header{}
	h.Set("Content-Type", f.contentType)
	for _, line := range f.headers {
		if strings.ContainsAny(line, "\r\n\x00") {
			return fmt.Errorf("-H %q: the header contains a line break or NUL", line)
		}
		m := headerLine.FindStringSubmatch(line)
		if m == nil || strings.TrimSpace(m[2]) == "" {
			return fmt.Errorf("-H %q: a header is 'Name: value'", line)
		}
		name, value := m[1], strings.TrimSpace(m[2])
		if http.CanonicalHeaderKey(name) == "Host" {
			if s.Host == "" {
				s.Host = value
			}
			continue
		}
		h.Set(name, value)
	}
	if f.accept != "" {
		h.Set("Accept", f.accept)
	}
	switch ua := h.Get("User-Agent"); {
	case f.userAgent != "":
		h.Set("User-Agent", f.userAgent+" "+UserAgent)
	case ua != "":
		h.Set("User-Agent", ua+" "+UserAgent)
	default:
		h.Set("User-Agent", UserAgent)
	}
	if f.auth != "" {
		user, password, ok := strings.Cut(f.auth, ":")
		if !ok || user == "" || password == "" {
			return fmt.Errorf("-a %q: basic authentication is user:password", f.auth)
		}
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	}
	if strings.ContainsAny(s.Host, " \t\r\n\x00/") {
		return fmt.Errorf("-host %q is not a host name", s.Host)
	}
	for name, values := range h {
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n\x00") {
				return fmt.Errorf("header %s: the value contains a line break or NUL", name)
			}
		}
	}
	s.Header = h
	return nil
}
