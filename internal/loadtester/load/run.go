package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxIdleConnsPerHost is hey's cap on kept-alive connections.
const maxIdleConnsPerHost = 500

// Run sends the load s describes and reports what happened. It returns when the requests are done
// (Requests), or when Duration has elapsed and the requests in flight then have ended (those still
// running drainTime later are aborted), or at once when ctx is cancelled: requests in flight are
// aborted, and the report so far comes back with ctx's error. Requests that fail are counted in the
// report, not returned as an error; the error is an invalid Spec or a cancelled ctx. Run leaves no
// goroutine and no connection behind. m may be nil.
func Run(ctx context.Context, s Spec, m *Metrics) (Report, error) {
	if err := s.validate(); err != nil {
		return Report{}, err
	}
	workers := s.workers()
	report := Report{Method: s.Method, URL: s.URL, Workers: workers, RatePerWorker: s.RatePerWorker, Notes: s.Notes}
	if err := ctx.Err(); err != nil {
		report.Cancelled = true
		return report, err
	}
	client, err := newClient(s, workers)
	if err != nil {
		return Report{}, err
	}
	defer client.CloseIdleConnections()

	requestCtx, abort := context.WithCancel(ctx) // ends the requests in flight
	defer abort()
	template, err := newTemplate(requestCtx, s)
	if err != nil {
		return Report{}, err
	}
	labels, runEnded := m.start(s.Canary)
	defer runEnded()

	stop := make(chan struct{}) // closed: workers send no further request
	stopSending := sync.OnceFunc(func() { close(stop) })
	defer context.AfterFunc(ctx, stopSending)()

	st := newStats(workers)
	began := time.Now()
	finished := startWorkers(workers, func(i int) *worker {
		return &worker{
			client: client, template: template, body: s.Body, quota: quota(s, workers, i),
			interval: interval(s.RatePerWorker), stop: stop, stats: st, shard: st.shardFor(i),
			metrics: m.forWorker(labels), aborted: func() bool { return requestCtx.Err() != nil },
			observe: s.Observe,
		}
	})
	if s.Duration > 0 {
		waitForDuration(s.Duration, finished, stopSending, abort)
	} else {
		<-finished
	}
	report.Elapsed = time.Since(began)
	st.fill(&report)
	if secs := report.Elapsed.Seconds(); secs > 0 {
		report.RPS = float64(report.Requests) / secs
	}
	if err := ctx.Err(); err != nil {
		report.Cancelled = true
		return report, err
	}
	return report, nil
}

// waitForDuration waits for the workers until d has elapsed, then stops them sending and gives the
// requests in flight drainTime before aborting them. finished closing early means ctx was cancelled.
func waitForDuration(d time.Duration, finished <-chan struct{}, stopSending, abort func()) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-finished:
		return
	case <-timer.C:
	}
	stopSending()
	drain := time.NewTimer(drainTime)
	defer drain.Stop()
	select {
	case <-finished:
	case <-drain.C:
		abort()
		<-finished
	}
}

// startWorkers runs n workers and returns a channel closed when all have returned.
func startWorkers(n int, newWorker func(i int) *worker) <-chan struct{} {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(newWorker(i).run)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	return finished
}

// quota is worker i's share of the requests, so that exactly s.Requests are sent; -1: until stopped.
func quota(s Spec, workers, i int) int {
	if s.Duration > 0 {
		return -1
	}
	q := s.Requests / workers
	if i < s.Requests%workers {
		q++
	}
	return q
}

// interval is the time between a worker's requests at a rate limit (0: none).
func interval(ratePerWorker float64) time.Duration {
	if ratePerWorker <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / ratePerWorker)
}

// newClient is hey's client: certificates not verified, no proxy from the environment, HTTP/2 only
// when asked for, as many idle connections as workers (up to hey's 500).
func newClient(s Spec, workers int) (*http.Client, error) {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(s.HTTP2)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // hey's behaviour: canaries are load tested by in-cluster names
			ServerName:         hostOnly(s.Host),
		},
		MaxIdleConnsPerHost: min(workers, maxIdleConnsPerHost),
		DisableCompression:  s.DisableCompression,
		DisableKeepAlives:   s.DisableKeepAlive,
		Protocols:           protocols,
	}
	if s.Proxy != "" {
		u, err := proxyURL(s.Proxy)
		if err != nil {
			return nil, err
		}
		tr.Proxy = http.ProxyURL(u)
	}
	client := &http.Client{Transport: tr, Timeout: s.Timeout}
	if s.DisableRedirects {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return client, nil
}

// hostOnly strips a port from a Host header value, for the TLS server name.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// newTemplate is the request every worker copies.
func newTemplate(ctx context.Context, s Spec) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, s.Method, s.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header = s.Header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	req.Host = s.Host
	if len(s.Body) > 0 {
		body := s.Body
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req, nil
}

// worker sends requests one after the other, at most one per interval when there is a rate limit.
type worker struct {
	client   *http.Client
	template *http.Request
	body     []byte
	quota    int // requests to send; -1: until stopped
	interval time.Duration
	stop     <-chan struct{}
	stats    *stats
	shard    *shard
	metrics  *runMetrics
	aborted  func() bool // the run's requests have been aborted
	observe  func(Observation)
}

func (w *worker) run() {
	// The worker's own context under the run's: the timeout context of each request registers with it,
	// not with one context shared (and locked) by all workers.
	ctx, cancel := context.WithCancel(w.template.Context())
	defer cancel()
	w.template = w.template.WithContext(ctx)

	var tick <-chan time.Time
	if w.interval > 0 {
		// A ticker, as hey's: the first request after one interval, and no burst to catch up when a
		// request took longer than the interval.
		t := time.NewTicker(w.interval)
		defer t.Stop()
		tick = t.C
	}
	for sent := 0; w.quota < 0 || sent < w.quota; sent++ {
		if tick != nil {
			select {
			case <-w.stop:
				return
			case <-tick:
			}
		}
		select {
		case <-w.stop:
			return
		default:
		}
		w.send()
	}
}

func (w *worker) send() {
	// A copy per request: the transport may still hold the previous one (and its body) when the response
	// has been read. The copy shares the template's headers, which nothing writes.
	req := *w.template
	if w.template.GetBody != nil {
		req.Body, _ = w.template.GetBody()
	}
	began := time.Now()
	resp, err := w.client.Do(&req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	latency := time.Since(began)
	if w.observe != nil {
		o := Observation{Sent: began, Latency: latency, Err: err}
		if err == nil {
			o.Code, o.Header = resp.StatusCode, resp.Header
		}
		w.observe(o)
	}
	if err != nil {
		kind := classify(err, w.aborted())
		w.stats.failure(w.shard, kind, err)
		w.metrics.failure(kind)
		return
	}
	w.shard.response(resp.StatusCode, latency)
	w.metrics.response(resp.StatusCode, latency.Seconds())
}
