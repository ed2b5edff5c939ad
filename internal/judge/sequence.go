// Package judge compares a canary with its primary on raw counts (requests, and the bad ones among
// them: errors, or requests slower than a latency bound) with an anytime-valid sequential test, so
// that the verdict may be read after every analysis step without inflating the false-rollback rate.
//
// Each version's bad rate gets time-uniform confidence bounds: one-sided beta-binomial mixture
// martingales of its Bernoulli requests (Robbins' method of mixtures; see Howard, Ramdas, McAuliffe
// and Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", 2021). By Ville's
// inequality the true rate crosses a bound, at any step ever, with probability at most α/2; a
// failed canary rests on the canary's lower bound and the primary's upper one, so a canary within
// the tolerance is failed with probability at most α however often the verdict is read. The
// package is pure: counts in, a verdict out.
package judge

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Counts are one version's requests and the bad ones among them, cumulated since the analysis
// started. Counts from Prometheus' increase() are not integers; the test takes them as they are.
type Counts struct {
	Total float64
	Bad   float64
}

// Rate is the share of bad requests (0 without requests).
func (c Counts) Rate() float64 {
	if c.Total <= 0 {
		return 0
	}
	return c.Bad / c.Total
}

// prior is the beta mixing distribution of the martingale, Beta(priorA, priorB): its mass is on
// the rates where services' error rates (and shares of slow requests) live, about 0.3 % to 6 %
// (mean 2.4 %), so that the sequences are tight there. Any fixed prior keeps the guarantee; among
// the few tried on make bench's releases this one decided fastest, by a few percent.
const (
	priorA = 2.0
	priorB = 80.0
)

// Interval is a confidence interval of a rate.
type Interval struct{ Low, High float64 }

// ConfidenceSequence bounds the rate of c from both sides, each side on its own at level alpha:
// the true rate is below Low, at any look ever, with probability at most alpha, and above High
// likewise (so the interval as a whole at most 2·alpha).
//
// Each side is the set of rates p that a one-sided beta-binomial mixture martingale has not
// rejected: the mixture of the likelihood ratios of the rates q beyond p (above p for Low, below
// it for High) against p, under the prior Beta(a, b) restricted to them,
//
//	M⁺(p) = ∫_p^1 q^bad (1-q)^good π(q) dq / π([p, 1]) / (p^bad (1-p)^good)
//
// Under a true rate at or below p each ratio is a supermartingale, so M⁺(p) reaches 1/alpha with
// probability at most alpha (Ville's inequality). Betting on one side only is what makes it
// tighter than the two-sided mixture, which spends half its evidence on the side a verdict does
// not need.
func ConfidenceSequence(c Counts, alpha float64) Interval {
	if c.Total <= 0 {
		return Interval{0, 1}
	}
	bad := math.Min(math.Max(c.Bad, 0), c.Total)
	good := c.Total - bad
	limit := math.Log(1 / alpha)
	center := bad / c.Total
	likelihood := func(p float64) float64 { return xlogy(bad, p) + xlogy(good, 1-p) }
	mixture := lnBeta(priorA+bad, priorB+good) - lnBeta(priorA, priorB)
	low, high := 0.0, 1.0
	if bad > 0 { // the likelihood of 0 is 0: 0 is rejected
		// ln M⁺(p): the posterior's mass above p over the prior's.
		above := func(p float64) float64 {
			post := mathext.RegIncBeta(priorB+good, priorA+bad, 1-p)
			prior := mathext.RegIncBeta(priorB, priorA, 1-p)
			return mixture + math.Log(post) - math.Log(prior) - likelihood(p)
		}
		low = crossing(0, center, rejection(above, limit))
	}
	if good > 0 {
		below := func(p float64) float64 {
			post := mathext.RegIncBeta(priorA+bad, priorB+good, p)
			prior := mathext.RegIncBeta(priorA, priorB, p)
			return mixture + math.Log(post) - math.Log(prior) - likelihood(p)
		}
		high = crossing(center, 1, rejection(below, limit))
	}
	return Interval{Low: low, High: high}
}

// rejection is how far beyond the limit the log martingale is at p: positive where p is rejected.
// A value that cannot be computed (NaN) does not reject.
func rejection(logM func(float64) float64, limit float64) func(float64) float64 {
	return func(p float64) float64 {
		if v := logM(p); !math.IsNaN(v) {
			return v - limit
		}
		return -1
	}
}

// crossing finds, between lo and hi, where f changes sign (f(lo) and f(hi) have opposite signs;
// either may be infinite), to 1e-10 or where |f| < 1e-9: regula falsi with the Illinois
// correction, which converges in a few steps on these smooth functions where bisection needs 30,
// falling back to bisection while an end is infinite.
func crossing(lo, hi float64, f func(float64) float64) float64 {
	flo, fhi := f(lo), f(hi)
	last := 0 // which end moved last: -1 lo, +1 hi
	for i := 0; i < 200 && hi-lo > 1e-10; i++ {
		x := (lo + hi) / 2
		if !math.IsInf(flo, 0) && !math.IsInf(fhi, 0) && flo != fhi {
			if secant := (lo*fhi - hi*flo) / (fhi - flo); secant > lo && secant < hi {
				x = secant
			}
		}
		fx := f(x)
		if math.Abs(fx) < 1e-9 {
			return x
		}
		if (fx > 0) == (flo > 0) {
			lo, flo = x, fx
			if last == -1 {
				fhi /= 2
			}
			last = -1
		} else {
			hi, fhi = x, fx
			if last == 1 {
				flo /= 2
			}
			last = 1
		}
	}
	return (lo + hi) / 2
}

func lnBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// xlogy is x·log(y), 0 when x is 0 (also for y = 0).
func xlogy(x, y float64) float64 {
	if x == 0 {
		return 0
	}
	return x * math.Log(y)
}
