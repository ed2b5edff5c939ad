package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetricTemplate is a query against a metrics backend, referenced by canary metric checks.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider.type`
type MetricTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec MetricTemplateSpec `json:"spec"`
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
	Provider MetricTemplateProvider `json:"provider"`
	Query    string                 `json:"query"`
}

// MetricTemplateProvider is the backend a template queries.
type MetricTemplateProvider struct {
	// +kubebuilder:validation:Enum=prometheus;influxdb;datadog;externalmetrics;stackdriver;cloudwatch;newrelic;graphite;dynatrace;keptn;splunk
	Type string `json:"type"`
	// +optional
	Address string `json:"address,omitempty"`
	// +optional
	Headers map[string][]string `json:"headers,omitempty"`
	// SecretRef names a Secret with the provider's credentials.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
	// +optional
	Region string `json:"region,omitempty"`
	// +optional
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// SecretReference names a Secret in the same namespace.
type SecretReference struct {
	Name string `json:"name"`
}

// MetricTemplateStatus is the observed state of a MetricTemplate.
type MetricTemplateStatus struct {
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
