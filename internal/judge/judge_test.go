package judge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Each bound of the confidence sequence holds at every look at once: over many simulated analyses
// looked at after every step, the share in which the true rate ever fell below the lower bound
// stays within α, and likewise above the upper one (with a margin for the simulation's own noise).
func TestConfidenceSequenceCoversAtEveryLook(t *testing.T) {
	const alpha, runs, looks = 0.05, 2000, 30
	for _, rate := range []float64{0.001, 0.01, 0.1} {
		for _, perLook := range []int{10, 600} {
			rng := rand.New(rand.NewPCG(uint64(perLook), math.Float64bits(rate)))
			below, above := 0, 0
			for range runs {
				var c Counts
				var wasBelow, wasAbove bool
				for range looks {
					c.Total += float64(perLook)
					c.Bad += float64(binomial(rng, perLook, rate))
					iv := ConfidenceSequence(c, alpha)
					wasBelow, wasAbove = wasBelow || rate < iv.Low, wasAbove || rate > iv.High
				}
				if wasBelow {
					below++
				}
				if wasAbove {
					above++
				}
			}
			for side, missed := range map[string]int{"below the lower bound": below, "above the upper bound": above} {
				if share := float64(missed) / runs; share > alpha {
					t.Errorf("rate %v, %d requests per look: the true rate was %s in %.3f of the runs, more than α = %v",
						rate, perLook, side, share, alpha)
				}
			}
		}
	}
}

// The one-sided bounds are tighter than a two-sided mixture at the same level would be, and
// nowhere looser than the observed rate allows.
func TestConfidenceSequenceIsAnIntervalAroundTheRate(t *testing.T) {
	for _, c := range []Counts{{600, 15}, {10200, 51}, {1e8, 1e5}, {20, 20}, {5000, 0}, {7.5, 0.4}} {
		iv := ConfidenceSequence(c, 0.005)
		if !(iv.Low <= c.Rate() && c.Rate() <= iv.High) || iv.Low < 0 || iv.High > 1 || math.IsNaN(iv.Low+iv.High) {
			t.Errorf("%+v: bounds %+v do not hold the observed rate %v", c, iv, c.Rate())
		}
	}
}

func TestConfidenceSequenceShrinksAroundTheRate(t *testing.T) {
	small := ConfidenceSequence(Counts{Total: 100, Bad: 2}, 0.01)
	large := ConfidenceSequence(Counts{Total: 100000, Bad: 2000}, 0.01)
	if !(small.Low < 0.02 && 0.02 < small.High) || !(large.Low < 0.02 && 0.02 < large.High) {
		t.Fatalf("intervals %+v and %+v do not hold the observed rate 2%%", small, large)
	}
	if large.High-large.Low >= (small.High-small.Low)/10 {
		t.Errorf("1000 times the sample narrowed %+v only to %+v", small, large)
	}
	if none := ConfidenceSequence(Counts{}, 0.01); none != (Interval{0, 1}) {
		t.Errorf("without requests: %+v, want [0, 1]", none)
	}
	if zero := ConfidenceSequence(Counts{Total: 5000}, 0.01); zero.Low != 0 || zero.High <= 0 || zero.High > 0.005 {
		t.Errorf("no bad request in 5000: %+v, want [0, a little]", zero)
	}
}

func TestJudgeDecisions(t *testing.T) {
	s := Settings{Tolerance: 0.01, Alpha: 0.01, MinSample: 500, Healthy: 0.05}
	for _, tc := range []struct {
		name            string
		canary, primary Counts
		want            Decision
		explain         string
	}{
		{"clearly worse", Counts{Total: 3000, Bad: 87}, Counts{Total: 27000, Bad: 108}, Fail,
			"canary error rate 2.9% vs primary 0.4%, +2.5 pp [1.36, 3.95], exceeds +1 pp: fail"},
		{"as good, enough requests", Counts{Total: 6000, Bad: 24}, Counts{Total: 54000, Bad: 216}, Pass,
			"canary error rate 0.4% vs primary 0.4%, +0 pp [-0.36, 0.48], within +1 pp: pass"},
		{"as good, too few requests", Counts{Total: 50, Bad: 0}, Counts{Total: 450, Bad: 2}, Continue,
			"canary error rate 0% vs primary 0.44%, -0.44 pp [-2.67, 11.77], tolerance +1 pp, 50 canary requests: continue"},
		{"both degrade together", Counts{Total: 3000, Bad: 360}, Counts{Total: 27000, Bad: 3240}, Hold,
			"canary error rate 12% vs primary 12%, +0 pp [-3.13, 3.94], the primary degrades too (a shared cause): hold"},
		{"worse even while the primary degrades", Counts{Total: 3000, Bad: 900}, Counts{Total: 27000, Bad: 3240}, Fail,
			"canary error rate 30% vs primary 12%, +18 pp [13.76, 25.36], exceeds +1 pp: fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(tc.canary, tc.primary, tc.primary, s)
			if v.Decision != tc.want {
				t.Errorf("decision %s, want %s (%s)", v.Decision, tc.want, v.Explain("error rate"))
			}
			if got := v.Explain("error rate"); got != tc.explain {
				t.Errorf("explained\n %q, want\n %q", got, tc.explain)
			}
		})
	}
}

func TestSettingsThatCannotWork(t *testing.T) {
	for _, s := range []Settings{
		{},
		{Tolerance: -0.01},
		{Tolerance: 1.5},
		{Tolerance: 0.01, Alpha: 0.6},
		{Tolerance: 0.01, Alpha: -1},
		{Tolerance: 0.01, MinSample: -1},
		{RelativeTolerance: math.NaN()},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v validated", s)
		}
	}
	if err := (Settings{RelativeTolerance: 0.5}).Validate(); err != nil {
		t.Errorf("a relative tolerance alone: %v", err)
	}
}

// binomial draws the number of successes in n trials of probability p.
func binomial(rng *rand.Rand, n int, p float64) int {
	k := 0
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}
