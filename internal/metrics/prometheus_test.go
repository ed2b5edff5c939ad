package metrics

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const (
	promOneSample = `{"status":"success","data":{"resultType":"vector","result":[
		{"metric":{"app":"podinfo"},"value":[1700000000.123,"99.5"]}]}}`
	promEmpty   = `{"status":"success","data":{"resultType":"vector","result":[]}}`
	promNaN     = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"NaN"]}]}}`
	promScalar  = `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"42"]}}`
	promSeveral = `{"status":"success","data":{"resultType":"vector","result":[
		{"metric":{"pod":"a"},"value":[1700000000,"1"]},
		{"metric":{"pod":"b"},"value":[1700000000,"2"]}]}}`
	promMatrix = `{"status":"success","data":{"resultType":"matrix","result":[
		{"metric":{"pod":"a"},"values":[[1700000000,"1"],[1700000015,"2"]]}]}}`
	promVectorOne = `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"1"]}]}}`
)

func newTestPrometheus(t *testing.T, spec flaggerv1.MetricTemplateProvider, defaultAddress string, creds map[string][]byte, opts Options) Provider {
	t.Helper()
	spec.Type = TypePrometheus
	p, err := NewWithOptions(spec, defaultAddress, creds, opts)
	if err != nil {
		t.Fatalf("NewWithOptions: %v", err)
	}
	return p
}

func TestPrometheusRequestShape(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", promOneSample))
	p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{
		Address:   srv.URL + "/prom/",
		Headers:   map[string][]string{"X-Scope-OrgID": {"tenant-1"}},
		SecretRef: &flaggerv1.SecretReference{Name: "prom-auth"},
	}, "", map[string][]byte{"token": []byte("s3cr3t\n")}, Options{})

	query := `sum(rate(http_requests_total{namespace="test",
	    status!~"5.*"}[1m]))
	  /
	  sum(rate(http_requests_total{namespace="test"}[1m])) * 100`
	v, err := p.RunQuery(context.Background(), query)
	mustValue(t, v, err, 99.5)

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodPost)
	mustEqual(t, "path", r.Path, "/prom/api/v1/query")
	mustEqual(t, "content type", r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Bearer s3cr3t")
	mustEqual(t, "extra header", r.Header.Get("X-Scope-OrgID"), "tenant-1")
	form, err := url.ParseQuery(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := `sum(rate(http_requests_total{namespace="test", status!~"5.*"}[1m])) / sum(rate(http_requests_total{namespace="test"}[1m])) * 100`
	mustEqual(t, "query", form.Get("query"), want)
	mustEqual(t, "form keys", len(form), 1) // no time: the server evaluates at "now"
	mustEqual(t, "URL query", len(r.Query), 0)
}

func TestPrometheusBasicAuthAndDefaultAddress(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", promOneSample))
	p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{SecretRef: &flaggerv1.SecretReference{Name: "s"}},
		srv.URL, map[string][]byte{"username": []byte("admin"), "password": []byte("pa:ss")}, Options{})
	v, err := p.RunQuery(context.Background(), "up")
	mustValue(t, v, err, 99.5)
	r := srv.last(t)
	mustEqual(t, "path", r.Path, "/api/v1/query")
	req := &http.Request{Header: r.Header}
	user, pass, ok := req.BasicAuth()
	if !ok || user != "admin" || pass != "pa:ss" {
		t.Fatalf("basic auth = %q %q %v", user, pass, ok)
	}
}

func TestPrometheusFallsBackToGET(t *testing.T) {
	srv := newBackend(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(promScalar))
	})
	p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{})
	v, err := p.RunQuery(context.Background(), "scalar(up)")
	mustValue(t, v, err, 42)
	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodGet)
	mustEqual(t, "query param", r.Query.Get("query"), "scalar(up)")
}

func TestPrometheusResults(t *testing.T) {
	cases := []struct {
		name string
		body string
		want float64
		is   error
		msg  string
	}{
		{name: "scalar", body: promScalar, want: 42},
		{name: "empty vector", body: promEmpty, is: ErrNoValuesFound},
		{name: "NaN", body: promNaN, is: ErrNoValuesFound},
		{name: "several series", body: promSeveral, is: ErrMultipleValuesReturned, msg: "2 series"},
		{name: "range vector", body: promMatrix, is: ErrMultipleValuesReturned, msg: "range vector"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBackend(t, reply(http.StatusOK, "application/json", tc.body))
			p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{})
			v, err := p.RunQuery(context.Background(), "q")
			if tc.is == nil {
				mustValue(t, v, err, tc.want)
				return
			}
			mustErrorIs(t, err, tc.is)
			if tc.msg != "" {
				mustContain(t, err, tc.msg)
			}
		})
	}
}

func TestPrometheusErrors(t *testing.T) {
	t.Run("HTTP 500 keeps the body", func(t *testing.T) {
		srv := newBackend(t, reply(http.StatusInternalServerError, "text/plain", "upstream exploded"))
		p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{})
		_, err := p.RunQuery(context.Background(), "up")
		mustPlainError(t, err)
		mustContain(t, err, "500", "upstream exploded")
	})
	t.Run("API error", func(t *testing.T) {
		srv := newBackend(t, reply(http.StatusBadRequest, "application/json",
			`{"status":"error","errorType":"bad_data","error":"parse error at char 5: unexpected <EOF>"}`))
		p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{})
		_, err := p.RunQuery(context.Background(), "sum(")
		mustPlainError(t, err)
		mustContain(t, err, "bad_data", "parse error")
	})
	t.Run("malformed JSON", func(t *testing.T) {
		srv := newBackend(t, reply(http.StatusOK, "application/json", `{"status":"success","data":{`))
		p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{})
		_, err := p.RunQuery(context.Background(), "up")
		mustPlainError(t, err)
	})
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "up"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
	})
	t.Run("caller deadline", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "up"); return err })
	})
}

func TestPrometheusIsOnline(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", promVectorOne))
	p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{})
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	form, _ := url.ParseQuery(srv.last(t).Body)
	mustEqual(t, "online query", form.Get("query"), "vector(1)")

	wrong := newBackend(t, reply(http.StatusOK, "application/json", promScalar))
	p = newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: wrong.URL}, "", nil, Options{})
	ok, err = p.IsOnline(context.Background())
	if ok || err == nil {
		t.Fatalf("IsOnline with 42 = %v, %v; want an error", ok, err)
	}
}

func TestPrometheusInsecureSkipVerify(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(promVectorOne))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	p := newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL}, "", nil, Options{})
	if _, err := p.RunQuery(context.Background(), "up"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error, got %v", err)
	}
	p = newTestPrometheus(t, flaggerv1.MetricTemplateProvider{Address: srv.URL, InsecureSkipVerify: true}, "", nil, Options{})
	v, err := p.RunQuery(context.Background(), "up")
	mustValue(t, v, err, 1)
}

func TestPrometheusConfigErrors(t *testing.T) {
	ref := &flaggerv1.SecretReference{Name: "prom"}
	cases := []struct {
		name  string
		spec  flaggerv1.MetricTemplateProvider
		creds map[string][]byte
		msg   []string
	}{
		{name: "no address", spec: flaggerv1.MetricTemplateProvider{}, msg: []string{"address"}},
		{name: "bad address", spec: flaggerv1.MetricTemplateProvider{Address: "prometheus:9090"}, msg: []string{"prometheus:9090"}},
		{name: "empty secret", spec: flaggerv1.MetricTemplateProvider{Address: "http://p", SecretRef: ref}, creds: map[string][]byte{}, msg: []string{`"token"`, `"username"`, `"password"`}},
		{name: "no password", spec: flaggerv1.MetricTemplateProvider{Address: "http://p", SecretRef: ref}, creds: map[string][]byte{"username": []byte("u")}, msg: []string{`"password"`}},
		{name: "no username", spec: flaggerv1.MetricTemplateProvider{Address: "http://p", SecretRef: ref}, creds: map[string][]byte{"password": []byte("p")}, msg: []string{`"username"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Type = TypePrometheus
			p, err := New(tc.spec, "", tc.creds)
			if p != nil {
				t.Fatalf("provider = %#v, want nil", p)
			}
			mustContain(t, err, tc.msg...)
		})
	}
}
