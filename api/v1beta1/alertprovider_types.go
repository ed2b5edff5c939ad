package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlertProvider is a chat service that receives canary alerts.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=all
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
type AlertProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec AlertProviderSpec `json:"spec"`
	// +optional
	Status AlertProviderStatus `json:"status,omitempty"`
}

// AlertProviderList is a list of alert providers.
// +kubebuilder:object:root=true
type AlertProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlertProvider `json:"items"`
}

// AlertProviderSpec says where and how alerts are posted.
// +kubebuilder:validation:XValidation:rule="has(self.address) || has(self.secretRef)",message="an alert provider needs an address or a secretRef"
type AlertProviderSpec struct {
	// +kubebuilder:validation:Enum=slack;msteams;discord;rocket;gchat
	Type string `json:"type"`
	// Channel defaults to general.
	// +optional
	Channel string `json:"channel,omitempty"`
	// Username defaults to flagger.
	// +optional
	Username string `json:"username,omitempty"`
	// Address is the webhook URL.
	// +optional
	Address string `json:"address,omitempty"`
	// +optional
	Proxy string `json:"proxy,omitempty"`
	// SecretRef names a Secret with the keys address and, optionally, token.
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// AlertProviderStatus is the observed state of an AlertProvider.
type AlertProviderStatus struct {
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
