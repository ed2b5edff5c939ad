package controller

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/testenv"
	"github.com/pennant/pennant/internal/webhooks"
)

// fuzzProviders are the spec.provider values FuzzValidate picks from ("" leaves it to -mesh-provider).
var fuzzProviders = []string{"", "istio", "linkerd", "kubernetes", "gloo", "nginx", "gatewayapi:v1"}

// fuzzMinInterval is production's floor of analysis.interval.
const fuzzMinInterval = 10 * time.Second

// FuzzValidate feeds fuzzed weights, counts, provider and duration strings through validate. It
// must never panic, and:
//   - a spec it accepts has durations that parse, none negative, an analysis interval of at least
//     the floor and a positive webhook timeout; weights and counts not negative, mirrorWeight
//     within 0..100 and stepWeights increasing;
//   - a spec it accepts, with checks that pass and workloads that are ready, completes a release
//     (phase Succeeded) through the real phase machine, with every route split within 0..100
//     and summing to 100; with spec.provider unset this is claimed for -mesh-provider kubernetes
//     only, since validate cannot see the flag;
//   - a spec it refuses as never advancing indeed never completes a release;
//   - a duration string that the CRD's schema admits (Flagger's pattern, the length bound and the
//     x-kubernetes-validations rule, evaluated here with Go's regexp and time.ParseDuration as the
//     apiserver's CEL does) is never refused by validate, and one that is a Go duration matching
//     Flagger's pattern is admitted: admission and validate agree.
func FuzzValidate(f *testing.F) {
	f.Add(uint8(1), false, false, int16(0), int16(0), int8(0), int16(0), int16(1), int16(0), false, []byte{}, "1m", "1m", "15s")
	f.Add(uint8(1), false, false, int16(5), int16(50), int8(0), int16(0), int16(5), int16(0), false, []byte{}, "15s", "1m", "30s")
	f.Add(uint8(2), false, true, int16(0), int16(0), int8(0), int16(0), int16(5), int16(0), false, []byte{5, 10, 15, 200}, "1m30s", "30s", "5s")
	f.Add(uint8(3), false, false, int16(0), int16(0), int8(0), int16(0), int16(1), int16(0), false, []byte{}, "10s", "", "")
	f.Add(uint8(4), false, false, int16(0), int16(0), int8(10), int16(10), int16(2), int16(0), true, []byte{}, "1m", "1m", "10s")
	f.Add(uint8(5), true, false, int16(0), int16(0), int8(0), int16(0), int16(1), int16(0), false, []byte{}, "1m", "1m", "10s")
	f.Add(uint8(1), false, false, int16(10), int16(5), int8(0), int16(30), int16(1), int16(50), true, []byte{}, "500ms", "1m0.5s", "1m")
	f.Add(uint8(0), false, false, int16(-1), int16(101), int8(-3), int16(-2), int16(-1), int16(101), false, []byte{0, 0}, "1m30", "30s5", "5sec")
	f.Add(uint8(6), false, false, int16(20), int16(0), int8(0), int16(0), int16(1), int16(0), false, []byte{}, "9999999999999999999s", "1m.5s", "1µs")
	f.Add(uint8(1), false, false, int16(40), int16(0), int8(0), int16(0), int16(1), int16(0), false, []byte{}, "11m", "", "") // interval above the progress deadline
	f.Fuzz(func(t *testing.T, provider uint8, skip, alias bool, stepWeight, maxWeight int16, iterations int8,
		promotion, threshold, mirrorWeight int16, mirror bool, steps []byte, interval, metricInterval, timeout string) {
		a := &flaggerv1.CanaryAnalysis{
			Interval:            interval,
			StepWeight:          int(stepWeight),
			MaxWeight:           int(maxWeight),
			Iterations:          int(iterations),
			StepWeightPromotion: int(promotion),
			Threshold:           int(threshold),
			Mirror:              mirror,
			MirrorWeight:        int(mirrorWeight),
			Metrics:             []flaggerv1.CanaryMetric{{Name: "request-success-rate", Interval: metricInterval}},
			Webhooks:            []flaggerv1.CanaryWebhook{{Name: "load-test", URL: "http://127.0.0.1/", Timeout: timeout}},
		}
		if len(steps) > 0 {
			a.StepWeights = []int{} // present, possibly empty
			for _, s := range steps[1:min(len(steps), 12)] {
				a.StepWeights = append(a.StepWeights, int(int8(s)))
			}
		}
		cd := &flaggerv1.Canary{
			ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
			Spec: flaggerv1.CanarySpec{
				Provider:     fuzzProviders[int(provider)%len(fuzzProviders)],
				TargetRef:    flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
				SkipAnalysis: skip,
			},
		}
		if alias {
			cd.Spec.CanaryAnalysis = a
		} else {
			cd.Spec.Analysis = a
		}

		err := validate(cd, cd.Spec.Provider, false)

		for field, s := range map[string]string{"analysis.interval": interval,
			"analysis.metrics[0].interval": metricInterval, "analysis.webhooks[0].timeout": timeout} {
			if admittedDuration(t, s) && err != nil && strings.HasPrefix(err.Error(), field+":") {
				t.Fatalf("%s %q is admitted by the CRD but validate refuses it: %v", field, s, err)
			}
		}
		if err != nil {
			if strings.Contains(err.Error(), "never advances") {
				if done, _ := release(t, cd, cd.Spec.Provider); done {
					t.Fatalf("refused as never advancing, yet the release completes: %v (analysis %+v)", err, *a)
				}
			}
			return
		}

		for field, s := range map[string]string{"interval": interval, "metric interval": metricInterval, "timeout": timeout} {
			if s == "" {
				continue
			}
			if d, perr := time.ParseDuration(s); perr != nil || d < 0 {
				t.Fatalf("accepted %s %q: %v, %v", field, s, d, perr)
			}
		}
		if got := cd.GetAnalysisInterval(fuzzMinInterval); got < fuzzMinInterval {
			t.Fatalf("accepted interval %q runs every %v, under the floor", interval, got)
		}
		if got := webhooks.Timeout(a.Webhooks[0]); got <= 0 {
			t.Fatalf("accepted timeout %q gives a webhook timeout of %v", timeout, got)
		}
		if a.StepWeight < 0 || a.MaxWeight < 0 || a.Iterations < 0 || a.StepWeightPromotion < 0 || a.Threshold < 0 ||
			a.MirrorWeight < 0 || a.MirrorWeight > 100 {
			t.Fatalf("accepted out-of-range numbers: %+v", *a)
		}
		for i, w := range a.StepWeights {
			if w <= 0 || (i > 0 && w <= a.StepWeights[i-1]) {
				t.Fatalf("accepted stepWeights %v", a.StepWeights)
			}
		}
		p := cd.Spec.Provider
		if p == "" {
			p = canary.ProviderKubernetes
		}
		if done, passes := release(t, cd, p); !done {
			t.Fatalf("accepted, but with provider %s the release is not done after %d passes (analysis %+v)", p, passes, *a)
		}
	})
}

