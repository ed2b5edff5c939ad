package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/metrics"
)

// fakeBackend stands for every metric backend: it answers queries by prefix and records what
// was asked, by which provider spec.
type fakeBackend struct {
	mu      sync.Mutex
	answers map[string]answer // by address, then the first matching query prefix
	specs   []flaggerv1.MetricTemplateProvider
	creds   []map[string][]byte
	queries []string
	offline map[string]error
}

type answer struct {
	prefix string
	value  float64
	err    error
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{answers: map[string]answer{}, offline: map[string]error{}}
}

// on makes queries sent to address that start with prefix return value or err.
func (b *fakeBackend) on(address, prefix string, value float64, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.answers[address+"|"+prefix] = answer{prefix: prefix, value: value, err: err}
}

func (b *fakeBackend) factory(spec flaggerv1.MetricTemplateProvider, defaultAddress string, creds map[string][]byte, _ metrics.Options) (metrics.Provider, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.specs = append(b.specs, spec)
	b.creds = append(b.creds, creds)
	if spec.Type == "bogus" {
		return nil, fmt.Errorf("%w: unknown provider type %q", metrics.ErrUnsupportedProvider, spec.Type)
	}
	address := spec.Address
	if address == "" {
		address = defaultAddress
	}
	return &fakeProvider{b: b, address: address}, nil
}

func (b *fakeBackend) asked() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.queries...)
}

type fakeProvider struct {
	b       *fakeBackend
	address string
}

func (p *fakeProvider) RunQuery(ctx context.Context, query string) (float64, error) {
	p.b.mu.Lock()
	p.b.queries = append(p.b.queries, p.address+" "+query)
	var found *answer
	for k, a := range p.b.answers {
		if strings.HasPrefix(k, p.address+"|") && strings.HasPrefix(strings.TrimSpace(query), a.prefix) {
			found = &a
			break
		}
	}
	p.b.mu.Unlock()
	if found == nil {
		return 0, fmt.Errorf("fake: no answer for %q at %s", query, p.address)
	}
	if errors.Is(found.err, context.DeadlineExceeded) {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return found.value, found.err
}

func (p *fakeProvider) IsOnline(context.Context) (bool, error) {
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	if err := p.b.offline[p.address]; err != nil {
		return false, err
	}
	return true, nil
}

type recorded struct {
	metric string
	value  float64
}

type fakeObserver struct{ values []recorded }

func (o *fakeObserver) SetAnalysis(_ *flaggerv1.Canary, metric string, value float64) {
	o.values = append(o.values, recorded{metric, value})
}

const prom = "http://prometheus:9090"

func f(v float64) *float64 { return &v }

func newCanary(metrics ...flaggerv1.CanaryMetric) *flaggerv1.Canary {
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
	cd.Spec.TargetRef = flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}
	cd.Spec.Analysis = &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, StepWeight: 10, Metrics: metrics}
	return cd
}

func newAnalyzer(t *testing.T, b *fakeBackend, objs ...client.Object) (*Analyzer, *fakeObserver) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := flaggerv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	a := New(fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build(), prom, "istio")
	a.NewProvider = b.factory
	o := &fakeObserver{}
	a.Observer = o
	return a, o
}

func wantError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if err.Error() != want {
		t.Fatalf("error\n got %q\nwant %q", err.Error(), want)
	}
}

