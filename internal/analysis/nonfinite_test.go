package analysis

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

// A NaN or infinite value from any provider is "no data": it never passes a check, and the
// metric's noDataPolicy applies.
func TestNonFiniteValuesAreNoData(t *testing.T) {
	values := map[string]float64{"NaN": math.NaN(), "+Inf": math.Inf(1), "-Inf": math.Inf(-1)}
	metricsUnderTest := map[string]struct {
		metric flaggerv1.CanaryMetric
		prefix string
	}{
		"success rate min":   {flaggerv1.CanaryMetric{Name: RequestSuccessRate, Threshold: 99}, istioSuccess},
		"success rate range": {flaggerv1.CanaryMetric{Name: RequestSuccessRate, ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(99), Max: f(100)}}, istioSuccess},
		"duration max":       {flaggerv1.CanaryMetric{Name: RequestDuration, ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(500)}}, istioDuration},
	}
	for vname, v := range values {
		for mname, m := range metricsUnderTest {
			t.Run(vname+"/"+mname, func(t *testing.T) {
				b := newFakeBackend()
				b.on(prom, m.prefix, v, nil)
				a, _ := newAnalyzer(t, b)
				err := a.Analyze(context.Background(), newCanary(m.metric))
				if err == nil {
					t.Fatalf("value %v passed the check", v)
				}
				if !strings.Contains(err.Error(), "no values found") {
					t.Errorf("error %q is not the no-data error", err)
				}
			})
			t.Run(vname+"/"+mname+"/noDataPolicy wait holds", func(t *testing.T) {
				b := newFakeBackend()
				b.on(prom, m.prefix, v, nil)
				a, _ := newAnalyzer(t, b)
				metric := m.metric
				metric.NoDataPolicy = flaggerv1.NoDataWait
				err := a.Analyze(context.Background(), newCanary(metric))
				var hold *canary.HoldError
				if !errors.As(err, &hold) {
					t.Fatalf("err = %v, want a hold", err)
				}
			})
		}
	}
}

// A finite latency beyond int64 milliseconds must not wrap to a negative duration that passes.
func TestDurationOfSaturates(t *testing.T) {
	for _, seconds := range []bool{false, true} {
		q := builtinQueries{durationInSeconds: seconds}
		for _, v := range []float64{1e19, 1e300, math.MaxFloat64} {
			if d := q.durationOf(v); d <= 0 || d != time.Duration(math.MaxInt64) {
				t.Errorf("durationOf(%g, seconds=%v) = %v, want the maximum duration", v, seconds, d)
			}
		}
	}
	if d := (builtinQueries{}).durationOf(500.9); d != 500*time.Millisecond {
		t.Errorf("durationOf(500.9) = %v", d)
	}
}
