// Package v1beta1 holds the flagger.app/v1beta1 API: Canary, MetricTemplate and AlertProvider.
// It is wire-compatible with Flagger's API so that existing manifests apply unchanged.
// +kubebuilder:object:generate=true
// +groupName=flagger.app
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of Pennant's (and Flagger's) resources.
	GroupVersion = schema.GroupVersion{Group: "flagger.app", Version: "v1beta1"}

	// SchemeBuilder registers the types of this package with a runtime scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Canary{}, &CanaryList{}, &MetricTemplate{}, &MetricTemplateList{},
		&AlertProvider{}, &AlertProviderList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
