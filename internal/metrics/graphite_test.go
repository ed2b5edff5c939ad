package metrics

import (
	"context"
	"net/http"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const graphiteRender = `[{"target":"summarize(sumSeries(app.podinfo.*.errors), \"5min\", \"sum\")",
 "tags":{"name":"sumSeries(app.podinfo.*.errors)","summarize":"5min","summarizeFunction":"sum"},
 "datapoints":[[1.0,1699999500],[2.5,1699999800],[null,1700000100]]}]`

func newTestGraphite(t *testing.T, address string, creds map[string][]byte, opts Options) Provider {
	t.Helper()
	spec := flaggerv1.MetricTemplateProvider{Type: TypeGraphite, Address: address}
	if creds != nil {
		spec.SecretRef = &flaggerv1.SecretReference{Name: "graphite"}
	}
	p, err := NewWithOptions(spec, "", creds, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGraphiteRequestShape(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", graphiteRender))
	p := newTestGraphite(t, srv.URL+"/graphite", map[string][]byte{"username": []byte("gu"), "password": []byte("gp")}, Options{})
	query := `target=summarize(
	    sumSeries(app.podinfo.*.errors),
	    "5min", "sum")&from=-5min&until=now`
	v, err := p.RunQuery(context.Background(), query)
	mustValue(t, v, err, 2.5) // the last non-null point

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodGet)
	mustEqual(t, "path", r.Path, "/graphite/render")
	mustEqual(t, "target", r.Query.Get("target"), `summarize( sumSeries(app.podinfo.*.errors), "5min", "sum")`)
	mustEqual(t, "from", r.Query.Get("from"), "-5min")
	mustEqual(t, "until", r.Query.Get("until"), "now")
	mustEqual(t, "format", r.Query.Get("format"), "json")
	req := &http.Request{Header: r.Header}
	user, pass, ok := req.BasicAuth()
	if !ok || user != "gu" || pass != "gp" {
		t.Fatalf("basic auth = %q %q %v", user, pass, ok)
	}
}

func TestGraphiteIsOnline(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", `[]`))
	p := newTestGraphite(t, srv.URL, nil, Options{})
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	mustEqual(t, "target", srv.last(t).Query.Get("target"), "test")
	mustEqual(t, "auth", srv.last(t).Header.Get("Authorization"), "")

	down := newBackend(t, reply(http.StatusBadGateway, "text/html", "<h1>502 Bad Gateway</h1>"))
	p = newTestGraphite(t, down.URL, nil, Options{})
	ok, err = p.IsOnline(context.Background())
	if ok {
		t.Fatal("IsOnline must fail on 502")
	}
	mustStatus(t, err, http.StatusBadGateway, "Bad Gateway")
}

func TestGraphiteResults(t *testing.T) {
	cases := []responseCase{
		{name: "string value", status: 200, body: `[{"target":"a","datapoints":[["3.5",1700000000]]}]`, want: 3.5},
		{name: "null-only series ignored", status: 200, body: `[{"target":"a","datapoints":[[null,1]]},{"target":"b","datapoints":[[4,1]]}]`, want: 4},
		{name: "empty", status: 200, body: `[]`, is: ErrNoValuesFound},
		{name: "only nulls", status: 200, body: `[{"target":"a","datapoints":[[null,1],[null,2]]}]`, is: ErrNoValuesFound},
		{name: "several series", status: 200, body: `[{"target":"a","datapoints":[[1,1]]},{"target":"b","datapoints":[[2,1]]}]`, is: ErrMultipleValuesReturned, msg: "2 series"},
		{name: "HTTP 500", status: 500, body: `Traceback (most recent call last): ValueError`, msg: "Traceback"},
		{name: "malformed JSON", status: 200, body: `[{"target":"a","datapoints":[[1,`, msg: "decoding"},
		{name: "bad datapoint", status: 200, body: `[{"target":"a","datapoints":[[1]]}]`, msg: "decoding"},
	}
	runResponseCases(t, cases, "application/json", "target=a", func(t *testing.T, url string) Provider { return newTestGraphite(t, url, nil, Options{}) })
	t.Run("not a query string", func(t *testing.T) {
		p := newTestGraphite(t, "http://127.0.0.1:1", nil, Options{})
		_, err := p.RunQuery(context.Background(), "target=a;b")
		mustContain(t, err, "query string")
	})
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestGraphite(t, srv.URL, nil, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "target=a"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestGraphite(t, srv.URL, nil, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "target=a"); return err })
	})
}

func TestGraphiteConfig(t *testing.T) {
	_, err := New(flaggerv1.MetricTemplateProvider{Type: TypeGraphite}, "http://ignored", nil)
	mustContain(t, err, "address")
	_, err = New(flaggerv1.MetricTemplateProvider{Type: TypeGraphite, Address: "http://g", SecretRef: &flaggerv1.SecretReference{Name: "g"}},
		"", map[string][]byte{"token": []byte("t")})
	mustContain(t, err, `"username"`, `"password"`)
}
