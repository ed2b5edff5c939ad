package controller

import (
	"k8s.io/client-go/tools/record"
)

// NewEventBroadcaster is the manager's event broadcaster (ctrl.Options.EventBroadcaster), with
// room for a release's events. client-go's defaults, which Flagger keeps, lose them: a burst of 25
// events per canary and type, then one per 5 minutes (the spam filter drops the rest), and more
// than 10 events of one reason within 10 minutes become a single "(combined from similar events)"
// event. A ten-step release emits about 15 Normal events, so the second release within the hour
// lost its "Advance … canary weight" events, which alerts, dashboards and kubectl pennant read.
// A canary emits at most a few events per analysis interval (10s at least), so a burst of 200 and
// one event per 10 seconds after it still stops a hot loop.
func NewEventBroadcaster() record.EventBroadcaster {
	return record.NewBroadcasterWithCorrelatorOptions(eventCorrelation)
}

var eventCorrelation = record.CorrelatorOptions{
	BurstSize:            200,
	QPS:                  1. / 10,
	MaxEvents:            200,
	MaxIntervalInSeconds: 600,
}
