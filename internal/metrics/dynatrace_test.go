package metrics

import (
	"context"
	"net/http"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const dynatraceOneSeries = `{"totalCount":1,"nextPageKey":null,"resolution":"Inf","result":[
 {"metricId":"builtin:service.response.time:filter(eq(\"dt.entity.service\",\"SERVICE-6F1C2B0A3E4D5C6B\")):avg:splitBy()",
  "dataPointCountRatio":3.6E-6,"dimensionCountRatio":4.0E-5,
  "data":[{"dimensions":[],"dimensionMap":{},"timestamps":[1700000000000],"values":[1234.5]}]}]}`

func newTestDynatrace(t *testing.T, address string, opts Options) *dynatraceProvider {
	t.Helper()
	p, err := newDynatrace(flaggerv1.MetricTemplateProvider{Type: TypeDynatrace, Address: address},
		map[string][]byte{"dynatrace_token": []byte("dt0c01.ABC")}, opts.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return time.UnixMilli(1700000000000) }
	return p
}

func TestDynatraceRequestShape(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", dynatraceOneSeries))
	p := newTestDynatrace(t, srv.URL+"/e/abc123", Options{Interval: 30 * time.Second})
	selector := `builtin:service.response.time:filter(eq("dt.entity.service","SERVICE-6F1C2B0A3E4D5C6B")):avg:splitBy()`
	v, err := p.RunQuery(context.Background(), selector)
	mustValue(t, v, err, 1234.5)

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodGet)
	mustEqual(t, "path", r.Path, "/e/abc123/api/v2/metrics/query")
	mustEqual(t, "metricSelector", r.Query.Get("metricSelector"), selector)
	mustEqual(t, "resolution", r.Query.Get("resolution"), "Inf")
	mustEqual(t, "from", r.Query.Get("from"), "1699999700000") // now - 10 × 30s
	mustEqual(t, "to", r.Query.Get("to"), "1700000000000")
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Api-Token dt0c01.ABC")
}

func TestDynatraceIsOnline(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", `{"totalCount":1300,"nextPageKey":"abc","metrics":[{"metricId":"builtin:apps.other.apdex.osAndGeo"}]}`))
	p := newTestDynatrace(t, srv.URL, Options{})
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	r := srv.last(t)
	mustEqual(t, "path", r.Path, "/api/v2/metrics")
	mustEqual(t, "pageSize", r.Query.Get("pageSize"), "1")
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Api-Token dt0c01.ABC")

	denied := newBackend(t, reply(http.StatusUnauthorized, "application/json", `{"error":{"code":401,"message":"Token Authentication failed"}}`))
	p = newTestDynatrace(t, denied.URL, Options{})
	ok, err = p.IsOnline(context.Background())
	if ok {
		t.Fatal("IsOnline must fail on 401")
	}
	mustStatus(t, err, http.StatusUnauthorized, "Token Authentication failed")
}

func TestDynatraceResults(t *testing.T) {
	cases := []responseCase{
		{name: "last non-null", status: 200, body: `{"result":[{"data":[{"values":[1,2,null]}]}]}`, want: 2},
		{name: "no result", status: 200, body: `{"totalCount":0,"result":[]}`, is: ErrNoValuesFound},
		{name: "no data", status: 200, body: `{"result":[{"metricId":"m","data":[]}]}`, is: ErrNoValuesFound},
		{name: "null value", status: 200, body: `{"result":[{"data":[{"values":[null]}]}]}`, is: ErrNoValuesFound},
		{name: "two metrics", status: 200, body: `{"result":[{"data":[{"values":[1]}]},{"data":[{"values":[2]}]}]}`, is: ErrMultipleValuesReturned, msg: "2 metrics"},
		{name: "two series", status: 200, body: `{"result":[{"data":[{"dimensions":["A"],"values":[1]},{"dimensions":["B"],"values":[2]}]}]}`, is: ErrMultipleValuesReturned, msg: "2 series"},
		{name: "HTTP 400", status: 400, body: `{"error":{"code":400,"message":"The metric selector is invalid"}}`, msg: "The metric selector is invalid"},
		{name: "HTTP 500", status: 500, body: `{"error":{"code":500,"message":"Internal Server Error"}}`, msg: "Internal Server Error"},
		{name: "malformed JSON", status: 200, body: `{"result":[{"data":`, msg: "decoding"},
	}
	runResponseCases(t, cases, "application/json", "m", func(t *testing.T, url string) Provider { return newTestDynatrace(t, url, Options{}) })
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestDynatrace(t, srv.URL, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "m"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestDynatrace(t, srv.URL, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "m"); return err })
	})
}

func TestDynatraceConfig(t *testing.T) {
	_, err := New(flaggerv1.MetricTemplateProvider{Type: TypeDynatrace}, "", map[string][]byte{"dynatrace_token": []byte("t")})
	mustContain(t, err, "address")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeDynatrace, Address: "https://abc.live.dynatrace.com"}, "", nil)
	mustContain(t, err, "dynatrace_token")
}
