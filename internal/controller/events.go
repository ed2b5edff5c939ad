package controller

import (
	"context"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// eventReason is the reason Flagger gives every canary event.
const eventReason = "Synced"

// Announcer records a Kubernetes event on the canary and logs the same text as the JSON log's msg,
// the way Flagger does, so that `kubectl describe canary` and `jq .msg` read alike.
type Announcer struct {
	Recorder record.EventRecorder
	Log      logr.Logger
	// Events, when set, also posts every event to the canary's event webhooks (or -event-webhook);
	// it must not block.
	Events EventSink
}

// EventSink receives every canary event.
type EventSink interface {
	EventWebhook(ctx context.Context, cd *flaggerv1.Canary, eventType, message string)
}

// Info records a Normal event.
func (a Announcer) Info(cd *flaggerv1.Canary, msg string) {
	a.Log.Info(msg, "canary", cd.Key())
	a.record(cd, corev1.EventTypeNormal, msg)
}

// Warn records a Warning event.
func (a Announcer) Warn(cd *flaggerv1.Canary, msg string) {
	a.Log.Info(msg, "canary", cd.Key(), "warning", true)
	a.record(cd, corev1.EventTypeWarning, msg)
}

func (a Announcer) record(cd *flaggerv1.Canary, eventType, msg string) {
	a.Recorder.Event(cd, eventType, eventReason, msg)
	if a.Events != nil {
		a.Events.EventWebhook(context.Background(), cd, eventType, msg)
	}
}
