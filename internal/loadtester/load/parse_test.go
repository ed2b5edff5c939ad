package load

import (
	"encoding/base64"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// The splitting itself is tested in internal/loadtester/shellwords; these are what the hey engine
// makes of the shell syntax it finds.
func TestHeyWordsDropWhatShDrops(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
	}{
		{`hey -H 'Cookie: type=insider' http://a/`, []string{"hey", "-H", "Cookie: type=insider", "http://a/"}},
		{`hey http://a/ # a comment; with | operators`, []string{"hey", "http://a/"}},
		{"hey http://a/ # a comment\n", []string{"hey", "http://a/"}},
		{"hey -c 2 \\\n http://a/\n", []string{"hey", "-c", "2", "http://a/"}},
		{"hey http://a/\n# a note\n\n", []string{"hey", "http://a/"}},
		{`hey -d '$HOME $(x) ; | > &' http://a/?p=5$ ~`, []string{"hey", "-d", "$HOME $(x) ; | > &", "http://a/?p=5$", "~"}},
		{`hey "http://a/?q=$" 'x'\''y'`, []string{"hey", "http://a/?q=$", "x'y"}},
		{``, nil},
	} {
		got, err := heyWords(tc.line)
		if err != nil {
			t.Errorf("heyWords(%q): %v", tc.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("heyWords(%q) = %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestHeyWordsRefuseWhatOnlyAShellDoes(t *testing.T) {
	for line, wantErr := range map[string]string{
		`hey -H 'a: b`:                   "column 8: unterminated single quote",
		`hey -H "a: b`:                   "column 8: unterminated double quote",
		`hey http://a/ \`:                "column 15: the line ends with a lone backslash",
		`hey http://a/ | tee x`:          `column 15: shell operator '|' is not supported`,
		`hey http://a/ > /tmp/out`:       `shell operator '>'`,
		`hey http://a/ < /etc/passwd`:    `shell operator '<'`,
		`hey http://a/; rm -rf /`:        `column 14: shell operator ';'`,
		`hey http://a/ && curl x`:        `shell operator '&'`,
		`hey http://a/ &`:                `shell operator '&'`,
		`(hey http://a/)`:                `column 1: shell operator '('`,
		`hey $URL`:                       `column 5: '$' (variable or command substitution)`,
		`hey http://a/$(id)`:             `'$' (variable or command substitution)`,
		"hey `id`":                       "'`' (variable or command substitution)",
		`hey -H "X: $TOKEN" http://a/`:   `column 12: '$' inside double quotes`,
		"hey -d \"`id`\" http://a/":      "'`' inside double quotes",
		`hey -c 2 http://a/ 2>/dev/null`: `shell operator '>'`,
		"hey -c 2\nhttp://a/":            "column 9: a line break separates commands in sh",
		"hey http://a/\nrm -rf /":        "column 14: a line break separates commands in sh",
		"hey http://a/ # note\nrm -rf /": "column 21: a line break separates commands in sh",
	} {
		_, err := heyWords(line)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("heyWords(%q) error = %v, want one containing %q", line, err, wantErr)
		}
	}
}

func TestIsHey(t *testing.T) {
	for line, want := range map[string]bool{
		"hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/": true,
		"/usr/local/bin/hey http://a/":                          true,
		"  hey http://a/":                                       true,
		"'hey' http://a/":                                       true,
		"hey -H 'unterminated http://a/":                        true, // ParseHey explains the error
		"hey http://a/ | tee x":                                 true, // likewise
		"curl -s http://a/":                                     false,
		"heyx http://a/":                                        false,
		"echo hey":                                              false,
		"bash -c 'hey http://a/'":                               false,
		"":                                                      false,
	} {
		if got := IsHey(line); got != want {
			t.Errorf("IsHey(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestParseHeyDefaultsAreHeys(t *testing.T) {
	s, err := ParseHey("hey http://podinfo-canary.test:9898/")
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		URL: "http://podinfo-canary.test:9898/", Method: "GET", Requests: 200, Concurrency: 50, Timeout: 20 * time.Second,
		Header: http.Header{"Content-Type": {"text/html"}, "User-Agent": {"hey/0.0.1"}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("ParseHey defaults:\n got %+v\nwant %+v", s, want)
	}
}

func TestParseHeyEveryFlag(t *testing.T) {
	line := `hey -z 1m -q 10 -c 2 -n 5 -host app.example.com -H 'Cookie: type=insider' -H "X-Version:  2 " ` +
		`-m post -d '{"a":1}' -T application/json -A application/xml -U probe -a 'user:pa:ss' -t 5 ` +
		`-disable-keepalive -disable-compression -disable-redirects -h2 -x proxy.local:3128 -o csv -cpus 1 ` +
		`http://podinfo-canary.test:9898/`
	s, err := ParseHey(line)
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		URL: "http://podinfo-canary.test:9898/", Method: "POST", Host: "app.example.com", Body: []byte(`{"a":1}`),
		Requests: 5, Duration: time.Minute, Concurrency: 2, RatePerWorker: 10, Timeout: 5 * time.Second,
		DisableKeepAlive: true, DisableCompression: true, DisableRedirects: true, HTTP2: true, Proxy: "proxy.local:3128",
		Header: http.Header{
			"Content-Type":  {"application/json"},
			"Cookie":        {"type=insider"},
			"X-Version":     {"2"},
			"Accept":        {"application/xml"},
			"User-Agent":    {"probe hey/0.0.1"},
			"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("user:pa:ss"))},
		},
		Notes: []string{
			"-o csv ignored: the built-in engine reports a summary",
			"-cpus ignored: the built-in engine shares the load tester's CPUs",
		},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("ParseHey(%q):\n got %+v\nwant %+v", line, s, want)
	}
}

// The hey lines of Flagger's docs and the seeds' Canary webhooks, as written there.
func TestParseHeyTheLinesUsersWrite(t *testing.T) {
	for line, want := range map[string]Spec{
		"hey -z 1m -q 10 -c 2 http://podinfo-canary.test/": {
			URL: "http://podinfo-canary.test/", Duration: time.Minute, RatePerWorker: 10, Concurrency: 2},
		"hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/": {
			URL: "http://podinfo-canary.test:9898/", Duration: 2 * time.Minute, RatePerWorker: 10, Concurrency: 2},
		"hey -z 1m -q 10 -c 2 -H 'Cookie: type=insider' http://podinfo.test/": {
			URL: "http://podinfo.test/", Duration: time.Minute, RatePerWorker: 10, Concurrency: 2, Header: http.Header{"Cookie": {"type=insider"}}},
		"hey -z 2m -q 5 -c 2 -host app.example.com http://gateway-proxy.gloo-system": {
			URL: "http://gateway-proxy.gloo-system", Duration: 2 * time.Minute, RatePerWorker: 5, Concurrency: 2, Host: "app.example.com"},
		"hey -z 1m -q 5 -c 5 -H 'X-Canary: insider' -host app.example.com http://gateway-proxy.gloo-system": {
			URL: "http://gateway-proxy.gloo-system", Duration: time.Minute, RatePerWorker: 5, Concurrency: 5, Host: "app.example.com",
			Header: http.Header{"X-Canary": {"insider"}}},
	} {
		want.Method, want.Requests, want.Timeout = "GET", 200, 20*time.Second
		if want.Header == nil {
			want.Header = http.Header{}
		}
		want.Header.Set("Content-Type", "text/html")
		want.Header.Set("User-Agent", "hey/0.0.1")
		got, err := ParseHey(line)
		if err != nil {
			t.Errorf("ParseHey(%q): %v", line, err)
		} else if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseHey(%q):\n got %+v\nwant %+v", line, got, want)
		}
	}
}

// A Canary's webhook written with a YAML block scalar: `|` keeps the line break that ends the line,
// `>` folds the lines into one; either is one hey command. Two commands in a `|` block are refused.
func TestParseHeyTakesYAMLBlockScalars(t *testing.T) {
	for doc, wantErr := range map[string]string{
		"cmd: |\n  hey -z 1m -q 10 -c 2 http://podinfo-canary.test/\n":                      "",
		"cmd: |+\n  hey -z 1m -q 10 -c 2 http://podinfo-canary.test/\n\n":                   "",
		"cmd: |\n  hey -z 1m -q 10 -c 2 \\\n    http://podinfo-canary.test/\n":              "",
		"cmd: >\n  hey -z 1m -q 10 -c 2\n  http://podinfo-canary.test/\n":                   "",
		"cmd: |\n  hey -z 1m -q 10 -c 2 http://podinfo-canary.test/ # load\n":               "",
		"cmd: |\n  hey -z 1m -q 10 -c 2\n  http://podinfo-canary.test/\n":                   "column 21: a line break separates commands in sh",
		"cmd: |\n  hey -z 1m -q 10 -c 2 http://podinfo-canary.test/\n  curl http://evil/\n": "column 49: a line break separates commands in sh",
	} {
		var metadata struct{ Cmd string }
		if err := yaml.Unmarshal([]byte(doc), &metadata); err != nil {
			t.Fatal(err)
		}
		s, err := ParseHey(metadata.Cmd)
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("ParseHey(%q): %v", metadata.Cmd, err)
		case wantErr == "" && (s.URL != "http://podinfo-canary.test/" || s.Duration != time.Minute || s.Concurrency != 2):
			t.Errorf("ParseHey(%q) = %+v", metadata.Cmd, s)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("ParseHey(%q) error = %v, want one containing %q", metadata.Cmd, err, wantErr)
		}
	}
}

func TestParseHeyFlagSyntaxAndHeaderRules(t *testing.T) {
	for _, tc := range []struct {
		line  string
		check func(Spec) bool
	}{
		{"hey -c=3 --n 9 -q=2.5 -t 0 http://a/", func(s Spec) bool {
			return s.Concurrency == 3 && s.Requests == 9 && s.RatePerWorker == 2.5 && s.Timeout == 0
		}},
		{"hey -h2=false -disable-keepalive=true http://a/", func(s Spec) bool { return !s.HTTP2 && s.DisableKeepAlive }},
		{"hey -z 90s -n 10 http://a/", func(s Spec) bool { return s.Duration == 90*time.Second && s.workers() == 50 }},
		{"hey -n 7 -c 50 http://a/", func(s Spec) bool { return s.workers() == 7 }},
		// A later -H of one name replaces the earlier (hey's header.Set); -H beats -T for Content-Type.
		{"hey -H 'Cookie: a' -H 'cookie: b' -H 'Content-Type: text/plain' -T application/json http://a/", func(s Spec) bool {
			return reflect.DeepEqual(s.Header["Cookie"], []string{"b"}) && s.Header.Get("Content-Type") == "text/plain"
		}},
		{"hey -H 'User-Agent: probe' http://a/", func(s Spec) bool { return s.Header.Get("User-Agent") == "probe hey/0.0.1" }},
		{"hey -H 'Host: app.example.com' http://a/", func(s Spec) bool { return s.Host == "app.example.com" && s.Header.Get("Host") == "" }},
		{"hey -host b.example -H 'Host: a.example' http://a/", func(s Spec) bool { return s.Host == "b.example" }},
		{"hey -x http://proxy:3128 https://a/", func(s Spec) bool { return s.Proxy == "http://proxy:3128" }},
		{"hey -x socks5://proxy:1080 https://a/", func(s Spec) bool { return s.Proxy == "socks5://proxy:1080" }},
		{"/usr/local/bin/hey -m delete http://a/", func(s Spec) bool { return s.Method == "DELETE" }},
		{"hey -d '' http://a/", func(s Spec) bool { return s.Body == nil }},
	} {
		s, err := ParseHey(tc.line)
		if err != nil {
			t.Errorf("ParseHey(%q): %v", tc.line, err)
			continue
		}
		if !tc.check(s) {
			t.Errorf("ParseHey(%q) = %+v: not as expected", tc.line, s)
		}
	}
}

func TestParseHeyBadInput(t *testing.T) {
	for line, wantErr := range map[string]string{
		"curl http://a/":                         "does not start with hey",
		"hey":                                    "no URL",
		"hey -c 2":                               "no URL",
		"hey -foo 1 http://a/":                   "flag provided but not defined: -foo",
		"hey -c two http://a/":                   `invalid value "two" for flag -c`,
		"hey -z 1 http://a/":                     `invalid value "1" for flag -z`,
		"hey -t 1.5 http://a/":                   `invalid value "1.5" for flag -t`,
		"hey -q fast http://a/":                  `invalid value "fast" for flag -q`,
		"hey -help":                              "-help asks for usage",
		"hey http://a/ -c 5":                     `"-c" after the URL`,
		"hey http://a/ http://b/":                "unexpected arguments after the URL",
		"hey -h 'A: b' http://a/":                "-h is deprecated",
		"hey -D /etc/passwd http://a/":           "-D (body from a file) is not supported",
		"hey -o '{{.Rps}}' http://a/":            "only -o csv is accepted",
		"hey -c 0 http://a/":                     "the concurrency must be between 1 and 1000",
		"hey -c 1001 http://a/":                  "the concurrency must be between 1 and 1000",
		"hey -n 0 http://a/":                     "the number of requests must be at least 1",
		"hey -z -1s http://a/":                   "the duration cannot be negative",
		"hey -q -1 http://a/":                    "the rate cannot be negative",
		"hey -t -1 http://a/":                    "the timeout cannot be negative",
		"hey podinfo:9898":                       "the scheme must be http or https",
		"hey ftp://a/":                           "the scheme must be http or https",
		"hey http:///path":                       "has no host",
		"hey 'http://a b/'":                      "URL",
		"hey -m 'GET X' http://a/":               "not a valid HTTP method",
		"hey -H 'NoColon' http://a/":             "a header is 'Name: value'",
		"hey -H 'Bad Name: x' http://a/":         "a header is 'Name: value'",
		"hey -H 'X-Empty:' http://a/":            "a header is 'Name: value'",
		"hey -H \"X-A: b\nX-Evil: c\" http://a/": "line break",
		"hey -a useronly http://a/":              "basic authentication is user:password",
		"hey -a ':pw' http://a/":                 "basic authentication is user:password",
		"hey -host 'a b' http://a/":              "is not a host name",
		"hey -x ftp://proxy:21 http://a/":        "the proxy scheme must be",
		"hey -x 'http://' http://a/":             "has no host",
		"hey -c 2 http://a/ | tee /tmp/x":        "shell operator",
		"hey -H 'X: 1 http://a/":                 "unterminated single quote",
	} {
		_, err := ParseHey(line)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("ParseHey(%q) error = %v, want one containing %q", line, err, wantErr)
		}
	}
}

// Whatever a payload's command line holds, parsing never panics, and what it accepts is a valid Spec.
func FuzzParseHey(f *testing.F) {
	for _, seed := range []string{
		"hey -z 1m -q 10 -c 2 -H 'Cookie: type=insider' http://podinfo.test/",
		`hey -m POST -d "{\"a\":1}" -T application/json -a u:p -x p:1 -h2 https://a:8443/x?y=1`,
		"hey -n 1 -c 1 http://a/ # comment", "hey 'a\\", `hey "$x"`, "hey -H 'Host: h' http://a/",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := ParseHey(line)
		if err != nil {
			return
		}
		if err := s.validate(); err != nil {
			t.Errorf("ParseHey(%q) accepted an invalid spec: %v", line, err)
		}
		if !IsHey(line) {
			t.Errorf("ParseHey(%q) accepted a line IsHey refuses", line)
		}
	})
}