func wantErrorContaining(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

const (
	istioSuccess  = `sum( rate( istio_requests_total`
	istioDuration = `histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket`
)

func TestSuccessRateThresholds(t *testing.T) {
	cases := []struct {
		name   string
		metric flaggerv1.CanaryMetric
		value  float64
		want   string
	}{
		{"below min", flaggerv1.CanaryMetric{Name: RequestSuccessRate, ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(99)}}, 69.1666, "Halt podinfo.test advancement success rate 69.17% < 99%"},
		{"above max", flaggerv1.CanaryMetric{Name: RequestSuccessRate, ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(99.5)}}, 99.9, "Halt podinfo.test advancement success rate 99.90% > 99.5%"},
		{"in range", flaggerv1.CanaryMetric{Name: RequestSuccessRate, ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(99), Max: f(100)}}, 99.5, ""},
		{"deprecated threshold is a minimum", flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99}, 98, "Halt podinfo.test advancement success rate 98.00% < 99%"},
		{"deprecated threshold met", flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99}, 99, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFakeBackend()
			b.on(prom, istioSuccess, c.value, nil)
			a, o := newAnalyzer(t, b)
			err := a.Analyze(context.Background(), newCanary(c.metric))
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				wantError(t, err, c.want)
			}
			if len(o.values) != 1 || o.values[0] != (recorded{RequestSuccessRate, c.value}) {
				t.Errorf("observed %v", o.values)
			}
			if q := b.asked(); len(q) != 1 || !strings.Contains(q[0], `destination_workload_namespace="test", destination_workload=~"podinfo"`) || !strings.Contains(q[0], "[1m]") {
				t.Errorf("queries %q", q)
			}
		})
	}
}

func TestRequestDurationThresholds(t *testing.T) {
	cases := []struct {
		name   string
		metric flaggerv1.CanaryMetric
		value  float64 // ms
		want   string
	}{
		{"above max", flaggerv1.CanaryMetric{Name: RequestDuration, ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(500)}}, 1200.7, "Halt podinfo.test advancement request duration 1.2s > 500ms"},
		{"below min", flaggerv1.CanaryMetric{Name: RequestDuration, ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(10)}}, 2, "Halt podinfo.test advancement request duration 2ms < 10ms"},
		{"truncated to ms", flaggerv1.CanaryMetric{Name: RequestDuration, ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(500)}}, 500.9, ""},
		{"deprecated threshold is a maximum in ms", flaggerv1.CanaryMetric{Name: RequestDuration, Threshold: 500}, 501, "Halt podinfo.test advancement request duration 501ms > 500ms"},
		// As in Flagger: without thresholdRange the (zero) threshold is a maximum of 0ms.
		{"no threshold at all", flaggerv1.CanaryMetric{Name: RequestDuration}, 3, "Halt podinfo.test advancement request duration 3ms > 0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFakeBackend()
			b.on(prom, istioDuration, c.value, nil)
			a, o := newAnalyzer(t, b)
			err := a.Analyze(context.Background(), newCanary(c.metric))
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				wantError(t, err, c.want)
			}
			ms := time.Duration(int64(c.value)) * time.Millisecond
			if len(o.values) != 1 || o.values[0] != (recorded{RequestDuration, ms.Seconds()}) {
				t.Errorf("observed %v, want %v s", o.values, ms.Seconds())
			}
		})
	}
}

func TestBuiltinProviderSelection(t *testing.T) {
	cases := []struct {
		name, mesh, provider, kind, want string
	}{
		{"mesh flag", "linkerd", "", "Deployment", "response_total"},
		{"canary provider", "istio", "nginx", "Deployment", "nginx_ingress_controller_requests"},
		{"ingress on a linkerd mesh uses linkerd metrics", "linkerd", "nginx", "Deployment", "response_total"},
		// Flagger would append :service and fall through to Istio's queries.
		{"service target keeps its provider", "istio", "linkerd", "Service", "response_total"},
		{"gateway api", "istio", "gatewayapi:v1", "Deployment", "http_request_duration_seconds_count"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFakeBackend()
			b.on(prom, "sum(", 100, nil)
			a, _ := newAnalyzer(t, b)
			a.MeshProvider = c.mesh
			cd := newCanary(flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99})
			cd.Spec.Provider = c.provider
			cd.Spec.TargetRef.Kind = c.kind
			if err := a.Analyze(context.Background(), cd); err != nil {
				t.Fatal(err)
			}
			if q := b.asked(); len(q) != 1 || !strings.Contains(q[0], c.want) {
				t.Errorf("queries %q, want %s", q, c.want)
			}
		})
	}
}

