package crash

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// isMutating reports whether a request changes state worth crashing after. Events and Leases are
// side noise (their count varies with timing and leader election), so they are not counted.
func isMutating(method, path string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return false
	}
	for _, noise := range []string{"/events", "/leases"} {
		if strings.Contains(path, noise) {
			return false
		}
	}
	return true
}

// countingProxy forwards pennant's requests to the apiserver and counts the mutating ones. When the
// count reaches crashAfter (if > 0), it calls onCrash after the apiserver has answered and before the
// answer is written back, so the controller dies without learning the outcome.
type countingProxy struct {
	proxy *httputil.ReverseProxy

	mu         sync.Mutex
	requests   int
	count      int
	crashAfter int
	onCrash    func()
	crashed    bool
}

// newCountingProxy returns a proxy to target using transport (which carries the admin credentials).
func newCountingProxy(target *url.URL, transport http.RoundTripper) *countingProxy {
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = transport
	rp.FlushInterval = -1 // watches stream
	rp.ModifyResponse = func(resp *http.Response) error {
		if !isMutating(resp.Request.Method, resp.Request.URL.Path) {
			return nil
		}
		p.mu.Lock()
		p.count++
		crash := p.crashAfter > 0 && p.count == p.crashAfter && !p.crashed && p.onCrash != nil
		if crash {
			p.crashed = true
		}
		onCrash := p.onCrash
		p.mu.Unlock()
		if crash {
			onCrash()
			return errCrashed
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		// After a crash the client is gone; anything else is a real proxy failure.
		w.WriteHeader(http.StatusBadGateway)
	}
	p.proxy = rp
	return p
}

type crashError struct{}

func (crashError) Error() string { return "controller killed after this request" }

var errCrashed error = crashError{}

// ServeHTTP forwards one request.
func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()
	p.proxy.ServeHTTP(w, r)
}

// Requests returns how many requests of any kind the proxy has received.
func (p *countingProxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Mutations returns how many mutating requests the apiserver has answered so far.
func (p *countingProxy) Mutations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

// ArmCrash makes the proxy call onCrash right after the n-th mutating request (counted from now on).
func (p *countingProxy) ArmCrash(n int, onCrash func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count, p.crashAfter, p.onCrash, p.crashed = 0, n, onCrash, false
}
