package main

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// mesh describes where a mesh's telemetry keeps the requests of the primary and of the canary. The
// Istio, Envoy and App Mesh dashboards are one layout (meshDashboard) filled from a mesh: the
// uid, title and variables are Flagger's (charts/grafana/dashboards), so the links Flagger's docs
// and users' runbooks hold (/d/flagger-istio/istio-canary?var-namespace=prod&var-primary=...)
// open the same view.
type mesh struct {
	uid, title, description string
	variables               []cog.Builder[dashboard.VariableModel]

	// requests is the request counter, codeLabel its response code label and durationBucket the
	// request duration histogram (in milliseconds) with the same labels.
	requests, codeLabel, durationBucket string
	// primary and canary are the label matchers that select each side's requests.
	primary, canary string
	// primaryWorkload and canaryWorkload select flagger_canary_weight's workload label (the primary
	// is <target>-primary, the canary <target>); canaryName selects the name label of the other
	// flagger_* series (the target's name).
	primaryWorkload, canaryWorkload, canaryName string
}

// Flagger's dashboards for the meshes it ships one for.
var meshes = []mesh{istioMesh(), envoyMesh(), appMeshMesh()}

// canaryVars are the namespace, primary and canary drop-downs of the Istio and App Mesh dashboards.
// The lists come from Pennant's own metrics, so they hold the canaries' workloads and nothing else
// (Flagger's listed every Service of the namespace, whose names are not the workloads' names).
func canaryVars() []cog.Builder[dashboard.VariableModel] {
	return []cog.Builder[dashboard.VariableModel]{
		datasourceVar(),
		queryVar("namespace", "Namespace", `label_values(flagger_canary_status, namespace)`),
		queryVar("primary", "Primary", `label_values(flagger_canary_weight{namespace="$namespace", workload=~".+-primary"}, workload)`),
		queryVar("canary", "Canary", `label_values(flagger_canary_status{namespace="$namespace"}, name)`),
	}
}

func istioMesh() mesh {
	side := func(workload string) string {
		return fmt.Sprintf(`reporter="destination", destination_workload_namespace=~"$namespace", destination_workload=~"%s"`, workload)
	}
	return mesh{
		uid:   "flagger-istio",
		title: "Istio Canary",
		description: "Primary and canary of a Pennant (or Flagger) canary on Istio, side by side: traffic weight, " +
			"request rate, success rate and latency from the sidecars' telemetry (istio_requests_total, " +
			"istio_request_duration_milliseconds).",
		variables:       canaryVars(),
		requests:        "istio_requests_total",
		codeLabel:       "response_code",
		durationBucket:  "istio_request_duration_milliseconds_bucket",
		primary:         side("$primary"),
		canary:          side("$canary"),
		primaryWorkload: "$primary",
		canaryWorkload:  "$canary",
		canaryName:      "$canary",
	}
}

// envoyMesh covers the ingresses and gateways built on Envoy whose cluster names Pennant's builtin
// checks know: Contour (<namespace>_<service>-canary_<port>) and Gloo
// (<namespace>-<service>-canaryupstream-<port>_<namespace>), and the bare <service>-canary that
// Flagger's dashboard matched. The namespace is part of the cluster name, not a label: Envoy runs
// in the ingress' namespace.
func envoyMesh() mesh {
	cluster := func(side string) string {
		return fmt.Sprintf(`envoy_cluster_name=~"${namespace}_${target}-%[1]s_[0-9a-zA-Z-]+|${namespace}-${target}-%[1]supstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+|${target}-%[1]s"`, side)
	}
	return mesh{
		uid:   "flagger-envoy",
		title: "Envoy Canary",
		description: "Primary and canary of a Pennant (or Flagger) canary behind Envoy (Contour, Gloo), side by side: " +
			"traffic weight, request rate, success rate and latency from Envoy's cluster statistics " +
			"(envoy_cluster_upstream_rq, envoy_cluster_upstream_rq_time).",
		variables: []cog.Builder[dashboard.VariableModel]{
			datasourceVar(),
			queryVar("namespace", "Namespace", `label_values(flagger_canary_status, namespace)`),
			queryVar("target", "Target", `label_values(flagger_canary_status{namespace="$namespace"}, name)`),
		},
		requests:        "envoy_cluster_upstream_rq",
		codeLabel:       "envoy_response_code",
		durationBucket:  "envoy_cluster_upstream_rq_time_bucket",
		primary:         cluster("primary"),
		canary:          cluster("canary"),
		primaryWorkload: "${target}-primary",
		canaryWorkload:  "$target",
		canaryName:      "$target",
	}
}

// appMeshMesh selects the Envoy sidecars' statistics by pod name, as Pennant's builtin App Mesh
// checks do: <deployment>-<replicaset hash>-<pod hash>, which tells backend's pods from
// backend-primary's whatever labels the pods carry.
func appMeshMesh() mesh {
	side := func(workload string) string {
		return fmt.Sprintf(`kubernetes_namespace=~"$namespace", kubernetes_pod_name=~"%s-[0-9a-zA-Z]+-[0-9a-zA-Z]+"`, workload)
	}
	return mesh{
		uid:   "flagger-appmesh",
		title: "AppMesh Canary",
		description: "Primary and canary of a Pennant (or Flagger) canary on AWS App Mesh, side by side: traffic weight, " +
			"request rate, success rate and latency from the Envoy sidecars' statistics (envoy_cluster_upstream_rq, " +
			"envoy_cluster_upstream_rq_time).",
		variables:       canaryVars(),
		requests:        "envoy_cluster_upstream_rq",
		codeLabel:       "envoy_response_code",
		durationBucket:  "envoy_cluster_upstream_rq_time_bucket",
		primary:         side("$primary"),
		canary:          side("$canary"),
		primaryWorkload: "$primary",
		canaryWorkload:  "$canary",
		canaryName:      "$canary",
	}
}

