package v1beta1

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GetAnalysis returns spec.analysis, falling back to the deprecated spec.canaryAnalysis.
func (c *Canary) GetAnalysis() *CanaryAnalysis {
	if c.Spec.Analysis != nil {
		return c.Spec.Analysis
	}
	return c.Spec.CanaryAnalysis
}

// GetServiceName is the apex Service name: spec.service.name or the target name.
func (c *Canary) GetServiceName() string {
	if c.Spec.Service.Name != "" {
		return c.Spec.Service.Name
	}
	return c.Spec.TargetRef.Name
}

// GetServiceNames returns the apex, primary and canary Service names.
func (c *Canary) GetServiceNames() (apex, primary, canary string) {
	apex = c.GetServiceName()
	return apex, apex + "-primary", apex + "-canary"
}

// GetProgressDeadlineSeconds returns the readiness deadline, 600 by default.
func (c *Canary) GetProgressDeadlineSeconds() int {
	if c.Spec.ProgressDeadlineSeconds != nil {
		return int(*c.Spec.ProgressDeadlineSeconds)
	}
	return ProgressDeadlineSeconds
}

// GetAnalysisInterval returns the analysis tick: 60s by default or when unparsable, never under min.
func (c *Canary) GetAnalysisInterval(min time.Duration) time.Duration {
	a := c.GetAnalysis()
	if a == nil || a.Interval == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(a.Interval)
	if err != nil {
		return time.Minute
	}
	if d < min {
		return min
	}
	return d
}

// GetAnalysisThreshold returns the failed checks threshold, 1 by default.
func (c *Canary) GetAnalysisThreshold() int {
	if a := c.GetAnalysis(); a != nil && a.Threshold > 0 {
		return a.Threshold
	}
	return DefaultThreshold
}

// GetAnalysisPrimaryReadyThreshold returns the share of primary replicas that must be available.
func (c *Canary) GetAnalysisPrimaryReadyThreshold() int {
	if a := c.GetAnalysis(); a != nil && a.PrimaryReadyThreshold != nil {
		return *a.PrimaryReadyThreshold
	}
	return DefaultReadyThreshold
}

// GetAnalysisCanaryReadyThreshold returns the share of canary replicas that must be available.
func (c *Canary) GetAnalysisCanaryReadyThreshold() int {
	if a := c.GetAnalysis(); a != nil && a.CanaryReadyThreshold != nil {
		return *a.CanaryReadyThreshold
	}
	return DefaultReadyThreshold
}

// GetMetricInterval returns the metric window, 1m by default.
func (m CanaryMetric) GetMetricInterval() string {
	if m.Interval == "" {
		return MetricInterval
	}
	return m.Interval
}

// Key is name.namespace, the way Flagger names a canary in events and logs.
func (c *Canary) Key() string {
	return fmt.Sprintf("%s.%s", c.Name, c.Namespace)
}

// SkipAnalysis reports whether new revisions are promoted without analysis.
func (c *Canary) SkipAnalysis() bool {
	return c.Spec.SkipAnalysis || c.GetAnalysis() == nil
}

// OwnerReference makes the canary the controller of an object it generates, so that deleting the
// Canary garbage-collects it.
func (c *Canary) OwnerReference() metav1.OwnerReference {
	controller := true
	return metav1.OwnerReference{
		APIVersion:         GroupVersion.String(),
		Kind:               CanaryKind,
		Name:               c.Name,
		UID:                c.UID,
		Controller:         &controller,
		BlockOwnerDeletion: &controller,
	}
}

// KnativePrimaryRevisionAnnotation on a Knative Service target names the revision serving as primary.
const KnativePrimaryRevisionAnnotation = "flagger.app/primary-revision"

// IsKnativeTarget reports whether the target is a Knative Service.
func (c *Canary) IsKnativeTarget() bool {
	return c.Spec.TargetRef.Kind == "Service" && strings.HasPrefix(c.Spec.TargetRef.APIVersion, "serving.knative.dev/")
}

// HookType is the webhook's type, rollout when unset (as in Flagger).
func (w CanaryWebhook) HookType() HookType {
	if w.Type == "" {
		return RolloutHook
	}
	return w.Type
}

// WebhooksOf lists the canary's webhooks of a type, in spec order.
func (c *Canary) WebhooksOf(hook HookType) []CanaryWebhook {
	a := c.GetAnalysis()
	if a == nil {
		return nil
	}
	var out []CanaryWebhook
	for _, w := range a.Webhooks {
		if w.HookType() == hook {
			out = append(out, w)
		}
	}
	return out
}
