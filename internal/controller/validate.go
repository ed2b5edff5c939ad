package controller

import (
	"errors"
	"fmt"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// validate rejects specs the schema cannot catch.
func validate(cd *flaggerv1.Canary) error {
	a := cd.GetAnalysis()
	if a == nil {
		return errors.New("spec.analysis is required")
	}
	if sa := a.SessionAffinity; sa != nil && sa.PrimaryCookieName != "" && sa.CookieName == sa.PrimaryCookieName {
		return fmt.Errorf("analysis.sessionAffinity: cookieName and primaryCookieName must differ (both %q)", sa.CookieName)
	}
	for i, w := range a.StepWeights {
		if w <= 0 || (i > 0 && w <= a.StepWeights[i-1]) {
			return fmt.Errorf("analysis.stepWeights must be positive and increasing, got %v", a.StepWeights)
		}
	}
	if cd.Spec.AutoscalerRef != nil && cd.Spec.TargetRef.Kind == "Service" {
		return errors.New("spec.autoscalerRef cannot be used with a Service target")
	}
	return nil
}
