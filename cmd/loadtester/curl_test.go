package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curlBinary builds the load tester and links it as curl, as the image does.
func curlBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "loadtester")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	curl := filepath.Join(dir, "curl")
	if err := os.Symlink(bin, curl); err != nil {
		t.Fatal(err)
	}
	return curl
}

// runCurlBinary runs the linked binary and returns its exit code, stdout and stderr.
func runCurlBinary(t *testing.T, curl string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	default:
		t.Fatalf("%v: %v", args, err)
		return 0, "", ""
	}
}

// The seeds' commands inside the load tester's pod: opening a gate with curl from loopback, and
// sending test traffic that fails.
func TestCurlInTheImageOpensAGateAndSendsTraffic(t *testing.T) {
	curl := curlBinary(t)

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
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, io.Discard) }()
	defer func() {
		cancel()
		<-done
	}()
	base := "localhost:" + port // no scheme, as people type it
	for i := 0; ; i++ {
		if code, _, _ := runCurlBinary(t, curl, "-sf", base+"/healthz"); code == 0 {
			break
		}
		if i == 100 {
			t.Fatal("the load tester does not serve")
		}
		time.Sleep(50 * time.Millisecond)
	}
	payload := `{"name":"podinfo","namespace":"test"}`
	if code, out, _ := runCurlBinary(t, curl, "-sS", "-f", base+"/gate/check", "-d", payload); code != curlHTTPError {
		t.Errorf("check of a closed gate with -f: exit %d (%q), want 22", code, out)
	}
	if code, _, errOut := runCurlBinary(t, curl, "-d", payload, base+"/gate/open"); code != 0 {
		t.Fatalf("curl -d ... /gate/open: exit %d: %s", code, errOut)
	}
	if code, out, _ := runCurlBinary(t, curl, "-s", "-d", payload, "http://"+base+"/gate/check"); code != 0 || out != "Approved" {
		t.Errorf("check of the opened gate: exit %d, %q", code, out)
	}

	var got struct{ method, body, host, header string }
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.method, got.body, got.host, got.header = r.Method, string(b), r.Host, r.Header.Get("X-Canary")
		if strings.HasPrefix(r.URL.Path, "/status/") {
			code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
			w.WriteHeader(code)
		}
		io.WriteString(w, "podinfo")
	}))
	defer app.Close()
	if code, out, _ := runCurlBinary(t, curl, app.URL+"/status/500"); code != 0 || out != "podinfo" {
		t.Errorf("a 500 without -f: exit %d, %q (curl prints the body and exits 0)", code, out)
	}
	if code, _, errOut := runCurlBinary(t, curl, "-f", app.URL+"/status/500"); code != curlHTTPError || !strings.Contains(errOut, "500") {
		t.Errorf("a 500 with -f: exit %d, %q", code, errOut)
	}
	if code, _, _ := runCurlBinary(t, curl, "-X", "PUT", "-H", "X-Canary: insider", "-H", "Host: app.example.com", "-d", "a=1", app.URL+"/"); code != 0 ||
		got.method != "PUT" || got.body != "a=1" || got.host != "app.example.com" || got.header != "insider" {
		t.Errorf("request as written: exit %d, %+v", code, got)
	}
	out := filepath.Join(t.TempDir(), "body")
	if code, stdout, _ := runCurlBinary(t, curl, "-s", "-o", out, app.URL+"/"); code != 0 || stdout != "" {
		t.Errorf("-o: exit %d, stdout %q", code, stdout)
	} else if b, _ := os.ReadFile(out); string(b) != "podinfo" {
		t.Errorf("-o wrote %q", b)
	}
}

func TestCurlErrorsAreCurls(t *testing.T) {
	curl := curlBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"http://" + closed + "/"}, curlConnect},
		{[]string{"-m", "0.3", slow.URL}, curlTimeout},
		{[]string{"--frobnicate", slow.URL}, curlUsage},
		{[]string{"-d", "@/etc/passwd", slow.URL}, curlUsage},
		{[]string{}, curlUsage},
		{[]string{"ftp://example.com/"}, curlMalformedURL},
	} {
		if code, _, _ := runCurlBinary(t, curl, c.args...); code != c.code {
			t.Errorf("curl %v: exit %d, want %d", c.args, code, c.code)
		}
	}
}
