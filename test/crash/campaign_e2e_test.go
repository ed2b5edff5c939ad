//go:build e2e

package crash

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// scenario is how the rollout hook behaves during the release.
type scenario struct {
	name string
	// passes is how many hook calls pass before the rest fail; -1 means "as many as the uncrashed
	// release needs" (measured by its baseline run), so that every check repeated because of a
	// crash fails: the promotion-before-its-record case.
	passes int
	// want is the outcome of the uncrashed release.
	want flaggerv1.CanaryPhase
}

// TestCrashCampaign SIGKILLs pennant right after each of the mutating API requests an uncrashed
// release makes (the N-th, for every N), restarts it, and checks that the release still ends as the
// uncrashed one does, or safely: Failed with the old revision on the primary and all traffic there.
func TestCrashCampaign(t *testing.T) {
	bin := buildPennant(t)
	for _, sc := range []scenario{
		{name: "checks-fail", passes: 0, want: flaggerv1.CanaryPhaseFailed},
		{name: "checks-pass-then-fail", passes: -1, want: flaggerv1.CanaryPhaseSucceeded},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			campaign(t, bin, sc)
		})
	}
}

func campaign(t *testing.T, bin string, sc scenario) {
	writes, calls := baseline(t, bin, sc)
	if sc.passes < 0 {
		sc.passes = calls
	}
	t.Logf("%s: an uncrashed release makes %d writes and %d hook calls", sc.name, writes, calls)
	var mu sync.Mutex
	outcomes := map[string][]int{}
	record := func(outcome string, n int) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[outcome] = append(outcomes[outcome], n)
	}
	t.Run("points", func(t *testing.T) {
		for n := 1; n <= writes; n++ {
			t.Run(fmt.Sprintf("after-write-%02d", n), func(t *testing.T) {
				t.Parallel()
				record(crashAt(t, bin, sc, n), n)
			})
		}
	})
	var summary []string
	for outcome, ns := range outcomes {
		sort.Ints(ns)
		summary = append(summary, fmt.Sprintf("%s at %v", outcome, ns))
	}
	sort.Strings(summary)
	fmt.Printf("crash campaign %s: %d crash points tried (uncrashed: %s); %s\n",
		sc.name, writes, sc.want, strings.Join(summary, "; "))
}

// baseline runs the release without a crash and returns how many writes and hook calls it made.
func baseline(t *testing.T, bin string, sc scenario) (writes, calls int) {
	t.Helper()
	r := newRelease(t, bin, sc.passes)
	r.ctl.Settle(time.Second, 10*time.Second)
	r.ctl.Proxy.ArmCrash(0, nil)
	r.setImage(newImage)
	phase := r.terminal()
	if phase != sc.want {
		t.Fatalf("uncrashed release ended %s, want %s", phase, sc.want)
	}
	r.checkOutcome(phase)
	r.ctl.Settle(2*time.Second, 20*time.Second)
	return r.ctl.Proxy.Mutations(), r.hook.Calls()
}

// crashAt runs the release with pennant killed right after its n-th write and restarted, checks
// the invariants and returns the outcome.
func crashAt(t *testing.T, bin string, sc scenario, n int) string {
	r := newRelease(t, bin, sc.passes)
	r.ctl.Settle(time.Second, 10*time.Second)
	crashed := r.ctl.CrashAfter(n)
	r.setImage(newImage)
	outcome := ""
	deadline := time.After(phaseTimeout)
	for outcome == "" {
		select {
		case <-crashed:
			outcome = "crashed"
		case <-deadline:
			t.Fatalf("neither crashed after write %d nor ended (phase %q)", n, r.phase())
		case <-time.After(100 * time.Millisecond):
			if p := r.phase(); p == flaggerv1.CanaryPhaseSucceeded || p == flaggerv1.CanaryPhaseFailed {
				// Timing varies: this release ended before making n writes. Still check it.
				r.ctl.Settle(time.Second, 5*time.Second)
				select {
				case <-crashed:
					outcome = "crashed"
				default:
					r.checkOutcome(p)
					return "ended before write n"
				}
			}
		}
	}
	r.ctl.Start()
	phase := r.terminal()
	r.checkOutcome(phase)
	switch {
	case phase == sc.want:
		return string(phase)
	case sc.want == flaggerv1.CanaryPhaseFailed:
		t.Errorf("crash after write %d: the release ended %s; with checks that always fail it must fail", n, phase)
	default:
		t.Logf("crash after write %d: ended %s (safe: the old revision serves), uncrashed it would be %s", n, phase, sc.want)
	}
	return string(phase) + " (differs)"
}
