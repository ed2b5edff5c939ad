package controller

import (
	"context"
	"fmt"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/webhooks"
)

// Analyzer runs a canary's metric checks; a non-nil error is the first failed check.
type Analyzer interface {
	Analyze(ctx context.Context, cd *flaggerv1.Canary) error
}

// NoMetricProviders is the analyzer until metric providers exist: it fails every canary that
// declares metrics, so that nothing is promoted on checks that were never run.
type NoMetricProviders struct{}

// Analyze fails when the canary has metric checks.
func (NoMetricProviders) Analyze(_ context.Context, cd *flaggerv1.Canary) error {
	a := cd.GetAnalysis()
	if a == nil || len(a.Metrics) == 0 {
		return nil
	}
	return fmt.Errorf("Halt %s advancement: metric %s cannot be checked: no metric provider is available", cd.Key(), a.Metrics[0].Name)
}

// hookCaller posts one webhook.
type hookCaller interface {
	Call(ctx context.Context, cd *flaggerv1.Canary, hook flaggerv1.CanaryWebhook, phase flaggerv1.CanaryPhase, metadata map[string]string) error
}

// checks adapts webhooks and metric analysis to the phase machine.
type checks struct {
	hooks    hookCaller
	analyzer Analyzer
}

var _ canary.Checks = checks{}

func (c checks) RunHooks(ctx context.Context, cd *flaggerv1.Canary, hook flaggerv1.HookType, phase flaggerv1.CanaryPhase) []canary.HookResult {
	a := cd.GetAnalysis()
	if a == nil {
		return nil
	}
	var results []canary.HookResult
	for _, w := range a.Webhooks {
		if !hookMatches(w.Type, hook) {
			continue
		}
		err := c.hooks.Call(ctx, cd, w, phase, webhooks.Metadata(w))
		results = append(results, canary.HookResult{Name: w.Name, Err: err, MuteAlert: w.MuteAlert})
	}
	return results
}

func (c checks) Analyze(ctx context.Context, cd *flaggerv1.Canary) error {
	return c.analyzer.Analyze(ctx, cd)
}

// hookMatches treats an empty webhook type as rollout, as Flagger does.
func hookMatches(have, want flaggerv1.HookType) bool {
	if have == "" {
		have = flaggerv1.RolloutHook
	}
	return have == want
}
