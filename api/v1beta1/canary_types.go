package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// CanaryKind is the kind of the Canary resource.
	CanaryKind = "Canary"

	// ProgressDeadlineSeconds is the default time a workload has to become ready.
	ProgressDeadlineSeconds = 600
	// AnalysisInterval is the default analysis tick.
	AnalysisInterval = "60s"
	// MetricInterval is the default metric query window.
	MetricInterval = "1m"
	// DefaultThreshold is the default number of failed checks before a rollback.
	DefaultThreshold = 1
	// DefaultReadyThreshold is the default share (percent) of replicas that must be available.
	DefaultReadyThreshold = 100
	// DefaultSessionAffinityMaxAge is the default Max-Age of session affinity cookies.
	DefaultSessionAffinityMaxAge = 86400

	// Finalizer is set on canaries with revertOnDeletion.
	Finalizer = "finalizer.flagger.app"
	// ScaleBackFinalizer is Pennant's own finalizer, set on every canary whose target Pennant scales
	// down (Deployment and DaemonSet targets), with or without revertOnDeletion. When such a canary
	// is deleted, the target gets the primary's replicas back and the finalizer is removed only once
	// the target has available replicas (or its progress deadline, counted from the deletion, has
	// passed, or the target is gone), so the garbage collector never deletes the -primary while
	// nothing else serves (Flagger #853).
	ScaleBackFinalizer = "pennant.dev/scale-back-target"
)

