package controller

import (
	"testing"
	"time"
)

// The next step is due one interval after the decision, however long the reconcile's writes took:
// a wait is counted from the decision, never from the reconcile's return.
func TestNextStepIsCountedFromTheDecision(t *testing.T) {
	decided := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		wait, took, want time.Duration
	}{
		{time.Minute, 0, time.Minute},
		{time.Minute, 3 * time.Second, 57 * time.Second},
		{100 * time.Millisecond, time.Second, time.Millisecond}, // overdue: at once
		{0, time.Second, 0},                                     // no requeue stays none
	} {
		r := &CanaryReconciler{Now: func() time.Time { return decided.Add(c.took) }}
		if got := r.fromNow(c.wait, decided); got != c.want {
			t.Errorf("wait %v after a reconcile of %v: requeued after %v, want %v", c.wait, c.took, got, c.want)
		}
	}
}

// A step falling due goes ahead of watch events in the work queue; a release carried on at once
// goes in line with them.
func TestDueStepsGoAheadInTheQueue(t *testing.T) {
	for _, c := range []struct {
		wait time.Duration
		want int
	}{
		{time.Minute, duePriority},
		{time.Second, duePriority},
		{100 * time.Millisecond, 0},
		{0, 0},
	} {
		res := requeue(c.wait, c.wait)
		if res.Priority == nil || *res.Priority != c.want || res.RequeueAfter != c.wait {
			t.Errorf("wait %v: %+v, want priority %d", c.wait, res, c.want)
		}
	}
}
