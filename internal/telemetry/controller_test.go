package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestReleasesInFlightAreCountedFromTheCache(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := flaggerv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	inPhase := func(name string, ph flaggerv1.CanaryPhase) *flaggerv1.Canary {
		cd := newCanary("test", name, name, progressive())
		cd.Status.Phase = ph
		return cd
	}
	queued := func(name string) *flaggerv1.Canary {
		cd := inPhase(name, flaggerv1.CanaryPhaseWaiting)
		cd.Status.Conditions = []flaggerv1.CanaryCondition{{Condition: metav1.Condition{Type: flaggerv1.ReconcilingCondition, Reason: flaggerv1.ReleaseQueuedReason}}}
		return cd
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		inPhase("a", flaggerv1.CanaryPhaseProgressing), inPhase("b", flaggerv1.CanaryPhaseWaitingPromotion),
		inPhase("c", flaggerv1.CanaryPhaseFinalising), inPhase("d", flaggerv1.CanaryPhaseSucceeded),
		inPhase("e", flaggerv1.CanaryPhaseSucceeded), inPhase("f", ""), queued("g"), inPhase("h", flaggerv1.CanaryPhaseWaiting),
	).Build()
	reg := prometheus.NewRegistry()
	if err := RegisterPhaseCollector(reg, c); err != nil {
		t.Fatal(err)
	}
	want := `# HELP pennant_canaries Canaries this controller owns, by phase.
# TYPE pennant_canaries gauge
pennant_canaries{phase="Finalising"} 1
pennant_canaries{phase="New"} 1
pennant_canaries{phase="Progressing"} 1
pennant_canaries{phase="Succeeded"} 2
pennant_canaries{phase="Waiting"} 2
pennant_canaries{phase="WaitingPromotion"} 1
# HELP pennant_releases_in_flight Releases under way: canaries Progressing, WaitingPromotion, Promoting or Finalising.
# TYPE pennant_releases_in_flight gauge
pennant_releases_in_flight 3
# HELP pennant_releases_queued Releases waiting for a free slot (-max-concurrent-releases).
# TYPE pennant_releases_queued gauge
pennant_releases_queued 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pennant_canaries", "pennant_releases_in_flight", "pennant_releases_queued"); err != nil {
		t.Error(err)
	}
}

func TestStepLateness(t *testing.T) {
	r, reg := newRecorder(t)
	r.ObserveStepLateness(30 * time.Millisecond)
	r.ObserveStepLateness(3 * time.Second)
	r.ObserveStepLateness(-time.Second) // a clock step back: on time
	if n := testutil.CollectAndCount(reg, "pennant_analysis_step_lateness_seconds"); n != 1 {
		t.Fatalf("%d series, want one for the whole controller", n)
	}
	want := `# HELP pennant_analysis_step_lateness_seconds How long after it was due each analysis step began.
# TYPE pennant_analysis_step_lateness_seconds histogram
pennant_analysis_step_lateness_seconds_bucket{le="0.005"} 1
pennant_analysis_step_lateness_seconds_bucket{le="0.01"} 1
pennant_analysis_step_lateness_seconds_bucket{le="0.025"} 1
pennant_analysis_step_lateness_seconds_bucket{le="0.05"} 2
pennant_analysis_step_lateness_seconds_bucket{le="0.1"} 2
pennant_analysis_step_lateness_seconds_bucket{le="0.25"} 2
pennant_analysis_step_lateness_seconds_bucket{le="0.5"} 2
pennant_analysis_step_lateness_seconds_bucket{le="1"} 2
pennant_analysis_step_lateness_seconds_bucket{le="2.5"} 2
pennant_analysis_step_lateness_seconds_bucket{le="5"} 3
pennant_analysis_step_lateness_seconds_bucket{le="10"} 3
pennant_analysis_step_lateness_seconds_bucket{le="30"} 3
pennant_analysis_step_lateness_seconds_bucket{le="60"} 3
pennant_analysis_step_lateness_seconds_bucket{le="+Inf"} 3
pennant_analysis_step_lateness_seconds_sum 3.03
pennant_analysis_step_lateness_seconds_count 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pennant_analysis_step_lateness_seconds"); err != nil {
		t.Error(err)
	}
}
