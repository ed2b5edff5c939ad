package metrics

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"k8s.io/client-go/rest"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

const externalMetricsOneItem = `{"kind":"ExternalMetricValueList","apiVersion":"external.metrics.k8s.io/v1beta1","metadata":{},
 "items":[{"metricName":"s0-prometheus","metricLabels":{"app":"podinfo"},"timestamp":"2023-11-14T22:13:20Z","value":"1500m"}]}`

// withoutCluster makes the in-cluster configuration unavailable for the test.
func withoutCluster(t *testing.T) {
	t.Helper()
	old := inClusterConfig
	inClusterConfig = func() (*rest.Config, error) { return nil, rest.ErrNotInCluster }
	t.Cleanup(func() { inClusterConfig = old })
}

func newTestExternalMetrics(t *testing.T, address string, creds map[string][]byte, opts Options) Provider {
	t.Helper()
	p, err := NewWithOptions(flaggerv1.MetricTemplateProvider{Type: TypeExternalMetrics, Address: address}, "", creds, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExternalMetricsRequestShape(t *testing.T) {
	withoutCluster(t)
	srv := newBackend(t, reply(http.StatusOK, "application/json", externalMetricsOneItem))
	p := newTestExternalMetrics(t, srv.URL, map[string][]byte{"token": []byte("kube-token\n")}, Options{})
	v, err := p.RunQuery(context.Background(), "  test/s0-prometheus?labelSelector=app%3Dpodinfo%2Ctier%20in%20(web)\n")
	mustValue(t, v, err, 1.5)

	r := srv.last(t)
	mustEqual(t, "method", r.Method, http.MethodGet)
	mustEqual(t, "path", r.Path, "/apis/external.metrics.k8s.io/v1beta1/namespaces/test/s0-prometheus")
	mustEqual(t, "labelSelector", r.Query.Get("labelSelector"), "app=podinfo,tier in (web)")
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Bearer kube-token")
	mustEqual(t, "accept", r.Header.Get("Accept"), "application/json")
}

func TestExternalMetricsDefaultNamespaceAndInCluster(t *testing.T) {
	srv := newBackend(t, reply(http.StatusOK, "application/json", externalMetricsOneItem))
	old := inClusterConfig
	inClusterConfig = func() (*rest.Config, error) {
		return &rest.Config{Host: srv.URL, BearerToken: "service-account-token"}, nil
	}
	t.Cleanup(func() { inClusterConfig = old })

	p := newTestExternalMetrics(t, "", nil, Options{})
	v, err := p.RunQuery(context.Background(), "queue-length")
	mustValue(t, v, err, 1.5)
	r := srv.last(t)
	mustEqual(t, "path", r.Path, "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue-length")
	mustEqual(t, "no selector", r.Query.Has("labelSelector"), false)
	mustEqual(t, "authorization", r.Header.Get("Authorization"), "Bearer service-account-token")

	_, err = p.RunQuery(context.Background(), "/queue-length")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "path", srv.last(t).Path, "/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue-length")
}

func TestExternalMetricsIsOnline(t *testing.T) {
	withoutCluster(t)
	srv := newBackend(t, reply(http.StatusOK, "application/json",
		`{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"external.metrics.k8s.io/v1beta1","resources":[{"name":"externalmetrics","singularName":"","namespaced":true,"kind":"ExternalMetricValueList","verbs":["get"]}]}`))
	p := newTestExternalMetrics(t, srv.URL, map[string][]byte{"token": []byte("t")}, Options{})
	ok, err := p.IsOnline(context.Background())
	if !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v", ok, err)
	}
	mustEqual(t, "path", srv.last(t).Path, "/apis/external.metrics.k8s.io/v1beta1")
	mustEqual(t, "authorization", srv.last(t).Header.Get("Authorization"), "Bearer t")

	missing := newBackend(t, reply(http.StatusNotFound, "application/json",
		`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}`))
	p = newTestExternalMetrics(t, missing.URL, nil, Options{})
	ok, err = p.IsOnline(context.Background())
	if ok {
		t.Fatal("IsOnline must fail when the API group is not served")
	}
	mustStatus(t, err, http.StatusNotFound, "NotFound")
	mustContain(t, err, "could not find the requested resource")
}

func TestExternalMetricsResults(t *testing.T) {
	withoutCluster(t)
	cases := []struct {
		name   string
		status int
		body   string
		is     error
		msg    string
	}{
		{name: "no items", status: 200, body: `{"kind":"ExternalMetricValueList","items":[]}`, is: ErrNoValuesFound},
		{name: "two items", status: 200, body: `{"items":[{"metricName":"m","value":"1"},{"metricName":"m","value":"2"}]}`, is: ErrMultipleValuesReturned, msg: "2 items"},
		{name: "forbidden", status: 403, body: `{"kind":"Status","status":"Failure","message":"externalmetrics.external.metrics.k8s.io \"m\" is forbidden: User \"system:anonymous\" cannot list resource","reason":"Forbidden","code":403}`, msg: "is forbidden"},
		{name: "HTTP 500", status: 500, body: `{"kind":"Status","status":"Failure","message":"unable to fetch metrics from external metrics API: connection refused","code":500}`, msg: "connection refused"},
		{name: "malformed JSON", status: 200, body: `{"items":[{"value":`, msg: "decoding"},
		{name: "bad quantity", status: 200, body: `{"items":[{"value":"lots"}]}`, msg: "decoding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBackend(t, reply(tc.status, "application/json", tc.body))
			p := newTestExternalMetrics(t, srv.URL, nil, Options{})
			_, err := p.RunQuery(context.Background(), "ns/m")
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
	t.Run("timeout", func(t *testing.T) {
		srv := newHangingServer(t)
		p := newTestExternalMetrics(t, srv.URL, nil, Options{Timeout: shortTimeout})
		expectTimeout(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "ns/m"); return err })
		expectTimeout(t, func(ctx context.Context) error { _, err := p.IsOnline(ctx); return err })
		p = newTestExternalMetrics(t, srv.URL, nil, Options{})
		expectCallerDeadline(t, func(ctx context.Context) error { _, err := p.RunQuery(ctx, "ns/m"); return err })
	})
}

func TestExternalMetricsQueryParsing(t *testing.T) {
	for _, q := range []string{"a/b/c", "ns/", "", "ns/m?labelSelector=app%3D%3D%3Dx", "ns/m?labelSelector=%zz"} {
		if _, _, _, err := parseExternalMetricsQuery(q); err == nil {
			t.Errorf("query %q: want an error", q)
		}
	}
	withoutCluster(t)
	p := newTestExternalMetrics(t, "http://127.0.0.1:1", nil, Options{})
	_, err := p.RunQuery(context.Background(), "a/b/c")
	mustContain(t, err, "malformed query")
}

func TestExternalMetricsConfig(t *testing.T) {
	withoutCluster(t)
	_, err := New(flaggerv1.MetricTemplateProvider{Type: TypeExternalMetrics}, "", nil)
	if !errors.Is(err, rest.ErrNotInCluster) {
		t.Fatalf("error = %v, want ErrNotInCluster", err)
	}
	mustContain(t, err, "no address")
}
