package canary

import (
	"context"
	"errors"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// fuzzPhases are the phases a stored status can start from ("" is a new canary).
var fuzzPhases = []flaggerv1.CanaryPhase{"",
	flaggerv1.CanaryPhaseInitializing, flaggerv1.CanaryPhaseInitialized, flaggerv1.CanaryPhaseWaiting,
	flaggerv1.CanaryPhaseProgressing, flaggerv1.CanaryPhaseWaitingPromotion, flaggerv1.CanaryPhasePromoting,
	flaggerv1.CanaryPhaseFinalising, flaggerv1.CanaryPhaseSucceeded, flaggerv1.CanaryPhaseFailed}

// bitChecks answers hooks and analysis from the bits of a fuzzed word: the n-th answer fails
// when bit n%64 is set.
type bitChecks struct {
	bits uint64
	n    int
}

func (b *bitChecks) fail() bool { b.n++; return b.bits&(1<<(uint(b.n)%64)) != 0 }

func (b *bitChecks) RunHooks(_ context.Context, cd *flaggerv1.Canary, hook flaggerv1.HookType, _ flaggerv1.CanaryPhase) ([]HookResult, error) {
	var out []HookResult
	for _, w := range cd.GetAnalysis().Webhooks {
		if w.Type == hook || (w.Type == "" && hook == flaggerv1.RolloutHook) {
			r := HookResult{Name: w.Name}
			if b.fail() {
				r.Err = errors.New("500 Internal Server Error")
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (b *bitChecks) Analyze(context.Context, *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	if b.fail() {
		return nil, errors.New("metric check failed")
	}
	return nil, nil
}

// FuzzPhaseMachine drives Next through ten ticks from a fuzzed spec (within what admission
// accepts), stored status, observations and check answers: it must never panic, every route and
// canaryWeight it decides stays within 0..100 with primary + canary = 100, and a release it fails
// (other than a failed promotion, which keeps the revision it promoted) records the revision it
// failed: deciding again from the same observations does not start that revision again.
func FuzzPhaseMachine(f *testing.F) {
	f.Add(uint8(5), uint8(50), []byte{}, uint8(2), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0xff), uint64(0), uint8(0))
	f.Add(uint8(10), uint8(100), []byte{}, uint8(1), uint8(0), uint8(4), uint8(30), uint8(1), uint8(0xff), ^uint64(0), uint8(0))
	f.Add(uint8(0), uint8(0), []byte{1, 20, 80}, uint8(3), uint8(0), uint8(4), uint8(20), uint8(0), uint8(0x0f), uint64(0xaaaa), uint8(0))
	f.Add(uint8(0), uint8(0), []byte{}, uint8(2), uint8(5), uint8(4), uint8(0), uint8(0), uint8(0xff), uint64(0x5), uint8(0))
	// A confirm-rollout gate and a rollback webhook, from Waiting with a new revision.
	f.Add(uint8(5), uint8(50), []byte{}, uint8(2), uint8(0), uint8(3), uint8(0), uint8(0), uint8(0xff), uint64(0x2), uint8(3))
	f.Fuzz(func(t *testing.T, stepWeight, maxWeight uint8, stepWeights []byte, threshold, iterations, phase, weight, failed, obs uint8, answers uint64, hooks uint8) {
		a := &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: int(threshold % 10)}
		if len(stepWeights) > 0 {
			w := 0
			for _, s := range stepWeights[:min(len(stepWeights), 8)] {
				if w = w + 1 + int(s)%20; w > 100 {
					break
				}
				a.StepWeights = append(a.StepWeights, w)
			}
		} else if iterations%4 != 0 {
			a.Iterations = int(iterations % 8)
		} else {
			a.StepWeight = 1 + int(stepWeight)%100
			a.MaxWeight = 1 + int(maxWeight)%100
		}
		if obs&0x40 != 0 {
			a.Webhooks = append(a.Webhooks, flaggerv1.CanaryWebhook{Name: "gate", Type: flaggerv1.RolloutHook, URL: "http://127.0.0.1/"})
		}
		if hooks&1 != 0 {
			a.Webhooks = append(a.Webhooks, flaggerv1.CanaryWebhook{Name: "approval", Type: flaggerv1.ConfirmRolloutHook, URL: "http://127.0.0.1/"})
		}
		if hooks&2 != 0 {
			a.Webhooks = append(a.Webhooks, flaggerv1.CanaryWebhook{Name: "abort", Type: flaggerv1.RollbackHook, URL: "http://127.0.0.1/"})
		}
		cd := newCanary(func(cd *flaggerv1.Canary) { cd.Spec.Analysis = a })
		cd.Status = flaggerv1.CanaryStatus{
			Phase:        fuzzPhases[int(phase)%len(fuzzPhases)],
			CanaryWeight: int(weight) % 101,
			FailedChecks: int(failed % 5),
		}
		if cd.Status.Phase != "" {
			cd.Status.LastAppliedSpec = "rev1"
			cd.Status.LastPromotedSpec = "rev1"
		}
		checks := &bitChecks{bits: answers}
		now := t0
		for tick := 0; tick < 10; tick++ {
			bit := func(n uint) bool { return obs&(1<<((n+uint(tick))%8)) != 0 }
			in := Input{
				Canary: cd,
				Observed: Observation{
					Revision:        map[bool]string{true: "rev2", false: "rev1"}[obs&0x80 != 0],
					Primary:         Readiness{Ready: bit(0)},
					Canary:          Readiness{Ready: bit(1), Failed: bit(2) && bit(3)},
					PrimaryPromoted: bit(4),
					Routes:          Routes{Primary: 100 - cd.Status.CanaryWeight, Canary: cd.Status.CanaryWeight},
				},
				Settings: Settings{Provider: "istio", MinInterval: time.Second},
				Now:      now,
			}
			d := Next(context.Background(), in, checks)
			if w := d.Status.CanaryWeight; w < 0 || w > 100 {
				t.Fatalf("tick %d: canaryWeight %d outside 0..100 (spec %+v, status %+v)", tick, w, a, cd.Status)
			}
			for _, act := range d.Actions {
				if act.Kind != SetRoutes {
					continue
				}
				r := act.Routes
				if r.Primary < 0 || r.Primary > 100 || r.Canary < 0 || r.Canary > 100 || r.Primary+r.Canary != 100 {
					t.Fatalf("tick %d: SetRoutes %+v (spec %+v, status %+v)", tick, r, a, cd.Status)
				}
			}
			if d.Outcome == OutcomeFailed && cd.Status.Phase != flaggerv1.CanaryPhasePromoting {
				failedCd := cd.DeepCopy()
				failedCd.Status = d.Status
				again := Next(context.Background(), Input{Canary: failedCd, Observed: in.Observed, Settings: in.Settings, Now: now}, &bitChecks{bits: answers})
				if again.Status.Phase != flaggerv1.CanaryPhaseFailed {
					t.Fatalf("tick %d: failed from %s, then %s from the same observations (status %+v)", tick, cd.Status.Phase, again.Status.Phase, d.Status)
				}
			}
			cd = cd.DeepCopy()
			cd.Status = d.Status
			now = now.Add(interval)
		}
	})
}
