package analysis

import (
	"context"
	"reflect"
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/metrics"
)

// Check reports every metric it checked with the value its check compared, in the check's unit.
func TestCheckReportsEachValue(t *testing.T) {
	b := newFakeBackend()
	b.on(prom, istioSuccess, 99.871, nil)
	b.on(prom, istioDuration, 120.4, nil)
	b.on("http://tpl:9090", "latency{", 0.25, nil)
	b.on(prom, "absent_metric", 0, metrics.ErrNoValuesFound)
	a, _ := newAnalyzer(t, b, latencyTemplate("test"), promSecret("test"))
	latency := flaggerv1.CanaryMetric{Name: "latency", TemplateRef: &flaggerv1.CrossNamespaceRef{Name: "latency"},
		TemplateVariables: map[string]string{"reporter": "destination"}, ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(0.5)}}
	quiet := flaggerv1.CanaryMetric{Name: "quiet", Query: "absent_metric", Threshold: 1, NoDataPolicy: flaggerv1.NoDataSkip}
	results, err := a.Check(context.Background(), newCanary(
		flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99},
		flaggerv1.CanaryMetric{Name: RequestDuration, Threshold: 500},
		latency, quiet))
	if err != nil {
		t.Fatal(err)
	}
	metric := func(name, value string, r flaggerv1.CanaryCheckOutcome, msg string) flaggerv1.CanaryCheckResult {
		return flaggerv1.CanaryCheckResult{Kind: flaggerv1.MetricCheck, Name: name, Value: value, Result: r, Message: msg}
	}
	want := []flaggerv1.CanaryCheckResult{
		metric(RequestSuccessRate, "99.87%", flaggerv1.CheckPassed, ""),
		metric(RequestDuration, "120ms", flaggerv1.CheckPassed, ""),
		metric("latency", "0.25", flaggerv1.CheckPassed, ""),
		metric("quiet", "", flaggerv1.CheckNoData, "no value: skipped (noDataPolicy skip)"),
	}
	if !reflect.DeepEqual(results, want) {
		t.Errorf("results:\n got  %+v\n want %+v", results, want)
	}

	// A failure ends the run: the metrics after it are not checked, as in Flagger.
	b.on(prom, istioSuccess, 69.17, nil)
	results, err = a.Check(context.Background(), newCanary(
		flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99},
		flaggerv1.CanaryMetric{Name: RequestDuration, Threshold: 500}))
	failed := "Halt podinfo.test advancement success rate 69.17% < 99"
	wantError(t, err, failed+"%")
	if want := []flaggerv1.CanaryCheckResult{metric(RequestSuccessRate, "69.17%", flaggerv1.CheckFailed, failed+"%")}; !reflect.DeepEqual(results, want) {
		t.Errorf("results after a failure:\n got  %+v\n want %+v", results, want)
	}
}