func TestMetricsServer(t *testing.T) {
	b := newFakeBackend()
	b.on("http://other:9090", "sum(", 100, nil)
	a, _ := newAnalyzer(t, b)
	cd := newCanary(flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99}, flaggerv1.CanaryMetric{Name: "inline", Query: "sum(up)", Threshold: 200})
	cd.Spec.MetricsServer = "http://other:9090"
	if err := a.Analyze(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	if len(b.specs) != 1 || b.specs[0].Type != "prometheus" || b.specs[0].Address != "http://other:9090" {
		t.Errorf("one prometheus client for spec.metricsServer, got %+v", b.specs)
	}

	a.MetricsServer = ""
	cd.Spec.MetricsServer = ""
	wantErrorContaining(t, a.Analyze(context.Background(), cd), "no address")
}

func TestInlineQuery(t *testing.T) {
	cases := []struct {
		name   string
		metric flaggerv1.CanaryMetric
		want   string
	}{
		{"threshold is a maximum", flaggerv1.CanaryMetric{Name: "errors", Query: "sum(rate(errors[1m]))", Threshold: 5}, "Halt podinfo.test advancement errors 7.50 > 5"},
		{"range max", flaggerv1.CanaryMetric{Name: "errors", Query: "sum(rate(errors[1m]))", ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(5)}}, "Halt podinfo.test advancement errors 7.50 > 5"},
		{"range min", flaggerv1.CanaryMetric{Name: "errors", Query: "sum(rate(errors[1m]))", ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(10)}}, "Halt podinfo.test advancement errors 7.50 < 10"},
		{"pass", flaggerv1.CanaryMetric{Name: "errors", Query: "sum(rate(errors[1m]))", ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(1), Max: f(10)}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFakeBackend()
			b.on(prom, "sum(rate(errors", 7.5, nil)
			a, o := newAnalyzer(t, b)
			err := a.Analyze(context.Background(), newCanary(c.metric))
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				wantError(t, err, c.want)
			}
			if len(o.values) != 1 || o.values[0] != (recorded{"errors", 7.5}) {
				t.Errorf("observed %v", o.values)
			}
		})
	}
}

func latencyTemplate(namespace string) *flaggerv1.MetricTemplate {
	return &flaggerv1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "latency", Namespace: namespace},
		Spec: flaggerv1.MetricTemplateSpec{
			Provider: flaggerv1.MetricTemplateProvider{Type: "prometheus", Address: "http://tpl:9090", SecretRef: &flaggerv1.SecretReference{Name: "prom-auth"}},
			Query:    `latency{reporter="{{ variables.reporter }}",ns="{{ namespace }}",target="{{ target }}"}[{{ interval }}]`,
		},
	}
}

func promSecret(namespace string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "prom-auth", Namespace: namespace}, Data: map[string][]byte{"token": []byte("t0k3n")}}
}

func TestTemplate(t *testing.T) {
	metric := flaggerv1.CanaryMetric{
		Name: "latency", Interval: "30s",
		TemplateRef:       &flaggerv1.CrossNamespaceRef{Name: "latency", Namespace: "istio-system"},
		TemplateVariables: map[string]string{"reporter": "destination"},
		ThresholdRange:    &flaggerv1.CanaryThresholdRange{Max: f(500)},
	}
	b := newFakeBackend()
	b.on("http://tpl:9090", "latency{", 650, nil)
	a, o := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))

	wantError(t, a.Analyze(context.Background(), newCanary(metric)), "Halt podinfo.test advancement latency 650.00 > 500")
	if q := b.asked(); len(q) != 1 || q[0] != `http://tpl:9090 latency{reporter="destination",ns="test",target="podinfo"}[30s]` {
		t.Errorf("queries %q", q)
	}
	if len(b.creds) != 1 || string(b.creds[0]["token"]) != "t0k3n" {
		t.Errorf("credentials %v", b.creds)
	}
	if len(o.values) != 1 || o.values[0] != (recorded{"latency", 650}) {
		t.Errorf("observed %v", o.values)
	}

	// Deprecated threshold: a maximum.
	metric.ThresholdRange = nil
	metric.Threshold = 1000
	if err := a.Analyze(context.Background(), newCanary(metric)); err != nil {
		t.Fatal(err)
	}
}

