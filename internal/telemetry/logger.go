package telemetry

import (
	"io"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewLogger returns the controller's logger, shaped as Flagger's (its pkg/logger) so that log
// pipelines and queries written for Flagger keep working: one line per entry with the keys ts
// (ISO 8601), level (lowercase), caller (package/file.go:line), msg and, for canary messages,
// canary (name.namespace); the logger's name, when it has one, under logger. encoding is json or
// console (-zap-encoding); level is -log-level. Entries are sampled as Flagger's are: the first 100
// of a message each second, then every 100th.
func NewLogger(level, encoding string, w io.Writer) *zap.Logger {
	enc := zapcore.EncoderConfig{
		TimeKey:        "ts",
		LevelKey:       "level",
		NameKey:        "logger",
		CallerKey:      "caller",
		MessageKey:     "msg",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.ISO8601TimeEncoder,
		EncodeDuration: zapcore.SecondsDurationEncoder,
		EncodeCaller:   zapcore.ShortCallerEncoder,
	}
	var encoder zapcore.Encoder
	if encoding == "console" {
		encoder = zapcore.NewConsoleEncoder(enc)
	} else {
		encoder = zapcore.NewJSONEncoder(enc)
	}
	sink := zapcore.AddSync(w)
	core := zapcore.NewSamplerWithOptions(zapcore.NewCore(encoder, sink, LogLevel(level)), time.Second, 100, 100)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel), zap.ErrorOutput(sink))
}

// LogLevel reads -log-level as Flagger does, and also takes "warning", which Flagger's help text
// offers but its code reads as info.
func LogLevel(l string) zapcore.Level {
	switch l {
	case "debug":
		return zapcore.DebugLevel
	case "warn", "warning":
		return zapcore.WarnLevel
	case "error":
		return zapcore.ErrorLevel
	case "fatal":
		return zapcore.FatalLevel
	case "panic":
		return zapcore.PanicLevel
	default:
		return zapcore.InfoLevel
	}
}
