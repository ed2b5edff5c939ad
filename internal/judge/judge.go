package judge

import (
	"errors"
	"fmt"
	"math"
)

// Settings are a comparative metric's parameters.
type Settings struct {
	// Tolerance is the increase of the bad rate tolerated over the primary's, absolute (0.01: one
	// percentage point).
	Tolerance float64
	// RelativeTolerance is the increase tolerated relative to the primary's rate (0.5: 50 % more);
	// it adds to Tolerance.
	RelativeTolerance float64
	// Alpha is the false-rollback rate: the probability, over the whole analysis, of failing a
	// canary whose rate is within the tolerance (default 0.01).
	Alpha float64
	// MinSample is the number of canary requests before the canary can pass.
	MinSample float64
	// Healthy is the bad rate beyond which a version is unhealthy (from the metric's threshold; 0:
	// none). A primary known to be beyond it holds the release: the versions share a cause.
	Healthy float64
}

// DefaultAlpha is the false-rollback rate when Settings.Alpha is 0.
const DefaultAlpha = 0.01

// Validate says what makes the settings unusable.
func (s Settings) Validate() error {
	switch {
	case s.Tolerance < 0 || s.Tolerance > 1 || math.IsNaN(s.Tolerance):
		return fmt.Errorf("tolerance %v is not within 0..100 percentage points", s.Tolerance*100)
	case s.RelativeTolerance < 0 || math.IsNaN(s.RelativeTolerance) || math.IsInf(s.RelativeTolerance, 0):
		return fmt.Errorf("relative tolerance %v%% is negative or not a number", s.RelativeTolerance*100)
	case s.Tolerance == 0 && s.RelativeTolerance == 0:
		return errors.New("no tolerance: set an absolute or a relative one (a canary can never be shown to be exactly as good)")
	case s.Alpha < 0 || s.Alpha > 0.5 || math.IsNaN(s.Alpha):
		return fmt.Errorf("false-rollback rate %v%% is not within 0..50%% (0: the default 1%%)", s.Alpha*100)
	case s.MinSample < 0:
		return fmt.Errorf("minimum sample %v is negative", s.MinSample)
	}
	return nil
}

func (s Settings) alpha() float64 {
	if s.Alpha == 0 {
		return DefaultAlpha
	}
	return s.Alpha
}

// Decision is the judge's answer for a step.
type Decision string

const (
	// Fail: the canary is worse than the primary beyond the tolerance (with confidence 1-α).
	Fail Decision = "fail"
	// Pass: the canary is not worse than the primary beyond the tolerance (with confidence 1-α),
	// on at least the minimum sample.
	Pass Decision = "pass"
	// Continue: not enough evidence either way yet.
	Continue Decision = "continue"
	// Hold: the primary itself is unhealthy: both versions degrade, which the canary did not cause;
	// neither promote nor roll back.
	Hold Decision = "hold"
)

// Verdict is a decision with what it rests on.
type Verdict struct {
	Decision        Decision
	Canary, Primary Counts
	// Difference is the canary's bad rate minus the primary's, and Low..High its confidence
	// interval (valid at every step at once).
	Difference, Low, High float64
	// Allowed is the increase tolerated at the primary's observed rate.
	Allowed float64
}

// Judge compares the canary's counts with the primary's, both cumulated since the analysis
// started. recent are the primary's counts of the current step alone: the primary is unhealthy
// (the release holds) when they are beyond Settings.Healthy, whatever came before, so that a hold
// ends with the outage that caused it.
func Judge(canary, primary, recent Counts, s Settings) Verdict {
	a := s.alpha()
	c, p := ConfidenceSequence(canary, a/2), ConfidenceSequence(primary, a/2)
	v := Verdict{Canary: canary, Primary: primary,
		Difference: canary.Rate() - primary.Rate(), Low: c.Low - p.High, High: c.High - p.Low,
		Allowed: s.Tolerance + s.RelativeTolerance*primary.Rate()}
	// The canary is worse beyond the tolerance at every primary rate the data allow.
	worse := c.Low > s.Tolerance+(1+s.RelativeTolerance)*p.High
	// ... or within it at every primary rate the data allow.
	within := c.High < s.Tolerance+(1+s.RelativeTolerance)*p.Low
	switch {
	case worse:
		v.Decision = Fail
	case s.Healthy > 0 && ConfidenceSequence(recent, a).Low > s.Healthy:
		v.Decision = Hold
	case within && canary.Total >= s.MinSample:
		v.Decision = Pass
	default:
		v.Decision = Continue
	}
	return v
}

// Explain words the verdict for an event: "canary error rate 2.9% vs primary 0.4%, +2.5 pp [1.8,
// 3.2], exceeds +1 pp: fail".
func (v Verdict) Explain(what string) string {
	head := fmt.Sprintf("canary %s %s vs primary %s, %s pp [%s, %s]", what, percent(v.Canary.Rate()), percent(v.Primary.Rate()),
		signedPP(v.Difference), pp(v.Low), pp(v.High))
	switch v.Decision {
	case Fail:
		return fmt.Sprintf("%s, exceeds +%s pp: fail", head, pp(v.Allowed))
	case Pass:
		return fmt.Sprintf("%s, within +%s pp: pass", head, pp(v.Allowed))
	case Hold:
		return fmt.Sprintf("%s, the primary degrades too (a shared cause): hold", head)
	}
	return fmt.Sprintf("%s, tolerance +%s pp, %.0f canary requests: continue", head, pp(v.Allowed), v.Canary.Total)
}

func percent(r float64) string { return trim(r*100) + "%" }
func pp(d float64) string      { return trim(d * 100) }
func signedPP(d float64) string {
	if d >= 0 {
		return "+" + pp(d)
	}
	return pp(d)
}

// trim prints a number with up to two decimals, no trailing zeros.
func trim(x float64) string {
	s := fmt.Sprintf("%.2f", x)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	if s == "-0" {
		return "0"
	}
	return s
}
