package metrics

import (
	"context"
	"net/http"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const newRelicResult = `{"results":[{"result":2.5}],
 "performanceStats":{"inspectedCount":1200,"omittedCount":0,"matchCount":1200,"wallClockTime":23},
 "metadata":{"eventTypes":["Metric"],"eventType":"Metric","openEnded":true,
   "beginTime":"2023-11-14T22:12:20Z","endTime":"2023-11-14T22:13:20Z",
   "beginTimeMillis":1699999940000,"endTimeMillis":1700000000000,"rawSince":"60 SECONDS AGO",
   "rawUntil":"NOW","rawCompareWith":"","guid":"6e4e2a9c-0c2d-4c1c-9f63-6c1f0d0b2b40",
   "routerGuid":"6e4e2a9c-0c2d-4c1c-9f63-6c1f0d0b2b40","messages":[],
   "contents":[{"function":"alias","alias":"result","contents":{"function":"binop"}}]}}`

var newRelicCreds = map[string][]byte{
	"newrelic_account_id": []byte("1234567"),
	"newrelic_query_key":  []byte("NRIQ-abc\n"),
}

func newTestNewRelic(t *testing.T, address string, opts Options) Provider {
	t.Helper()
	p, err := NewWithOptions(flaggerv1.MetricTemplateProvider{Type: TypeNewRelic, Address: address}, "", newRelicCreds, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewRelicRequestShape(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", newRelicResult))
	p := newTestNewRelic(t, srv.URL, Options{Interval: 2 * time.Minute})
	query := "SELECT filter(sum(nginx_ingress_controller_requests), WHERE status >= '500') / sum(nginx_ingress_controller_requests) * 100 FROM Metric WHERE metricName = 'nginx_ingress_controller_requests'"
	v, err := p.RunQuery(context.Background(), query)
	mustValue(t, v, err, 2.5)

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodGet)
	mustEqual(t, "path", r.Path, "/v1/accounts/1234567/query")
	mustEqual(t, "nrql", r.Query.Get("nrql"), query+" SINCE 120 seconds ago")
	mustEqual(t, "query key", r.Header.Get("X-Query-Key"), "NRIQ-abc")
	mustEqual(t, "accept", r.Header.Get("Accept"), "application/json")
}

func TestNewRelicIsOnline(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", `{"results":[{"count":42}]}`))
	p := newTestNewRelic(t, srv.URL, Options{})
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	r := srv.last(t)
	mustEqual(t, "nrql", r.Query.Get("nrql"), "SELECT count(*) FROM Metric SINCE 60 seconds ago")
	mustEqual(t, "query key", r.Header.Get("X-Query-Key"), "NRIQ-abc")

	denied := newBackend(t, reply(http.StatusForbidden, "application/json", `{"error":"Invalid query key"}`))
	p = newTestNewRelic(t, denied.URL, Options{})
	ok, err = p.IsOnline(context.Background())
	if ok {
		t.Fatal("IsOnline must fail on 403")
	}
	mustStatus(t, err, http.StatusForbidden, "Invalid query key")
}

func TestNewRelicResults(t *testing.T) {
	cases := []responseCase{
		{name: "single named field", status: 200, body: `{"results":[{"average":0.25}]}`, want: 0.25},
		{name: "percentile", status: 200, body: `{"results":[{"percentile":{"99":1.5}}]}`, want: 1.5},
		{name: "single facet", status: 200, body: `{"facets":[{"name":"podinfo","results":[{"count":7}]}]}`, want: 7},
		{name: "null", status: 200, body: `{"results":[{"result":null}]}`, is: ErrNoValuesFound},
		{name: "no results", status: 200, body: `{"results":[]}`, is: ErrNoValuesFound},
		{name: "two results", status: 200, body: `{"results":[{"count":1},{"average":2}]}`, is: ErrMultipleValuesReturned},
		{name: "two fields", status: 200, body: `{"results":[{"percentiles":{"95":1,"99":2}}]}`, is: ErrMultipleValuesReturned},
		{name: "facets", status: 200, body: `{"facets":[{"name":"a","results":[{"count":1}]},{"name":"b","results":[{"count":2}]}]}`, is: ErrMultipleValuesReturned, msg: "FACET"},
		{name: "timeseries", status: 200, body: `{"timeSeries":[{"results":[{"count":1}]},{"results":[{"count":2}]}]}`, is: ErrMultipleValuesReturned, msg: "TIMESERIES"},
		{name: "NRQL error", status: 400, body: `{"error":"NRQL Syntax Error: Error at line 1 position 8"}`, msg: "NRQL Syntax Error"},
		{name: "HTTP 500", status: 500, body: `internal error`, msg: "internal error"},
		{name: "malformed JSON", status: 200, body: `{"results":[{"result":`, msg: "decoding"},
	}
	runResponseCases(t, cases, "application/json", "SELECT x FROM Metric", func(t *testing.T, url string) Provider { return newTestNewRelic(t, url, Options{}) })
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestNewRelic(t, srv.URL, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "q"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestNewRelic(t, srv.URL, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "q"); return err })
	})
}

func TestNewRelicConfig(t *testing.T) {
	p, err := New(flaggerv1.MetricTemplateProvider{Type: TypeNewRelic}, "", newRelicCreds)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "default endpoint", p.(*newRelicProvider).endpoint.String(), "https://insights-api.newrelic.com/v1/accounts/1234567/query")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeNewRelic}, "", map[string][]byte{"newrelic_query_key": []byte("k")})
	mustContain(t, err, "newrelic_account_id")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeNewRelic}, "", map[string][]byte{"newrelic_account_id": []byte("1")})
	mustContain(t, err, "newrelic_query_key")
}
