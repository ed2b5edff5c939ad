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

	// Spec says where and how alerts are posted.
	Spec AlertProviderSpec `json:"spec"`
	// Status is the observed state of the alert provider.
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
	// Type of the chat service: slack, msteams, discord, rocket (Rocket.Chat) or
	// gchat (Google Chat).
	// +kubebuilder:validation:Enum=slack;msteams;discord;rocket;gchat
	Type string `json:"type"`
	// Channel the alerts are posted to (default general; slack, discord and
	// rocket).
	// +optional
	Channel string `json:"channel,omitempty"`
	// Username the alerts are posted as (default flagger; slack, discord and
	// rocket).
	// +optional
	Username string `json:"username,omitempty"`
	// Address is the incoming webhook URL the alerts are posted to; the
	// secretRef's address wins.
	// +optional
	Address string `json:"address,omitempty"`
	// Proxy is the URL of an HTTP(S) proxy the alerts are posted through.
	// +optional
	Proxy string `json:"proxy,omitempty"`
	// SecretRef names a Secret in the provider's namespace with the key address
	// (the webhook URL) and, for slack, optionally token (a bot token).
	// +optional
	SecretRef *SecretReference `json:"secretRef,omitempty"`
}

// AlertProviderStatus is the observed state of an AlertProvider.
type AlertProviderStatus struct {
	// Conditions of the alert provider.
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
