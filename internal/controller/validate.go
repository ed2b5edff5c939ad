package controller

import (
	"errors"
	"fmt"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/analysis"
	"github.com/pennant/pennant/internal/canary"
)

// validate rejects specs the schema cannot catch. With noCrossNamespaceRefs (Flagger's
// -no-cross-namespace-refs) it also refuses every reference outside the canary's namespace, so that
// nothing in another tenant's namespace is read or called.
func validate(cd *flaggerv1.Canary, provider string, noCrossNamespaceRefs bool) error {
	a := cd.GetAnalysis()
	if a == nil {
		return errors.New("spec.analysis is required")
	}
	if sa := a.SessionAffinity; sa != nil && sa.PrimaryCookieName != "" && sa.CookieName == sa.PrimaryCookieName {
		return fmt.Errorf("analysis.sessionAffinity: cookieName and primaryCookieName must differ (both %q)", sa.CookieName)
	}
	// Canaries admitted before the schema refused negative numbers: a negative weight or count
	// would loop or route a negative share.
	for field, v := range map[string]int{"stepWeight": a.StepWeight, "maxWeight": a.MaxWeight,
		"stepWeightPromotion": a.StepWeightPromotion, "iterations": a.Iterations, "threshold": a.Threshold} {
		if v < 0 {
			return fmt.Errorf("analysis.%s must not be negative, got %d", field, v)
		}
	}
	if a.MirrorWeight < 0 || a.MirrorWeight > 100 {
		return fmt.Errorf("analysis.mirrorWeight must be within 0..100, got %d", a.MirrorWeight)
	}
	for i, w := range a.StepWeights {
		if w <= 0 || (i > 0 && w <= a.StepWeights[i-1]) {
			return fmt.Errorf("analysis.stepWeights must be positive and increasing, got %v", a.StepWeights)
		}
	}
	if err := neverAdvances(cd, a, provider); err != nil {
		return err
	}
	if err := durations(a); err != nil {
		return err
	}
	if err := judges(a, provider); err != nil {
		return err
	}
	if cd.Spec.AutoscalerRef != nil && cd.Spec.TargetRef.Kind == "Service" {
		return errors.New("spec.autoscalerRef cannot be used with a Service target")
	}
	if noCrossNamespaceRefs {
		return crossNamespaceRef(cd)
	}
	return nil
}

// neverAdvances refuses a weighted analysis that adds no weight: without a positive stepWeight,
// stepWeights or positive iterations it stays at weight 0 forever. The kubernetes provider runs it
// as blue/green and skipAnalysis never runs it. p is the canary's provider: spec.provider or, without
// it, the -mesh-provider flag (which admission cannot know: only this check refuses such a canary).
func neverAdvances(cd *flaggerv1.Canary, a *flaggerv1.CanaryAnalysis, p string) error {
	if cd.Spec.SkipAnalysis || p == "" || p == canary.ProviderKubernetes {
		return nil
	}
	if a.Iterations > 0 || a.StepWeight > 0 || len(a.StepWeights) > 0 {
		return nil
	}
	return fmt.Errorf("the analysis never advances: it needs a positive stepWeight, stepWeights or iterations "+
		"(only the kubernetes provider runs without, as blue/green; provider is %s)", p)
}

// durations refuses an analysis interval, metric interval or webhook timeout that is not a Go
// duration, or is negative (admission refuses both too). Flagger would silently use the default instead, which hides
// a typo such as 1m30 for the whole release.
func durations(a *flaggerv1.CanaryAnalysis) error {
	check := func(field, s string) error {
		if s == "" {
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%s: %q is not a Go duration such as 30s, 1m or 1m30s", field, s)
		}
		if d < 0 {
			return fmt.Errorf("%s: %q must not be negative", field, s)
		}
		return nil
	}
	if err := check("analysis.interval", a.Interval); err != nil {
		return err
	}
	for i, m := range a.Metrics {
		if err := check(fmt.Sprintf("analysis.metrics[%d].interval", i), m.Interval); err != nil {
			return err
		}
	}
	for i, w := range a.Webhooks {
		if err := check(fmt.Sprintf("analysis.webhooks[%d].timeout", i), w.Timeout); err != nil {
			return err
		}
	}
	return nil
}

// judges refuses a comparative judge that cannot work: a metric other than the builtin ones,
// settings out of range, or a provider whose metrics do not tell the versions apart.
func judges(a *flaggerv1.CanaryAnalysis, provider string) error {
	for i, m := range a.Metrics {
		if m.Judge == nil {
			continue
		}
		field := fmt.Sprintf("analysis.metrics[%d].judge", i)
		if _, err := analysis.JudgeSettings(m); err != nil {
			return fmt.Errorf("%s: %v", field, err)
		}
		if why := analysis.JudgeSupported(m, provider); why != "" {
			return fmt.Errorf("%s: %s", field, why)
		}
	}
	return nil
}

// crossNamespaceRef names the first reference whose namespace is set and differs from the canary's.
// An empty namespace means the canary's own, as in Flagger.
func crossNamespaceRef(cd *flaggerv1.Canary) error {
	foreign := func(ns string) bool { return ns != "" && ns != cd.Namespace }
	refused := func(field, ns string) error {
		return fmt.Errorf("%s: namespace %q differs from the canary's %q and -no-cross-namespace-refs is set", field, ns, cd.Namespace)
	}
	if u := cd.Spec.UpstreamRef; u != nil && foreign(u.Namespace) {
		return refused("spec.upstreamRef", u.Namespace)
	}
	a := cd.GetAnalysis()
	if a == nil {
		return nil
	}
	for i, m := range a.Metrics {
		if m.TemplateRef != nil && foreign(m.TemplateRef.Namespace) {
			return refused(fmt.Sprintf("analysis.metrics[%d].templateRef", i), m.TemplateRef.Namespace)
		}
	}
	for i, al := range a.Alerts {
		if foreign(al.ProviderRef.Namespace) {
			return refused(fmt.Sprintf("analysis.alerts[%d].providerRef", i), al.ProviderRef.Namespace)
		}
	}
	return nil
}