func TestTemplateDefaultsToCanaryNamespace(t *testing.T) {
	b := newFakeBackend()
	b.on("http://tpl:9090", "latency{", 1, nil)
	a, _ := newAnalyzer(t, b, latencyTemplate("test"), promSecret("test"))
	metric := flaggerv1.CanaryMetric{Name: "latency", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "latency"},
		TemplateVariables: map[string]string{"reporter": "source"}, Threshold: 5}
	if err := a.Analyze(context.Background(), newCanary(metric)); err != nil {
		t.Fatal(err)
	}
}

func TestTemplateErrors(t *testing.T) {
	ref := &flaggerv1.CrossNamespaceRef{Name: "latency", Namespace: "istio-system"}
	vars := map[string]string{"reporter": "destination"}
	t.Run("missing template", func(t *testing.T) {
		a, _ := newAnalyzer(t, newFakeBackend())
		err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "latency", TemplateRef: ref}))
		wantErrorContaining(t, err, "Metric template latency.istio-system error: ", "not found")
	})
	t.Run("missing secret", func(t *testing.T) {
		a, _ := newAnalyzer(t, newFakeBackend(), latencyTemplate("istio-system"))
		err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "latency", TemplateRef: ref}))
		wantErrorContaining(t, err, "Metric template latency.istio-system secret prom-auth error: ", "not found")
	})
	t.Run("bad provider", func(t *testing.T) {
		tpl := latencyTemplate("istio-system")
		tpl.Spec.Provider = flaggerv1.MetricTemplateProvider{Type: "bogus"}
		a, _ := newAnalyzer(t, newFakeBackend(), tpl)
		err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "latency", TemplateRef: ref}))
		wantErrorContaining(t, err, "Metric template latency.istio-system provider bogus error: ", "unsupported metric provider")
	})
	t.Run("unknown variable", func(t *testing.T) {
		a, _ := newAnalyzer(t, newFakeBackend(), latencyTemplate("istio-system"), promSecret("istio-system"))
		err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "latency", TemplateRef: ref, TemplateVariables: map[string]string{"other": "x"}}))
		wantErrorContaining(t, err, "Metric template latency.istio-system query render error: ", `map has no entry for key "reporter"`)
	})
	t.Run("query failed", func(t *testing.T) {
		b := newFakeBackend()
		b.on("http://tpl:9090", "latency{", 0, errors.New("prometheus: server error: 503"))
		a, _ := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))
		err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "latency", TemplateRef: ref, TemplateVariables: vars}))
		wantError(t, err, "Metric query failed for latency: prometheus: server error: 503")
	})
	t.Run("several series", func(t *testing.T) {
		b := newFakeBackend()
		b.on("http://tpl:9090", "latency{", 0, fmt.Errorf("%w: 2 series returned", metrics.ErrMultipleValuesReturned))
		a, _ := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))
		err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "latency", TemplateRef: ref, TemplateVariables: vars}))
		wantError(t, err, "Metric query failed for latency: multiple values returned: 2 series returned")
	})
}

