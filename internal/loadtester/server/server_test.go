package server

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/apimachinery/pkg/types"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/loadtester/gates"
)

// The controller's own webhook calls (internal/webhooks) drive every task type of the load tester.
func TestControllerWebhooksDriveEachTaskType(t *testing.T) {
	hey := newFakeHey()
	hey.finish()
	bin := fakeProgram(t, "helm", `printf '%s|' "$@"`)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	grpcAddr, healthSrv := startGRPCHealth(t)
	ts := startServer(t, Config{
		Engines: []Engine{hey, GRPCHealthProbe{}},
		Exec:    ExecPolicy{Allow: true, Prefixes: ParsePrefixes("echo,false,helm test,kubectl version")},
	})

	t.Run("cmd hey runs built in, in the background", func(t *testing.T) {
		err := ts.call("/", flaggerv1.RolloutHook, map[string]string{"type": "cmd", "cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"})
		if err != nil {
			t.Fatalf("hey task: %v", err)
		}
		eventually(t, 5*time.Second, "the hey engine ran", func() bool { return hey.runs.Load() == 1 })
		if got := hey.canary.Load(); got != (types.NamespacedName{Namespace: "test", Name: "podinfo"}) {
			t.Errorf("the engine was given canary %v, want test/podinfo", got)
		}
	})
	t.Run("cmd without a type is cmd", func(t *testing.T) {
		if err := ts.call("/", flaggerv1.RolloutHook, map[string]string{"cmd": "hey -z 10s http://podinfo-canary.test:9898/other"}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the hey engine ran", func() bool { return hey.runs.Load() == 2 })
	})
	t.Run("bash passes", func(t *testing.T) {
		if err := ts.call("/", flaggerv1.PreRolloutHook, map[string]string{"type": "bash", "cmd": "echo conformance passed"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bash returnCmdOutput", func(t *testing.T) {
		code, body := ts.post("/", map[string]string{"type": "bash", "cmd": `echo "token: abc" 'x  y'`, "returnCmdOutput": "true"})
		if code != http.StatusOK || body != "token: abc x  y\n" {
			t.Fatalf("answer %d %q, want 200 with the output", code, body)
		}
	})
	t.Run("bash fails with 500 and the error", func(t *testing.T) {
		err := ts.call("/", flaggerv1.PreRolloutHook, map[string]string{"type": "bash", "cmd": "false"})
		if err == nil || !strings.Contains(err.Error(), "exit status 1") {
			t.Fatalf("err = %v, want the exit status", err)
		}
		code, _ := ts.post("/", map[string]string{"type": "bash", "cmd": "false"})
		if code != http.StatusInternalServerError {
			t.Errorf("status %d, want 500", code)
		}
	})
	for _, typ := range []string{"helm", "helmv3"} {
		t.Run(typ+" runs helm with the words of cmd", func(t *testing.T) {
			code, body := ts.post("/", map[string]string{"type": typ, "cmd": "test podinfo -n test --set 'a=b c'", "returnCmdOutput": "true"})
			if code != http.StatusOK || body != "test|podinfo|-n|test|--set|a=b c|" {
				t.Fatalf("answer %d %q", code, body)
			}
		})
	}
	t.Run("kubectl", func(t *testing.T) {
		if _, err := os.Stat("/usr/bin/kubectl"); err != nil {
			t.Skip("no kubectl on this machine")
		}
		code, body := ts.post("/", map[string]string{"type": "kubectl", "cmd": "version --client", "returnCmdOutput": "true"})
		if code != http.StatusOK || !strings.Contains(body, "Client Version") {
			t.Fatalf("answer %d %q", code, body)
		}
		err := ts.call("/", flaggerv1.PreRolloutHook, map[string]string{"type": "kubectl", "cmd": "delete pods --all"})
		if err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("kubectl delete: err = %v, want refused by the allowlist", err)
		}
	})
	t.Run("grpc health check", func(t *testing.T) {
		if err := ts.call("/", flaggerv1.PreRolloutHook, map[string]string{"type": "grpc", "address": grpcAddr}); err != nil {
			t.Fatalf("a serving server: %v", err)
		}
		healthSrv.SetServingStatus("podinfo", healthpb.HealthCheckResponse_NOT_SERVING)
		err := ts.call("/", flaggerv1.PreRolloutHook, map[string]string{"type": "grpc", "address": grpcAddr, "service": "podinfo"})
		if err == nil || !strings.Contains(err.Error(), `service unhealthy (responded with "NOT_SERVING")`) {
			t.Fatalf("a service not serving: err = %v", err)
		}
	})
	t.Run("grpc_health_probe runs built in", func(t *testing.T) {
		off := startServer(t, Config{Engines: []Engine{GRPCHealthProbe{}}})
		if err := off.call("/", flaggerv1.PreRolloutHook, map[string]string{"type": "bash", "cmd": "grpc_health_probe -connect-timeout=1s -addr=" + grpcAddr}); err != nil {
			t.Fatalf("with exec off: %v", err)
		}
		closed, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := closed.Addr().String()
		closed.Close()
		err = off.call("/", flaggerv1.PreRolloutHook, map[string]string{"type": "bash", "cmd": "grpc_health_probe -connect-timeout 300ms -addr " + addr})
		if err == nil || !strings.Contains(err.Error(), "failed to connect service") {
			t.Fatalf("nothing listening: err = %v", err)
		}
	})
}

// fakeProgram writes an executable shell script named name into a new directory, for PATH.
func fakeProgram(t *testing.T, name, body string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startGRPCHealth serves the gRPC health service on 127.0.0.1, serving.
func startGRPCHealth(t *testing.T) (string, *health.Server) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String(), h
}

// Gates as Flagger's: closed until opened; /gate/check answers 200 or 403; open and close 202.
func TestGatesOpenCheckClose(t *testing.T) {
	ts := startServer(t, Config{})
	check := func(path string) error { return ts.call(path, flaggerv1.ConfirmRolloutHook, nil) }
	if err := check("/gate/check"); err == nil || err.Error() != "Forbidden" {
		t.Fatalf("a gate never opened: err = %v, want Forbidden", err)
	}
	if code, _ := ts.post("/gate/open", nil); code != http.StatusAccepted {
		t.Fatalf("/gate/open answered %d, want 202", code)
	}
	if err := check("/gate/check"); err != nil {
		t.Fatalf("an open gate: %v", err)
	}
	if err := check("/rollback/check"); err == nil {
		t.Fatal("opening the approval gate opened the rollback gate")
	}
	if code, _ := ts.post("/gate/close", nil); code != http.StatusAccepted {
		t.Fatalf("/gate/close answered %d, want 202", code)
	}
	if err := check("/gate/check"); err == nil {
		t.Fatal("a closed gate let the release through")
	}
	if err := check("/gate/approve"); err != nil {
		t.Errorf("/gate/approve: %v", err)
	}
	if err := check("/gate/halt"); err == nil || err.Error() != "Forbidden" {
		t.Errorf("/gate/halt: err = %v, want Forbidden", err)
	}
}

// A rollback webhook pointed at /rollback/check rolls back (passes) only once the rollback gate is open.
func TestRollbackGate(t *testing.T) {
	ts := startServer(t, Config{})
	rollback := func() error { return ts.call("/rollback/check", flaggerv1.RollbackHook, nil) }
	if err := rollback(); err == nil {
		t.Fatal("a rollback gate never opened passed")
	}
	if code, _ := ts.post("/rollback/open", nil); code != http.StatusAccepted {
		t.Fatalf("/rollback/open answered %d", code)
	}
	if err := rollback(); err != nil {
		t.Fatalf("an open rollback gate: %v", err)
	}
	if err := ts.call("/gate/check", flaggerv1.ConfirmRolloutHook, nil); err == nil {
		t.Fatal("opening the rollback gate opened the approval gate")
	}
	if code, _ := ts.post("/rollback/close", nil); code != http.StatusAccepted {
		t.Fatalf("/rollback/close answered %d", code)
	}
	if err := rollback(); err == nil {
		t.Fatal("a closed rollback gate passed")
	}
}

// Gate changes from outside the pod need the bearer token of -gate-token-file (gates.Authorizer);
// checks stay open to everyone (the controller's webhooks carry no credentials). The server runs on
// 127.0.0.1; to be seen as another pod, this test's middleware (and only it) rewrites r.RemoteAddr.
func TestGateChangeFromOutsideLoopbackNeedsTheToken(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	store := gates.NewMemoryStore(0)
	for _, c := range []struct {
		name, token, authorization string
		status                     int
		msg                        string
	}{
		{"no token configured", "", "Bearer anything", http.StatusForbidden, "none is configured"},
		{"no token sent", "s3cret\n", "", http.StatusUnauthorized, "needs the header Authorization: Bearer"},
		{"wrong token", "s3cret\n", "Bearer guess", http.StatusForbidden, "wrong bearer token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(tokenFile, []byte(c.token), 0o600); err != nil {
				t.Fatal(err)
			}
			ts := startServer(t, Config{Gates: store, GateAuthorizer: gates.NewAuthorizer(tokenFile)})
			for _, path := range []string{"/gate/open", "/gate/close", "/rollback/open", "/rollback/close"} {
				code, body := ts.fromElsewhere(path, c.authorization)
				if code != c.status || !strings.Contains(body, c.msg) {
					t.Errorf("%s: %d %q, want %d with %q", path, code, body, c.status, c.msg)
				}
			}
			if open, _ := store.IsOpen(t.Context(), gates.Gate, gates.Key{Namespace: "test", Name: "podinfo"}); open {
				t.Fatal("a refused request opened the gate")
			}
			if code, body := ts.fromElsewhere("/gate/check", ""); code != http.StatusForbidden || body != "Forbidden" {
				t.Errorf("/gate/check from another pod: %d %q, want Flagger's closed-gate answer", code, body)
			}
		})
	}
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Gates: store, GateAuthorizer: gates.NewAuthorizer(tokenFile)})
	if code, body := ts.fromElsewhere("/gate/open", "Bearer s3cret"); code != http.StatusAccepted {
		t.Fatalf("the right token: %d %q", code, body)
	}
	if code, _ := ts.fromElsewhere("/gate/check", ""); code != http.StatusOK {
		t.Fatalf("the gate opened with the token is not open: %d", code)
	}
}

