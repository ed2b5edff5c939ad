package analysis

import (
	"context"
	"errors"
	"strings"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Under NoCrossNamespaceRefs a templateRef to another namespace fails the check and nothing is
// built or called.
func TestNoCrossNamespaceRefs(t *testing.T) {
	metric := flaggerv1.CanaryMetric{
		Name: "latency", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "latency", Namespace: "istio-system"},
		TemplateVariables: map[string]string{"reporter": "destination"},
		ThresholdRange:    &flaggerv1.CanaryThresholdRange{Max: f(500)},
	}
	b := newFakeBackend()
	b.on("http://tpl:9090", "latency{", 1, nil)
	a, _ := newAnalyzer(t, b, latencyTemplate("istio-system"), promSecret("istio-system"))
	a.NoCrossNamespaceRefs = true
	err := a.Analyze(context.Background(), newCanary(metric))
	if !errors.Is(err, ErrCrossNamespaceRef) {
		t.Fatalf("err = %v, want ErrCrossNamespaceRef", err)
	}
	if len(b.specs) != 0 || len(b.asked()) != 0 {
		t.Errorf("a provider was built (%v) or asked (%v)", b.specs, b.asked())
	}

	// The same namespace is still allowed, and without the option the reference works.
	a.NoCrossNamespaceRefs = false
	if err := a.Analyze(context.Background(), newCanary(metric)); err != nil {
		t.Fatalf("without the option: %v", err)
	}
	same := metric
	same.TemplateRef = &flaggerv1.CrossNamespaceRef{Name: "latency"}
	b2 := newFakeBackend()
	b2.on("http://tpl:9090", "latency{", 1, nil)
	a2, _ := newAnalyzer(t, b2, latencyTemplate("test"), promSecret("test"))
	a2.NoCrossNamespaceRefs = true
	if err := a2.Analyze(context.Background(), newCanary(same)); err != nil {
		t.Fatalf("same namespace: %v", err)
	}
}

// A canary's spec.metricsServer never becomes the address of another namespace's template that
// carries credentials; a template without credentials, or of the canary's own namespace, still
// uses it as Flagger does.
func TestCanaryMetricsServerNeverGetsForeignCredentials(t *testing.T) {
	const attacker = "http://attacker:9090"
	metric := func(ns string) flaggerv1.CanaryMetric {
		return flaggerv1.CanaryMetric{
			Name: "latency", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "latency", Namespace: ns},
			TemplateVariables: map[string]string{"reporter": "destination"},
			ThresholdRange:    &flaggerv1.CanaryThresholdRange{Max: f(500)},
		}
	}
	noAddress := func(ns string, secret bool) *flaggerv1.MetricTemplate {
		tpl := latencyTemplate(ns)
		tpl.Spec.Provider.Address = ""
		if !secret {
			tpl.Spec.Provider.SecretRef = nil
		}
		return tpl
	}
	cases := []struct {
		name     string
		tplNS    string
		secret   bool
		wantAddr string
	}{
		{"foreign template with credentials keeps -metrics-server", "istio-system", true, prom},
		{"foreign template without credentials follows the canary", "istio-system", false, attacker},
		{"own template with credentials follows the canary", "test", true, attacker},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newFakeBackend()
			b.on(prom, "latency{", 1, nil)
			b.on(attacker, "latency{", 1, nil)
			a, _ := newAnalyzer(t, b, noAddress(c.tplNS, c.secret), promSecret(c.tplNS))
			cd := newCanary(metric(c.tplNS))
			cd.Spec.MetricsServer = attacker
			if err := a.Analyze(context.Background(), cd); err != nil {
				t.Fatal(err)
			}
			asked := b.asked()
			if len(asked) != 1 || !strings.HasPrefix(asked[0], c.wantAddr+" ") {
				t.Errorf("queries %v, want one to %s", asked, c.wantAddr)
			}
		})
	}
}