func TestNoDataPolicy(t *testing.T) {
	noValues := fmt.Errorf("prometheus: query: %w", metrics.ErrNoValuesFound)
	builtinMsg := "Halt advancement no values found for istio metric request-success-rate probably podinfo.test is not receiving traffic: running query failed: prometheus: query: no values found"
	cases := []struct {
		policy flaggerv1.NoDataPolicy
		want   string
		hold   bool
	}{
		{"", builtinMsg, false},
		{flaggerv1.NoDataFail, builtinMsg, false},
		{flaggerv1.NoDataSkip, "", false},
		{flaggerv1.NoDataWait, builtinMsg + " (noDataPolicy wait: the analysis is held until data arrives)", true},
	}
	for _, c := range cases {
		t.Run(string(c.policy), func(t *testing.T) {
			b := newFakeBackend()
			b.on(prom, istioSuccess, 0, noValues)
			b.on(prom, istioDuration, 20, nil)
			a, o := newAnalyzer(t, b)
			cd := newCanary(
				flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99, NoDataPolicy: c.policy},
				flaggerv1.CanaryMetric{Name: RequestDuration, Threshold: 500},
			)
			err := a.Analyze(context.Background(), cd)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(o.values) != 1 || o.values[0].metric != RequestDuration {
					t.Errorf("observed %v", o.values)
				}
				return
			}
			wantError(t, err, c.want)
			var hold *canary.HoldError
			if errors.As(err, &hold) != c.hold {
				t.Errorf("hold = %v, want %v", !c.hold, c.hold)
			}
		})
	}

	t.Run("a failure wins over a hold", func(t *testing.T) {
		b := newFakeBackend()
		b.on(prom, istioSuccess, 0, noValues)
		b.on(prom, istioDuration, 900, nil)
		a, _ := newAnalyzer(t, b)
		cd := newCanary(
			flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99, NoDataPolicy: flaggerv1.NoDataWait},
			flaggerv1.CanaryMetric{Name: RequestDuration, Threshold: 500},
		)
		wantError(t, a.Analyze(context.Background(), cd), "Halt podinfo.test advancement request duration 900ms > 500ms")
	})

	t.Run("template and inline query texts", func(t *testing.T) {
		b := newFakeBackend()
		b.on(prom, "sum(errors", 0, noValues)
		b.on("http://tpl:9090", "latency{", 0, noValues)
		a, _ := newAnalyzer(t, b, latencyTemplate("test"), promSecret("test"))
		wantError(t, a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "errors", Query: "sum(errors)"})),
			"Halt advancement no values found for metric: errors: prometheus: query: no values found")
		wantError(t, a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "latency", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "latency"}, TemplateVariables: map[string]string{"reporter": "x"}})),
			"Halt advancement no values found for custom metric: latency: prometheus: query: no values found")
	})
}

func TestFirstFailureHaltsTheTick(t *testing.T) {
	b := newFakeBackend()
	b.on(prom, istioSuccess, 50, nil)
	b.on(prom, istioDuration, 10, nil)
	a, _ := newAnalyzer(t, b)
	cd := newCanary(
		flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99},
		flaggerv1.CanaryMetric{Name: RequestDuration, Threshold: 500},
	)
	wantError(t, a.Analyze(context.Background(), cd), "Halt podinfo.test advancement success rate 50.00% < 99%")
	if q := b.asked(); len(q) != 1 {
		t.Errorf("queries after the first failure: %q", q)
	}
}

func TestProviderUnreachableFailsTheCheck(t *testing.T) {
	b := newFakeBackend()
	b.on(prom, istioSuccess, 0, errors.New(`prometheus: query "x": Post "http://prometheus:9090/api/v1/query": dial tcp: connection refused`))
	a, _ := newAnalyzer(t, b)
	err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99}))
	wantError(t, err, `Prometheus query failed: running query failed: prometheus: query "x": Post "http://prometheus:9090/api/v1/query": dial tcp: connection refused`)
}

