package analysis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/metrics"
)

// The Analyzer hands AllowAmbientCredentials to every template provider it builds.
func TestAllowAmbientCredentialsReachesTheProvider(t *testing.T) {
	metric := flaggerv1.CanaryMetric{
		Name: "latency", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "latency", Namespace: "istio-system"},
		TemplateVariables: map[string]string{"reporter": "destination"},
		ThresholdRange:    &flaggerv1.CanaryThresholdRange{Max: f(500)},
	}
	for _, allow := range []bool{false, true} {
		b := newFakeBackend()
		b.on("http://tpl:9090", "latency{", 1, nil)
		a, _ := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))
		var got []bool
		a.NewProvider = func(spec flaggerv1.MetricTemplateProvider, def string, creds map[string][]byte, opts metrics.Options) (metrics.Provider, error) {
			got = append(got, opts.AllowAmbientCredentials)
			return b.factory(spec, def, creds, opts)
		}
		a.AllowAmbientCredentials = allow
		if err := a.Analyze(context.Background(), newCanary(metric)); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != allow {
			t.Errorf("AllowAmbientCredentials=%v: the provider got %v", allow, got)
		}
	}
}

// With the production factory, a stackdriver template that names a tenant's server and has no
// key fails its check, and neither the tenant's server nor the metadata server hears from the
// controller, whether ambient credentials are allowed or not.
func TestStackdriverTemplateGetsNoAmbientToken(t *testing.T) {
	var metadataCalls, tenantAuth atomic.Int32
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		metadataCalls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"ya29.controller-identity","expires_in":3599,"token_type":"Bearer"}`))
	}))
	defer meta.Close()
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(meta.URL, "http://"))
	tenant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			tenantAuth.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"1"]}]}}`))
	}))
	defer tenant.Close()

	tpl := &flaggerv1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "latency", Namespace: "test"},
		Spec: flaggerv1.MetricTemplateSpec{
			Provider: flaggerv1.MetricTemplateProvider{Type: "stackdriver", Address: tenant.URL, SecretRef: &flaggerv1.SecretReference{Name: "gcp"}},
			Query:    `latency`,
		},
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "gcp", Namespace: "test"}, Data: map[string][]byte{"project": []byte("tenant-project")}}
	metric := flaggerv1.CanaryMetric{Name: "latency", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "latency"},
		ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(500)}}
	for _, allow := range []bool{false, true} {
		a, _ := newAnalyzer(t, newFakeBackend(), tpl, secret)
		a.NewProvider = nil // metrics.NewWithOptions
		a.AllowAmbientCredentials = allow
		err := a.Analyze(context.Background(), newCanary(metric))
		wantErrorContaining(t, err, "stackdriver", "ambient cloud credentials")
	}
	if n := metadataCalls.Load(); n != 0 {
		t.Errorf("the metadata server was asked %d times", n)
	}
	if n := tenantAuth.Load(); n != 0 {
		t.Errorf("the tenant's server received %d Authorization headers", n)
	}
}
