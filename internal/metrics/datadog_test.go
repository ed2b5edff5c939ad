package metrics

import (
	"context"
	"net/http"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const datadogSeries = `{"status":"ok","res_type":"time_series","resp_version":1,
 "query":"sum:trace.http.request.errors{service:podinfo}.as_count()",
 "from_date":1699999400000,"to_date":1700000000000,"group_by":[],"message":"",
 "series":[{"unit":null,"query_index":0,"aggr":"sum","metric":"trace.http.request.errors",
   "tag_set":[],"expression":"sum:trace.http.request.errors{service:podinfo}.as_count()",
   "scope":"service:podinfo","interval":60,"length":3,"start":1699999440000,"end":1700000000000,
   "pointlist":[[1699999440000.0,null],[1699999500000.0,12.5],[1699999560000.0,13.0]],
   "display_name":"trace.http.request.errors"}]}`

var datadogCreds = map[string][]byte{
	"datadog_api_key":         []byte("api-key"),
	"datadog_application_key": []byte("app-key\n"),
}

func newTestDatadog(t *testing.T, address string, opts Options) *datadogProvider {
	t.Helper()
	p, err := newDatadog(flaggerv1.MetricTemplateProvider{Type: TypeDatadog, Address: address}, datadogCreds, opts.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return time.Unix(1700000000, 0) }
	return p
}

func TestDatadogRequestShape(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", datadogSeries))
	p := newTestDatadog(t, srv.URL, Options{Interval: 2 * time.Minute})
	query := "sum:trace.http.request.errors{service:podinfo}.as_count()"
	v, err := p.RunQuery(context.Background(), query)
	mustValue(t, v, err, 13.0) // the newest non-null point, not the oldest

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodGet)
	mustEqual(t, "path", r.Path, "/api/v1/query")
	mustEqual(t, "query", r.Query.Get("query"), query)
	mustEqual(t, "from", r.Query.Get("from"), "1699998800") // now - 10 × 2m
	mustEqual(t, "to", r.Query.Get("to"), "1700000000")
	mustEqual(t, "api key", r.Header.Get("DD-API-KEY"), "api-key")
	mustEqual(t, "application key", r.Header.Get("DD-APPLICATION-KEY"), "app-key")
}

func TestDatadogIsOnline(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", `{"valid":true}`))
	p := newTestDatadog(t, srv.URL, Options{})
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodGet)
	mustEqual(t, "path", r.Path, "/api/v1/validate")
	mustEqual(t, "api key", r.Header.Get("DD-API-KEY"), "api-key")
	mustEqual(t, "application key", r.Header.Get("DD-APPLICATION-KEY"), "app-key")

	forbidden := newBackend(t, reply(http.StatusForbidden, "application/json", `{"errors":["Forbidden"]}`))
	p = newTestDatadog(t, forbidden.URL, Options{})
	ok, err = p.IsOnline(context.Background())
	if ok {
		t.Fatal("IsOnline must fail on 403")
	}
	mustStatus(t, err, http.StatusForbidden, "Forbidden")
}

func TestDatadogResultsAndErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		is     error
		msg    string
	}{
		{name: "no series", status: 200, body: `{"status":"ok","series":[]}`, is: ErrNoValuesFound},
		{name: "only null points", status: 200, body: `{"status":"ok","series":[{"pointlist":[[1,null],[2,null]]}]}`, is: ErrNoValuesFound},
		{name: "several series", status: 200, body: `{"status":"ok","series":[{"pointlist":[[1,1]]},{"pointlist":[[1,2]]}]}`, is: ErrMultipleValuesReturned, msg: "2 series"},
		{name: "query error", status: 200, body: `{"status":"error","error":"Rule 'metric' didn't match"}`, msg: "didn't match"},
		{name: "HTTP 500", status: 500, body: `{"errors":["Internal Server Error"]}`, msg: "Internal Server Error"},
		{name: "malformed JSON", status: 200, body: `{"status":"ok","series":[`, msg: "decoding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBackend(t, reply(tc.status, "application/json", tc.body))
			p := newTestDatadog(t, srv.URL, Options{})
			_, err := p.RunQuery(context.Background(), "avg:system.cpu.user{*}")
			if tc.is != nil {
				mustErrorIs(t, err, tc.is)
			} else {
				mustPlainError(t, err)
			}
			if tc.msg != "" {
				mustContain(t, err, tc.msg)
			}
			if tc.status == 500 {
				mustStatus(t, err, 500, "Internal Server Error")
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestDatadog(t, srv.URL, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "q"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestDatadog(t, srv.URL, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "q"); return err })
	})
}

func TestDatadogConfig(t *testing.T) {
	p, err := newDatadog(flaggerv1.MetricTemplateProvider{Type: TypeDatadog}, datadogCreds, Options{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "default address", p.base.String(), "https://api.datadoghq.com")
	mustEqual(t, "default window", p.window, 10*time.Minute)

	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeDatadog}, "", map[string][]byte{"datadog_api_key": []byte("k")})
	mustContain(t, err, "datadog_application_key")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeDatadog}, "", map[string][]byte{"datadog_application_key": []byte("k")})
	mustContain(t, err, "datadog_api_key")
}
