package v1beta1

// The routing types below follow the schemas of Istio's VirtualService and DestinationRule and of the
// Gateway API, which Flagger embeds in the Canary spec; field names and JSON shapes are theirs.

// StringMatch matches a string exactly, by prefix, by suffix or by RE2 regex;
// set one of them.
type StringMatch struct {
	// Exact matches the whole string.
	// +optional
	Exact string `json:"exact,omitempty"`
	// Prefix matches the start of the string.
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// Suffix matches the end of the string (not supported by the istio provider).
	// +optional
	Suffix string `json:"suffix,omitempty"`
	// Regex is an RE2 regular expression the string must match.
	// +optional
	Regex string `json:"regex,omitempty"`
}

// HTTPMatchRequest is Istio's request match: every condition set must hold.
// Other providers refuse the conditions they cannot express, except that
// contour and gloo ignore the mesh-only ones (port, sourceLabels, gateways,
// sourceNamespace).
type HTTPMatchRequest struct {
	// Name of the match, which Istio logs in its access logs.
	// +optional
	Name string `json:"name,omitempty"`
	// URI to match (the request path).
	// +optional
	URI *StringMatch `json:"uri,omitempty"`
	// Scheme to match, e.g. http.
	// +optional
	Scheme *StringMatch `json:"scheme,omitempty"`
	// Method to match, e.g. exact GET.
	// +optional
	Method *StringMatch `json:"method,omitempty"`
	// Authority (Host header) to match.
	// +optional
	Authority *StringMatch `json:"authority,omitempty"`
	// Headers to match, by header name (lower case).
	// +optional
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// Port the request is addressed to (Istio).
	// +optional
	Port uint32 `json:"port,omitempty"`
	// SourceLabels match the labels of the calling workload (Istio, mesh gateway
	// only).
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`
	// Gateways the match applies to (Istio; default: the VirtualService's).
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// QueryParams to match, by parameter name.
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`
	// IgnoreURICase makes the uri match case-insensitive.
	// +optional
	IgnoreURICase bool `json:"ignoreUriCase,omitempty"`
	// WithoutHeaders are headers that must not match, by header name.
	// +optional
	WithoutHeaders map[string]StringMatch `json:"withoutHeaders,omitempty"`
	// SourceNamespace matches the namespace of the calling workload (Istio).
	// +optional
	SourceNamespace string `json:"sourceNamespace,omitempty"`
}

// HTTPRewrite rewrites the URI or authority before forwarding.
type HTTPRewrite struct {
	// URI replaces the request path (with type ReplacePrefixMatch, the matched
	// prefix only).
	// +optional
	URI string `json:"uri,omitempty"`
	// Authority replaces the Host (authority) header.
	// +optional
	Authority string `json:"authority,omitempty"`
	// Type is the Gateway API rewrite kind: ReplaceFullPath (the default) or
	// ReplacePrefixMatch.
	// +optional
	Type string `json:"type,omitempty"`
}

// HTTPRetry is a retry policy.
type HTTPRetry struct {
	// Attempts is the number of retries of a request.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// PerTryTimeout is the timeout of each attempt, a duration such as 2s.
	// +optional
	PerTryTimeout string `json:"perTryTimeout,omitempty"`
	// RetryOn lists, comma-separated, the conditions that cause a retry, e.g.
	// gateway-error,connect-failure,refused-stream or HTTP status codes.
	// +optional
	RetryOn string `json:"retryOn,omitempty"`
}

// Headers manipulates request and response headers.
type Headers struct {
	// Request header operations, applied before the request is forwarded.
	// +optional
	Request *HeaderOperations `json:"request,omitempty"`
	// Response header operations, applied before the response is returned.
	// +optional
	Response *HeaderOperations `json:"response,omitempty"`
}

// HeaderOperations adds, sets or removes headers.
type HeaderOperations struct {
	// Set overwrites these headers, by name.
	// +optional
	Set map[string]string `json:"set,omitempty"`
	// Add appends these headers, by name.
	// +optional
	Add map[string]string `json:"add,omitempty"`
	// Remove deletes the headers with these names.
	// +optional
	Remove []string `json:"remove,omitempty"`
}

