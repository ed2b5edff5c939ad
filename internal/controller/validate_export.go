package controller

import flaggerv1 "github.com/pennant/pennant/api/v1beta1"

// Validate is the controller's own check of a canary spec, beyond the CRD schema (see validate), for
// offline use such as `kubectl pennant lint`. provider is the canary's spec.provider or the
// controller's -mesh-provider; "" skips the checks that depend on it.
func Validate(cd *flaggerv1.Canary, provider string) error {
	if cd.Spec.Provider != "" {
		provider = cd.Spec.Provider
	}
	return validate(cd, provider, false)
}
