package canary

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

type wantCond struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

func checkCond(t *testing.T, st *flaggerv1.CanaryStatus, typ string, want *wantCond, gen int64) {
	t.Helper()
	c := flaggerv1.FindCanaryCondition(st.Conditions, typ)
	if want == nil {
		if c != nil {
			t.Errorf("%s: unexpected condition %+v", typ, *c)
		}
		return
	}
	if c == nil {
		t.Errorf("%s: missing", typ)
		return
	}
	if c.Status != want.status || c.Reason != want.reason || c.Message != want.message {
		t.Errorf("%s = %s/%s/%q, want %s/%s/%q", typ, c.Status, c.Reason, c.Message, want.status, want.reason, want.message)
	}
	if c.ObservedGeneration != gen {
		t.Errorf("%s: observedGeneration %d, want %d", typ, c.ObservedGeneration, gen)
	}
}

func TestSetConditionsPerPhase(t *testing.T) {
	const (
		initMsg     = "New Deployment detected, starting initialization."
		approvalMsg = "Waiting for approval."
		failedMsg   = "Canary analysis failed, Deployment scaled to zero."
		succeedMsg  = "Canary analysis completed successfully, promotion finished."
	)
	cases := []struct {
		phase       flaggerv1.CanaryPhase
		promoted    metav1.ConditionStatus
		message     string
		ready       metav1.ConditionStatus
		reconciling bool
		stalled     bool
	}{
		{flaggerv1.CanaryPhaseInitializing, metav1.ConditionUnknown, initMsg, metav1.ConditionUnknown, true, false},
		{flaggerv1.CanaryPhaseInitialized, metav1.ConditionTrue, "Deployment initialization completed.", metav1.ConditionTrue, false, false},
		{flaggerv1.CanaryPhaseWaiting, metav1.ConditionUnknown, approvalMsg, metav1.ConditionUnknown, true, false},
		{flaggerv1.CanaryPhaseProgressing, metav1.ConditionUnknown, "New revision detected, progressing canary analysis.", metav1.ConditionUnknown, true, false},
		{flaggerv1.CanaryPhaseWaitingPromotion, metav1.ConditionUnknown, approvalMsg, metav1.ConditionUnknown, true, false},
		{flaggerv1.CanaryPhasePromoting, metav1.ConditionUnknown, "Canary analysis completed, starting primary rolling update.", metav1.ConditionUnknown, true, false},
		{flaggerv1.CanaryPhaseFinalising, metav1.ConditionUnknown, "Canary analysis completed, routing all traffic to primary.", metav1.ConditionUnknown, true, false},
		{flaggerv1.CanaryPhaseSucceeded, metav1.ConditionTrue, succeedMsg, metav1.ConditionTrue, false, false},
		{flaggerv1.CanaryPhaseFailed, metav1.ConditionFalse, failedMsg, metav1.ConditionFalse, false, true},
	}
	for _, tc := range cases {
		t.Run(string(tc.phase), func(t *testing.T) {
			cd := newCanary()
			cd.Generation = 7
			// Start from the conditions of another phase so that stale ones must go.
			st := flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseFailed}
			SetConditions(&st, cd, "", "", t0.Add(-time.Hour))
			st.Phase = flaggerv1.CanaryPhaseProgressing
			SetConditions(&st, cd, "", "", t0.Add(-time.Minute))

			st.Phase = tc.phase
			SetConditions(&st, cd, "", "", t0)
			if st.ObservedGeneration != 7 {
				t.Errorf("observedGeneration %d, want 7", st.ObservedGeneration)
			}
			reason := string(tc.phase)
			checkCond(t, &st, flaggerv1.PromotedCondition, &wantCond{tc.promoted, reason, tc.message}, 7)
			checkCond(t, &st, flaggerv1.ReadyCondition, &wantCond{tc.ready, reason, tc.message}, 7)
			var rec, stalled *wantCond
			if tc.reconciling {
				rec = &wantCond{metav1.ConditionTrue, reason, tc.message}
			}
			if tc.stalled {
				stalled = &wantCond{metav1.ConditionTrue, "Failed", tc.message}
			}
			checkCond(t, &st, flaggerv1.ReconcilingCondition, rec, 7)
			checkCond(t, &st, flaggerv1.StalledCondition, stalled, 7)
		})
	}
}

