package notify

import (
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestMessageFields(t *testing.T) {
	deadline := int32(120)
	cases := []struct {
		name     string
		analysis *flaggerv1.CanaryAnalysis
		routing  string
	}{
		{"step weight", &flaggerv1.CanaryAnalysis{Threshold: 5, StepWeight: 10, MaxWeight: 50}, "Weight step: 10 max: 50"},
		{"step weights", &flaggerv1.CanaryAnalysis{Threshold: 5, StepWeights: []int{1, 2, 10, 80}, MaxWeight: 80}, "Weight steps: 1,2,10,80 max: 80"},
		{"A/B", &flaggerv1.CanaryAnalysis{Threshold: 5, Iterations: 10, Match: []flaggerv1.ABMatch{{}}}, "A/B Testing"},
		{"blue/green", &flaggerv1.CanaryAnalysis{Threshold: 5, Iterations: 10}, "Blue/Green"},
	}
	for _, c := range cases {
		cd := testCanary()
		cd.Spec.Analysis = c.analysis
		cd.Spec.ProgressDeadlineSeconds = &deadline
		m := NewMessage(cd, flaggerv1.SeverityInfo, "hello", "prod-eu", true)
		equal(t, c.name+" fields", m.Fields, []Field{
			{Name: "Cluster", Value: "prod-eu"},
			{Name: "Target", Value: "Deployment/podinfo.test"},
			{Name: "Failed checks threshold", Value: "5"},
			{Name: "Progress deadline", Value: "120s"},
			{Name: "Traffic routing", Value: c.routing},
		})
		equal(t, "subject", m.Subject(), "podinfo.test")
	}

	// Defaults, no routing, no analysis at all.
	cd := testCanary()
	cd.Spec.Analysis = nil
	m := NewMessage(cd, flaggerv1.SeverityError, "x", "", true)
	equal(t, "defaults", m.Fields, []Field{
		{Name: "Target", Value: "Deployment/podinfo.test"},
		{Name: "Failed checks threshold", Value: "1"},
		{Name: "Progress deadline", Value: "600s"},
	})
	// Without metadata only the cluster remains.
	equal(t, "no metadata", NewMessage(testCanary(), "info", "x", "c1", false).Fields, []Field{{Name: "Cluster", Value: "c1"}})
	equal(t, "nothing", len(NewMessage(testCanary(), "info", "x", "", false).Fields), 0)
}

func TestFlaggerMetadata(t *testing.T) {
	for text, want := range map[string]bool{
		"New revision detected, progressing canary analysis.":                 true,
		"New Deployment detected, initialization completed.":                  true,
		"New DaemonSet detected, initialization completed.":                   true,
		"Canary analysis completed successfully, promotion finished.":         false,
		"Failed checks threshold reached 5":                                   false,
		"Canary is waiting for approval.":                                     false,
		"Progress deadline exceeded canary deployment podinfo.test not ready": false,
	} {
		equal(t, text, FlaggerMetadata(flaggerv1.SeverityInfo, text), want)
	}
}

func TestSeverityFilter(t *testing.T) {
	// rows: the alert's severity; columns: the message's info, warn, error.
	table := map[flaggerv1.AlertSeverity][3]bool{
		"":      {true, true, true},
		"info":  {true, true, true},
		"warn":  {false, true, true},
		"error": {false, false, true},
	}
	for filter, want := range table {
		for i, sev := range severities {
			equal(t, "alert "+string(filter)+" receives "+string(sev), Matches(filter, sev), want[i])
		}
	}
}
