package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricTemplate is a query against a metrics backend, referenced by canary
// metric checks.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the metrics backend and the query.
	Spec MetricTemplateSpec `json:"spec"`
	// Status is the observed state of the metric template.
	// +optional
	Status MetricTemplateStatus `json:"status,omitempty"`
}

// MetricTemplateList is a list of metric templates.
// +kubebuilder:object:root=true
type MetricTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetricTemplate `json:"items"`
}

// MetricTemplateSpec is a provider and a Go text/template query.
type MetricTemplateSpec struct {
	// Provider is the metrics backend the query is sent to.
	Provider MetricTemplateProvider `json:"provider"`
	// Query is a Go text/template rendered for each check, with {{ name }}, {{
	// namespace }}, {{ target }}, {{ service }}, {{ ingress }}, {{ route }}, {{
	// interval }} and {{ variables.<key> }}; the result must be a single value.
	Query string `json:"query"`
}

// MetricTemplateProvider is the backend a template queries.
type MetricTemplateProvider struct {
	// Type of the backend.
	// +kubebuilder:validation:Enum=prometheus;influxdb;datadog;externalmetrics;stackdriver;cloudwatch;newrelic;graphite;dynatrace;keptn;splunk
	Type string `json:"type"`
	// Address is the backend's API URL, required for influxdb, graphite,
	// dynatrace and splunk. Defaults: prometheus the canary's metricsServer or
	// -metrics-server; datadog, newrelic, stackdriver and cloudwatch (by region)
	// the vendor's API; externalmetrics the cluster's API server. keptn ignores
	// it: Keptn's objects are read on the controller's cluster.
	// +optional
	Address string `json:"address,omitempty"`
	// Headers are added to every request to the backend, by header name
	// (credentials from the secret win).
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// SecretRef names a Secret in the template's namespace with the backend's
	// credentials (keys per type, e.g. token, or username and password, for
	// prometheus).
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
	// Region of the backend (cloudwatch, required: the AWS region).
	// +optional
	Region string `json:"region,omitempty"`
	// InsecureSkipVerify skips the verification of the backend's TLS certificate.
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// SecretReference names a Secret in the same namespace.
type SecretReference struct {
	// Name of the Secret.
	Name string `json:"name"`
}

// MetricTemplateStatus is the observed state of a MetricTemplate.
type MetricTemplateStatus struct {
	// Conditions of the metric template.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
