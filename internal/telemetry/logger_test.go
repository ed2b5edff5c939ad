package telemetry

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"
)

// TestLogLevelReadsFlaggersValues: -log-level as Flagger reads it (an unknown value is info), and
// "warning", which Flagger's help offers.
func TestLogLevelReadsFlaggersValues(t *testing.T) {
	for in, want := range map[string]zapcore.Level{
		"debug": zapcore.DebugLevel, "info": zapcore.InfoLevel, "warn": zapcore.WarnLevel,
		"warning": zapcore.WarnLevel, "error": zapcore.ErrorLevel, "fatal": zapcore.FatalLevel,
		"panic": zapcore.PanicLevel, "verbose": zapcore.InfoLevel,
	} {
		if got := LogLevel(in); got != want {
			t.Errorf("LogLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestConsoleLogger: -zap-encoding console writes tab-separated lines that start with the time and
// the level, and -log-level filters.
func TestConsoleLogger(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger("info", "console", &buf)
	log.Debug("hidden")
	log.Warn("Halt podinfo.test advancement")
	fields := strings.Split(strings.TrimSpace(buf.String()), "\t")
	if len(fields) < 4 || fields[1] != "warn" || fields[3] != "Halt podinfo.test advancement" {
		t.Errorf("console line %q, want time, warn, caller, message", buf.String())
	}
}