// requestRate is the requests per second of one side.
func (m mesh) requestRate(sel string) string {
	return fmt.Sprintf(`sum(rate(%s{%s}[$__rate_interval]))`, m.requests, sel)
}

// successRate is the share of one side's requests not answered with a 5xx, as Flagger's builtin
// request-success-rate check counts them.
func (m mesh) successRate(sel string) string {
	return fmt.Sprintf(`sum(rate(%[1]s{%[2]s, %[3]s!~"5.*"}[$__rate_interval])) / sum(rate(%[1]s{%[2]s}[$__rate_interval]))`,
		m.requests, sel, m.codeLabel)
}

// latency is a percentile of one side's request duration, in milliseconds.
func (m mesh) latency(quantile, sel string) string {
	return fmt.Sprintf(`histogram_quantile(%s, sum by (le) (rate(%s{%s}[$__rate_interval])))`, quantile, m.durationBucket, sel)
}

func weight(workload string) string {
	return fmt.Sprintf(`flagger_canary_weight{namespace=~"$namespace", workload=~"%s"}`, workload)
}

// statusMappings name flagger_canary_status' values, Flagger's mapping of the phases.
func statusMappings() []dashboard.ValueMapping {
	text := func(t, color string, index int32) dashboard.ValueMappingResult {
		return dashboard.ValueMappingResult{Text: ptr(t), Color: ptr(color), Index: ptr(index)}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{
		Type: dashboard.MappingTypeValueToText,
		Options: map[string]dashboard.ValueMappingResult{
			"0": text("Progressing", "blue", 0),
			"1": text("Idle", "green", 1),
			"2": text("Failed", "red", 2),
		},
	}}}
}

// statusDescription explains the values of flagger_canary_status.
const statusDescription = "flagger_canary_status: Progressing (0) while the analysis runs, Failed (2) after a rollback, " +
	"Idle (1) in every other phase (Initialized, Waiting, WaitingPromotion, Promoting, Finalising, Succeeded)."

func successThresholds() *dashboard.ThresholdsConfigBuilder {
	return thresholds("red", 0.95, "orange", 0.99, "green")
}

// meshDashboard lays out a mesh's dashboard: the two sides' request rate and success rate as
// Flagger's dashboards show them at the top, then both compared over time with the traffic weight,
// the latency percentiles of each side, and the canary's phase and analysis metrics.
func meshDashboard(m mesh) *dashboard.DashboardBuilder {
	b := newDashboard(m.uid, m.title, m.description).Variables(m.variables)
	quantiles := func(sel string) []*prometheus.DataqueryBuilder {
		return []*prometheus.DataqueryBuilder{
			target("A", m.latency("0.5", sel), "P50"),
			target("B", m.latency("0.9", sel), "P90"),
			target("C", m.latency("0.99", sel), "P99"),
		}
	}
	return b.
		WithPanel(single("Primary: request rate", "Requests per second the primary receives.", "reqps", 6, 4,
			target("A", m.requestRate(m.primary), "primary"))).
		WithPanel(single("Primary: success rate", "Share of the primary's requests not answered with a 5xx.", "percentunit", 6, 4,
			target("A", m.successRate(m.primary), "primary")).Thresholds(successThresholds())).
		WithPanel(single("Canary: request rate", "Requests per second the canary receives.", "reqps", 6, 4,
			target("A", m.requestRate(m.canary), "canary"))).
		WithPanel(single("Canary: success rate", "Share of the canary's requests not answered with a 5xx.", "percentunit", 6, 4,
			target("A", m.successRate(m.canary), "canary")).Thresholds(successThresholds())).
		WithPanel(series("Traffic weight", "The weights Pennant routes to the primary and the canary (flagger_canary_weight).",
			"percent", 8, 8,
			target("A", weight(m.primaryWorkload), "primary"),
			target("B", weight(m.canaryWorkload), "canary")).Min(0).Max(100)).
		WithPanel(series("Request rate", "Requests per second to the primary and to the canary.", "reqps", 8, 8,
			target("A", m.requestRate(m.primary), "primary"),
			target("B", m.requestRate(m.canary), "canary")).Min(0)).
		WithPanel(series("Success rate", "Share of the requests not answered with a 5xx, primary and canary.", "percentunit", 8, 8,
			target("A", m.successRate(m.primary), "primary"),
			target("B", m.successRate(m.canary), "canary")).Max(1)).
		WithPanel(series("Primary: request duration", "Percentiles of the primary's request duration.", "ms", 12, 8,
			quantiles(m.primary)...).Min(0)).
		WithPanel(series("Canary: request duration", "Percentiles of the canary's request duration.", "ms", 12, 8,
			quantiles(m.canary)...).Min(0)).
		WithPanel(single("Canary status", statusDescription, "none", 6, 6,
			target("A", fmt.Sprintf(`flagger_canary_status{namespace=~"$namespace", name=~"%s"}`, m.canaryName), "{{name}}")).
			GraphMode(common.BigValueGraphModeNone).Mappings(statusMappings()).Thresholds(thresholds("green"))).
		WithPanel(series("Analysis metrics", "The last value of each metric check of the canary's analysis (flagger_canary_metric_analysis; durations in seconds).",
			"short", 18, 6,
			target("A", fmt.Sprintf(`flagger_canary_metric_analysis{namespace=~"$namespace", name=~"%s"}`, m.canaryName), "{{metric}}")))
}
