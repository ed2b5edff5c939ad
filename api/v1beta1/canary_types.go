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

// Canary is the Schema for the canaries API: a progressive delivery of a workload.
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

	Spec   CanarySpec   `json:"spec"`
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
	// Provider is the service mesh or ingress that shifts traffic; it overrides the -mesh-provider flag.
	// +kubebuilder:validation:Enum=apisix;appmesh;"appmesh:v1beta2";contour;"gatewayapi:v1";"gatewayapi:v1beta1";gloo;istio;knative;kubernetes;kuma;linkerd;nginx;osm;skipper;"smi:v1alpha1";"smi:v1alpha2";"smi:v1alpha3";traefik
	// +optional
	Provider string `json:"provider,omitempty"`

	// MetricsServer is the Prometheus address for the builtin checks; it overrides -metrics-server.
	// +optional
	MetricsServer string `json:"metricsServer,omitempty"`

	// TargetRef is the Deployment, DaemonSet or Service to canary.
	TargetRef LocalObjectReference `json:"targetRef"`

	// AutoscalerRef is the HPA or KEDA ScaledObject of the target.
	// +optional
	AutoscalerRef *AutoscalerReference `json:"autoscalerRef,omitempty"`

	// IngressRef is the Ingress used by the nginx and skipper providers.
	// +optional
	IngressRef *IngressReference `json:"ingressRef,omitempty"`

	// RouteRef is the ApisixRoute used by the apisix provider.
	// +optional
	RouteRef *RouteReference `json:"routeRef,omitempty"`

	// UpstreamRef is the Gloo Upstream whose config is copied into the generated upstreams.
	// +optional
	UpstreamRef *CrossNamespaceObjectReference `json:"upstreamRef,omitempty"`

	// Service describes the generated Services and routing.
	// +optional
	Service CanaryService `json:"service"`

	// Analysis is the rollout strategy and its checks.
	// +optional
	Analysis *CanaryAnalysis `json:"analysis,omitempty"`

	// CanaryAnalysis is the deprecated name of Analysis.
	// +optional
	CanaryAnalysis *CanaryAnalysis `json:"canaryAnalysis,omitempty"`

	// ProgressDeadlineSeconds is how long a workload may take to become ready (default 600).
	// +optional
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// SkipAnalysis promotes every new revision without analysis.
	// +optional
	SkipAnalysis bool `json:"skipAnalysis,omitempty"`

	// RevertOnDeletion restores the target and its routing when the Canary is deleted.
	// +optional
	RevertOnDeletion bool `json:"revertOnDeletion,omitempty"`

	// Suspend stops the analysis until it is set back to false.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// LocalObjectReference points at the target workload.
