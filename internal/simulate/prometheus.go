package simulate

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/pennant/pennant/internal/metrics"
)

// prometheus answers the builtin queries of the analysis (success rate, duration, and the
// judge's request counts) from the scenario: the traffic of each second of the query's window,
// split by the routes in force then. It tells the versions apart by the names the queries select.
type prometheus struct {
	w *world
}

var window = regexp.MustCompile(`\[([0-9a-z]+)\]`)

func (p prometheus) IsOnline(context.Context) (bool, error) { return true, nil }

func (p prometheus) RunQuery(_ context.Context, query string) (float64, error) {
	if strings.TrimSpace(query) == "vector(1)" {
		return 1, nil
	}
	m := window.FindStringSubmatch(query)
	if m == nil {
		return 0, fmt.Errorf("simulate: no [window] in query %q", query)
	}
	span, err := time.ParseDuration(m[1])
	if err != nil {
		return 0, fmt.Errorf("simulate: window %q: %v", m[1], err)
	}
	primary := p.w.selectsPrimary(query)
	requests, failed := p.w.traffic(primary, span)
	switch {
	case strings.Contains(query, "increase(") && strings.Contains(query, `le=~"`):
		bound, err := bucketBound(query)
		if err != nil {
			return 0, err
		}
		return requests * (1 - p.w.slowShare(primary, bound)), nil
	case strings.Contains(query, "increase("):
		if strings.Contains(query, `!~"5`) || strings.Contains(query, `!="failure"`) {
			return requests - failed, nil
		}
		return requests, nil
	case requests == 0:
		return 0, metrics.ErrNoValuesFound
	case strings.Contains(query, "histogram_quantile") || strings.Contains(query, "duration") || strings.Contains(query, "latency"):
		v := p.w.scenario.Canary.Latency.Duration
		if primary {
			v = p.w.scenario.Primary.Latency.Duration
		}
		ms := float64(v) / float64(time.Millisecond)
		if p.w.durationInSeconds {
			return ms / 1000, nil
		}
		return ms, nil
	default:
		return 100 * (requests - failed) / requests, nil
	}
}

var bucketLe = regexp.MustCompile(`le=~"([0-9\\.]+)`)

// bucketBound is the latency bound of a bucket count query.
func bucketBound(query string) (time.Duration, error) {
	m := bucketLe.FindStringSubmatch(query)
	if m == nil {
		return 0, fmt.Errorf("simulate: no bucket bound in %q", query)
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(m[1], `\`, ""), 64)
	if err != nil {
		return 0, fmt.Errorf("simulate: bucket bound %q: %v", m[1], err)
	}
	unit := time.Millisecond
	if strings.Contains(query, "_seconds_bucket") {
		unit = time.Second
	}
	return time.Duration(v * float64(unit)), nil
}

// slowShare is the share of a version's requests slower than bound: its latencies are taken as
// exponentially distributed with the scenario's p99, so P(latency > b) = 0.01^(b/p99).
func (w *world) slowShare(primary bool, bound time.Duration) float64 {
	p99 := w.scenario.Canary.Latency.Duration
	if primary {
		p99 = w.scenario.Primary.Latency.Duration
	}
	if p99 <= 0 {
		return 0
	}
	return math.Pow(0.01, float64(bound)/float64(p99))
}

// selectsPrimary tells whether a query selects the primary: its workload, its Service, upstream
// or route, or NGINX's main ingress.
func (w *world) selectsPrimary(query string) bool {
	return strings.Contains(query, w.target+"-primary") || strings.Contains(query, w.service+"-primary") ||
		strings.Contains(query, `canary=""`)
}

// traffic sums one version's requests and failed requests over the span before now, second by
// second, with the canary's share of the routes in force at each second.
func (w *world) traffic(primary bool, span time.Duration) (requests, failed float64) {
	now := w.now
	for t := now.Add(-span).Add(time.Second); !t.After(now); t = t.Add(time.Second) {
		share := float64(w.canaryWeightAt(t)) / 100
		v := w.versionAt(t, primary)
		if primary {
			share = 1 - share
		}
		r := w.scenario.RPS * share
		requests += r
		failed += r * v.ErrorRate / 100
	}
	return requests, failed
}

func (w *world) versionAt(t time.Time, primary bool) Version {
	p, c := w.scenario.at(t.Sub(w.start))
	if primary {
		return p
	}
	return c
}

// canaryWeightAt is the canary weight of the routes at t.
func (w *world) canaryWeightAt(t time.Time) int {
	weight := 0
	for _, r := range w.routes {
		if r.at.After(t) {
			break
		}
		weight = r.canary
	}
	return weight
}
