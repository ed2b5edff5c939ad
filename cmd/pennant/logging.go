package main

import (
	"io"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/pennant/pennant/internal/telemetry"
)

// setupLogging makes Flagger's logger (-log-level, -zap-encoding) the controller's, writing to w;
// with -zap-replace-globals also zap's global one, as Flagger does.
func setupLogging(o options, w io.Writer) logr.Logger {
	zl := telemetry.NewLogger(o.logLevel, o.zapEncoding, w)
	if o.zapReplaceGlobals {
		zap.ReplaceGlobals(zl)
	}
	log := zapr.NewLogger(zl)
	ctrl.SetLogger(log)
	return log
}
