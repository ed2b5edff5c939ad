package v1beta1

// The routing types below follow the schemas of Istio's VirtualService and DestinationRule and of the
// Gateway API, which Flagger embeds in the Canary spec; field names and JSON shapes are theirs.

// StringMatch matches a string exactly, by prefix, by suffix or by RE2 regex.
type StringMatch struct {
	// +optional
	Exact string `json:"exact,omitempty"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// +optional
	Suffix string `json:"suffix,omitempty"`
	// +optional
	Regex string `json:"regex,omitempty"`
}

// HTTPMatchRequest is Istio's request match.
type HTTPMatchRequest struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	URI *StringMatch `json:"uri,omitempty"`
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`
	// +optional
	Method *StringMatch `json:"method,omitempty"`
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// +optional
	Port uint32 `json:"port,omitempty"`
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`
	// +optional
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`
}

// HTTPRewrite rewrites the URI or authority before forwarding.
type HTTPRewrite struct {
	// +optional
	URI string `json:"uri,omitempty"`
	// +optional
	Authority string `json:"authority,omitempty"`
	// Type is the Gateway API rewrite kind: ReplaceFullPath or ReplacePrefixMatch.
	// +optional
	Type string `json:"type,omitempty"`
}

// HTTPRetry is a retry policy.
type HTTPRetry struct {
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// +optional
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// Headers manipulates request and response headers.
type Headers struct {
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations adds, sets or removes headers.
type HeaderOperations struct {
	// +optional
	Set map[string]string `json:"set,omitempty"`
	// +optional
	Add map[string]string `json:"add,omitempty"`
	// +optional
	Remove []string `json:"remove,omitempty"`
}

// CorsPolicy is Istio's CORS policy.
type CorsPolicy struct {
	// AllowOrigin is deprecated in Istio: use allowOrigins.
	// +optional
	AllowOrigin []string `json:"allowOrigin,omitempty"`
	// +optional
	AllowOrigins []StringMatch `json:"allowOrigins,omitempty"`
	// +optional
	AllowMethods []string `json:"allowMethods,omitempty"`
	// +optional
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// +optional
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// +optional
	MaxAge string `json:"maxAge,omitempty"`
	// +optional
	AllowCredentials *bool `json:"allowCredentials,omitempty"`
}

// ParentReference is a Gateway API parent (usually a Gateway).
type ParentReference struct {
	// +kubebuilder:default=gateway.networking.k8s.io
	// +kubebuilder:validation:Pattern=`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Group *string `json:"group,omitempty"`
	// +kubebuilder:default=Gateway
	// +kubebuilder:validation:Pattern=`^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
	// +optional
	Kind *string `json:"kind,omitempty"`
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	Name      string  `json:"name"`
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SectionName *string `json:"sectionName,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// HTTPRequestMirrorFilter mirrors requests to another backend (Gateway API).
type HTTPRequestMirrorFilter struct {
	BackendRef BackendObjectReference `json:"backendRef"`
}

// BackendObjectReference is a Gateway API backend.
type BackendObjectReference struct {
	// +kubebuilder:default=""
	// +kubebuilder:validation:Pattern=`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Group *string `json:"group,omitempty"`
	// +kubebuilder:default=Service
	// +kubebuilder:validation:Pattern=`^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
	// +optional
	Kind *string `json:"kind,omitempty"`
	Name string  `json:"name"`
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// TrafficPolicy is Istio's DestinationRule traffic policy.
type TrafficPolicy struct {
	// +optional
	LoadBalancer *LoadBalancerSettings `json:"loadBalancer,omitempty"`
	// +optional
	ConnectionPool *ConnectionPoolSettings `json:"connectionPool,omitempty"`
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// +optional
	TLS *ClientTLSSettings `json:"tls,omitempty"`
}

// LoadBalancerSettings picks a load balancing algorithm.
type LoadBalancerSettings struct {
	// +kubebuilder:validation:Enum=ROUND_ROBIN;LEAST_CONN;RANDOM;PASSTHROUGH;LEAST_REQUEST
	// +optional
	Simple string `json:"simple,omitempty"`
	// +optional
	ConsistentHash *ConsistentHashLB `json:"consistentHash,omitempty"`
	// +optional
	LocalityLbSetting *LocalityLoadBalancerSetting `json:"localityLbSetting,omitempty"`
	// +optional
	WarmupDurationSecs string `json:"warmupDurationSecs,omitempty"`
}

// ConsistentHashLB hashes requests onto endpoints.
type ConsistentHashLB struct {
	// +optional
	HTTPHeaderName string `json:"httpHeaderName,omitempty"`
	// +optional
	HTTPCookie *HTTPCookie `json:"httpCookie,omitempty"`
	// +optional
	UseSourceIP bool `json:"useSourceIp,omitempty"`
	// +optional
	HTTPQueryParameterName string `json:"httpQueryParameterName,omitempty"`
	// +optional
	MinimumRingSize uint64 `json:"minimumRingSize,omitempty"`
}

// HTTPCookie is a hash key cookie.
type HTTPCookie struct {
	Name string `json:"name"`
	// +optional
	Path string `json:"path,omitempty"`
	// +optional
	TTL string `json:"ttl,omitempty"`
}

// LocalityLoadBalancerSetting spreads traffic across localities.
type LocalityLoadBalancerSetting struct {
	// +optional
	Distribute []LocalityDistribute `json:"distribute,omitempty"`
	// +optional
	Failover []LocalityFailover `json:"failover,omitempty"`
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// LocalityDistribute sends traffic from one locality to others by weight.
type LocalityDistribute struct {
	// +optional
	From string `json:"from,omitempty"`
	// +optional
	To map[string]uint32 `json:"to,omitempty"`
}

// LocalityFailover names a failover locality.
type LocalityFailover struct {
	// +optional
	From string `json:"from,omitempty"`
	// +optional
	To string `json:"to,omitempty"`
}

// ConnectionPoolSettings limit connections to a host.
type ConnectionPoolSettings struct {
	// +optional
	TCP *TCPSettings `json:"tcp,omitempty"`
	// +optional
	HTTP *HTTPSettings `json:"http,omitempty"`
}

// TCPSettings are TCP connection pool settings.
type TCPSettings struct {
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`
	// +optional
	ConnectTimeout string `json:"connectTimeout,omitempty"`
}

// HTTPSettings are HTTP connection pool settings.
type HTTPSettings struct {
	// +optional
	HTTP1MaxPendingRequests int32 `json:"http1MaxPendingRequests,omitempty"`
	// +optional
	HTTP2MaxRequests int32 `json:"http2MaxRequests,omitempty"`
	// +optional
	MaxRequestsPerConnection int32 `json:"maxRequestsPerConnection,omitempty"`
	// +optional
	MaxRetries int32 `json:"maxRetries,omitempty"`
	// +optional
	IdleTimeout string `json:"idleTimeout,omitempty"`
	// +kubebuilder:validation:Enum=DEFAULT;DO_NOT_UPGRADE;UPGRADE
	// +optional
	H2UpgradePolicy string `json:"h2UpgradePolicy,omitempty"`
}

// OutlierDetection ejects unhealthy hosts.
type OutlierDetection struct {
	// +optional
	ConsecutiveErrors int32 `json:"consecutiveErrors,omitempty"`
	// +optional
	Consecutive5xxErrors *uint32 `json:"consecutive5xxErrors,omitempty"`
	// +optional
	ConsecutiveGatewayErrors *uint32 `json:"consecutiveGatewayErrors,omitempty"`
	// +optional
	ConsecutiveLocalOriginFailures *uint32 `json:"consecutiveLocalOriginFailures,omitempty"`
	// +optional
	SplitExternalLocalOriginErrors bool `json:"splitExternalLocalOriginErrors,omitempty"`
	// +optional
	Interval string `json:"interval,omitempty"`
	// +optional
	BaseEjectionTime string `json:"baseEjectionTime,omitempty"`
	// +optional
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`
	// +optional
	MinHealthPercent int32 `json:"minHealthPercent,omitempty"`
}

// ClientTLSSettings are upstream TLS settings.
type ClientTLSSettings struct {
	// +kubebuilder:validation:Enum=DISABLE;SIMPLE;MUTUAL;ISTIO_MUTUAL
	// +optional
	Mode string `json:"mode,omitempty"`
	// +optional
	ClientCertificate string `json:"clientCertificate,omitempty"`
	// +optional
	PrivateKey string `json:"privateKey,omitempty"`
	// +optional
	CaCertificates string `json:"caCertificates,omitempty"`
	// +optional
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// +optional
	Sni string `json:"sni,omitempty"`
}
