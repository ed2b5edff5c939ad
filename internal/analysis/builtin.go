package analysis

import (
	"math"
	"regexp"
	"strings"
	"time"
)

// The names of the builtin metric checks.
const (
	RequestSuccessRate = "request-success-rate"
	RequestDuration    = "request-duration"
)

// builtinQueries are the PromQL of a provider's builtin checks. The texts are Flagger's (1.44,
// pkg/metrics/observers) with the whitespace collapsed the way Flagger's Prometheus client
// collapses it before sending (every run of whitespace becomes one space), so that Pennant sends
// byte for byte the query Flagger sends, except where a comment says otherwise.
type builtinQueries struct {
	// name is the observer's name, for messages and tests.
	name        string
	successRate string
	duration    string
	// durationInSeconds: the duration query yields seconds; otherwise milliseconds.
	durationInSeconds bool
	// skipperNames: the model's names are encoded the way Skipper names its routes.
	skipperNames bool
}

var (
	istioQueries = builtinQueries{
		name:        "istio",
		successRate: ` sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}", response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}" }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}" }[{{ interval }}] ) ) by (le) )`,
	}

	linkerdQueries = builtinQueries{
		name:        "linkerd",
		successRate: ` sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", classification!="failure", direction="inbound" }[{{ interval }}] ) ) / sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) by (le) )`,
	}

	appMeshQueries = builtinQueries{
		name:        "appmesh",
		successRate: ` sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) by (le) )`,
	}

	// Contour names its Envoy clusters <namespace>_<service>_<port> after the generated
	// <service>-canary Service; Flagger 1.44 selects on {{ service }} (reference §3; releases
	// before it used {{ target }}).
	contourQueries = builtinQueries{
		name:        "contour",
		successRate: ` sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )`,
	}

	// Deviation from Flagger: Flagger selects `{{ namespace }}-{{ target }}-canaryupstream-...`,
	// but its Gloo router names the upstreams after the service (spec.service.name, defaulting to
	// the target name), so Flagger finds no values when the two differ. Pennant uses {{ service }};
	// the query is Flagger's whenever spec.service.name is unset or equals the target name.
	glooQueries = builtinQueries{
		name:        "gloo",
		successRate: ` sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}-{{ service }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}-{{ service }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}-{{ service }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )`,
	}

	// The duration is the mean upstream response time in ms (Flagger PR #1686 replaced
	// ingress_upstream_latency_seconds, which measures the connection, by response_duration_seconds).
	nginxQueries = builtinQueries{
		name:        "nginx",
		successRate: ` sum( rate( nginx_ingress_controller_requests{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="", status!~"5.*" }[{{ interval }}] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) * 100`,
		duration:    ` sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) / sum( rate( nginx_ingress_controller_response_duration_seconds_count{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) * 1000`,
	}

	// httpQueries read the application's own http_request_duration_seconds histogram (podinfo's),
	// for the kubernetes and Gateway API providers; the duration is in seconds.
	httpQueries = builtinQueries{
		name:              "kubernetes",
		successRate:       ` sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[{{ interval }}] ) ) / sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) * 100`,
		duration:          ` histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) by (le) )`,
		durationInSeconds: true,
	}

	// Skipper's route names: kube[ew]_<namespace>__<ingress>_canary__<host>__<service>_canary[_<n>],
	// with every non-word character of the names replaced by '_'. The duration is the mean in ms.
	skipperQueries = builtinQueries{
		name:         "skipper",
		successRate:  `{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }} sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",code!~"5..",le="+Inf"}[{{ interval }}])) / sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",le="+Inf"}[{{ interval }}])) * 100`,
		duration:     `{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }} sum(rate(skipper_serve_route_duration_seconds_sum{route=~"{{ $route }}"}[{{ interval }}])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"{{ $route }}"}[{{ interval }}])) * 1000`,
		skipperNames: true,
	}

	// Deviation from Flagger: Flagger selects `{{ namespace }}-{{ target }}-canary-...`, but its
	// Traefik router names the TraefikService after the service; Pennant uses {{ service }}.
	traefikQueries = builtinQueries{
		name:        "traefik",
		successRate: ` sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[{{ interval }}] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd" }[{{ interval }}] ) ) by (le) ) * 1000`,
	}

	osmQueries = builtinQueries{
		name:        "osm",
		successRate: ` sum( rate( osm_request_total{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}", response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( osm_request_total{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}" }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}" }[{{ interval }}] ) ) by (le) )`,
	}

	// Deviation from Flagger: Flagger selects `{{ target }}-canary_{{ namespace }}_svc_...`, but
	// Kuma names the service after the generated <service>-canary Service; Pennant uses {{ service }}.
	kumaQueries = builtinQueries{
		name:        "kuma",
		successRate: ` sum( rate( envoy_cluster_upstream_rq{ service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )`,
	}

	apisixQueries = builtinQueries{
		name:        "apisix",
		successRate: ` sum( rate( apisix_http_status{ route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+", code!~"5.." }[{{ interval }}] ) ) / sum( rate( apisix_http_status{ route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+" }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+" }[{{ interval }}] ) ) by (le) )`,
	}

	// Knative: the Envoy cluster of the revision, named <namespace>/<revision>. {{ route }} is the
	// Knative Service's latest created revision, as in Flagger (the analyzer reads it: run.model).
	knativeQueries = builtinQueries{
		name:        "knative",
		successRate: ` sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", }[{{ interval }}] ) ) * 100`,
		duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", }[{{ interval }}] ) ) by (le) )`,
	}
)