type LocalObjectReference struct {
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:Enum=DaemonSet;Deployment;Service
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// AutoscalerReference points at the target's autoscaler.
type AutoscalerReference struct {
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:Enum=HorizontalPodAutoscaler;ScaledObject
	Kind string `json:"kind"`
	Name string `json:"name"`
	// PrimaryScalerQueries replaces the queries of the primary ScaledObject's triggers, by trigger name.
	// +optional
	PrimaryScalerQueries map[string]string `json:"primaryScalerQueries,omitempty"`
	// PrimaryScalerReplicas overrides the primary autoscaler's replica bounds.
	// +optional
	PrimaryScalerReplicas *ScalerReplicas `json:"primaryScalerReplicas,omitempty"`
}

// ScalerReplicas are autoscaler replica bounds.
type ScalerReplicas struct {
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`
}

// IngressReference points at an Ingress.
type IngressReference struct {
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:Enum=Ingress
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// RouteReference points at an ApisixRoute.
type RouteReference struct {
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:Enum=ApisixRoute
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// CrossNamespaceObjectReference points at a Gloo Upstream, possibly in another namespace.
type CrossNamespaceObjectReference struct {
	APIVersion string `json:"apiVersion"`
	// +kubebuilder:validation:Enum=Upstream
	Kind string `json:"kind"`
	Name string `json:"name"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// CanaryService describes the apex, primary and canary Services and the routing options.
type CanaryService struct {
	// Name of the apex Service; defaults to the target name.
	// +optional
	Name string `json:"name,omitempty"`
	// Port of the generated Services.
	Port int32 `json:"port"`
	// PortName defaults to http.
	// +optional
	PortName string `json:"portName,omitempty"`
	// TargetPort defaults to Port.
	// +optional
	TargetPort intstr.IntOrString `json:"targetPort,omitempty"`
	// +optional
	AppProtocol string `json:"appProtocol,omitempty"`
	// +kubebuilder:validation:Enum=PreferClose;PreferSameZone;PreferSameNode
	// +optional
	TrafficDistribution string `json:"trafficDistribution,omitempty"`
	// PortDiscovery adds every container port of the target to the Services.
	// +optional
	PortDiscovery bool `json:"portDiscovery,omitempty"`
	// Headless makes the primary and canary Services headless.
	// +optional
	Headless bool `json:"headless,omitempty"`
	// +optional
	Timeout string `json:"timeout,omitempty"`
	// +optional
	BackendTimeout string `json:"backendTimeout,omitempty"`
	// MeshName is the App Mesh mesh.
	// +optional
	MeshName string `json:"meshName,omitempty"`
	// Backends are the App Mesh virtual service backends.
	// +optional
	Backends []string `json:"backends,omitempty"`
	// +optional
	Hosts []string `json:"hosts,omitempty"`
	// Delegation generates an Istio VirtualService without hosts and gateways.
	// +optional
	Delegation bool `json:"delegation,omitempty"`
	// +optional
	Match []HTTPMatchRequest `json:"match,omitempty"`
	// +optional
	Retries *HTTPRetry `json:"retries,omitempty"`
	// +optional
	Rewrite *HTTPRewrite `json:"rewrite,omitempty"`
	// Mirror lists Gateway API request mirror filters.
	// +optional
	Mirror []HTTPRequestMirrorFilter `json:"mirror,omitempty"`
	// +optional
	Headers *Headers `json:"headers,omitempty"`
	// Gateways are Istio gateways; the default is mesh.
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// GatewayRefs are the Gateway API parents of the generated route.
	// +optional
	GatewayRefs []ParentReference `json:"gatewayRefs,omitempty"`
	// +optional
	CorsPolicy *CorsPolicy `json:"corsPolicy,omitempty"`
	// TrafficPolicy is the Istio DestinationRule traffic policy.
	// +optional
	TrafficPolicy *TrafficPolicy `json:"trafficPolicy,omitempty"`
	// +optional
	Apex *CustomMetadata `json:"apex,omitempty"`
	// +optional
	Primary *CustomMetadata `json:"primary,omitempty"`
	// +optional
	Canary *CustomMetadata `json:"canary,omitempty"`
	// UnmanagedMetadata lists label and annotation keys that Pennant leaves alone on generated Services.
	// +optional
	UnmanagedMetadata *UnmanagedMetadata `json:"unmanagedMetadata,omitempty"`
}

// CustomMetadata are labels and annotations added to generated objects.
type CustomMetadata struct {
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// UnmanagedMetadata are keys owned by someone else.
type UnmanagedMetadata struct {
	// +optional
	Annotations []string `json:"annotations,omitempty"`
	// +optional
	Labels []string `json:"labels,omitempty"`
}

// CanaryAnalysis is the strategy of a rollout: weights, iterations, matches and the checks run each tick.
// +kubebuilder:validation:XValidation:rule="has(self.interval) && has(self.threshold)",message="analysis requires interval and threshold"
// +kubebuilder:validation:XValidation:rule="[has(self.iterations), has(self.stepWeight), has(self.stepWeights)].filter(x, x).size() == 1",message="analysis requires exactly one of iterations, stepWeight or stepWeights"
type CanaryAnalysis struct {
	// Interval between analysis ticks, e.g. 1m (minimum 10s): a Go duration that starts in minutes or
	// seconds.
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="must be a Go duration such as 30s, 1m or 1m30s"
	// +optional
	Interval string `json:"interval,omitempty"`
	// Iterations selects blue/green, or A/B testing together with match.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Iterations int `json:"iterations,omitempty"`
	// Threshold is the number of failed checks before a rollback.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Threshold int `json:"threshold,omitempty"`
	// MaxWeight is the canary weight at which the analysis promotes (percent; above 100 is 100).
	// +kubebuilder:validation:Minimum=0
	// +optional
	MaxWeight int `json:"maxWeight,omitempty"`
	// StepWeight is the weight added to the canary at each analysis step (percent).
	// +kubebuilder:validation:Minimum=0
	// +optional
	StepWeight int `json:"stepWeight,omitempty"`
	// StepWeights are the canary weights of the steps, increasing (percent).
	// +kubebuilder:validation:items:Minimum=1
	// +optional
	StepWeights []int `json:"stepWeights,omitempty"`
	// StepWeightPromotion shifts traffic back to the primary in steps during promotion.
	// +kubebuilder:validation:Minimum=0
	// +optional
	StepWeightPromotion int `json:"stepWeightPromotion,omitempty"`
	// Mirror copies traffic to the canary before shifting any.
	// +optional
	Mirror bool `json:"mirror,omitempty"`
	// MirrorWeight is the share of requests mirrored to the canary (percent).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	MirrorWeight int `json:"mirrorWeight,omitempty"`
	// PrimaryReadyThreshold is the share of the primary's replicas that must be available (percent).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	PrimaryReadyThreshold *int `json:"primaryReadyThreshold,omitempty"`
	// CanaryReadyThreshold is the share of the canary's replicas that must be available (percent).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	CanaryReadyThreshold *int `json:"canaryReadyThreshold,omitempty"`
	// Match routes matching requests to the canary (A/B testing).
	// +optional
	Match []ABMatch `json:"match,omitempty"`
	// Metrics are checked on every tick (at most 1000, which bounds the cost of the admission rules).
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Metrics []CanaryMetric `json:"metrics,omitempty"`
	// +optional
	Alerts []CanaryAlert `json:"alerts,omitempty"`
	// Webhooks are called at points of the rollout (at most 1000, which bounds the cost of the
	// admission rules).
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`
}

// ABMatch selects requests for the canary in an A/B test.
type ABMatch struct {
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`
	// The remaining fields follow Istio's HTTPMatchRequest.
	// +optional
	URI *StringMatch `json:"uri,omitempty"`
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`
	// +optional
	Method *StringMatch `json:"method,omitempty"`
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`
	// +optional
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`
	// +optional
	Port uint32 `json:"port,omitempty"`
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`
}

// SessionAffinity keeps a user on the canary once routed there.
type SessionAffinity struct {
	CookieName string `json:"cookieName"`
	// +optional
	PrimaryCookieName string `json:"primaryCookieName,omitempty"`
	// +optional
	Domain string `json:"domain,omitempty"`
	// +optional
	HttpOnly bool `json:"httpOnly,omitempty"`
	// MaxAge of the cookie in seconds (default 86400).
	// +kubebuilder:default=86400
	// +optional
	MaxAge int `json:"maxAge,omitempty"`
	// +optional
	Partitioned bool `json:"partitioned,omitempty"`
	// +optional
	Path string `json:"path,omitempty"`
	// +kubebuilder:validation:Enum=Strict;Lax;None
	// +optional
	SameSite string `json:"sameSite,omitempty"`
	// +optional
	Secure bool `json:"secure,omitempty"`
}

// CanaryMetric is a check run on every analysis tick.
type CanaryMetric struct {
	Name string `json:"name"`
	// Interval is the query window (default 1m): a Go duration that starts in minutes or seconds.
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="must be a Go duration such as 30s, 1m or 1m30s"
	// +optional
	Interval string `json:"interval,omitempty"`
	// Threshold is deprecated: use thresholdRange.
	// +optional
	Threshold float64 `json:"threshold,omitempty"`
	// +optional
	ThresholdRange *CanaryThresholdRange `json:"thresholdRange,omitempty"`
	// Query is a deprecated inline PromQL query: use templateRef.
	// +optional
	Query string `json:"query,omitempty"`
	// +optional
	TemplateRef *CrossNamespaceRef `json:"templateRef,omitempty"`
	// +optional
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`
	// NoDataPolicy says what a query that returns no values means (Pennant): fail counts a failed
	// check, as Flagger does (the default); skip passes this check for the tick; wait holds the
	// analysis without counting a failure until data arrives or the progress deadline passes.
	// +kubebuilder:validation:Enum=fail;skip;wait
	// +optional
	NoDataPolicy NoDataPolicy `json:"noDataPolicy,omitempty"`
}

// NoDataPolicy is how a metric check treats a query without values.
type NoDataPolicy string

const (
	NoDataFail NoDataPolicy = "fail"
	NoDataSkip NoDataPolicy = "skip"
	NoDataWait NoDataPolicy = "wait"
)

// CanaryThresholdRange bounds a metric value.
type CanaryThresholdRange struct {
	// +optional
	Min *float64 `json:"min,omitempty"`
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// CrossNamespaceRef names an object, in the canary's namespace unless namespace is set.
type CrossNamespaceRef struct {
	Name string `json:"name"`
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
	Name string `json:"name"`
	// +optional
	Severity    AlertSeverity     `json:"severity,omitempty"`
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

// CanaryWebhook is an HTTP call made at a point of the rollout.
type CanaryWebhook struct {
	Name string `json:"name"`
	// +optional
	Type HookType `json:"type,omitempty"`
	// +optional
	MuteAlert bool   `json:"muteAlert,omitempty"`
	URL       string `json:"url"`
	// Timeout of one call (default 10s): a Go duration that starts in minutes or seconds.
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)`
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+$') && duration(self) >= duration('0s')",message="must be a Go duration such as 30s, 1m or 1m30s"
	// +optional
	Timeout string `json:"timeout,omitempty"`
	// +optional
	Retries int `json:"retries,omitempty"`
	// +optional
	DisableTLS bool `json:"disableTLS,omitempty"`
	// +optional
	Metadata *map[string]string `json:"metadata,omitempty"`
}
