//go:build e2e

package traffic

import (
	"math"
	"testing"

	"github.com/pennant/pennant/test/traffic/harness"
)

// BenchmarkReleaseTraffic (make bench) measures what users see of a release through Traefik under
// 250 requests per second: the largest gap between a step's weight and the share the canary served
// (target ≤ 3 points), the requests failed during a good release (target 0), the time from a bad
// release's first 500 to the traffic back on the primary in analysis intervals (target ≤ threshold +
// 1 = 3) and the requests the canary served after the rollback's route was written (target 0 once
// Traefik has applied it, 200ms).
func BenchmarkReleaseTraffic(b *testing.B) {
	for range b.N {
		app, err := stack.DeployApp(b.Context(), harness.AppSpec{
			Namespace: "bench", Manifests: []string{"examples/demo/traefik/ingressroute.yaml", "examples/demo/traefik/canary.yaml"},
			Replace: map[string]string{"app.example.com": "bench.example.com"},
			Router:  harness.Traefik, Host: "bench.example.com", Rate: 250, Interval: interval,
		})
		if err != nil {
			b.Fatal(err)
		}
		good, err := app.Run(b.Context(), harness.ReleaseOptions{Title: "podinfo 6.0.1", Edit: setImage("6.0.1")})
		if err != nil {
			b.Fatal(err)
		}
		bad, err := app.Run(b.Context(), harness.ReleaseOptions{Title: "podinfo 6.0.2 with 30% errors", Edit: badRelease("6.0.2")})
		app.Stop()
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("\n%s\n%s", good, bad)
		gap := 0.0
		for _, s := range good.Steps {
			if s.Weight > 0 && s.Requests > 0 {
				gap = math.Max(gap, math.Abs(s.Share()-float64(s.Weight)))
			}
		}
		b.ReportMetric(gap, "max-share-gap-points")
		b.ReportMetric(float64(good.Failed), "failed-requests-good-release")
		if bad.Rollback != nil {
			b.ReportMetric(bad.Rollback.Intervals, "rollback-intervals")
			b.ReportMetric(float64(bad.Rollback.CanaryAfter), "canary-requests-after-rollback-write")
			b.ReportMetric(float64(bad.Rollback.LastCanaryAfter.Milliseconds()), "canary-last-after-rollback-ms")
		}
	}
}
