// Package simulate runs a Canary through Pennant's real phase machine and real metric analysis on
// a virtual clock, against a scenario of traffic, error rates, latencies, outages and webhook
// answers, with no cluster: `kubectl pennant simulate`.
package simulate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Scenario is the world a release is simulated in.
type Scenario struct {
	// RPS is the requests per second the service gets, split between the versions by the routes.
	RPS float64 `json:"rps"`
	// Primary and Canary are each version's error rate and latency.
	Primary Version `json:"primary"`
	Canary  Version `json:"canary"`
	// Outages hit both versions for a while (a shared dependency failing).
	Outages []Outage `json:"outages,omitempty"`
	// Webhooks answer by name: "pass" (the default) or "fail"; a gate that fails stays closed.
	Webhooks map[string]string `json:"webhooks,omitempty"`
	// Duration bounds the simulation (default 2h of virtual time).
	Duration Duration `json:"duration,omitempty"`
}

// Version is one version's behaviour.
type Version struct {
	// ErrorRate is the share of its requests that fail, in percent.
	ErrorRate float64 `json:"errorRate"`
	// Latency is its p99 (and mean) response time.
	Latency Duration `json:"latency,omitempty"`
}

// Outage is a shared failure from From to To after the release starts.
type Outage struct {
	From Duration `json:"from"`
	To   Duration `json:"to"`
	// ErrorRate is the share of both versions' requests that fail meanwhile, in percent.
	ErrorRate float64 `json:"errorRate"`
}

// Duration is a time.Duration written as "90s" or "2m".
type Duration struct{ time.Duration }

func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90s or 2m", s)
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// ParseScenario reads a scenario file and says what in it cannot work.
func ParseScenario(data []byte) (Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return s, fmt.Errorf("scenario: %w", err)
	}
	return s, s.validate()
}

func (s Scenario) validate() error {
	var errs []error
	if s.RPS <= 0 {
		errs = append(errs, errors.New("rps: must be positive"))
	}
	for name, v := range map[string]Version{"primary": s.Primary, "canary": s.Canary} {
		if v.ErrorRate < 0 || v.ErrorRate > 100 {
			errs = append(errs, fmt.Errorf("%s.errorRate: %v is not a percentage", name, v.ErrorRate))
		}
		if v.Latency.Duration < 0 {
			errs = append(errs, fmt.Errorf("%s.latency: must not be negative", name))
		}
	}
	for i, o := range s.Outages {
		if o.To.Duration <= o.From.Duration {
			errs = append(errs, fmt.Errorf("outages[%d]: to (%s) must come after from (%s)", i, o.To, o.From))
		}
		if o.ErrorRate < 0 || o.ErrorRate > 100 {
			errs = append(errs, fmt.Errorf("outages[%d].errorRate: %v is not a percentage", i, o.ErrorRate))
		}
	}
	for name, answer := range s.Webhooks {
		if answer != "pass" && answer != "fail" {
			errs = append(errs, fmt.Errorf("webhooks.%s: %q, want pass or fail", name, answer))
		}
	}
	if s.Duration.Duration < 0 {
		errs = append(errs, errors.New("duration: must not be negative"))
	}
	return errors.Join(errs...)
}

// at is each version's error rate (a share) and latency at a time since the release started.
func (s Scenario) at(since time.Duration) (primary, canary Version) {
	primary, canary = s.Primary, s.Canary
	for _, o := range s.Outages {
		if since >= o.From.Duration && since < o.To.Duration {
			primary.ErrorRate, canary.ErrorRate = max(primary.ErrorRate, o.ErrorRate), max(canary.ErrorRate, o.ErrorRate)
		}
	}
	return primary, canary
}