// Canary is the Schema for the canaries API: a progressive delivery of a
// workload.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Weight",type=string,JSONPath=`.status.canaryWeight`
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`,priority=1
// +kubebuilder:printcolumn:name="FailedChecks",type=string,JSONPath=`.status.failedChecks`,priority=1
// +kubebuilder:printcolumn:name="Interval",type=string,JSONPath=`.spec.analysis.interval`,priority=1
// +kubebuilder:printcolumn:name="Mirror",type=boolean,JSONPath=`.spec.analysis.mirror`,priority=1
// +kubebuilder:printcolumn:name="StepWeight",type=string,JSONPath=`.spec.analysis.stepWeight`,priority=1
// +kubebuilder:printcolumn:name="StepWeights",type=string,JSONPath=`.spec.analysis.stepWeights`,priority=1
// +kubebuilder:printcolumn:name="MaxWeight",type=string,JSONPath=`.spec.analysis.maxWeight`,priority=1
// +kubebuilder:printcolumn:name="LastTransitionTime",type=string,JSONPath=`.status.lastTransitionTime`
type Canary struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired release of the target workload.
	Spec CanarySpec `json:"spec"`
	// Status is the observed state of the release.
	Status CanaryStatus `json:"status,omitempty"`
}

// CanaryList is a list of canaries.
// +kubebuilder:object:root=true
type CanaryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Canary `json:"items"`
}

// An analysis that never adds weight (no positive stepWeight, no stepWeights, no positive iterations)
// would run forever: admission refuses it when spec.provider splits traffic. The kubernetes provider
// runs it as blue/green (10 iterations) and skipAnalysis never runs it; without spec.provider the
// -mesh-provider flag, which the schema cannot see, decides. canaryAnalysis is checked only without
// analysis, as it is only read then.

// CanarySpec is the desired rollout of a target workload.
// +kubebuilder:validation:XValidation:rule="has(self.analysis) || has(self.canaryAnalysis)",message="spec.analysis is required"
// +kubebuilder:validation:XValidation:rule="(has(self.skipAnalysis) && self.skipAnalysis) || !has(self.provider) || self.provider == 'kubernetes' || !has(self.analysis) || (has(self.analysis.iterations) && self.analysis.iterations > 0) || (has(self.analysis.stepWeight) && self.analysis.stepWeight > 0) || (has(self.analysis.stepWeights) && size(self.analysis.stepWeights) > 0)",message="the analysis never advances: it needs a positive stepWeight, stepWeights or iterations (only the kubernetes provider runs without, as blue/green)",fieldPath=".analysis"
// +kubebuilder:validation:XValidation:rule="(has(self.skipAnalysis) && self.skipAnalysis) || !has(self.provider) || self.provider == 'kubernetes' || has(self.analysis) || !has(self.canaryAnalysis) || (has(self.canaryAnalysis.iterations) && self.canaryAnalysis.iterations > 0) || (has(self.canaryAnalysis.stepWeight) && self.canaryAnalysis.stepWeight > 0) || (has(self.canaryAnalysis.stepWeights) && size(self.canaryAnalysis.stepWeights) > 0)",message="the analysis never advances: it needs a positive stepWeight, stepWeights or iterations (only the kubernetes provider runs without, as blue/green)",fieldPath=".canaryAnalysis"
type CanarySpec struct {
	// Provider is the service mesh or ingress controller that shifts the traffic;
	// it overrides the -mesh-provider flag (default istio). kubernetes only
	// switches the apex Service (blue/green).
	// +kubebuilder:validation:Enum=apisix;appmesh;"appmesh:v1beta2";contour;"gatewayapi:v1";"gatewayapi:v1beta1";gloo;istio;knative;kubernetes;kuma;linkerd;nginx;osm;skipper;"smi:v1alpha1";"smi:v1alpha2";"smi:v1alpha3";traefik
	// +optional
	Provider string `json:"provider,omitempty"`

	// MetricsServer is the Prometheus URL of the builtin checks and inline
	// queries, and of prometheus MetricTemplates without an address (except
	// another namespace's with credentials); it overrides the -metrics-server
	// flag.
	// +optional
	MetricsServer string `json:"metricsServer,omitempty"`

	// TargetRef is the workload to release, in the canary's namespace: a
	// Deployment or DaemonSet, a Service (copied to <name>-primary and
	// <name>-canary) or a Knative Service.
	TargetRef LocalObjectReference `json:"targetRef"`

	// AutoscalerRef is the target's HorizontalPodAutoscaler or KEDA ScaledObject:
	// Pennant clones it as <name>-primary, scaling the primary.
	// +optional
	AutoscalerRef *AutoscalerReference `json:"autoscalerRef,omitempty"`

	// IngressRef is the Ingress that the nginx and skipper providers copy to
	// <name>-canary (required for them).
	// +optional
	IngressRef *IngressReference `json:"ingressRef,omitempty"`

	// RouteRef is the ApisixRoute that the apisix provider copies to
	// <route>-<service>-canary (required for it).
	// +optional
	RouteRef *RouteReference `json:"routeRef,omitempty"`

	// UpstreamRef is a Gloo Upstream whose settings are copied into the generated
	// primary and canary upstreams (gloo provider).
	// +optional
	UpstreamRef *CrossNamespaceObjectReference `json:"upstreamRef,omitempty"`

	// Service describes the apex, primary and canary Services that Pennant
	// generates and the routing options of the provider's objects.
	// +optional
	Service CanaryService `json:"service"`

	// Analysis is the release strategy (weights, iterations or A/B matches), its
	// interval and the checks, webhooks and alerts of each step.
	// +optional
	Analysis *CanaryAnalysis `json:"analysis,omitempty"`

	// CanaryAnalysis is the deprecated name of analysis, read only when analysis
	// is not set.
	// +optional
	CanaryAnalysis *CanaryAnalysis `json:"canaryAnalysis,omitempty"`

	// ProgressDeadlineSeconds is how long, in seconds, the primary or canary may
	// take to become ready before the release fails or the canary is marked
	// Stalled (default 600).
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// SkipAnalysis promotes every new revision at once, without checks or traffic
	// shifting.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`

	// RevertOnDeletion restores the target's replicas and the original routing
	// (apex Service, Istio VirtualService) when the Canary is deleted, holding the
	// deletion with finalizer.flagger.app.
	// +optional
	RevertOnDeletion bool `json:"revertOnDeletion,omitempty"`

	// Suspend pauses the canary: Pennant changes nothing (no analysis step, no new
	// release) until it is set back to false.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// LocalObjectReference points at the target workload in the canary's
