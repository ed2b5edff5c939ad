package canary

import flaggerv1 "github.com/pennant/pennant/api/v1beta1"

const totalWeight = 100

// Strategy names, as Flagger labels them in its metrics.
const (
	StrategyCanary    = "canary"
	StrategyBlueGreen = "blue-green"
	StrategyABTesting = "ab-testing"
)

// ProviderKubernetes is the provider that switches Services instead of splitting traffic.
const ProviderKubernetes = "kubernetes"

// DefaultKubernetesIterations is used when the kubernetes provider gets a weighted analysis.
const DefaultKubernetesIterations = 10

// Strategy picks the deployment strategy of a canary for a provider.
func Strategy(a *flaggerv1.CanaryAnalysis, provider string) string {
	if a == nil {
		return StrategyCanary
	}
	if provider == ProviderKubernetes {
		return StrategyBlueGreen
	}
	switch {
	case a.Iterations > 0 && len(a.Match) > 0:
		return StrategyABTesting
	case a.Iterations > 0:
		return StrategyBlueGreen
	default:
		return StrategyCanary
	}
}

// iterations returns the number of analysis iterations, defaulted for the kubernetes provider.
func iterations(a *flaggerv1.CanaryAnalysis, provider string) int {
	if provider == ProviderKubernetes && a.Iterations < 1 {
		return DefaultKubernetesIterations
	}
	return a.Iterations
}

// maxWeight is the last of stepWeights, else maxWeight, else 100, never above 100.
func maxWeight(a *flaggerv1.CanaryAnalysis) int {
	if n := len(a.StepWeights); n > 0 {
		return min(totalWeight, a.StepWeights[n-1])
	}
	if a.MaxWeight > 0 {
		return min(totalWeight, a.MaxWeight)
	}
	return totalWeight
}

// nextStepWeight is how much weight the next step adds to the canary's current weight.
func nextStepWeight(a *flaggerv1.CanaryAnalysis, current int) int {
	if a.StepWeight > 0 || len(a.StepWeights) == 0 {
		return a.StepWeight
	}
	steps := a.StepWeights
	if current == 0 {
		return min(totalWeight, steps[0])
	}
	for i, w := range steps {
		if w == current && i+1 < len(steps) {
			return min(totalWeight, steps[i+1]) - current
		}
	}
	for _, w := range steps {
		if w > current {
			// At least 1, so that a ladder reaching past 100 still ends in a promotion.
			return max(1, min(totalWeight, w)-current)
		}
	}
	// Past the last step: a positive step so that the canary reaches 100 and promotes.
	return max(1, totalWeight-current)
}
