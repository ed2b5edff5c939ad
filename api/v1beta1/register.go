package v1beta1

func init() {
	SchemeBuilder.Register(&Canary{}, &CanaryList{}, &MetricTemplate{}, &MetricTemplateList{},
		&AlertProvider{}, &AlertProviderList{})
}
