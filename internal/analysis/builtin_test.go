package analysis

import (
	"testing"
	"time"
)

// The expected queries are the ones Flagger's observer tests assert (pkg/metrics/observers/*_test.go,
// Flagger 1.44), i.e. what Flagger sends to Prometheus after collapsing whitespace. Where Pennant
// deliberately differs, the case says so.
func TestBuiltinQueriesMatchFlagger(t *testing.T) {
	podinfo := Model{Name: "podinfo", Namespace: "default", Target: "podinfo", Service: "podinfo", Interval: "1m"}
	cases := []struct {
		provider    string
		model       Model
		successRate string
		duration    string
	}{
		{
			provider:    "istio",
			model:       podinfo,
			successRate: ` sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="default", destination_workload=~"podinfo" }[1m] ) ) by (le) )`,
		},
		{
			provider:    "linkerd",
			model:       podinfo,
			successRate: ` sum( rate( response_total{ namespace="default", deployment=~"podinfo", classification!="failure", direction="inbound" }[1m] ) ) / sum( rate( response_total{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="default", deployment=~"podinfo", direction="inbound" }[1m] ) ) by (le) )`,
		},
		{
			provider:    "appmesh",
			model:       podinfo,
			successRate: ` sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )`,
		},
		{
			provider:    "contour",
			model:       podinfo,
			successRate: ` sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default_podinfo-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )`,
		},
		{
			provider:    "gloo",
			model:       podinfo,
			successRate: ` sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )`,
		},
		{
			// Flagger's nginx observer test after PR #1686 (response_duration_seconds replaced
			// ingress_upstream_latency_seconds in the duration query).
			provider:    "nginx",
			model:       Model{Name: "podinfo", Namespace: "nginx", Target: "podinfo", Ingress: "podinfo", Interval: "1m"},
			successRate: ` sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="", status!~"5.*" }[1m] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 100`,
			duration:    ` sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) / sum( rate( nginx_ingress_controller_response_duration_seconds_count{ namespace="nginx", ingress="podinfo", canary!="" }[1m] ) ) * 1000`,
		},
		{
			provider:    "kubernetes",
			model:       podinfo,
			successRate: ` sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[1m] ) ) / sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace="default", kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[1m] ) ) by (le) )`,
		},
		{
			provider:    "skipper",
			model:       Model{Namespace: "skipper", Interval: "1m", Service: "backend", Ingress: "skipper-ingress"},
			successRate: ` sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",code!~"5..",le="+Inf"}[1m])) / sum(rate(skipper_response_duration_seconds_bucket{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?",le="+Inf"}[1m])) * 100`,
			duration:    ` sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?"}[1m])) * 1000`,
		},
		{
			provider:    "traefik",
			model:       podinfo,
			successRate: ` sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[1m] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd" }[1m] ) ) by (le) ) * 1000`,
		},
		{
			provider:    "osm",
			model:       podinfo,
			successRate: ` sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( osm_request_total{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="default", destination_kind="Deployment", destination_name="podinfo" }[1m] ) ) by (le) )`,
		},
		{
			provider:    "kuma",
			model:       podinfo,
			successRate: ` sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"podinfo-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )`,
		},
		{
			provider:    "apisix",
			model:       Model{Name: "podinfo", Namespace: "default", Target: "podinfo", Service: "podinfo", Route: "podinfo", Interval: "1m"},
			successRate: ` sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+", code!~"5.." }[1m] ) ) / sum( rate( apisix_http_status{ route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"default_podinfo-podinfo-canary_.+" }[1m] ) ) by (le) )`,
		},
		{
			provider:    "knative",
			model:       Model{Name: "podinfo", Namespace: "default", Target: "podinfo", Service: "podinfo", Route: "podinfo-00001", Interval: "1m"},
			successRate: ` sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default/podinfo-00001", }[1m] ) ) by (le) )`,
		},

		// Deviations: the service name where Flagger uses the target name. With
		// spec.service.name podinfo-svc, Flagger would select podinfo (the target) and find
		// nothing, since its routers name the generated objects after the service.
		{
			provider:    "gloo",
			model:       Model{Name: "podinfo", Namespace: "default", Target: "podinfo", Service: "podinfo-svc", Interval: "1m"},
			successRate: ` sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-svc-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default-podinfo-svc-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default-podinfo-svc-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )`,
		},
		{
			provider:    "kuma",
			model:       Model{Name: "podinfo", Namespace: "default", Target: "podinfo", Service: "podinfo-svc", Interval: "1m"},
			successRate: ` sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-svc-canary_default_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"podinfo-svc-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"podinfo-svc-canary_default_svc_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )`,
		},
		{
			provider:    "traefik",
			model:       Model{Name: "podinfo", Namespace: "default", Target: "podinfo", Service: "podinfo-svc", Interval: "1m"},
			successRate: ` sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-svc-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[1m] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-svc-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"default-podinfo-svc-canary-[0-9a-zA-Z-]+@kubernetescrd" }[1m] ) ) by (le) ) * 1000`,
		},
		{
			// Contour: the service in Flagger 1.44 too; the target would be podinfo.
			provider:    "contour",
			model:       Model{Name: "podinfo", Namespace: "default", Target: "podinfo", Service: "podinfo-svc", Interval: "1m"},
			successRate: ` sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-svc-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[1m] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"default_podinfo-svc-canary_[0-9a-zA-Z-]+", }[1m] ) ) * 100`,
			duration:    ` histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"default_podinfo-svc-canary_[0-9a-zA-Z-]+", }[1m] ) ) by (le) )`,
		},
	}
	for _, c := range cases {
		t.Run(c.provider+"/"+c.model.Service, func(t *testing.T) {
			q := queriesFor(c.provider)
			if q.name != c.provider {
				t.Fatalf("provider %s selected the %s queries", c.provider, q.name)
			}
			for metric, want := range map[string]string{RequestSuccessRate: c.successRate, RequestDuration: c.duration} {
				got, err := q.render(metric, c.model)
				if err != nil {
					t.Fatalf("%s: %v", metric, err)
				}
				if got != want {
					t.Errorf("%s:\n got %s\nwant %s", metric, got, want)
				}
			}
		})
	}
}