func TestQueryTimeout(t *testing.T) {
	b := newFakeBackend()
	b.on(prom, "sum(slow", 0, context.DeadlineExceeded) // the fake blocks until the deadline
	a, _ := newAnalyzer(t, b)
	a.QueryTimeout = 50 * time.Millisecond
	start := time.Now()
	err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "slow", Query: "sum(slow)", Threshold: 1}))
	wantError(t, err, "Prometheus query failed for slow: no answer within 50ms: context deadline exceeded")
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
}

func TestUnusableMetric(t *testing.T) {
	a, _ := newAnalyzer(t, newFakeBackend())
	err := a.Analyze(context.Background(), newCanary(flaggerv1.CanaryMetric{Name: "error-rate", Threshold: 1}))
	wantError(t, err, "Metric query failed for error-rate: no usable metric: error-rate is not a builtin check (request-success-rate, request-duration) and has neither a templateRef nor a query")
}

func TestNoMetrics(t *testing.T) {
	a, _ := newAnalyzer(t, newFakeBackend())
	if err := a.Analyze(context.Background(), newCanary()); err != nil {
		t.Fatal(err)
	}
	cd := newCanary()
	cd.Spec.Analysis = nil
	if err := a.Analyze(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
}

func TestTemplateRefWinsOverBuiltinName(t *testing.T) {
	b := newFakeBackend()
	b.on("http://tpl:9090", "latency{", 99.5, nil)
	a, _ := newAnalyzer(t, b, latencyTemplate("test"), promSecret("test"))
	metric := flaggerv1.CanaryMetric{Name: RequestSuccessRate, TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "latency"},
		TemplateVariables: map[string]string{"reporter": "x"}, ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(99)}}
	if err := a.Analyze(context.Background(), newCanary(metric)); err != nil {
		t.Fatal(err)
	}
	if q := b.asked(); len(q) != 1 || !strings.HasPrefix(q[0], "http://tpl:9090 ") {
		t.Errorf("queries %q", q)
	}
}

func TestCheckProviderAvailability(t *testing.T) {
	ref := &flaggerv1.CrossNamespaceRef{Name: "latency", Namespace: "istio-system"}
	cd := newCanary(
		flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99},
		flaggerv1.CanaryMetric{Name: RequestDuration, Threshold: 500},
		flaggerv1.CanaryMetric{Name: "latency", TemplateRef: ref},
	)
	t.Run("all online", func(t *testing.T) {
		b := newFakeBackend()
		a, _ := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))
		if err := a.CheckProviderAvailability(context.Background(), cd); err != nil {
			t.Fatal(err)
		}
		if len(b.specs) != 2 {
			t.Errorf("providers built: %+v", b.specs)
		}
	})
	t.Run("builtin prometheus down", func(t *testing.T) {
		b := newFakeBackend()
		b.offline[prom] = errors.New("connection refused")
		a, _ := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))
		wantError(t, a.CheckProviderAvailability(context.Background(), cd), "prometheus http://prometheus:9090 not available: connection refused")
	})
	t.Run("template provider down", func(t *testing.T) {
		b := newFakeBackend()
		b.offline["http://tpl:9090"] = errors.New("connection refused")
		a, _ := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))
		wantError(t, a.CheckProviderAvailability(context.Background(), cd), "prometheus in metric template latency.istio-system not available: connection refused")
	})
	t.Run("builtin prometheus with credentials down", func(t *testing.T) {
		b := newFakeBackend()
		const server = "http://pennant:s3cret@prometheus:9090/?token=abc"
		b.offline[server] = errors.New("connection refused")
		a, _ := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))
		a.MetricsServer = server
		err := a.CheckProviderAvailability(context.Background(), cd)
		wantError(t, err, "prometheus http://prometheus:9090/ not available: connection refused")
	})
	t.Run("template missing", func(t *testing.T) {
		a, _ := newAnalyzer(t, newFakeBackend())
		wantErrorContaining(t, a.CheckProviderAvailability(context.Background(), cd), "Metric template latency.istio-system error: ")
	})
}
