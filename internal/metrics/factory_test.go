package metrics

import (
	"errors"
	"fmt"
	"testing"

	"k8s.io/client-go/rest"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestNewChoosesByType(t *testing.T) {
	clearAWSEnv(t)
	old := inClusterConfig
	inClusterConfig = func() (*rest.Config, error) { return nil, rest.ErrNotInCluster }
	t.Cleanup(func() { inClusterConfig = old })

	cases := []struct {
		spec  flaggerv1.MetricTemplateProvider
		creds map[string][]byte
		want  string
	}{
		{flaggerv1.MetricTemplateProvider{Type: "prometheus"}, nil, "*metrics.prometheusProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "datadog"}, datadogCreds, "*metrics.datadogProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "newrelic"}, newRelicCreds, "*metrics.newRelicProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "graphite", Address: "http://graphite"}, nil, "*metrics.graphiteProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "influxdb", Address: "http://influx:8086"}, nil, "*metrics.influxDBProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "dynatrace", Address: "https://abc.live.dynatrace.com"}, map[string][]byte{"dynatrace_token": []byte("t")}, "*metrics.dynatraceProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "splunk", Address: "https://api.us1.signalfx.com"}, map[string][]byte{"sf_token_key": []byte("t")}, "*metrics.splunkProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "cloudwatch", Region: "us-east-1"}, cloudWatchCreds, "*metrics.cloudWatchProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "stackdriver"}, map[string][]byte{"project": []byte("p"), "serviceAccountKey": serviceAccountKey(t, "https://oauth2.googleapis.com/token")}, "*metrics.stackdriverProvider"},
		{flaggerv1.MetricTemplateProvider{Type: "externalmetrics", Address: "https://kubernetes.default.svc"}, map[string][]byte{"token": []byte("t")}, "*metrics.externalMetricsProvider"},
	}
	for _, tc := range cases {
		p, err := New(tc.spec, "http://prometheus:9090", tc.creds)
		if err != nil {
			t.Fatalf("%s: %v", tc.spec.Type, err)
		}
		mustEqual(t, tc.spec.Type, fmt.Sprintf("%T", p), tc.want)
	}
}

func TestNewRejectsUnknownTypes(t *testing.T) {
	for typ, msg := range map[string]string{
		"":           "spec.provider.type is empty",
		"Prometheus": `unknown provider type "Prometheus"`,
		"signoz":     `unknown provider type "signoz"`,
	} {
		p, err := New(flaggerv1.MetricTemplateProvider{Type: typ, Address: "http://prometheus:9090"}, "http://prometheus:9090", nil)
		if p != nil {
			t.Fatalf("%q: provider = %#v, want nil (no fallback to prometheus)", typ, p)
		}
		if !errors.Is(err, ErrUnsupportedProvider) {
			t.Fatalf("%q: error = %v, want ErrUnsupportedProvider", typ, err)
		}
		mustContain(t, err, msg)
	}
}

func TestNewReturnsNilProviderOnError(t *testing.T) {
	// A failed constructor must not yield a non-nil interface holding a nil pointer.
	p, err := New(flaggerv1.MetricTemplateProvider{Type: "datadog"}, "", nil)
	if err == nil || p != nil {
		t.Fatalf("New = %#v, %v; want nil and an error", p, err)
	}
}
