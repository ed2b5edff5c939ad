package v1beta1

import (
	"encoding/json"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The step time survives the status round trip to the microsecond: whole seconds would let the
// first step after a restart run up to a second before its interval is over.
func TestLastStepTimeKeepsSubSecondPrecision(t *testing.T) {
	step := time.Date(2026, 12, 2, 21, 54, 45, 987654000, time.UTC)
	in := CanaryStatus{LastStepTime: &metav1.MicroTime{Time: step}}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out CanaryStatus
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.LastStepTime == nil || !out.LastStepTime.Time.Equal(step) {
		t.Errorf("lastStepTime %s came back as %v", data, out.LastStepTime)
	}
}