// passingChecks calls no webhook and passes every metric check.
type passingChecks struct{}

func (passingChecks) RunHooks(context.Context, *flaggerv1.Canary, flaggerv1.HookType, flaggerv1.CanaryPhase) ([]canary.HookResult, error) {
	return nil, nil
}

func (passingChecks) Analyze(context.Context, *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	return nil, nil
}

// release drives the phase machine through a release of a new revision of a canary that last
// succeeded, with ready workloads and passing checks, each pass when the previous one asked to be
// called again, and tells whether it reached Succeeded within a bound that any admitted spec meets
// (at most 100 weight steps, 127 iterations and 100 promotion steps, each a pass or two). Every
// route split must stay within 0..100.
func release(t *testing.T, cd *flaggerv1.Canary, provider string) (done bool, passes int) {
	t.Helper()
	settings := canary.Settings{Provider: provider, MinInterval: fuzzMinInterval}
	st := flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseSucceeded, LastAppliedSpec: "rev1", LastPromotedSpec: "rev1"}
	obs := canary.Observation{
		Revision: "rev2",
		Primary:  canary.Readiness{Ready: true},
		Canary:   canary.Readiness{Ready: true},
		Routes:   canary.Routes{Primary: 100},
	}
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	for passes = 1; passes <= 2000; passes++ {
		c := cd.DeepCopy()
		c.Status = st
		obs.LastTick = time.Time{}
		if st.LastStepTime != nil {
			obs.LastTick = st.LastStepTime.Time
		}
		d := canary.Next(context.Background(), canary.Input{Canary: c, Observed: obs, Settings: settings, Now: now}, passingChecks{})
		for _, act := range d.Actions {
			switch act.Kind {
			case canary.SetRoutes:
				r := act.Routes
				if r.Primary < 0 || r.Canary < 0 || r.Primary+r.Canary != 100 {
					t.Fatalf("pass %d: SetRoutes %+v", passes, r)
				}
				obs.Routes = r
			case canary.Promote:
				obs.PrimaryPromoted = true
			}
		}
		st = d.Status
		switch st.Phase {
		case flaggerv1.CanaryPhaseSucceeded:
			return true, passes
		case flaggerv1.CanaryPhaseFailed:
			t.Fatalf("pass %d: the release failed with passing checks and ready workloads", passes)
		}
		// As the controller would call again: a requeue of 0 waits for a watch event, which the
		// actions above (routes, promotion) cause at once.
		now = now.Add(max(d.RequeueAfter, time.Millisecond))
	}
	return false, passes - 1
}

