package canary

import (
	"testing"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestStrategy(t *testing.T) {
	cases := []struct {
		name     string
		a        *flaggerv1.CanaryAnalysis
		provider string
		want     string
	}{
		{"no analysis", nil, "istio", StrategyCanary},
		{"no analysis, kubernetes", nil, ProviderKubernetes, StrategyCanary},
		{"stepWeight", &flaggerv1.CanaryAnalysis{StepWeight: 5}, "istio", StrategyCanary},
		{"stepWeights", &flaggerv1.CanaryAnalysis{StepWeights: []int{1, 10}}, "linkerd", StrategyCanary},
		{"match without iterations is a canary", &flaggerv1.CanaryAnalysis{StepWeight: 5, Match: abMatch}, "istio", StrategyCanary},
		{"iterations", &flaggerv1.CanaryAnalysis{Iterations: 10}, "istio", StrategyBlueGreen},
		{"iterations with mirror", &flaggerv1.CanaryAnalysis{Iterations: 10, Mirror: true}, "istio", StrategyBlueGreen},
		{"iterations and match", &flaggerv1.CanaryAnalysis{Iterations: 10, Match: abMatch}, "istio", StrategyABTesting},
		{"iterations and match, no provider given", &flaggerv1.CanaryAnalysis{Iterations: 10, Match: abMatch}, "", StrategyABTesting},
		{"kubernetes forces blue/green for weights", &flaggerv1.CanaryAnalysis{StepWeight: 5}, ProviderKubernetes, StrategyBlueGreen},
		{"kubernetes forces blue/green for A/B", &flaggerv1.CanaryAnalysis{Iterations: 10, Match: abMatch}, ProviderKubernetes, StrategyBlueGreen},
		{"kubernetes with iterations", &flaggerv1.CanaryAnalysis{Iterations: 3}, ProviderKubernetes, StrategyBlueGreen},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Strategy(tc.a, tc.provider); got != tc.want {
				t.Errorf("Strategy = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIterations(t *testing.T) {
	cases := []struct {
		name     string
		a        flaggerv1.CanaryAnalysis
		provider string
		want     int
	}{
		{"istio iterations", flaggerv1.CanaryAnalysis{Iterations: 5}, "istio", 5},
		{"istio weighted", flaggerv1.CanaryAnalysis{StepWeight: 5}, "istio", 0},
		{"kubernetes weighted defaults to 10", flaggerv1.CanaryAnalysis{StepWeight: 5}, ProviderKubernetes, DefaultKubernetesIterations},
		{"kubernetes iterations kept", flaggerv1.CanaryAnalysis{Iterations: 3}, ProviderKubernetes, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := iterations(&tc.a, tc.provider); got != tc.want {
				t.Errorf("iterations = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestMaxWeight(t *testing.T) {
	cases := []struct {
		name string
		a    flaggerv1.CanaryAnalysis
		want int
	}{
		{"default is 100", flaggerv1.CanaryAnalysis{StepWeight: 5}, 100},
		{"maxWeight", flaggerv1.CanaryAnalysis{StepWeight: 5, MaxWeight: 50}, 50},
		{"maxWeight 100", flaggerv1.CanaryAnalysis{StepWeight: 5, MaxWeight: 100}, 100},
		{"maxWeight above 100", flaggerv1.CanaryAnalysis{StepWeight: 5, MaxWeight: 150}, 100},
		{"stepWeights: the last step", flaggerv1.CanaryAnalysis{StepWeights: []int{1, 2, 10, 80}}, 80},
		{"stepWeights win over maxWeight", flaggerv1.CanaryAnalysis{StepWeights: []int{1, 2, 10, 80}, MaxWeight: 50}, 80},
		{"stepWeights overflowing 100", flaggerv1.CanaryAnalysis{StepWeights: []int{20, 60, 120}}, 100},
		{"single step", flaggerv1.CanaryAnalysis{StepWeights: []int{30}}, 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := maxWeight(&tc.a); got != tc.want {
				t.Errorf("maxWeight = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNextStepWeight(t *testing.T) {
	ladder := []int{1, 2, 10, 80}
	overflow := []int{20, 60, 120}
	cases := []struct {
		name    string
		a       flaggerv1.CanaryAnalysis
		current int
		want    int
	}{
		{"stepWeight from 0", flaggerv1.CanaryAnalysis{StepWeight: 5}, 0, 5},
		{"stepWeight midway", flaggerv1.CanaryAnalysis{StepWeight: 5}, 45, 5},
		{"stepWeight past 100 is still the step (the caller caps)", flaggerv1.CanaryAnalysis{StepWeight: 30}, 90, 30},
		{"no step at all", flaggerv1.CanaryAnalysis{Iterations: 5}, 0, 0},
		{"stepWeight wins over stepWeights", flaggerv1.CanaryAnalysis{StepWeight: 5, StepWeights: ladder}, 1, 5},
		{"ladder: first step", flaggerv1.CanaryAnalysis{StepWeights: ladder}, 0, 1},
		{"ladder: 1 -> 2", flaggerv1.CanaryAnalysis{StepWeights: ladder}, 1, 1},
		{"ladder: 2 -> 10", flaggerv1.CanaryAnalysis{StepWeights: ladder}, 2, 8},
		{"ladder: 10 -> 80", flaggerv1.CanaryAnalysis{StepWeights: ladder}, 10, 70},
		{"ladder: past the last step, up to 100", flaggerv1.CanaryAnalysis{StepWeights: ladder}, 80, 20},
		{"ladder: at 100 a positive step forces promotion", flaggerv1.CanaryAnalysis{StepWeights: ladder}, 100, 1},
		// Flagger answers 100-current for a weight that is not on the ladder; Pennant goes to the next rung.
		{"ladder: off the ladder, to the next rung", flaggerv1.CanaryAnalysis{StepWeights: ladder}, 5, 5},
		{"overflow: first step", flaggerv1.CanaryAnalysis{StepWeights: overflow}, 0, 20},
		{"overflow: 20 -> 60", flaggerv1.CanaryAnalysis{StepWeights: overflow}, 20, 40},
		{"overflow: 60 -> 100, not 120", flaggerv1.CanaryAnalysis{StepWeights: overflow}, 60, 40},
		{"first step above 100", flaggerv1.CanaryAnalysis{StepWeights: []int{150}}, 0, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := nextStepWeight(&tc.a, tc.current); got != tc.want {
				t.Errorf("nextStepWeight(%d) = %d, want %d", tc.current, got, tc.want)
			}
		})
	}
}

// At weight 100 the next step is 1 (reference §1.2: "returns 1 at 100 to force promotion").
func TestNextStepWeightAt100WithOverflowingLadder(t *testing.T) {
	a := flaggerv1.CanaryAnalysis{StepWeights: []int{20, 60, 120}}
	if got := nextStepWeight(&a, 100); got != 1 {
		t.Errorf("nextStepWeight(100) = %d, want 1", got)
	}
}
