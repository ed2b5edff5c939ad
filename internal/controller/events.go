package controller

import (
	"context"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// eventReason is the reason Flagger gives every canary event.
const eventReason = "Synced"

// Announcer records a Kubernetes event on the canary and logs the same text as the JSON log's msg
// with the canary as name.namespace, the way Flagger does, so that `kubectl describe canary` and
// `jq .msg` read alike.
type Announcer struct {
	Recorder record.EventRecorder
	// Log is the controller's logger. When it is zap's (telemetry.NewLogger behind zapr, as in the
	// binary), Warn and Error log at zap's warn and error levels; logr has no warning level.
	Log logr.Logger
	// Events, when set, also posts every event to the canary's event webhooks (or -event-webhook);
	// it must not block.
	Events EventSink
}

// EventSink receives every canary event.
type EventSink interface {
	EventWebhook(ctx context.Context, cd *flaggerv1.Canary, eventType, message string)
}

// Info records a Normal event, logged at info level.
func (a Announcer) Info(cd *flaggerv1.Canary, msg string) {
	a.log(zapcore.InfoLevel, cd, msg)
	a.record(cd, corev1.EventTypeNormal, msg)
}

// Warn records a Warning event, logged at warn level: halted steps, failed checks, rollbacks and
// the errors that are retried. (Flagger logs these at info level, under a Warning event.)
func (a Announcer) Warn(cd *flaggerv1.Canary, msg string) {
	a.log(zapcore.WarnLevel, cd, msg)
	a.record(cd, corev1.EventTypeWarning, msg)
}

// Error records a Warning event, logged at error level: where Flagger's recordEventErrorf is used
// (a metric provider that does not answer, a canary that cannot be scaled up).
func (a Announcer) Error(cd *flaggerv1.Canary, msg string) {
	a.log(zapcore.ErrorLevel, cd, msg)
	a.record(cd, corev1.EventTypeWarning, msg)
}

// announcerFrames is how many frames a log call makes inside the Announcer (log, and Info, Warn or
// Error): the caller logged is the code that announced.
const announcerFrames = 2

func (a Announcer) log(level zapcore.Level, cd *flaggerv1.Canary, msg string) {
	canary := zap.String("canary", cd.Key())
	if u, ok := a.Log.GetSink().(zapr.Underlier); ok {
		// A logger of its own on the same core: the logr wrappers' caller skips and the logger's
		// name (Flagger's canary lines have none) do not apply.
		zl := zap.New(u.GetUnderlying().Core(), zap.AddCaller(), zap.AddCallerSkip(announcerFrames),
			zap.AddStacktrace(zapcore.ErrorLevel))
		if ce := zl.Check(level, msg); ce != nil {
			ce.Write(canary)
		}
		return
	}
	if level >= zapcore.ErrorLevel {
		a.Log.Error(nil, msg, "canary", cd.Key())
		return
	}
	a.Log.Info(msg, "canary", cd.Key())
}

func (a Announcer) record(cd *flaggerv1.Canary, eventType, msg string) {
	a.Recorder.Event(cd, eventType, eventReason, msg)
	if a.Events != nil {
		a.Events.EventWebhook(context.Background(), cd, eventType, msg)
	}
}
