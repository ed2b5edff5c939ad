package gates

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// request is a gate change as a net/http server hands it to a handler: RemoteAddr and the local
// address of the connection set. Only a pure test can make up addresses: a real connection from
// a non-loopback address needs a non-loopback interface, and tests stay on loopback.
func request(remote, local, authorization string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/gate/open", strings.NewReader(`{"name":"podinfo","namespace":"test"}`))
	r.RemoteAddr = remote
	if local != "" {
		addr := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(local))
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, addr))
	}
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	return r
}

func writeToken(t *testing.T, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuthorizerAllow(t *testing.T) {
	tokenFile := writeToken(t, "s3cret-token\n") // as `kubectl create secret --from-file` of an echoed file
	withToken := &Authorizer{TokenFile: tokenFile}
	noToken := &Authorizer{}
	const podIP = "10.244.0.7:8080"
	for _, tc := range []struct {
		name  string
		a     *Authorizer
		r     *http.Request
		allow bool
		want  error
	}{
		{"kubectl exec curl localhost", noToken, request("127.0.0.1:51234", "127.0.0.1:8080", ""), true, nil},
		{"kubectl exec curl localhost over IPv6", noToken, request("[::1]:51234", "[::1]:8080", ""), true, nil},
		{"loopback on an IPv4-mapped IPv6 socket", noToken, request("[::ffff:127.0.0.1]:51234", "[::ffff:127.0.0.1]:8080", ""), true, nil},
		{"another pod, no token configured", noToken, request("10.244.0.9:40000", podIP, ""), false, ErrForbidden},
		{"another pod, no token configured, token sent", noToken, request("10.244.0.9:40000", podIP, "Bearer s3cret-token"), false, ErrForbidden},
		{"another pod, no token sent", withToken, request("10.244.0.9:40000", podIP, ""), false, ErrUnauthenticated},
		{"another pod, not a bearer token", withToken, request("10.244.0.9:40000", podIP, "Basic czNjcmV0LXRva2Vu"), false, ErrUnauthenticated},
		{"another pod, wrong token", withToken, request("10.244.0.9:40000", podIP, "Bearer s3cret-tokeN"), false, ErrForbidden},
		{"another pod, a prefix of the token", withToken, request("10.244.0.9:40000", podIP, "Bearer s3cret"), false, ErrForbidden},
		{"another pod, right token", withToken, request("10.244.0.9:40000", podIP, "Bearer s3cret-token"), true, nil},
		{"another pod, right token, scheme in lower case", withToken, request("10.244.0.9:40000", podIP, "bearer s3cret-token"), true, nil},
		// Istio >= 1.10 hands inbound connections to the application from 127.0.0.6 on the pod's IP.
		{"through an Istio sidecar", noToken, request("127.0.0.6:40000", podIP, ""), false, ErrForbidden},
		{"through an Istio sidecar with the token", withToken, request("127.0.0.6:40000", podIP, "Bearer s3cret-token"), true, nil},
		{"no local address (not from a net/http server)", noToken, request("127.0.0.1:51234", "", ""), false, ErrForbidden},
		{"loopback with NoLoopback", &Authorizer{NoLoopback: true, TokenFile: tokenFile}, request("127.0.0.1:51234", "127.0.0.1:8080", ""), false, ErrUnauthenticated},
		{"loopback with NoLoopback and the token", &Authorizer{NoLoopback: true, TokenFile: tokenFile}, request("127.0.0.1:51234", "127.0.0.1:8080", "Bearer s3cret-token"), true, nil},
		{"missing token file (optional Secret absent)", &Authorizer{TokenFile: filepath.Join(t.TempDir(), "none")}, request("10.244.0.9:40000", podIP, "Bearer x"), false, ErrForbidden},
		{"blank token file", &Authorizer{TokenFile: writeToken(t, " \n")}, request("10.244.0.9:40000", podIP, "Bearer "), false, ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.Allow(tc.r)
			if tc.allow {
				if err != nil {
					t.Fatalf("Allow = %v, want allowed", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Allow = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAuthorizerIgnoresForwardedHeaders(t *testing.T) {
	r := request("10.244.0.9:40000", "10.244.0.7:8080", "")
	r.Header.Set("X-Forwarded-For", "127.0.0.1")
	r.Header.Set("X-Real-Ip", "127.0.0.1")
	r.Header.Set("Forwarded", "for=127.0.0.1")
	if err := (&Authorizer{}).Allow(r); !errors.Is(err, ErrForbidden) {
		t.Fatalf("Allow = %v: a header claiming loopback must not count", err)
	}
}

func TestAuthorizerTokenFileLimits(t *testing.T) {
	huge := writeToken(t, strings.Repeat("x", maxTokenBytes+1))
	err := (&Authorizer{TokenFile: huge}).Allow(request("10.244.0.9:40000", "10.244.0.7:8080", "Bearer x"))
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Allow with an oversized token file = %v", err)
	}
	dir := t.TempDir() // a directory cannot be read as a token
	err = (&Authorizer{TokenFile: dir}).Allow(request("10.244.0.9:40000", "10.244.0.7:8080", "Bearer x"))
	if !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "reading the gate token") {
		t.Fatalf("Allow with an unreadable token file = %v", err)
	}
}

func TestAllowNamespace(t *testing.T) {
	if err := AllowNamespace(nil, "anything"); err != nil {
		t.Fatalf("no regexp: %v", err)
	}
	anchored := regexp.MustCompile(`^(test|prod)$`)
	if err := AllowNamespace(anchored, "test"); err != nil {
		t.Fatal(err)
	}
	err := AllowNamespace(anchored, "test-2")
	if !errors.Is(err, ErrForbidden) || HTTPStatus(err) != http.StatusForbidden || !strings.Contains(err.Error(), `"test-2"`) {
		t.Fatalf("AllowNamespace(test-2) = %v", err)
	}
	// Unanchored, as Flagger's: "test" allows "test-2".
	if err := AllowNamespace(regexp.MustCompile(`test`), "test-2"); err != nil {
		t.Fatalf("unanchored: %v", err)
	}
}

// rotateKubeletStyle swaps a token the way the kubelet updates a mounted Secret: the key is a symlink
// to ..data/<key>, and ..data a symlink to a timestamped directory replaced by an atomic rename.
func rotateKubeletStyle(t *testing.T, dir, token string) {
	t.Helper()
	version := filepath.Join(dir, fmt.Sprintf("..%d", time.Now().UnixNano()))
	if err := os.Mkdir(version, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(version, "token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "token")); os.IsNotExist(err) {
		if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(dir, "token")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuthorizerOverHTTP runs the Authorizer in a real HTTP server on 127.0.0.1. A request through it
// is loopback; to be seen as coming from another pod, the test's middleware (and only it) rewrites
// r.RemoteAddr before the Authorizer runs, as no real non-loopback connection is possible in a test.
func TestAuthorizerOverHTTP(t *testing.T) {
	secretDir := t.TempDir()
	rotateKubeletStyle(t, secretDir, "first-token\n")
	auth := NewAuthorizer(filepath.Join(secretDir, "token"))
	const fromElsewhere = "X-Test-Remote-Addr" // set by this test's client only
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if addr := r.Header.Get(fromElsewhere); addr != "" {
			r.RemoteAddr = addr
		}
		if err := auth.Allow(r); err != nil {
			http.Error(w, err.Error(), HTTPStatus(err))
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewServer(handler) // listens on 127.0.0.1
	t.Cleanup(srv.Close)

	post := func(remote, authorization string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/gate/open", strings.NewReader(`{"name":"podinfo","namespace":"test"}`))
		if err != nil {
			t.Fatal(err)
		}
		if remote != "" {
			req.Header.Set(fromElsewhere, remote)
		}
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := srv.Client().Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	expect := func(what string, code int, body string, want int) {
		t.Helper()
		if code != want {
			t.Errorf("%s: %d %q, want %d", what, code, body, want)
		}
	}

	code, body := post("", "")
	expect("loopback, no token", code, body, http.StatusAccepted)
	code, body = post("10.244.0.9:40000", "")
	expect("another pod, no token", code, body, http.StatusUnauthorized)
	if !strings.Contains(body, "Authorization: Bearer") {
		t.Errorf("the refusal should say what is missing: %q", body)
	}
	code, body = post("10.244.0.9:40000", "Bearer wrong")
	expect("another pod, wrong token", code, body, http.StatusForbidden)
	code, body = post("10.244.0.9:40000", "Bearer first-token")
	expect("another pod, right token", code, body, http.StatusAccepted)

	rotateKubeletStyle(t, secretDir, "second-token")
	code, body = post("10.244.0.9:40000", "Bearer first-token")
	expect("old token after rotation", code, body, http.StatusForbidden)
	code, body = post("10.244.0.9:40000", "Bearer second-token")
	expect("new token after rotation", code, body, http.StatusAccepted)
}