func TestSetConditionsTargetKind(t *testing.T) {
	for _, kind := range []string{"DaemonSet", "Service"} {
		cd := newCanary(withSpec(func(s *flaggerv1.CanarySpec) { s.TargetRef.Kind = kind }))
		for phase, want := range map[flaggerv1.CanaryPhase]string{
			flaggerv1.CanaryPhaseInitializing: "New " + kind + " detected, starting initialization.",
			flaggerv1.CanaryPhaseInitialized:  kind + " initialization completed.",
			flaggerv1.CanaryPhaseFailed:       "Canary analysis failed, " + kind + " scaled to zero.",
		} {
			st := flaggerv1.CanaryStatus{Phase: phase}
			SetConditions(&st, cd, "", "", t0)
			if c := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.PromotedCondition); c == nil || c.Message != want {
				t.Errorf("%s %s: Promoted %+v, want message %q", kind, phase, c, want)
			}
		}
	}
}

func TestSetConditionsStalled(t *testing.T) {
	cd := newCanary()
	cases := []struct {
		name    string
		phase   flaggerv1.CanaryPhase
		stalled string
		want    *wantCond
	}{
		{"no phase yet", "", "primary not ready", &wantCond{metav1.ConditionTrue, "ProgressDeadlineExceeded", "primary not ready"}},
		{"no phase, not stalled", "", "", nil},
		{"Initializing past the deadline", flaggerv1.CanaryPhaseInitializing, "primary not ready", &wantCond{metav1.ConditionTrue, "ProgressDeadlineExceeded", "primary not ready"}},
		{"Progressing with a reason", flaggerv1.CanaryPhaseProgressing, "stuck", &wantCond{metav1.ConditionTrue, "ProgressDeadlineExceeded", "stuck"}},
		{"Failed with an explicit reason", flaggerv1.CanaryPhaseFailed, "primary not ready", &wantCond{metav1.ConditionTrue, "Failed", "primary not ready"}},
		{"Failed without one", flaggerv1.CanaryPhaseFailed, "", &wantCond{metav1.ConditionTrue, "Failed", "Canary analysis failed, Deployment scaled to zero."}},
		{"Succeeded", flaggerv1.CanaryPhaseSucceeded, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := flaggerv1.CanaryStatus{Phase: tc.phase}
			SetConditions(&st, cd, tc.stalled, "", t0)
			checkCond(t, &st, flaggerv1.StalledCondition, tc.want, cd.Generation)
			if tc.phase == "" {
				if c := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.PromotedCondition); c != nil {
					t.Errorf("Promoted set before any phase: %+v", *c)
				}
			}
			// Once the cause is gone, Stalled goes too (except for Failed, which stays stalled).
			st.Phase = flaggerv1.CanaryPhaseProgressing
			SetConditions(&st, cd, "", "", t0.Add(time.Minute))
			checkCond(t, &st, flaggerv1.StalledCondition, nil, cd.Generation)
		})
	}
}

func TestSetConditionsTransitionTimes(t *testing.T) {
	cd := newCanary()
	st := flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseProgressing}
	t1, t2, t3 := t0, t0.Add(time.Minute), t0.Add(2*time.Minute)
	SetConditions(&st, cd, "", "", t1)

	// Same statuses (Unknown) with another reason and message: transition times stay.
	st.Phase = flaggerv1.CanaryPhasePromoting
	SetConditions(&st, cd, "", "", t2)
	for _, typ := range []string{flaggerv1.PromotedCondition, flaggerv1.ReadyCondition, flaggerv1.ReconcilingCondition} {
		c := flaggerv1.FindCanaryCondition(st.Conditions, typ)
		if c == nil || !c.LastTransitionTime.Time.Equal(t1) {
			t.Errorf("%s moved without a status change: %+v", typ, c)
		}
		if c != nil && c.Reason != "Promoting" {
			t.Errorf("%s reason %q, want Promoting", typ, c.Reason)
		}
	}

	// A status change moves them.
	st.Phase = flaggerv1.CanaryPhaseSucceeded
	SetConditions(&st, cd, "", "", t3)
	for _, typ := range []string{flaggerv1.PromotedCondition, flaggerv1.ReadyCondition} {
		c := flaggerv1.FindCanaryCondition(st.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionTrue || !c.LastTransitionTime.Time.Equal(t3) {
			t.Errorf("%s after Succeeded: %+v", typ, c)
		}
	}
	if c := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.ReconcilingCondition); c != nil {
		t.Errorf("Reconciling left after Succeeded: %+v", *c)
	}
}