// queriesFor selects a provider's builtin queries the way Flagger's observer factory does:
// prefix matches for appmesh*, gloo* and gatewayapi*, exact matches for the others, Istio's for
// anything else (smi:*, an empty provider, ...).
//
// Deviation from Flagger: Flagger appends ":service" to the provider when the target is a
// Service, which makes every exactly-matched provider fall through to the Istio queries
// (linkerd:service, nginx:service, ...). Pennant selects on the provider alone.
func queriesFor(provider string) builtinQueries {
	switch {
	case strings.HasPrefix(provider, "appmesh"):
		return appMeshQueries
	case provider == "linkerd":
		return linkerdQueries
	case provider == "istio":
		return istioQueries
	case provider == "contour":
		return contourQueries
	case strings.HasPrefix(provider, "gloo"):
		return glooQueries
	case provider == "nginx":
		return nginxQueries
	case provider == "kubernetes", strings.HasPrefix(provider, "gatewayapi"):
		return httpQueries
	case provider == "skipper":
		return skipperQueries
	case provider == "traefik":
		return traefikQueries
	case provider == "osm":
		return osmQueries
	case provider == "kuma":
		return kumaQueries
	case provider == "apisix":
		return apisixQueries
	case provider == "knative":
		return knativeQueries
	default:
		return istioQueries
	}
}

var nonWord = regexp.MustCompile(`\W`)

// render renders one of the builtin queries for a model.
func (q builtinQueries) render(metric string, m Model) (string, error) {
	query := q.successRate
	if metric == RequestDuration {
		query = q.duration
	}
	if q.skipperNames {
		m.Name = nonWord.ReplaceAllString(m.Name, "_")
		m.Namespace = nonWord.ReplaceAllString(m.Namespace, "_")
		m.Target = nonWord.ReplaceAllString(m.Target, "_")
		m.Service = nonWord.ReplaceAllString(m.Service, "_")
		m.Ingress = nonWord.ReplaceAllString(m.Ingress, "_")
	}
	return Render(metric, query, m)
}

// duration converts the value of a duration query to a duration truncated to the millisecond,
// as Flagger does.
func (q builtinQueries) durationOf(value float64) time.Duration {
	if q.durationInSeconds {
		value *= 1000
	}
	// int64 of a value beyond its range wraps (to a negative duration that passes any max
	// threshold): saturate instead, so a huge latency fails the check.
	if maxMillis := float64(math.MaxInt64 / int64(time.Millisecond)); value >= maxMillis {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(int64(value)) * time.Millisecond
}

// DurationInSeconds tells whether a provider's builtin request-duration query yields seconds
// (else milliseconds).
func DurationInSeconds(provider string) bool { return queriesFor(provider).durationInSeconds }