// CorsPolicy is Istio's CORS policy; the gatewayapi provider turns it into a
// CORS filter.
type CorsPolicy struct {
	// AllowOrigin lists origins allowed to make CORS requests, exactly; deprecated
	// in Istio: use allowOrigins.
	// +optional
	AllowOrigin []string `json:"allowOrigin,omitempty"`
	// AllowOrigins match the origins allowed to make CORS requests (gatewayapi:
	// exact only).
	// +optional
	AllowOrigins []StringMatch `json:"allowOrigins,omitempty"`
	// AllowMethods are the HTTP methods allowed (Access-Control-Allow-Methods).
	// +optional
	AllowMethods []string `json:"allowMethods,omitempty"`
	// AllowHeaders are the request headers allowed (Access-Control-Allow-Headers).
	// +optional
	AllowHeaders []string `json:"allowHeaders,omitempty"`
	// ExposeHeaders are the response headers browsers may read
	// (Access-Control-Expose-Headers).
	// +optional
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`
	// MaxAge is how long a preflight answer may be cached, a duration such as 24h.
	// +optional
	MaxAge string `json:"maxAge,omitempty"`
	// AllowCredentials lets the request carry credentials
	// (Access-Control-Allow-Credentials).
	// +optional
	AllowCredentials *bool `json:"allowCredentials,omitempty"`
}

// ParentReference is a Gateway API parent (usually a Gateway).
type ParentReference struct {
	// Group of the parent (default gateway.networking.k8s.io).
	// +kubebuilder:default=gateway.networking.k8s.io
	// +kubebuilder:validation:Pattern=`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Group *string `json:"group,omitempty"`
	// Kind of the parent (default Gateway).
	// +kubebuilder:default=Gateway
	// +kubebuilder:validation:Pattern=`^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
	// +optional
	Kind *string `json:"kind,omitempty"`
	// Namespace of the parent (default: the canary's).
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Name of the parent.
	Name string `json:"name"`
	// SectionName is the name of the parent's listener to attach to (default: all
	// of them).
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SectionName *string `json:"sectionName,omitempty"`
	// Port of the parent's listeners to attach to (default: all of them).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// HTTPRequestMirrorFilter mirrors requests to another backend (Gateway API).
type HTTPRequestMirrorFilter struct {
	// BackendRef is the backend that receives the copies; its answers are
	// discarded.
	BackendRef BackendObjectReference `json:"backendRef"`
}

// BackendObjectReference is a Gateway API backend.
type BackendObjectReference struct {
	// Group of the backend (default "", the core group).
	// +kubebuilder:default=""
	// +kubebuilder:validation:Pattern=`^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Group *string `json:"group,omitempty"`
	// Kind of the backend (default Service).
	// +kubebuilder:default=Service
	// +kubebuilder:validation:Pattern=`^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`
	// +optional
	Kind *string `json:"kind,omitempty"`
	// Name of the backend.
	Name string `json:"name"`
	// Namespace of the backend (default: the canary's).
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Port of the backend (required for a Service).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port *int32 `json:"port,omitempty"`
}

// TrafficPolicy is Istio's DestinationRule traffic policy. Its durations are
// written as Go durations (e.g. 1m, 30s).
type TrafficPolicy struct {
	// LoadBalancer picks the load balancing algorithm.
	// +optional
	LoadBalancer *LoadBalancerSettings `json:"loadBalancer,omitempty"`
	// ConnectionPool limits the connections and requests to each host.
	// +optional
	ConnectionPool *ConnectionPoolSettings `json:"connectionPool,omitempty"`
	// OutlierDetection ejects failing hosts from the load balancing pool.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`
	// TLS settings of the connections to the upstream hosts.
	// +optional
	TLS *ClientTLSSettings `json:"tls,omitempty"`
}

// LoadBalancerSettings picks a load balancing algorithm.
type LoadBalancerSettings struct {
	// Simple is a standard algorithm: ROUND_ROBIN, LEAST_CONN, RANDOM, PASSTHROUGH
	// or LEAST_REQUEST.
	// +kubebuilder:validation:Enum=ROUND_ROBIN;LEAST_CONN;RANDOM;PASSTHROUGH;LEAST_REQUEST
	// +optional
	Simple string `json:"simple,omitempty"`
	// ConsistentHash sends requests with the same key (header, cookie, source IP
	// or query parameter) to the same host.
	// +optional
	ConsistentHash *ConsistentHashLB `json:"consistentHash,omitempty"`
	// LocalityLbSetting spreads traffic across localities (region/zone/sub-zone).
	// +optional
	LocalityLbSetting *LocalityLoadBalancerSetting `json:"localityLbSetting,omitempty"`
	// WarmupDurationSecs is how long a new host's share of traffic grows
	// gradually, a duration such as 60s.
	// +optional
	WarmupDurationSecs string `json:"warmupDurationSecs,omitempty"`
}

// ConsistentHashLB hashes requests onto endpoints.
type ConsistentHashLB struct {
	// HTTPHeaderName hashes on the value of this request header.
	// +optional
	HTTPHeaderName string `json:"httpHeaderName,omitempty"`
	// HTTPCookie hashes on this cookie, which Istio generates when it is missing.
	// +optional
	HTTPCookie *HTTPCookie `json:"httpCookie,omitempty"`
	// UseSourceIP hashes on the client's IP address.
	// +optional
	UseSourceIP bool `json:"useSourceIp,omitempty"`
	// HTTPQueryParameterName hashes on the value of this query parameter.
	// +optional
	HTTPQueryParameterName string `json:"httpQueryParameterName,omitempty"`
	// MinimumRingSize is the minimum number of virtual nodes of the hash ring.
	// +optional
	MinimumRingSize uint64 `json:"minimumRingSize,omitempty"`
}

// HTTPCookie is a hash key cookie.
type HTTPCookie struct {
	// Name of the cookie.
	Name string `json:"name"`
	// Path of the cookie.
	// +optional
	Path string `json:"path,omitempty"`
	// TTL is the lifetime of a generated cookie, a duration such as 1h.
	// +optional
	TTL string `json:"ttl,omitempty"`
}

// LocalityLoadBalancerSetting spreads traffic across localities.
type LocalityLoadBalancerSetting struct {
	// Distribute sets the share of traffic each locality sends to others (not with
	// failover).
	// +optional
	Distribute []LocalityDistribute `json:"distribute,omitempty"`
	// Failover names the region traffic goes to when a region's hosts are
	// unhealthy (not with distribute).
	// +optional
	Failover []LocalityFailover `json:"failover,omitempty"`
	// Enabled turns locality load balancing on or off for this destination,
	// overriding the mesh.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// LocalityDistribute sends traffic from one locality to others by weight.
type LocalityDistribute struct {
	// From is the originating locality, region/zone/sub-zone, which may end in *.
	// +optional
	From string `json:"from,omitempty"`
	// To maps destination localities to their share of the traffic, in percent
	// (summing to 100).
	// +optional
	To map[string]uint32 `json:"to,omitempty"`
}

// LocalityFailover names a failover locality.
type LocalityFailover struct {
	// From is the originating region.
	// +optional
	From string `json:"from,omitempty"`
	// To is the region traffic fails over to.
	// +optional
	To string `json:"to,omitempty"`
}

// ConnectionPoolSettings limit connections to a host.
type ConnectionPoolSettings struct {
	// TCP settings, for HTTP and TCP connections.
	// +optional
	TCP *TCPSettings `json:"tcp,omitempty"`
	// HTTP settings.
	// +optional
	HTTP *HTTPSettings `json:"http,omitempty"`
}

// TCPSettings are TCP connection pool settings.
type TCPSettings struct {
	// MaxConnections is the maximum number of connections to a host.
	// +optional
	MaxConnections int32 `json:"maxConnections,omitempty"`
	// ConnectTimeout is the TCP connect timeout, a duration such as 10s.
	// +optional
	ConnectTimeout string `json:"connectTimeout,omitempty"`
}

// HTTPSettings are HTTP connection pool settings.
type HTTPSettings struct {
	// HTTP1MaxPendingRequests is the maximum number of requests waiting for a
	// connection.
	// +optional
	HTTP1MaxPendingRequests int32 `json:"http1MaxPendingRequests,omitempty"`
	// HTTP2MaxRequests is the maximum number of active requests to a destination.
	// +optional
	HTTP2MaxRequests int32 `json:"http2MaxRequests,omitempty"`
	// MaxRequestsPerConnection is the maximum number of requests per connection (1
	// disables keep-alive).
	// +optional
	MaxRequestsPerConnection int32 `json:"maxRequestsPerConnection,omitempty"`
	// MaxRetries is the maximum number of outstanding retries to a destination.
	// +optional
	MaxRetries int32 `json:"maxRetries,omitempty"`
	// IdleTimeout closes connections idle for this long, a duration such as 1h.
	// +optional
	IdleTimeout string `json:"idleTimeout,omitempty"`
	// H2UpgradePolicy says whether HTTP/1.1 connections are upgraded to HTTP/2:
	// DEFAULT, DO_NOT_UPGRADE or UPGRADE.
	// +kubebuilder:validation:Enum=DEFAULT;DO_NOT_UPGRADE;UPGRADE
	// +optional
	H2UpgradePolicy string `json:"h2UpgradePolicy,omitempty"`
}

// OutlierDetection ejects unhealthy hosts.
type OutlierDetection struct {
	// ConsecutiveErrors is deprecated in Istio: use consecutive5xxErrors.
	// +optional
	ConsecutiveErrors int32 `json:"consecutiveErrors,omitempty"`
	// Consecutive5xxErrors is the number of 5xx answers in a row that ejects a
	// host.
	// +optional
	Consecutive5xxErrors *uint32 `json:"consecutive5xxErrors,omitempty"`
	// ConsecutiveGatewayErrors is the number of 502, 503 and 504 answers in a row
	// that ejects a host.
	// +optional
	ConsecutiveGatewayErrors *uint32 `json:"consecutiveGatewayErrors,omitempty"`
	// ConsecutiveLocalOriginFailures is the number of local failures (connect
	// errors, timeouts) in a row that ejects a host, with
	// splitExternalLocalOriginErrors.
	// +optional
	ConsecutiveLocalOriginFailures *uint32 `json:"consecutiveLocalOriginFailures,omitempty"`
	// SplitExternalLocalOriginErrors counts local failures apart from the
	// upstream's errors.
	// +optional
	SplitExternalLocalOriginErrors bool `json:"splitExternalLocalOriginErrors,omitempty"`
	// Interval between ejection sweeps, a duration such as 10s.
	// +optional
	Interval string `json:"interval,omitempty"`
	// BaseEjectionTime is the minimum ejection time, a duration such as 30s; it
	// grows with each ejection of the same host.
	// +optional
	BaseEjectionTime string `json:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent is the largest share of the pool, in percent, that may be
	// ejected.
	// +optional
	MaxEjectionPercent int32 `json:"maxEjectionPercent,omitempty"`
	// MinHealthPercent disables ejection while fewer than this share of hosts, in
	// percent, are healthy.
	// +optional
	MinHealthPercent int32 `json:"minHealthPercent,omitempty"`
}

// ClientTLSSettings are upstream TLS settings.
type ClientTLSSettings struct {
	// Mode is DISABLE, SIMPLE (TLS), MUTUAL (mTLS with the certificates below) or
	// ISTIO_MUTUAL (mTLS with Istio's certificates).
	// +kubebuilder:validation:Enum=DISABLE;SIMPLE;MUTUAL;ISTIO_MUTUAL
	// +optional
	Mode string `json:"mode,omitempty"`
	// ClientCertificate is the path of the client certificate file (MUTUAL).
	// +optional
	ClientCertificate string `json:"clientCertificate,omitempty"`
	// PrivateKey is the path of the client's private key file (MUTUAL).
	// +optional
	PrivateKey string `json:"privateKey,omitempty"`
	// CaCertificates is the path of the file of CA certificates that verify the
	// server.
	// +optional
	CaCertificates string `json:"caCertificates,omitempty"`
	// SubjectAltNames the server's certificate must present one of.
	// +optional
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`
	// Sni is the server name sent in the TLS handshake.
	// +optional
	Sni string `json:"sni,omitempty"`
}