// fromElsewhere posts the test canary's payload as if from another pod (10.0.0.7).
func (ts *testServer) fromElsewhere(path, authorization string) (int, string) {
	ts.t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.url+path, strings.NewReader(`{"name":"podinfo","namespace":"test"}`))
	if err != nil {
		ts.t.Fatal(err)
	}
	req.Header.Set(testRemoteAddr, "10.0.0.7:41000")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadInput(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	hey := newFakeHey()
	hey.finish()
	exec := startServer(t, Config{Engines: []Engine{hey}, Exec: ExecPolicy{Allow: true, Prefixes: ParsePrefixes("echo,curl,helm test")},
		NamespaceRegexp: regexp.MustCompile("^prod$")})
	off := startServer(t, Config{Engines: []Engine{hey}})
	shell := startServer(t, Config{Exec: ExecPolicy{Allow: true, Prefixes: ParsePrefixes("touch,kubectl get"), AllowShell: true}})
	allowed := startServer(t, Config{Exec: ExecPolicy{Allow: true, Prefixes: ParsePrefixes("echo,curl")}})

	for _, c := range []struct {
		name   string
		ts     *testServer
		path   string
		body   string
		status int
		msg    string
	}{
		{"malformed JSON", off, "/", `{"name": "podinfo", "metadata": {`, 400, "decoding the request body failed"},
		{"malformed JSON on a gate", off, "/gate/open", `not json`, 400, "decoding the request body failed"},
		{"no metadata", off, "/", `{"name":"podinfo","namespace":"test"}`, 400, "metadata not found in payload"},
		{"unknown task type", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"ansible","cmd":"x"}}`, 400, "unknown task type ansible"},
		{"concord", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"concord"}}`, 400, "not supported"},
		{"no cmd", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash"}}`, 400, "cmd not found in metadata"},
		{"bad hey flags", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"cmd":"hey -bad http://x"}}`, 400, "flag provided but not defined"},
		{"bad logCmdOutput", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"cmd":"hey -z 1s http://x","logCmdOutput":"yes please"}}`, 400, "not a boolean"},
		{"unterminated quote", allowed, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"echo 'x"}}`, 400, "column 6: unterminated single quote"},
		{"grpc without address", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"grpc"}}`, 400, "address not found"},
		{"namespace outside -namespace-regexp", exec, "/", `{"name":"podinfo","namespace":"test","metadata":{"cmd":"hey -z 1s http://x"}}`, 403, "is not allowed by -namespace-regexp"},
		{"namespace outside -namespace-regexp on a gate", exec, "/gate/open", `{"name":"podinfo","namespace":"test"}`, 403, "is not allowed by -namespace-regexp"},
		{"command while exec is off", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"touch ` + marker + `"}}`, 403, "running commands is disabled"},
		{"cmd command while exec is off", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"cmd":"touch ` + marker + `"}}`, 403, "running commands is disabled"},
		{"kubectl while exec is off", off, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"kubectl","cmd":"delete ns prod"}}`, 403, "running commands is disabled"},
		{"command outside the allowlist", allowed, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"touch ` + marker + `"}}`, 403, "not allowed"},
		{"a prefix is whole words", allowed, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"curlx http://x"}}`, 403, "not allowed"},
		{"pipe without -allow-shell", allowed, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"echo x | touch ` + marker + `"}}`, 403, "-allow-shell"},
		{"substitution without -allow-shell", allowed, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"echo $(touch ` + marker + `)"}}`, 403, "-allow-shell"},
		{"backticks in double quotes without -allow-shell", allowed, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"echo \"` + "`touch " + marker + "`" + `\""}}`, 403, "-allow-shell"},
		{"list without -allow-shell", allowed, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"cmd","cmd":"curl -s http://x; touch ` + marker + `"}}`, 403, "-allow-shell"},
		{"redirect without -allow-shell", allowed, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"bash","cmd":"echo x > ` + marker + `"}}`, 403, "-allow-shell"},
		{"shell syntax in a kubectl task", shell, "/", `{"name":"podinfo","namespace":"test","metadata":{"type":"kubectl","cmd":"get pods | touch ` + marker + `"}}`, 400, "kubectl tasks run without a shell"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := c.ts.postRaw(c.path, c.body)
			if code != c.status || !strings.Contains(body, c.msg) {
				t.Errorf("answer %d %q, want %d with %q", code, body, c.status, c.msg)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // a cmd task would have run by now
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a refused command ran")
	}
	if hey.runs.Load() != 0 {
		t.Fatal("a refused hey task ran")
	}

	// With -allow-shell, the same shell line runs through bash (the documented trade-off).
	code, body := shell.post("/", map[string]string{"type": "bash", "cmd": "touch " + marker + " && echo done", "returnCmdOutput": "true"})
	if code != http.StatusOK || body != "done\n" {
		t.Fatalf("with -allow-shell: %d %q", code, body)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the allowed shell line did not run")
	}
}