// namespace.
type LocalObjectReference struct {
	// APIVersion of the target: apps/v1 for a Deployment or DaemonSet, v1 for a
	// Service, serving.knative.dev/v1 for a Knative Service.
	APIVersion string `json:"apiVersion"`
	// Kind of the target: Deployment, DaemonSet or Service (a Knative Service when
	// apiVersion is serving.knative.dev/*).
	// +kubebuilder:validation:Enum=DaemonSet;Deployment;Service
	Kind string `json:"kind"`
	// Name of the target.
	Name string `json:"name"`
}

// AutoscalerReference points at the target's autoscaler.
type AutoscalerReference struct {
	// APIVersion of the autoscaler, e.g. autoscaling/v2 or keda.sh/v1alpha1.
	APIVersion string `json:"apiVersion"`
	// Kind of the autoscaler: HorizontalPodAutoscaler or (KEDA) ScaledObject.
	// +kubebuilder:validation:Enum=HorizontalPodAutoscaler;ScaledObject
	Kind string `json:"kind"`
	// Name of the autoscaler, in the canary's namespace.
	Name string `json:"name"`
	// PrimaryScalerQueries maps ScaledObject trigger names to the query of that
	// trigger in the primary ScaledObject; the other triggers' queries get the
	// target's name replaced by <target>-primary.
	// +optional
	PrimaryScalerQueries map[string]string `json:"primaryScalerQueries,omitempty"`
	// PrimaryScalerReplicas overrides the primary autoscaler's replica bounds
	// (default: the target autoscaler's).
	// +optional
	PrimaryScalerReplicas *ScalerReplicas `json:"primaryScalerReplicas,omitempty"`
}

