package controller

import (
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

// Recorder receives what the controller's Prometheus metrics report.
type Recorder interface {
	// Observe records the status and outcome of a decision.
	Observe(cd *flaggerv1.Canary, d canary.Decision, provider string)
	// SetWeight records the weights applied to the primary and the canary.
	SetWeight(cd *flaggerv1.Canary, primary, canary int)
	// ObserveDuration records how long an analysis step took.
	ObserveDuration(cd *flaggerv1.Canary, d time.Duration)
	// ObserveStepLateness records how long after it was due an analysis step began.
	ObserveStepLateness(d time.Duration)
	// SetCanaryTotals records how many canaries each namespace has.
	SetCanaryTotals(canaries []flaggerv1.Canary)
	// Forget drops the series of a deleted canary.
	Forget(namespace, name string)
}

// NopRecorder records nothing.
type NopRecorder struct{}

func (NopRecorder) Observe(*flaggerv1.Canary, canary.Decision, string) {}
func (NopRecorder) SetWeight(*flaggerv1.Canary, int, int)              {}
func (NopRecorder) ObserveDuration(*flaggerv1.Canary, time.Duration)   {}
func (NopRecorder) ObserveStepLateness(time.Duration)                  {}
func (NopRecorder) SetCanaryTotals([]flaggerv1.Canary)                 {}
func (NopRecorder) Forget(string, string)                              {}