func TestSetInvalid(t *testing.T) {
	cd := newCanary()
	cd.Generation = 9
	st := flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseProgressing}
	SetConditions(&st, cd, "", "", t0.Add(-time.Minute))
	SetInvalid(&st, cd, "TargetNotFound", "deployment podinfo.test not found", t0)

	if st.ObservedGeneration != 9 {
		t.Errorf("observedGeneration %d, want 9", st.ObservedGeneration)
	}
	want := &wantCond{metav1.ConditionFalse, "TargetNotFound", "deployment podinfo.test not found"}
	checkCond(t, &st, flaggerv1.ReadyCondition, want, 9)
	checkCond(t, &st, flaggerv1.StalledCondition, &wantCond{metav1.ConditionTrue, "TargetNotFound", "deployment podinfo.test not found"}, 9)
	checkCond(t, &st, flaggerv1.ReconcilingCondition, nil, 9)
	if st.Phase != flaggerv1.CanaryPhaseProgressing {
		t.Errorf("phase changed to %s", st.Phase)
	}
	if c := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.ReadyCondition); c == nil || !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("Ready transition time: %+v", c)
	}
}

// TestSetConditionsUpdateTimes pins Flagger's lastUpdateTime: it moves with the reason or message
// (lastTransitionTime does not), with the status (as lastTransitionTime does), and not at all when
// the same decision is made again, which would otherwise write the status on every reconcile.
func TestSetConditionsUpdateTimes(t *testing.T) {
	cd := newCanary()
	st := flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseProgressing}
	t1, t2, t3, t4 := t0, t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	times := func(typ string) (transition, update time.Time) {
		t.Helper()
		c := flaggerv1.FindCanaryCondition(st.Conditions, typ)
		if c == nil {
			t.Fatalf("%s missing", typ)
		}
		return c.LastTransitionTime.Time, c.LastUpdateTime.Time
	}
	SetConditions(&st, cd, "", "", t1)
	if tr, up := times(flaggerv1.PromotedCondition); !tr.Equal(t1) || !up.Equal(t1) {
		t.Errorf("new Promoted: transition %v update %v, want both %v", tr, up, t1)
	}

	// Deciding the same again changes nothing.
	before := *st.DeepCopy()
	SetConditions(&st, cd, "", "", t2)
	if !reflect.DeepEqual(before, st) {
		t.Errorf("unchanged conditions were rewritten:\n%+v\n%+v", before.Conditions, st.Conditions)
	}

	// Another reason and message, same status: only lastUpdateTime moves.
	st.Phase = flaggerv1.CanaryPhasePromoting
	SetConditions(&st, cd, "", "", t3)
	for _, typ := range []string{flaggerv1.PromotedCondition, flaggerv1.ReadyCondition, flaggerv1.ReconcilingCondition} {
		if tr, up := times(typ); !tr.Equal(t1) || !up.Equal(t3) {
			t.Errorf("%s after Promoting: transition %v update %v, want %v and %v", typ, tr, up, t1, t3)
		}
	}

	// A status change moves both.
	st.Phase = flaggerv1.CanaryPhaseSucceeded
	SetConditions(&st, cd, "", "", t4)
	if tr, up := times(flaggerv1.PromotedCondition); !tr.Equal(t4) || !up.Equal(t4) {
		t.Errorf("Promoted after Succeeded: transition %v update %v, want both %v", tr, up, t4)
	}
}

// TestSetConditionsFillsUpdateTimeOfOldConditions: a condition written before lastUpdateTime
// existed gets its transition time, once, rather than a time that would move on every decision.
func TestSetConditionsFillsUpdateTimeOfOldConditions(t *testing.T) {
	cd := newCanary()
	st := flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseSucceeded}
	SetConditions(&st, cd, "", "", t0)
	for i := range st.Conditions {
		st.Conditions[i].LastUpdateTime = metav1.Time{}
	}
	SetConditions(&st, cd, "", "", t0.Add(time.Hour))
	for _, c := range st.Conditions {
		if !c.LastUpdateTime.Time.Equal(t0) {
			t.Errorf("%s lastUpdateTime %v, want %v", c.Type, c.LastUpdateTime, t0)
		}
	}
}
