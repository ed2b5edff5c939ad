package cli

import (
	"fmt"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

// plan is the analysis of a canary as a list of steps: traffic weights (canary releases) or
// iterations (blue/green and A/B).
type plan struct {
	strategy string
	// weights is the canary weight of each step of a canary release.
	weights []int
	// iterations is the number of iterations of a blue/green or A/B release.
	iterations int
	interval   time.Duration
	threshold  int
}

// planOf reads the steps from the spec the way the controller walks them (internal/canary).
func planOf(cd *flaggerv1.Canary) plan {
	a := cd.GetAnalysis()
	p := plan{interval: cd.GetAnalysisInterval(0), threshold: cd.GetAnalysisThreshold()}
	if a == nil {
		return p
	}
	p.strategy = canary.Strategy(a, cd.Spec.Provider)
	if p.strategy != canary.StrategyCanary {
		p.iterations = a.Iterations
		if p.iterations < 1 && cd.Spec.Provider == canary.ProviderKubernetes {
			p.iterations = canary.DefaultKubernetesIterations
		}
		return p
	}
	if len(a.StepWeights) > 0 {
		for _, w := range a.StepWeights {
			p.weights = append(p.weights, min(100, w))
		}
		return p
	}
	maxW := a.MaxWeight
	if maxW <= 0 || maxW > 100 {
		maxW = 100
	}
	if a.StepWeight > 0 {
		for w := a.StepWeight; ; w += a.StepWeight {
			p.weights = append(p.weights, min(w, maxW))
			if w >= maxW || len(p.weights) >= 100 {
				break
			}
		}
	}
	return p
}

// steps is the number of analysis steps (0 when the spec has none).
func (p plan) steps() int {
	if p.iterations > 0 {
		return p.iterations
	}
	return len(p.weights)
}

// step is which step the status is at (1-based; 0 before the first).
func (p plan) step(st flaggerv1.CanaryStatus) int {
	if p.iterations > 0 {
		return st.Iterations
	}
	n := 0
	for i, w := range p.weights {
		if st.CanaryWeight >= w {
			n = i + 1
		}
	}
	return n
}

// analysing is true in the phases in which analysis steps run.
func analysing(ph flaggerv1.CanaryPhase) bool {
	return ph == flaggerv1.CanaryPhaseProgressing || ph == flaggerv1.CanaryPhaseWaiting ||
		ph == flaggerv1.CanaryPhaseWaitingPromotion
}

// stepColumn is "n/m" with the unit of the plan, or "-" outside an analysis.
func stepColumn(cd *flaggerv1.Canary) string {
	p := planOf(cd)
	if p.steps() == 0 || !analysing(cd.Status.Phase) {
		return "-"
	}
	return fmt.Sprintf("%d/%d", p.step(cd.Status), p.steps())
}

// nextStepAt is when the next analysis step is due: one interval after the last step (or, before
// the first, after the last transition). Zero outside Progressing.
func nextStepAt(cd *flaggerv1.Canary) time.Time {
	if cd.Status.Phase != flaggerv1.CanaryPhaseProgressing {
		return time.Time{}
	}
	base := cd.Status.LastTransitionTime.Time
	if t := cd.Status.LastStepTime; t != nil && !t.IsZero() {
		base = t.Time
	}
	if base.IsZero() {
		return time.Time{}
	}
	return base.Add(planOf(cd).interval)
}

// untilText renders the time left until t: "4s", "due" once passed, "-" for none.
func untilText(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	left := t.Sub(now).Round(time.Second)
	if left <= 0 {
		return "due"
	}
	return left.String()
}

// deadlineAt is when the progress deadline runs out for a canary that is not ready: Flagger counts
// progressDeadlineSeconds from the last transition.
func deadlineAt(cd *flaggerv1.Canary) time.Time {
	if cd.Status.LastTransitionTime.IsZero() {
		return time.Time{}
	}
	return cd.Status.LastTransitionTime.Add(time.Duration(cd.GetProgressDeadlineSeconds()) * time.Second)
}
