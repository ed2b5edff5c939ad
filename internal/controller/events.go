package controller

import (
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
}

// Info records a Normal event.
func (a Announcer) Info(cd *flaggerv1.Canary, msg string) {
	a.Log.Info(msg, "canary", cd.Key())
	a.Recorder.Event(cd, corev1.EventTypeNormal, eventReason, msg)
}

// Warn records a Warning event.
func (a Announcer) Warn(cd *flaggerv1.Canary, msg string) {
	a.Log.Info(msg, "canary", cd.Key(), "warning", true)
	a.Recorder.Event(cd, corev1.EventTypeWarning, eventReason, msg)
}
