package metrics

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// sse renders events the way the SignalFlow HTTP API does: JSON pretty-printed over several
// data lines, events separated by blank lines.
func sse(events ...[2]string) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("event: " + e[0] + "\n")
		for _, line := range strings.Split(e[1], "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}

var (
	sfStreamStart = [2]string{"control-message", "{\n  \"event\" : \"STREAM_START\",\n  \"timestampMs\" : 1700000000100\n}"}
	sfJobStart    = [2]string{"control-message", `{"event":"JOB_START","handle":"Dm1FZ9cAAAA","timestampMs":1700000000200}`}
	sfMetadata    = [2]string{"metadata", `{"properties":{"sf_key":["sf_originatingMetric","sf_metric"],"sf_metric":"_SF_COMP_Dm1FZ9cAAAA_01-PUBLISH_METRIC","sf_originatingMetric":"service.request.count","sf_resolutionMs":60000,"sf_type":"MetricTimeSeries"},"tsId":"AAAAAKxWlGA"}`}
	sfInfo        = [2]string{"message", `{"logicalTimestampMs":1699999400000,"message":{"messageCode":"JOB_RUNNING_RESOLUTION","messageLevel":"INFO","contents":{"resolutionMs":60000}},"timestampMs":1700000000250}`}
	sfData1       = [2]string{"data", "{\n  \"data\" : [ {\n    \"tsId\" : \"AAAAAKxWlGA\",\n    \"value\" : 3\n  } ],\n  \"logicalTimestampMs\" : 1699999440000,\n  \"maxDelayMs\" : 1000\n}"}
	sfData2       = [2]string{"data", `{"data":[{"tsId":"AAAAAKxWlGA","value":4.5}],"logicalTimestampMs":1699999500000}`}
	sfDataNull    = [2]string{"data", `{"data":[{"tsId":"AAAAAKxWlGA","value":null}],"logicalTimestampMs":1699999560000}`}
	sfDataOther   = [2]string{"data", `{"data":[{"tsId":"AAAAAOtherTS","value":7}],"logicalTimestampMs":1699999560000}`}
	sfEnd         = [2]string{"control-message", `{"event":"END_OF_CHANNEL","timestampMs":1700000000300}`}
	sfAbort       = [2]string{"control-message", `{"event":"CHANNEL_ABORT","abortInfo":{"sf_job_abortReason":"Computation stopped: too many time series","sf_job_abortState":"FAILED"},"timestampMs":1700000000300}`}
	sfError       = [2]string{"error", `{"errors":[{"code":"ANALYTICS_PROGRAM_NAME_ERROR","context":{"column":1,"line":1,"programText":"dta('x').publish()","reference":"dta"}}]}`}
)

func newTestSplunk(t *testing.T, address string, opts Options) *splunkProvider {
	t.Helper()
	p, err := newSplunk(flaggerv1.MetricTemplateProvider{Type: TypeSplunk, Address: address},
		map[string][]byte{"sf_token_key": []byte("sf-token")}, opts.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return time.UnixMilli(1700000000000) }
	return p
}

func TestSplunkRequestShape(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "text/event-stream",
		sse(sfStreamStart, sfJobStart, sfMetadata, sfInfo, sfData1, sfData2, sfDataNull, sfEnd)))
	p := newTestSplunk(t, srv.URL, Options{Interval: time.Minute})
	program := "data('service.request.count', filter=filter('sf_service', 'podinfo') and filter('sf_error', 'true')).sum().publish()"
	v, err := p.RunQuery(context.Background(), program)
	mustValue(t, v, err, 4.5) // the latest non-null value

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodPost)
	mustEqual(t, "path", r.Path, "/v2/signalflow/execute")
	mustEqual(t, "start", r.Query.Get("start"), "1699999400000") // now - 10 × 1m
	mustEqual(t, "stop", r.Query.Get("stop"), "1700000000000")
	mustEqual(t, "immediate", r.Query.Get("immediate"), "true")
	mustEqual(t, "token", r.Header.Get("X-SF-Token"), "sf-token")
	mustEqual(t, "content type", r.Header.Get("Content-Type"), "text/plain")
	mustEqual(t, "accept", r.Header.Get("Accept"), "text/event-stream")
	mustEqual(t, "body", r.Body, program)
}

