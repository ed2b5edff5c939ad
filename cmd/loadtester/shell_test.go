package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// toolsDir builds the load tester and links it as curl, sh and watch in one directory, as the
// image does in its PATH.
func toolsDir(t *testing.T) string {
	t.Helper()
	curl := curlBinary(t)
	dir := filepath.Dir(curl)
	for _, name := range []string{"sh", "watch"} {
		if err := os.Symlink(filepath.Join(dir, "loadtester"), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Seed 002: `kubectl -n test exec -it flagger-loadtester-xxx sh`, then `watch curl
// http://backend-canary:9898/status/500`, with nothing but the load tester in the image.
func TestShellAndWatchInTheImage(t *testing.T) {
	dir := toolsDir(t)
	var hits atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("boom"))
	}))
	defer app.Close()
	env := []string{"PATH=" + dir} // only the image's programs

	// The session as typed: commands on the shell's stdin, one of them watch, stopped by Ctrl-C.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sh := exec.CommandContext(ctx, filepath.Join(dir, "sh"))
	sh.Env = env
	sh.Stdin = strings.NewReader("x=$(curl -s " + app.URL + "/status/500)\necho got $x\nwatch -n 0.2 curl -s " + app.URL + "/status/500\n")
	var out, errOut bytes.Buffer
	sh.Stdout, sh.Stderr = &out, &errOut
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for hits.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(-sh.Process.Pid, syscall.SIGINT); err != nil { // the process group, as a terminal's Ctrl-C
		_ = sh.Process.Signal(syscall.SIGINT)
	}
	_ = sh.Wait()
	if hits.Load() < 5 {
		t.Errorf("watch curl sent %d requests in 10s, want at least 5 (every 0.2s); stderr: %s", hits.Load(), errOut.String())
	}
	if !strings.Contains(out.String(), "got boom") || !strings.Contains(out.String(), "Every 0.2s: curl -s") {
		t.Errorf("session output:\n%s\nstderr: %s", out.String(), errOut.String())
	}

	// sh -c, as -allow-shell tasks run lines, with pipes and exit statuses.
	c := exec.Command(filepath.Join(dir, "sh"), "-c", "curl -s "+app.URL+"/ | { read x; [ \"$x\" = boom ] && echo found; }; exit 3")
	c.Env = env
	b, err := c.Output()
	if code := c.ProcessState.ExitCode(); code != 3 || strings.TrimSpace(string(b)) != "found" {
		t.Errorf("sh -c: exit %d (%v), output %q; want 3 and found", code, err, b)
	}
}

func TestShellAndWatchRefuseBadInput(t *testing.T) {
	dir := toolsDir(t)
	for _, c := range []struct {
		prog string
		args []string
		code int
	}{
		{"sh", []string{"-c"}, 2},
		{"sh", []string{"-x", "true"}, 2},
		{"sh", []string{"-c", "if then"}, 2},
		{"sh", []string{"/no/such/script"}, 127},
		{"watch", nil, 2},
		{"watch", []string{"-n", "0", "true"}, 2},
	} {
		cmd := exec.Command(filepath.Join(dir, c.prog), c.args...)
		cmd.Env = []string{"PATH=" + dir}
		_ = cmd.Run()
		if got := cmd.ProcessState.ExitCode(); got != c.code {
			t.Errorf("%s %v: exit %d, want %d", c.prog, c.args, got, c.code)
		}
	}
}
