package harness

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pennant/pennant/internal/loadtester/load"
)

// Sample is one request of the load and who answered it.
type Sample struct {
	Sent    time.Time
	Latency time.Duration
	Code    int    // zero: no response (Err)
	Pod     string // the pod that answered (X-Pod-Name), empty without a response from a pod
	Version string // its version (X-Version)
	Err     string // why there was no response
}

// Failed is a request that got no response or a 5xx.
func (s Sample) Failed() bool { return s.Code == 0 || s.Code >= 500 }

// Traffic is load through Traefik, every request recorded.
type Traffic struct {
	mu      sync.Mutex
	samples []Sample
	stopped time.Time
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
}

// TrafficSpec is the load: rate per second through the web entry point with a Host header (and more
// headers, e.g. a cookie for A/B), spread over workers.
type TrafficSpec struct {
	Host, Path string
	Header     http.Header
	Rate       int
	Workers    int
}

// StartTraffic sends load until Stop, with the load tester's engine (internal/loadtester/load).
func (s *Stack) StartTraffic(ctx context.Context, spec TrafficSpec) (*Traffic, error) {
	if spec.Workers == 0 {
		spec.Workers = 8
	}
	if spec.Path == "" {
		spec.Path = "/"
	}
	tr := &Traffic{done: make(chan struct{})}
	header := http.Header{}
	for k, v := range spec.Header {
		header[k] = v
	}
	ls := load.Spec{
		URL: "http://" + s.Web + spec.Path, Method: http.MethodGet, Header: header, Host: spec.Host,
		Duration: 24 * time.Hour, Concurrency: spec.Workers, RatePerWorker: float64(spec.Rate) / float64(spec.Workers),
		Timeout: 5 * time.Second, Observe: tr.observe,
	}
	ctx, tr.cancel = context.WithCancel(ctx)
	go func() {
		defer close(tr.done)
		_, tr.err = load.Run(ctx, ls, nil)
	}()
	return tr, nil
}

func (t *Traffic) observe(o load.Observation) {
	sm := Sample{Sent: o.Sent, Latency: o.Latency, Code: o.Code}
	if o.Err != nil {
		if errors.Is(o.Err, context.Canceled) {
			return // aborted by Stop, not a failure of the system under test
		}
		sm.Err = o.Err.Error()
	} else {
		sm.Pod, sm.Version = o.Header.Get("X-Pod-Name"), o.Header.Get("X-Version")
	}
	t.mu.Lock()
	t.samples = append(t.samples, sm)
	t.mu.Unlock()
}

// Stop ends the load and waits for it.
func (t *Traffic) Stop() {
	t.mu.Lock()
	if t.stopped.IsZero() {
		t.stopped = time.Now()
	}
	t.mu.Unlock()
	t.cancel()
	<-t.done
}

// Samples are the requests sent in [from, to) (zero times: unbounded), in no particular order.
func (t *Traffic) Samples(from, to time.Time) []Sample {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Sample
	for _, s := range t.samples {
		if (from.IsZero() || !s.Sent.Before(from)) && (to.IsZero() || s.Sent.Before(to)) {
			out = append(out, s)
		}
	}
	return out
}

// IsCanaryPod tells the target's (canary) pods from the primary's by name: <target>-<hash>-<id>
// against <target>-primary-<hash>-<id>.
func IsCanaryPod(target, pod string) bool {
	return strings.HasPrefix(pod, target+"-") && !strings.HasPrefix(pod, target+"-primary-")
}