// crdDuration is how the Canary CRD admits a duration string: Flagger's pattern, a length bound and
// the x-kubernetes-validations rule, read from config/crd/bases once.
var crdDuration struct {
	once      sync.Once
	pattern   *regexp.Regexp
	rule      *regexp.Regexp
	maxLength int64
	err       string
}

// admittedDuration evaluates the CRD's checks of spec.analysis.interval on s, as the apiserver
// does: the pattern and the CEL rule's regular expression with Go's regexp (which CEL's matches
// uses), its duration() with time.ParseDuration (which CEL's conversion uses). It checks once that
// the metric interval and the webhook timeout carry the same checks.
func admittedDuration(t *testing.T, s string) bool {
	t.Helper()
	c := &crdDuration
	c.once.Do(func() {
		c.err = "the Canary CRD could not be read" // until it is: Fixture may end the test inside Do
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(testenv.Fixture(t, "config/crd/bases/flagger.app_canaries.yaml"), &crd); err != nil {
			c.err = err.Error()
			return
		}
		spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
		var want *apiextensionsv1.JSONSchemaProps
		for _, analysis := range []string{"analysis", "canaryAnalysis"} {
			an := spec.Properties[analysis]
			for _, p := range []apiextensionsv1.JSONSchemaProps{an.Properties["interval"],
				an.Properties["metrics"].Items.Schema.Properties["interval"],
				an.Properties["webhooks"].Items.Schema.Properties["timeout"]} {
				if p.MaxLength == nil || len(p.XValidations) != 1 {
					c.err = "a duration field of the CRD lacks its length bound or rule"
					return
				}
				if want == nil {
					want = &p
					continue
				}
				if p.Pattern != want.Pattern || *p.MaxLength != *want.MaxLength || p.XValidations[0].Rule != want.XValidations[0].Rule {
					c.err = "the duration fields of the CRD do not share one pattern, length bound and rule"
					return
				}
			}
		}
		rule := want.XValidations[0].Rule
		const head, tail = "self.matches('", "') && duration(self) >= duration('0s')"
		if !strings.HasPrefix(rule, head) || !strings.HasSuffix(rule, tail) {
			c.err = "unexpected duration rule " + rule
			return
		}
		c.pattern = regexp.MustCompile(want.Pattern)
		c.rule = regexp.MustCompile(strings.TrimSuffix(strings.TrimPrefix(rule, head), tail))
		c.maxLength = *want.MaxLength
		c.err = ""
	})
	if c.err != "" {
		t.Fatal(c.err)
	}
	d, err := time.ParseDuration(s)
	admitted := c.pattern.MatchString(s) && int64(len(s)) <= c.maxLength && c.rule.MatchString(s) && err == nil && d >= 0
	// The rule's expression alone is exactly Go's syntax of durations (not their range), and with
	// Flagger's pattern it admits every Go duration that starts in minutes or seconds.
	if c.rule.MatchString(s) && err != nil {
		if _, err := time.ParseDuration(regexp.MustCompile(`[0-9]+`).ReplaceAllString(s, "1")); err != nil {
			t.Fatalf("the CRD rule's expression matches %q, which is no Go duration: %v", s, err)
		}
	}
	if err == nil && c.pattern.MatchString(s) && int64(len(s)) <= c.maxLength && !admitted {
		t.Fatalf("Go duration %q matches Flagger's pattern but the CRD rule refuses it", s)
	}
	return admitted
}