func TestSkipperEncodesNonWordCharacters(t *testing.T) {
	m := Model{Namespace: "my-ns", Interval: "30s", Service: "my.svc", Ingress: "my-ingress"}
	got, err := skipperQueries.render(RequestDuration, m)
	if err != nil {
		t.Fatal(err)
	}
	want := ` sum(rate(skipper_serve_route_duration_seconds_sum{route=~"kube(ew)?_my_ns__my_ingress_canary__.*__my_svc_canary(_[0-9]+)?"}[30s])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"kube(ew)?_my_ns__my_ingress_canary__.*__my_svc_canary(_[0-9]+)?"}[30s])) * 1000`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestQueriesForSelectsLikeFlagger(t *testing.T) {
	cases := map[string]string{
		"":                   "istio",
		"istio":              "istio",
		"linkerd":            "linkerd",
		"appmesh":            "appmesh",
		"appmesh:v1beta2":    "appmesh",
		"contour":            "contour",
		"gloo":               "gloo",
		"gloo:v1":            "gloo",
		"nginx":              "nginx",
		"kubernetes":         "kubernetes",
		"gatewayapi:v1":      "kubernetes",
		"gatewayapi:v1beta1": "kubernetes",
		"skipper":            "skipper",
		"traefik":            "traefik",
		"osm":                "osm",
		"kuma":               "kuma",
		"apisix":             "apisix",
		"knative":            "knative",
		"smi:v1alpha3":       "istio",
		"nginx:service":      "istio", // not a provider Pennant ever builds: Flagger's suffix is gone
	}
	for provider, want := range cases {
		if got := queriesFor(provider).name; got != want {
			t.Errorf("queriesFor(%q) = %s, want %s", provider, got, want)
		}
	}
}

func TestDurationTruncatedToMilliseconds(t *testing.T) {
	if got := istioQueries.durationOf(1234.9); got != 1234*time.Millisecond {
		t.Errorf("istio 1234.9 = %v", got)
	}
	if got := httpQueries.durationOf(0.1239); got != 123*time.Millisecond {
		t.Errorf("http 0.1239s = %v", got)
	}
	if got := traefikQueries.durationOf(100); got != 100*time.Millisecond {
		t.Errorf("traefik 100 = %v", got)
	}
}
