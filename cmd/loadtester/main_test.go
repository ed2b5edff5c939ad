package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFlagsAreFlaggersWithSafeDefaults(t *testing.T) {
	o, err := parseFlags(flag.NewFlagSet("loadtester", flag.ContinueOnError), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.port != "9090" || o.timeout != time.Hour || o.logLevel != "debug" || o.zapEncoding != "json" || o.namespaceRegexp != "" {
		t.Errorf("Flagger's defaults changed: %+v", o)
	}
	if o.allowExec || o.allowShell || o.execAllow != "" {
		t.Errorf("running commands must be off by default: %+v", o)
	}
	for _, args := range [][]string{{"-allow-exec"}, {"-namespace-regexp", "("}} {
		fs := flag.NewFlagSet("loadtester", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		if _, err := parseFlags(fs, args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// The binary's wiring serves Flagger's endpoints on -port and stops on its context.
func TestRunServesOnPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	o, err := parseFlags(flag.NewFlagSet("loadtester", flag.ContinueOnError), []string{"-port", port, "-gates-configmap", ""})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, &syncWriter{w: &logs}) }()
	url := "http://127.0.0.1:" + port
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	post := func(path, body string) (int, string) {
		resp, err := http.Post(url+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post("/gate/open", `{"name":"podinfo","namespace":"test"}`); code != http.StatusAccepted {
		t.Errorf("/gate/open from loopback: %d", code)
	}
	if code, body := post("/gate/check", `{"name":"podinfo","namespace":"test"}`); code != http.StatusOK || body != "Approved" {
		t.Errorf("/gate/check: %d %q", code, body)
	}
	if code, body := post("/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"curl -sf http://x"}}`); code != http.StatusForbidden || !strings.Contains(body, "-allow-exec") {
		t.Errorf("a command by default: %d %q", code, body)
	}
	if resp, err := http.Get(url + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/metrics: %v", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `pennant_loadtester_tasks_total{outcome="refused_403",type="bash"} 1`) || !strings.Contains(string(b), "go_goroutines") {
			t.Errorf("/metrics lacks the task and Go metrics")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	if !strings.Contains(logs.String(), `"msg":"Starting load tester v`+version+` API on port `+port+`"`) {
		t.Errorf("no Flagger-shaped start line in:\n%s", logs.String())
	}
}

// syncWriter serializes the logger's writes to a buffer.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
