package main

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/bargauge"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
)

// The overview of every canary from the controller's own metrics (internal/telemetry): Flagger's
// flagger_* series, which Pennant exports under Flagger's names, and Pennant's notification counters.

const (
	overviewUID   = "pennant-overview"
	overviewTitle = "Pennant Overview"
)

// canaries selects the series of the chosen canaries; name is the target's name, as in Flagger.
const canaries = `namespace=~"$namespace", name=~"$name"`

func overviewDashboard() *dashboard.DashboardBuilder {
	return newDashboard(overviewUID, overviewTitle,
		"Every canary Pennant runs: phase, traffic weight, analysis metrics, analysis step durations, "+
			"releases, notification failures and the controller's own pace, from its flagger_*, pennant_* and workqueue_* metrics.").
		Variables([]cog.Builder[dashboard.VariableModel]{
			datasourceVar(),
			multiVar("namespace", "Namespace", `label_values(flagger_canary_status, namespace)`),
			multiVar("name", "Canary", `label_values(flagger_canary_status{namespace=~"$namespace"}, name)`),
		}).
		WithPanel(single("Canaries", "Canaries in the chosen namespaces (flagger_canary_total).", "none", 6, 4,
			target("A", `sum(flagger_canary_total{namespace=~"$namespace"})`, "canaries"))).
		WithPanel(single("Progressing", "Canaries whose analysis is running.", "none", 6, 4,
			target("A", fmt.Sprintf(`sum(flagger_canary_status{%s} == bool 0)`, canaries), "progressing")).
			Thresholds(thresholds("green", 1.0, "blue"))).
		WithPanel(single("Failed", "Canaries whose last release was rolled back.", "none", 6, 4,
			target("A", fmt.Sprintf(`sum(flagger_canary_status{%s} == bool 2)`, canaries), "failed")).
			Thresholds(thresholds("green", 1.0, "red"))).
		WithPanel(single("Controller", "Version and mesh provider of the running controllers (flagger_info).", "none", 6, 4,
			target("A", `count by (version, mesh_provider) (flagger_info)`, "{{version}} · {{mesh_provider}}")).
			TextMode(common.BigValueTextModeName).GraphMode(common.BigValueGraphModeNone)).
		WithPanel(statetimeline.NewPanelBuilder().
			Title("Phase").
			Description(statusDescription).
			Datasource(datasource()).
			Span(24).
			Height(8).
			Mappings(statusMappings()).
			Thresholds(thresholds("green")).
			WithTarget(target("A", fmt.Sprintf(`flagger_canary_status{%s}`, canaries), "{{namespace}}/{{name}}"))).
		WithPanel(series("Canary weight", "Share of the traffic routed to each canary (flagger_canary_weight of the target).",
			"percent", 12, 8,
			target("A", `flagger_canary_weight{namespace=~"$namespace", workload=~"$name"}`, "{{namespace}}/{{workload}}")).
			Min(0).Max(100)).
		WithPanel(series("Analysis metrics", "The last value of each metric check (flagger_canary_metric_analysis; durations in seconds). "+
			"A check that fails its threshold counts towards the canary's failed checks.", "short", 12, 8,
			target("A", fmt.Sprintf(`flagger_canary_metric_analysis{%s}`, canaries), "{{namespace}}/{{name}} {{metric}}"))).
		WithPanel(series("Analysis step duration", "How long the analysis steps take (flagger_canary_duration_seconds): "+
			"the checks and the traffic step after them.", "s", 12, 8,
			target("A", fmt.Sprintf(`histogram_quantile(0.5, sum by (le, namespace, name) (rate(flagger_canary_duration_seconds_bucket{%s}[$__rate_interval])))`, canaries),
				"{{namespace}}/{{name}} P50"),
			target("B", fmt.Sprintf(`histogram_quantile(0.99, sum by (le, namespace, name) (rate(flagger_canary_duration_seconds_bucket{%s}[$__rate_interval])))`, canaries),
				"{{namespace}}/{{name}} P99")).Min(0)).
		WithPanel(bargauge.NewPanelBuilder().
			Title("Releases in the time range").
			Description("Releases that were promoted (flagger_canary_successes_total) and rolled back (flagger_canary_failures_total) in the dashboard's time range.").
			Datasource(datasource()).
			Span(12).
			Height(8).
			Unit("none").
			Min(0).
			Orientation(common.VizOrientationHorizontal).
			DisplayMode(common.BarGaugeDisplayModeBasic).
			ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
			Thresholds(thresholds("green")).
			WithTarget(target("A", fmt.Sprintf(`sum by (namespace, name) (increase(flagger_canary_successes_total{%s}[$__range]))`, canaries),
				"{{namespace}}/{{name}} promoted").Instant()).
			WithTarget(target("B", fmt.Sprintf(`sum by (namespace, name) (increase(flagger_canary_failures_total{%s}[$__range]))`, canaries),
				"{{namespace}}/{{name}} rolled back").Instant())).
		WithPanel(series("Notifications not delivered", "Alerts and event webhooks that failed (pennant_notifications_failed_total, by kind) "+
			"or were dropped before delivery (pennant_notifications_dropped_total, by reason). No data means none since the controller started.",
			"ops", 24, 6,
			target("A", `sum by (kind) (rate(pennant_notifications_failed_total[$__rate_interval]))`, "failed {{kind}}"),
			target("B", `sum by (reason) (rate(pennant_notifications_dropped_total[$__rate_interval]))`, "dropped {{reason}}")).
			Min(0).NoValue("none")).
		// The controller itself: is it keeping up with its canaries?
		WithPanel(single("Releases in flight", "Releases under way in every controller (pennant_releases_in_flight): "+
			"canaries Progressing, WaitingPromotion, Promoting or Finalising.", "none", 3, 6,
			target("A", `sum(pennant_releases_in_flight)`, "in flight"))).
		WithPanel(single("Releases queued", "Releases waiting for a free slot (pennant_releases_queued, -max-concurrent-releases).", "none", 3, 6,
			target("A", `sum(pennant_releases_queued)`, "queued"))).
		WithPanel(series("Analysis step lateness", "How long after it was due each analysis step began "+
			"(pennant_analysis_step_lateness_seconds): the controller keeps up while the P99 stays under a second.", "s", 9, 6,
			target("A", `histogram_quantile(0.5, sum by (le) (rate(pennant_analysis_step_lateness_seconds_bucket[$__rate_interval])))`, "P50"),
			target("B", `histogram_quantile(0.99, sum by (le) (rate(pennant_analysis_step_lateness_seconds_bucket[$__rate_interval])))`, "P99")).
			Min(0)).
		WithPanel(series("Work queue", "Canaries waiting for a reconcile worker (workqueue_depth) and how long they waited "+
			"(workqueue_queue_duration_seconds, P99), from controller-runtime.", "short", 9, 6,
			target("A", `sum(workqueue_depth{name="canary"})`, "depth"),
			target("B", `histogram_quantile(0.99, sum by (le) (rate(workqueue_queue_duration_seconds_bucket{name="canary"}[$__rate_interval])))`, "wait P99 (s)")).
			Min(0))
}