func TestSplunkIsOnline(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", `{"count":1,"results":[{"name":"cpu.utilization","type":"GAUGE"}]}`))
	p := newTestSplunk(t, srv.URL, Options{})
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodGet)
	mustEqual(t, "path", r.Path, "/v2/metric")
	mustEqual(t, "limit", r.Query.Get("limit"), "1")
	mustEqual(t, "token", r.Header.Get("X-SF-Token"), "sf-token")

	denied := newBackend(t, reply(http.StatusUnauthorized, "application/json", `{"code":401,"message":"Unauthorized"}`))
	p = newTestSplunk(t, denied.URL, Options{})
	if ok, err := p.IsOnline(context.Background()); ok {
		t.Fatal("IsOnline must fail on 401")
	} else {
		mustStatus(t, err, http.StatusUnauthorized, "Unauthorized")
	}
}

func TestSplunkResults(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		is     error
		msg    string
	}{
		{name: "no data", status: 200, body: sse(sfStreamStart, sfJobStart, sfEnd), is: ErrNoValuesFound},
		{name: "only nulls", status: 200, body: sse(sfStreamStart, sfDataNull, sfEnd), is: ErrNoValuesFound},
		{name: "two time series", status: 200, body: sse(sfData1, sfDataOther, sfEnd), is: ErrMultipleValuesReturned, msg: "2 time series"},
		{name: "program error", status: 200, body: sse(sfStreamStart, sfError), msg: "ANALYTICS_PROGRAM_NAME_ERROR"},
		{name: "aborted", status: 200, body: sse(sfStreamStart, sfData1, sfAbort), msg: "too many time series"},
		{name: "malformed data", status: 200, body: sse([2]string{"data", `{"data":[{"tsId":`}), msg: "decoding"},
		{name: "HTTP 400", status: 400, body: `{"errorType":"ANALYTICS_PROGRAM_SYNTAX_ERROR","message":"Syntax error at line 1"}`, msg: "Syntax error at line 1"},
		{name: "HTTP 500", status: 500, body: `{"message":"Internal server error"}`, msg: "Internal server error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBackend(t, reply(tc.status, "text/event-stream", tc.body))
			p := newTestSplunk(t, srv.URL, Options{})
			_, err := p.RunQuery(context.Background(), "data('x').publish()")
			if tc.is != nil {
				mustErrorIs(t, err, tc.is)
			} else {
				mustPlainError(t, err)
			}
			if tc.msg != "" {
				mustContain(t, err, tc.msg)
			}
			if tc.status >= 400 {
				mustStatus(t, err, tc.status, tc.msg)
			}
		})
	}
	t.Run("timeout before the answer", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestSplunk(t, srv.URL, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "x"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestSplunk(t, srv.URL, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "x"); return err })
	})
	t.Run("stream stalls after it started", func(t *testing.T) {
		srv := newBackend(t, func(w http.ResponseWriter, r *http.Request, _ string) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, sse(sfStreamStart, sfData1))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		p := newTestSplunk(t, srv.URL, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "x"); return err })
	})
}

func TestSplunkHosts(t *testing.T) {
	cases := []struct{ address, stream, api string }{
		{"https://api.us1.signalfx.com", "https://stream.us1.signalfx.com", "https://api.us1.signalfx.com"},
		{"wss://stream.eu0.signalfx.com/", "https://stream.eu0.signalfx.com", "https://api.eu0.signalfx.com"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
	}
	for _, tc := range cases {
		s, a, err := splunkHosts(tc.address)
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, tc.address+" stream", s.String(), tc.stream)
		mustEqual(t, tc.address+" api", a.String(), tc.api)
	}
	_, err := New(flaggerv1.MetricTemplateProvider{Type: TypeSplunk}, "", map[string][]byte{"sf_token_key": []byte("t")})
	mustContain(t, err, "address")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeSplunk, Address: "https://api.us1.signalfx.com"}, "", nil)
	mustContain(t, err, "sf_token_key")
}
