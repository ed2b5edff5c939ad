package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// A weighted release in progress, with the controller's event texts, rendered by get, status and
// explain at a fixed time: steps, the next step's countdown, metrics against thresholds, webhooks
// and gates. (The commands against the control plane are tested in commands_test.go.)
func TestTimelineOfAWeightedReleaseInProgress(t *testing.T) {
	now := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) metav1.Time { return metav1.NewTime(now.Add(-ago)) }
	cd := &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test", Generation: 2},
		Spec: flaggerv1.CanarySpec{
			Provider:  "istio",
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Analysis: &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 5, StepWeights: []int{5, 10, 25, 50},
				Metrics: []flaggerv1.CanaryMetric{
					{Name: "request-success-rate", Threshold: 99, Interval: "1m"},
					{Name: "request-duration", Threshold: 500, Interval: "1m"},
					{Name: "error-rate", Query: `sum(rate(errors_total[1m]))`, ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: ptr.To(1.0)}},
				},
				Webhooks: []flaggerv1.CanaryWebhook{
					{Name: "smoke", Type: flaggerv1.PreRolloutHook, URL: "http://flagger-loadtester.test/"},
					{Name: "load", URL: "http://flagger-loadtester.test/"},
					{Name: "approve-promotion", Type: flaggerv1.ConfirmPromotionHook, URL: "http://flagger-loadtester.test/gate/check"},
				}},
		},
		Status: flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseProgressing, CanaryWeight: 10, FailedChecks: 1,
			LastAppliedSpec: "5ea9991f0c2a4b1e", LastPromotedSpec: "0b3d77aa91c0e2f4", ObservedGeneration: 2,
			LastTransitionTime: at(40 * time.Second), LastStepTime: ptr.To(metav1.NewMicroTime(now.Add(-40 * time.Second))),
			LastChecks: []flaggerv1.CanaryCheckResult{
				{Kind: flaggerv1.WebhookCheck, Name: "load", Result: flaggerv1.CheckPassed, Time: at(40 * time.Second)},
				{Kind: flaggerv1.MetricCheck, Name: "request-success-rate", Value: "99.91%", Result: flaggerv1.CheckPassed, Time: at(40 * time.Second)},
				{Kind: flaggerv1.MetricCheck, Name: "request-duration", Value: "212ms", Result: flaggerv1.CheckPassed, Time: at(40 * time.Second)},
				{Kind: flaggerv1.MetricCheck, Name: "error-rate", Result: flaggerv1.CheckNoData, Time: at(40 * time.Second),
					Message: "no value: skipped (noDataPolicy skip)"},
			}},
	}
	ev := func(ago time.Duration, typ, msg string) corev1.Event {
		return corev1.Event{Type: typ, Message: msg, LastTimestamp: at(ago)}
	}
	evs := []corev1.Event{
		ev(10*time.Minute, "Normal", "Initialization done! podinfo.test"),
		ev(3*time.Minute, "Normal", "New revision detected! Scaling up podinfo.test"),
		ev(150*time.Second, "Normal", "Starting canary analysis for podinfo.test"),
		ev(150*time.Second, "Normal", "Pre-rollout check smoke passed"),
		ev(150*time.Second, "Normal", "Advance podinfo.test canary weight 5"),
		ev(100*time.Second, "Warning", "Halt podinfo.test advancement success rate 97.12% < 99%"),
		ev(40*time.Second, "Normal", "Advance podinfo.test canary weight 10"),
	}
	e := (&Env{Namespace: "test", Now: func() time.Time { return now }}).withDefaults()

	var out bytes.Buffer
	if err := e.writeTable(&out, []flaggerv1.Canary{*cd}); err != nil {
		t.Fatal(err)
	}
	golden(t, "get-progressing.golden", out.String())
	out.Reset()
	if err := e.writeStatus(&out, cd, evs); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-progressing.golden", out.String())

	// A status without lastChecks (written by Flagger) shows the failures its events report.
	flaggers := cd.DeepCopy()
	flaggers.Status.LastChecks = nil
	out.Reset()
	if err := e.writeStatus(&out, flaggers, evs); err != nil {
		t.Fatal(err)
	}
	if want := "request-success-rate  ≥ 99%    -  failed 100s ago: 97.12% < 99%"; !strings.Contains(out.String(), want) {
		t.Errorf("status of a Flagger status lacks %q:\n%s", want, out.String())
	}

	lines := explain(facts{cd: cd, events: evs, now: now, age: e.Age,
		queries: map[string]string{"request-success-rate": "builtin query of the mesh provider"}})
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"Canary podinfo.test is Progressing at 10% of the traffic, step 2/4, next step in 20s; 1 of 5 failed checks before a rollback.",
		`The metric "request-success-rate" failed 100s ago: 97.12% < 99%, threshold ≥ 99%. Query: builtin query of the mesh provider`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("explain lacks %q:\n%s", want, got)
		}
	}

	// A release waiting for a slot says so.
	queued := cd.DeepCopy()
	queued.Status.Phase = flaggerv1.CanaryPhaseWaiting
	queued.Status.Conditions = []flaggerv1.CanaryCondition{{Condition: metav1.Condition{Type: flaggerv1.ReconcilingCondition,
		Reason: flaggerv1.ReleaseQueuedReason, Message: "Release queued: 3 releases in flight, the controller's limit (-max-concurrent-releases)."}}}
	got = strings.Join(explain(facts{cd: queued, events: evs, now: now, age: e.Age}), "\n")
	if want := "- Release queued: 3 releases in flight, the controller's limit (-max-concurrent-releases). It starts"; !strings.Contains(got, want) {
		t.Errorf("explain lacks %q:\n%s", want, got)
	}

	// A judged metric's verdict comes from status.lastChecks: its events are not threshold halts.
	judged := cd.DeepCopy()
	judged.Spec.Analysis.Metrics[0].Judge = &flaggerv1.CanaryMetricJudge{}
	held := "canary error rate 12% vs primary 12%, +0 pp [-4.9, 6.26], the primary degrades too (a shared cause): hold"
	judged.Status.LastChecks[1] = flaggerv1.CanaryCheckResult{Kind: flaggerv1.MetricCheck, Name: "request-success-rate",
		Value: "88.00% vs 88.00%", Result: flaggerv1.CheckHeld, Time: at(40 * time.Second), Message: held}
	got = strings.Join(explain(facts{cd: judged, events: append(evs, ev(40*time.Second, "Warning", "Halt podinfo.test advancement "+held)), now: now, age: e.Age}), "\n")
	if want := `The metric "request-success-rate", judged against the primary 40s ago, holds the release (no step, no failed check): ` + held; !strings.Contains(got, want) {
		t.Errorf("explain lacks %q:\n%s", want, got)
	}
	judged.Status.LastChecks[1].Result, judged.Status.LastChecks[1].Message = flaggerv1.CheckFailed, "canary error rate 5% vs primary 0.5%, +4.5 pp [2.27, 7.59], exceeds +1 pp: fail"
	got = strings.Join(explain(facts{cd: judged, events: evs, now: now, age: e.Age}), "\n")
	if want := `The metric "request-success-rate", judged against the primary 40s ago, failed: canary error rate 5% vs primary 0.5%, +4.5 pp [2.27, 7.59], exceeds +1 pp: fail`; !strings.Contains(got, want) {
		t.Errorf("explain lacks %q:\n%s", want, got)
	}
}
