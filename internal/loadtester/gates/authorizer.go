package gates

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
)

// maxTokenBytes bounds the token file read: a token is a few dozen bytes.
const maxTokenBytes = 4 << 10

// Authorizer decides who may change a gate (/gate/open, /gate/close, /rollback/open, /rollback/close).
// Checks (/gate/check, /rollback/check) need no authorization: the controller calls them, and
// Flagger's webhooks carry no credentials.
//
// A request is allowed when it comes over loopback, i.e. from inside the load tester's pod, as the
// documented `kubectl exec deploy/flagger-loadtester -- curl -d '...' localhost:8080/gate/open` does;
// or when it carries "Authorization: Bearer <token>" with the token held in TokenFile. Without a token
// configured, only loopback may change gates.
//
// Loopback means the connection's own addresses, never a header such as X-Forwarded-For that any
// client can set: both its remote address (r.RemoteAddr) and its local address (the one the server
// accepted it on) are loopback addresses. The local address matters under a service-mesh sidecar:
// Istio (since 1.10) hands every inbound connection from other pods to the application from
// 127.0.0.6, a loopback address, but on the pod's IP, so those requests still need the token. A mesh
// that forwards inbound traffic to the application on localhost (Istio before 1.10) makes every
// request look local: set NoLoopback there. `kubectl port-forward` also arrives over loopback, and is
// allowed: whoever may port-forward to the pod may exec into it as well.
//
// The zero value allows loopback only.
type Authorizer struct {
	// TokenFile is a file holding the bearer token, typically a key of a Secret mounted as a volume.
	// It is read on each gate change, so a rotated Secret (the kubelet updates the mounted file) takes
	// effect at once without a restart. Leading and trailing white space is ignored. Empty, missing or
	// blank: no token is configured.
	TokenFile string
	// NoLoopback requires the token from loopback too.
	NoLoopback bool
}

// NewAuthorizer allows loopback and, when tokenFile is not empty, the token it holds.
func NewAuthorizer(tokenFile string) *Authorizer { return &Authorizer{TokenFile: tokenFile} }

// Allow returns nil when r may change a gate, else an error wrapping ErrUnauthenticated (no token sent)
// or ErrForbidden, whose message says what is missing; HTTPStatus maps it to 401 or 403.
func (a *Authorizer) Allow(r *http.Request) error {
	if !a.NoLoopback && fromLoopback(r) {
		return nil
	}
	want, err := a.token()
	if err != nil {
		return fmt.Errorf("%w: reading the gate token: %v", ErrForbidden, err)
	}
	if want == "" {
		return fmt.Errorf("%w: changing a gate from outside the load tester's pod needs a bearer token, and none is configured "+
			"(mount a Secret and pass -gate-token-file); from inside the pod, use localhost", ErrForbidden)
	}
	got, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return fmt.Errorf("%w: changing a gate from outside the load tester's pod needs the header Authorization: Bearer <token>", ErrUnauthenticated)
	}
	if !sameToken(got, want) {
		return fmt.Errorf("%w: wrong bearer token", ErrForbidden)
	}
	return nil
}

// token reads TokenFile: "" when none is configured or the file does not exist (an optional Secret
// that was not created).
func (a *Authorizer) token() (string, error) {
	if a.TokenFile == "" {
		return "", nil
	}
	f, err := os.Open(a.TokenFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxTokenBytes {
		return "", fmt.Errorf("%s is larger than %d bytes: not a token", a.TokenFile, maxTokenBytes)
	}
	return strings.TrimSpace(string(b)), nil
}

// fromLoopback tells whether both ends of r's connection are loopback addresses. The server sets
// r.RemoteAddr and the local address (http.LocalAddrContextKey) from the accepted connection; a
// request without them (not from a net/http server) is not loopback.
func fromLoopback(r *http.Request) bool {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return local != nil && isLoopback(r.RemoteAddr) && isLoopback(local.String())
}

// isLoopback tells whether a "host:port" address is in 127.0.0.0/8 or is ::1 (also IPv4-mapped).
func isLoopback(hostPort string) bool {
	ap, err := netip.ParseAddrPort(hostPort)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// bearerToken is the token of an "Authorization: Bearer <token>" header (the scheme is case-insensitive).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// sameToken compares in constant time, and hashes first so that not even the token's length leaks.
func sameToken(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// AllowNamespace is the -namespace-regexp check of Flagger's load tester: a payload's namespace must
// match re (unanchored, as Flagger's: anchor it, e.g. ^(test|prod)$, to allow whole names only).
// A nil re allows every namespace. The error wraps ErrForbidden.
func AllowNamespace(re *regexp.Regexp, namespace string) error {
	if re == nil || re.MatchString(namespace) {
		return nil
	}
	return fmt.Errorf("%w: namespace %q is not allowed by -namespace-regexp %q", ErrForbidden, namespace, re.String())
}