// ScalerReplicas are autoscaler replica bounds.
type ScalerReplicas struct {
	// MinReplicas of the primary autoscaler (minReplicaCount of a ScaledObject).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// MaxReplicas of the primary autoscaler (maxReplicaCount of a ScaledObject).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

// IngressReference points at an Ingress in the canary's namespace.
type IngressReference struct {
	// APIVersion of the Ingress, networking.k8s.io/v1.
	APIVersion string `json:"apiVersion"`
	// Kind is Ingress.
	// +kubebuilder:validation:Enum=Ingress
	Kind string `json:"kind"`
	// Name of the Ingress.
	Name string `json:"name"`
}

// RouteReference points at an ApisixRoute in the canary's namespace.
type RouteReference struct {
	// APIVersion of the ApisixRoute, apisix.apache.org/v2.
	APIVersion string `json:"apiVersion"`
	// Kind is ApisixRoute.
	// +kubebuilder:validation:Enum=ApisixRoute
	Kind string `json:"kind"`
	// Name of the ApisixRoute.
	Name string `json:"name"`
}

// CrossNamespaceObjectReference points at a Gloo Upstream, possibly in another
// namespace.
type CrossNamespaceObjectReference struct {
	// APIVersion of the Upstream, gloo.solo.io/v1.
	APIVersion string `json:"apiVersion"`
	// Kind is Upstream.
	// +kubebuilder:validation:Enum=Upstream
	Kind string `json:"kind"`
	// Name of the Upstream.
	Name string `json:"name"`
	// Namespace of the Upstream (default: the canary's); another namespace is
	// refused under -no-cross-namespace-refs.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// CanaryService describes the apex, primary and canary Services and the
// routing options.
type CanaryService struct {
	// Name of the apex Service (default: the target's name); the others are
	// <name>-primary and <name>-canary, and the routing objects are named after
	// it.
	// +optional
	Name string `json:"name,omitempty"`
	// Port of the generated Services, and the port the routing objects send
	// traffic to.
	Port int32 `json:"port"`
	// PortName is the name of the Services' port (default http).
	// +optional
	PortName string `json:"portName,omitempty"`
	// TargetPort is the container port, by number or name, that the Services
	// forward to (default: port).
	// +optional
	TargetPort intstr.IntOrString `json:"targetPort,omitempty"`
	// AppProtocol of the Services' port; tcp makes the Istio VirtualService a TCP
	// route and grpc makes the Gateway API provider generate a GRPCRoute.
	// +optional
	AppProtocol string `json:"appProtocol,omitempty"`
	// TrafficDistribution is set on the generated Services (Kubernetes'
	// spec.trafficDistribution).
	// +kubebuilder:validation:Enum=PreferClose;PreferSameZone;PreferSameNode
	// +optional
	TrafficDistribution string `json:"trafficDistribution,omitempty"`
	// PortDiscovery adds every container port of the target (except the sidecars'
	// and the one port targets) to the generated Services.
	// +optional
	PortDiscovery bool `json:"portDiscovery,omitempty"`
	// Headless makes the primary and canary Services headless (clusterIP None).
	// +optional
	Headless bool `json:"headless,omitempty"`
	// Timeout of a request as a duration, e.g. 30s (istio, gatewayapi, contour and
	// App Mesh).
	// +optional
	Timeout string `json:"timeout,omitempty"`
	// BackendTimeout is the timeout of one request to the backend, e.g. 10s
	// (gatewayapi only; at most timeout).
	// +optional
	BackendTimeout string `json:"backendTimeout,omitempty"`
	// MeshName is the App Mesh mesh of the appmesh (v1beta1) provider, which
	// Pennant refuses (use appmesh:v1beta2).
	// +optional
	MeshName string `json:"meshName,omitempty"`
	// Backends are the App Mesh virtual services (names or ARNs) the target calls,
	// added as backends of the generated virtual nodes.
	// +optional
	Backends []string `json:"backends,omitempty"`
	// Hosts are the host names the routing answers for: Istio VirtualService hosts
	// (the apex Service is always added), HTTPRoute hostnames, App Mesh gateway
	// domains; for SMI the first is the TrafficSplit's service.
	// +optional
	Hosts []string `json:"hosts,omitempty"`
	// Delegation generates an Istio VirtualService without hosts and gateways, to
	// be delegated to by a root VirtualService.
	// +optional
	Delegation bool `json:"delegation,omitempty"`
	// Match restricts the generated route to matching requests (Istio's
	// HTTPMatchRequest; istio, gatewayapi, contour, gloo, and a uri prefix for App
	// Mesh).
	// +optional
	Match []HTTPMatchRequest `json:"match,omitempty"`
	// Retries is the retry policy of the route (istio, contour, App Mesh).
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`
	// Rewrite rewrites the URI or authority of requests before forwarding (istio,
	// gatewayapi).
	// +optional
	Rewrite *HTTPRewrite `json:"rewrite,omitempty"`
	// Mirror lists Gateway API request mirror filters added to the HTTPRoute
	// (gatewayapi).
	// +optional
	Mirror []HTTPRequestMirrorFilter `json:"mirror,omitempty"`
	// Headers sets, adds or removes request and response headers on the route
	// (istio, gatewayapi).
	// +optional
	Headers *Headers `json:"headers,omitempty"`
	// Gateways are the Istio gateways of the VirtualService (default mesh); the
	// SMI provider for Istio passes them on as an annotation.
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// GatewayRefs are the parents (Gateways) of the generated HTTPRoute (required
	// for gatewayapi).
	// +optional
	GatewayRefs []ParentReference `json:"gatewayRefs,omitempty"`
	// CorsPolicy is the Cross-Origin Resource Sharing policy of the route (istio,
	// gatewayapi).
	// +optional
	CorsPolicy *CorsPolicy `json:"corsPolicy,omitempty"`
	// TrafficPolicy is the Istio DestinationRule traffic policy of <name>-primary
	// and <name>-canary.
	// +optional
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`
	// Apex metadata is added to the apex Service and to the generated routing
	// objects.
	// +optional
	Apex *CustomMetadata `json:"apex,omitempty"`
	// Primary metadata is added to the <name>-primary Service.
	// +optional
	Primary *CustomMetadata `json:"primary,omitempty"`
	// Canary metadata is added to the <name>-canary Service.
	// +optional
	Canary *CustomMetadata `json:"canary,omitempty"`
	// UnmanagedMetadata lists label and annotation keys that Pennant leaves alone
	// on the generated Services, so that others can set them.
	// +optional
	UnmanagedMetadata *UnmanagedMetadata `json:"unmanagedMetadata,omitempty"`
}

// CustomMetadata are labels and annotations added to generated objects.
type CustomMetadata struct {
	// Labels to add.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations to add.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// UnmanagedMetadata are keys owned by someone else.
type UnmanagedMetadata struct {
	// Annotations whose keys keep their current values on the generated Services.
	// +optional
	Annotations []string `json:"annotations,omitempty"`
	// Labels whose keys keep their current values on the generated Services.
	// +optional
	Labels []string `json:"labels,omitempty"`
}

// CanaryAnalysis is the strategy of a rollout: weights, iterations, matches
// and the checks run each tick.
// +kubebuilder:validation:XValidation:rule="has(self.interval) && has(self.threshold)",message="analysis requires interval and threshold"
// +kubebuilder:validation:XValidation:rule="[has(self.iterations), has(self.stepWeight), has(self.stepWeights)].filter(x, x).size() == 1",message="analysis requires exactly one of iterations, stepWeight or stepWeights"
type CanaryAnalysis struct {
	// Interval between analysis steps (required): a Go duration that starts in
	// minutes or seconds, e.g. 1m or 30s, never shorter than the
	// -min-analysis-interval flag (default 10s).
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="must be a Go duration such as 30s, 1m or 1m30s"
	// +optional
	Interval string `json:"interval,omitempty"`
	// Iterations is the number of analysis steps of a blue/green release, or of an
	// A/B test together with match (the kubernetes provider defaults it to 10).
	// +kubebuilder:validation:Minimum=0
	// +optional
	Iterations int `json:"iterations,omitempty"`
	// Threshold is the number of failed checks that rolls the release back
	// (required; 0 counts as 1).
	// +kubebuilder:validation:Minimum=0
	// +optional
	Threshold int `json:"threshold,omitempty"`
	// MaxWeight is the canary weight, in percent, from which the analysis promotes
	// (default 100; above 100 is 100; with stepWeights the last step).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxWeight int `json:"maxWeight,omitempty"`
	// StepWeight is the weight, in percent, added to the canary at each analysis
	// step.
	// +kubebuilder:validation:Minimum=0
	// +optional
	StepWeight int `json:"stepWeight,omitempty"`
	// StepWeights are the canary's weights at successive steps, in percent,
	// increasing, instead of a fixed stepWeight.
	// +kubebuilder:validation:items:Minimum=1
	// +optional
	StepWeights []int `json:"stepWeights,omitempty"`
	// StepWeightPromotion is the weight, in percent, moved back to the primary at
	// each interval of the promotion (default 0: all at once).
	// +kubebuilder:validation:Minimum=0
	// +optional
	StepWeightPromotion int `json:"stepWeightPromotion,omitempty"`
	// Mirror copies traffic to the canary without serving its answers: during a
	// blue/green analysis, or as a first step at weight 0 before shifting any
	// (istio, gatewayapi).
	// +optional
	Mirror bool `json:"mirror,omitempty"`
	// MirrorWeight is the share of requests mirrored, in percent (default: all).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MirrorWeight int `json:"mirrorWeight,omitempty"`
	// PrimaryReadyThreshold is the share of the primary's replicas, in percent,
	// that must be available for it to count as ready (default 100).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	PrimaryReadyThreshold *int `json:"primaryReadyThreshold,omitempty"`
	// CanaryReadyThreshold is the share of the canary's replicas, in percent, that
	// must be available for it to count as ready (default 100).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	CanaryReadyThreshold *int `json:"canaryReadyThreshold,omitempty"`
	// Match selects the requests routed to the canary in an A/B test (with
	// iterations); the match objects are ORed, the conditions within one are
	// ANDed.
	// +optional
	Match []ABMatch `json:"match,omitempty"`
	// Metrics are checked on every analysis step (at most 1000, which bounds the
	// cost of the admission rules).
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Metrics []CanaryMetric `json:"metrics,omitempty"`
	// Alerts send the canary's alerts to AlertProviders; without any, alerts go to
	// the notifier of the -slack-* and -msteams-* flags.
	// +optional
	Alerts []CanaryAlert `json:"alerts,omitempty"`
	// Webhooks are called at points of the rollout (at most 1000, which bounds the
	// cost of the admission rules).
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`
	// SessionAffinity keeps a user who reached the canary on the canary for the
	// rest of the analysis, by a cookie (istio, gatewayapi).
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
}

// ABMatch selects requests for the canary in an A/B test. It follows Istio's
// HTTPMatchRequest; the App Mesh and nginx providers read only headers (nginx:
// a "cookie" header's exact value, or one header's exact or regex value).
type ABMatch struct {
	// Headers to match, by header name (lower case).
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// QueryParams to match, by parameter name.
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
	// SourceLabels match the labels of the calling workload (Istio, mesh gateway
	// only).
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`
	// URI to match (the request path).
	// +optional
	URI *StringMatch `json:"uri,omitempty"`
	// Scheme to match, e.g. http (Istio).
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`
	// Method to match, e.g. exact GET.
	// +optional
	Method *StringMatch `json:"method,omitempty"`
	// Authority (Host header) to match.
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`
	// WithoutHeaders are headers that must not match, by header name.
	// +optional
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`
	// IgnoreURICase makes the uri match case-insensitive.
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`
	// Port the request is addressed to (Istio).
	// +optional
	Port uint32 `json:"port,omitempty"`
	// Name of the match, which Istio logs in its access logs.
	// +optional
	Name string `json:"name,omitempty"`
	// Gateways the match applies to (Istio; default: the VirtualService's).
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// SourceNamespace matches the namespace of the calling workload (Istio).
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`
}

// SessionAffinity keeps a user on the canary once routed there. The canary's
// responses set the cookie named cookieName, and requests that carry it go to
// the canary until the release ends.
type SessionAffinity struct {
	// CookieName is the name of the cookie that pins a session to the canary.
	CookieName string `json:"cookieName"`
	// PrimaryCookieName, when set, is the name of a cookie that pins sessions
	// served by the primary to the primary, for one analysis interval; it must
	// differ from cookieName.
	// +optional
	PrimaryCookieName string `json:"primaryCookieName,omitempty"`
	// Domain attribute of the cookie: the hosts it is sent to.
	// +optional
	Domain string `json:"domain,omitempty"`
	// HttpOnly attribute of the cookie: scripts cannot read it.
	// +optional
	HttpOnly bool `json:"httpOnly,omitempty"`
	// MaxAge of the cookie in seconds (default 86400).
	// +kubebuilder:default=86400
	// +optional
	MaxAge int `json:"maxAge,omitempty"`
	// Partitioned attribute of the cookie: stored per top-level site (CHIPS).
	// +optional
	Partitioned bool `json:"partitioned,omitempty"`
	// Path attribute of the cookie: the URL path it is sent for.
	// +optional
	Path string `json:"path,omitempty"`
	// SameSite attribute of the cookie: Strict, Lax or None.
	// +kubebuilder:validation:Enum=Strict;Lax;None
	// +optional
	SameSite string `json:"sameSite,omitempty"`
	// Secure attribute of the cookie: sent over HTTPS only.
	// +optional
	Secure bool `json:"secure,omitempty"`
}

// CanaryMetric is a check run on every analysis tick.
type CanaryMetric struct {
	// Name of the check. Without templateRef and query it names a builtin check:
	// request-success-rate (percent) or request-duration (milliseconds).
	Name string `json:"name"`
	// Interval is the query window (default 1m): a Go duration that starts in
	// minutes or seconds.
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="must be a Go duration such as 30s, 1m or 1m30s"
	// +optional
	Interval string `json:"interval,omitempty"`
	// Threshold is deprecated: use thresholdRange. Without a thresholdRange it is
	// the minimum of request-success-rate and the maximum of any other check.
	// +optional
	Threshold float64 `json:"threshold,omitempty"`
	// ThresholdRange is the range the value must stay in for the check to pass.
	// +optional
	ThresholdRange *CanaryThresholdRange `json:"thresholdRange,omitempty"`
	// Query is a deprecated inline PromQL query sent to metricsServer: use
	// templateRef.
	// +optional
	Query string `json:"query,omitempty"`
	// TemplateRef names the MetricTemplate whose query this check runs.
	// +optional
	TemplateRef *CrossNamespaceRef `json:"templateRef,omitempty"`
	// TemplateVariables are available to the template's query as {{
	// variables.<key> }}.
	// +optional
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`
	// NoDataPolicy says what a query that returns no values means (Pennant): fail
	// counts a failed check, as Flagger does (the default); skip passes this check
	// for the tick; wait holds the analysis without counting a failure until data
	// arrives or the progress deadline passes.
	// +kubebuilder:validation:Enum=fail;skip;wait
	// +optional
	NoDataPolicy NoDataPolicy `json:"noDataPolicy,omitempty"`
	// Judge compares the canary with the primary instead of checking the
	// metric against an absolute threshold (Pennant). Each step reads the
	// requests and the failed requests of both versions since the step before
	// and an anytime-valid sequential test decides: fail (roll back at once),
	// pass, continue, or hold when the primary degrades too. The metric's
	// threshold or thresholdRange then says when a version is unhealthy (the
	// hold), not when the canary fails. request-success-rate compares the
	// error rates; request-duration compares the shares of requests slower
	// than its maximum (which must be a bucket bound of the provider's
	// histogram), and a version with more than 1 % of them is unhealthy.
	// +optional
	Judge *CanaryMetricJudge `json:"judge,omitempty"`
}

// CanaryMetricJudge are the parameters of the comparative judge of a metric.
type CanaryMetricJudge struct {
	// Tolerance is the increase of the canary's error rate (or share of slow
	// requests) over the primary's that is tolerated, in percentage points (1:
	// the canary may fail 1 % more of its requests than the primary).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Tolerance float64 `json:"tolerance,omitempty"`
	// RelativeTolerance is the increase tolerated relative to the primary's
	// error rate, in percent (50: 1.5 times the primary's); it adds to
	// tolerance. One of the two must be set.
	// +optional
	// +kubebuilder:validation:Minimum=0
	RelativeTolerance float64 `json:"relativeTolerance,omitempty"`
	// FalseRollbackRate is the probability, over the whole analysis and
	// however often it looks, of rolling back a canary that is within the
	// tolerance, in percent. Defaults to 1.
	// +optional
	// +kubebuilder:validation:ExclusiveMinimum=true
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=50
	FalseRollbackRate float64 `json:"falseRollbackRate,omitempty"`
	// MinSample is the number of canary requests before the judge can pass
	// the canary. Defaults to 0.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinSample int64 `json:"minSample,omitempty"`
}

// NoDataPolicy is how a metric check treats a query without values.
type NoDataPolicy string

const (
	NoDataFail NoDataPolicy = "fail"
	NoDataSkip NoDataPolicy = "skip"
	NoDataWait NoDataPolicy = "wait"
)

// CanaryThresholdRange bounds a metric value; either bound may be left out.
type CanaryThresholdRange struct {
	// Min is the lowest passing value (request-duration: in milliseconds).
	// +optional
	Min *float64 `json:"min,omitempty"`
	// Max is the highest passing value (request-duration: in milliseconds).
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// CrossNamespaceRef names an object, in the canary's namespace unless
// namespace is set.
type CrossNamespaceRef struct {
	// Name of the object.
	Name string `json:"name"`
	// Namespace of the object (default: the canary's); another namespace is
	// refused under -no-cross-namespace-refs.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// AlertSeverity filters the alerts sent to a provider.
// +kubebuilder:validation:Enum="";info;warn;error
type AlertSeverity string

const (
	SeverityInfo  AlertSeverity = "info"
	SeverityWarn  AlertSeverity = "warn"
	SeverityError AlertSeverity = "error"
)

// CanaryAlert sends the canary's alerts to an AlertProvider.
type CanaryAlert struct {
	// Name of the alert, for messages about it.
	Name string `json:"name"`
	// Severity of the alerts sent: info (the default) sends every alert, warn
	// sends warnings and errors, error only errors.
	// +optional
	Severity AlertSeverity `json:"severity,omitempty"`
	// ProviderRef names the AlertProvider.
	ProviderRef CrossNamespaceRef `json:"providerRef"`
}

// HookType says when a webhook runs.
// +kubebuilder:validation:Enum="";confirm-rollout;pre-rollout;rollout;confirm-promotion;post-rollout;event;rollback;confirm-traffic-increase
type HookType string

const (
	RolloutHook                HookType = "rollout"
	PreRolloutHook             HookType = "pre-rollout"
	PostRolloutHook            HookType = "post-rollout"
	ConfirmRolloutHook         HookType = "confirm-rollout"
	ConfirmPromotionHook       HookType = "confirm-promotion"
	EventHook                  HookType = "event"
	RollbackHook               HookType = "rollback"
	ConfirmTrafficIncreaseHook HookType = "confirm-traffic-increase"
)

// CanaryWebhook is an HTTP call made at a point of the rollout: a POST of the
// JSON payload {name, namespace, phase, checksum, metadata}; an answer above
// 202 is a failure.
type CanaryWebhook struct {
	// Name of the webhook, for events and alerts.
	Name string `json:"name"`
	// Type says when the webhook runs (default rollout): confirm-rollout gates a
	// new release, pre-rollout runs at the first step, rollout at every step,
	// confirm-traffic-increase before each weight increase, confirm-promotion
	// gates the promotion, post-rollout after the release, rollback rolls the
	// release back when it succeeds, event receives every event.
	// +optional
	Type HookType `json:"type,omitempty"`
	// MuteAlert mutes the alert sent while this gate webhook holds the release.
	// +optional
	MuteAlert bool `json:"muteAlert,omitempty"`
	// URL the payload is posted to.
	URL string `json:"url"`
	// Timeout of one call (default 10s): a Go duration that starts in minutes or
	// seconds.
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="must be a Go duration such as 30s, 1m or 1m30s"
	// +optional
	Timeout string `json:"timeout,omitempty"`
	// Retries is how many times a failed call is retried (default 0).
	// +optional
	Retries int `json:"retries,omitempty"`
	// DisableTLS skips the verification of the webhook's TLS certificate.
	// +optional
	DisableTLS bool `json:"disableTLS,omitempty"`
	// Metadata is sent as the payload's metadata (e.g. the loadtester's type and
	// cmd).
	// +optional
	Metadata *map[string]string `json:"metadata,omitempty"`
}
