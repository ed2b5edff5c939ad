package canary

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// recordChecks keeps the results of this step's checks in status.lastChecks, stamped with the
// step's time: each replaces the earlier result of the same metric or webhook, the others stay
// (the metrics after a failed one are not checked). Only analysis steps call it, whose status
// write happens anyway, so the values cost no API request of their own.
func (m *machine) recordChecks(results []flaggerv1.CanaryCheckResult) {
	if len(results) == 0 {
		return
	}
	now := metav1.NewTime(m.in.Now)
	checks := m.d.Status.LastChecks
	for _, r := range results {
		r.Time = now
		if earlier := flaggerv1.FindCheckResult(checks, r.Kind, r.Name); earlier != nil {
			*earlier = r
		} else {
			checks = append(checks, r)
		}
	}
	m.d.Status.LastChecks = checks
}

// webhookResults are the outcomes of webhook calls as check results.
func webhookResults(hooks []HookResult) []flaggerv1.CanaryCheckResult {
	out := make([]flaggerv1.CanaryCheckResult, 0, len(hooks))
	for _, h := range hooks {
		r := flaggerv1.CanaryCheckResult{Kind: flaggerv1.WebhookCheck, Name: h.Name, Result: flaggerv1.CheckPassed}
		if h.Err != nil {
			r.Result, r.Message = flaggerv1.CheckFailed, h.Err.Error()
		}
		out = append(out, r)
	}
	return out
}
