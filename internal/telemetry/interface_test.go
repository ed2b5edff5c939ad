package telemetry_test

import (
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/notify"
	"github.com/pennant/pennant/internal/telemetry"
)

// The controller calls the Recorder through its own interface; an external test package keeps
// telemetry free to be imported by the controller later without an import cycle.
var _ controller.Recorder = (*telemetry.Recorder)(nil)

// The notify.Dispatcher counts its dropped and failed notifications through its own interface.
var _ notify.Counters = (*telemetry.NotificationCounters)(nil)
