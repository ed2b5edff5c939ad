package canary

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestLastChecksRecordEachStep(t *testing.T) {
	hooks := withHooks(hook("load", flaggerv1.RolloutHook))
	rate := func(v string, r flaggerv1.CanaryCheckOutcome) flaggerv1.CanaryCheckResult {
		return flaggerv1.CanaryCheckResult{Kind: flaggerv1.MetricCheck, Name: "request-success-rate", Value: v, Result: r}
	}
	earlier := metav1.NewTime(t0.Add(-time.Minute))
	at := func(c flaggerv1.CanaryCheckResult, when metav1.Time) flaggerv1.CanaryCheckResult {
		c.Time = when
		return c
	}
	progressing := func(checks ...flaggerv1.CanaryCheckResult) *flaggerv1.Canary {
		st := status(flaggerv1.CanaryPhaseProgressing, 5, 0, 0)
		st.LastChecks = checks
		return newCanary(hooks, withStatus(st))
	}
	loadPassed := flaggerv1.CanaryCheckResult{Kind: flaggerv1.WebhookCheck, Name: "load", Result: flaggerv1.CheckPassed}
	duration := flaggerv1.CanaryCheckResult{Kind: flaggerv1.MetricCheck, Name: "request-duration", Value: "120ms", Result: flaggerv1.CheckPassed}
	lastChecks := func(want ...flaggerv1.CanaryCheckResult) func(*testing.T, *flaggerv1.Canary, Decision) {
		return func(t *testing.T, _ *flaggerv1.Canary, d Decision) {
			t.Helper()
			if !reflect.DeepEqual(d.Status.LastChecks, want) {
				t.Errorf("lastChecks:\n got  %+v\n want %+v", d.Status.LastChecks, want)
			}
		}
	}
	now := metav1.NewTime(t0)

	runCases(t, []tcase{
		{
			name:   "a passing step records the webhook and every metric with its value",
			canary: progressing(),
			checks: fakeChecks{results: []flaggerv1.CanaryCheckResult{rate("99.87%", flaggerv1.CheckPassed), duration}},
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 10,
			actions: advanceWeight(10),
			calls:   []string{"rollout", "analyze"},
			ticked:  true, requeue: interval,
			check: lastChecks(at(loadPassed, now), at(rate("99.87%", flaggerv1.CheckPassed), now), at(duration, now)),
		},
		{
			name:   "a failing metric replaces its own result; the metric not checked after it keeps its earlier one",
			canary: progressing(at(loadPassed, earlier), at(rate("99.87%", flaggerv1.CheckPassed), earlier), at(duration, earlier)),
			checks: fakeChecks{analyze: analyzeFails(metricErr), results: []flaggerv1.CanaryCheckResult{rate("69.17%", flaggerv1.CheckFailed)}},
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 5, failedChecks: 1,
			actions: []string{"Warning: " + metricErr},
			calls:   []string{"rollout", "analyze"},
			ticked:  true, requeue: interval,
			check: lastChecks(at(loadPassed, now), at(rate("69.17%", flaggerv1.CheckFailed), now), at(duration, earlier)),
		},
		{
			name:   "a failing webhook is recorded with its error, and no metric runs",
			canary: progressing(),
			checks: fakeChecks{fail: map[string]string{"load": hookErr}},
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 5, failedChecks: 1,
			actions: []string{"Warning: Halt podinfo.test advancement external check load failed " + hookErr},
			calls:   []string{"rollout"},
			ticked:  true, requeue: interval,
			check: lastChecks(flaggerv1.CanaryCheckResult{Kind: flaggerv1.WebhookCheck, Name: "load", Result: flaggerv1.CheckFailed, Message: hookErr, Time: now}),
		},
		{
			name:   "a step not due records nothing",
			canary: progressing(at(rate("99.87%", flaggerv1.CheckPassed), earlier)),
			obs:    func(o *Observation) { o.LastTick = t0.Add(-20 * time.Second) },
			checks: fakeChecks{results: []flaggerv1.CanaryCheckResult{rate("1%", flaggerv1.CheckFailed)}},
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 5,
			requeue: 40 * time.Second,
			check:   allOf(unchangedStatus, lastChecks(at(rate("99.87%", flaggerv1.CheckPassed), earlier))),
		},
		{
			name:    "a new revision clears the results of the release before",
			canary:  progressing(at(rate("99.87%", flaggerv1.CheckPassed), earlier)),
			obs:     func(o *Observation) { o.Revision = "rev3" },
			phase:   flaggerv1.CanaryPhaseProgressing,
			actions: []string{"SetRoutes 100/0", restartEvent},
			requeue: continueSoon,
			check:   lastChecks(),
		},
	})
}

// The comparative judge's fail rolls back at once: its false-rollback rate already bounds the
// error, so the failed checks threshold is not waited for. Its hold counts no failure.
func TestJudgedVerdicts(t *testing.T) {
	worse := "Halt podinfo.test advancement canary error rate 5% vs primary 0.5%, +4.5 pp [2.27, 7.59], exceeds +1 pp: fail"
	shared := "Halt podinfo.test advancement canary error rate 12% vs primary 12%, +0 pp [-4.9, 6.26], the primary degrades too (a shared cause): hold"
	progressing := newCanary(withStatus(status(flaggerv1.CanaryPhaseProgressing, 10, 0, 0)))
	runCases(t, []tcase{
		{
			name:   "fail: rollback on the first failed check",
			canary: progressing,
			checks: fakeChecks{analyze: func(int) error { return &RollbackError{Message: worse} }},
			phase:  flaggerv1.CanaryPhaseFailed, failedChecks: 1,
			actions: concat([]string{
				"Warning: " + worse,
				"Warning: Rolling back podinfo.test canary judged worse than the primary",
				"Alert error: Canary judged worse than the primary",
			}, rollbackActions()),
			calls:   []string{"analyze"},
			ticked:  true,
			outcome: OutcomeFailed,
		},
		{
			name:   "hold: the weight stays, no failed check",
			canary: progressing,
			checks: fakeChecks{analyze: func(int) error { return &HoldError{Message: shared} }},
			phase:  flaggerv1.CanaryPhaseProgressing, weight: 10,
			actions: []string{"Warning: " + shared},
			calls:   []string{"analyze"},
			ticked:  true, requeue: interval,
		},
	})
}
