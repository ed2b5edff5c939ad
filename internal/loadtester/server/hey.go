package server

import (
	"context"

	"k8s.io/apimachinery/pkg/types"

	"github.com/pennant/pennant/internal/loadtester/load"
)

// HeyEngine runs hey command lines in the built-in load engine (internal/loadtester/load): the
// load tests of Flagger's docs and the seeds run with no hey binary and no process.
type HeyEngine struct {
	// Metrics receives the runs' series on /metrics; nil: none.
	Metrics *load.Metrics
}

// Handles tells whether the line's program is hey.
func (HeyEngine) Handles(command string) bool { return load.IsHey(command) }

// Prepare parses the hey line; its run's report is the summary hey would print (requests, status
// codes, errors, latency percentiles). Failed requests are part of the report, as with hey: only an
// invalid line or a cancelled run fails the task.
func (e HeyEngine) Prepare(canary types.NamespacedName, command string) (func(ctx context.Context) (string, error), error) {
	spec, err := load.ParseHey(command)
	if err != nil {
		return nil, err
	}
	spec.Canary = canary
	return func(ctx context.Context) (string, error) {
		report, err := load.Run(ctx, spec, e.Metrics)
		return report.String(), err
	}, nil
}
