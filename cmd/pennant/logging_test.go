package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
)

// TestLogLinesAreShapedAsFlaggers logs through the binary's logger setup, as the controller does
// (its own line, and an Announcer on ctrl.Log as NewCanaryReconciler makes it), and reads the
// lines back as Flagger's pkg/logger writes them: the keys level, ts (ISO 8601), caller
// (package/file.go:line of the code that logged), msg and, for a canary, canary as name.namespace.
func TestLogLinesAreShapedAsFlaggers(t *testing.T) {
	var buf bytes.Buffer
	log := setupLogging(options{logLevel: "debug", zapEncoding: "json"}, &buf)
	log.Info("Starting Pennant")
	a := controller.Announcer{Recorder: record.NewFakeRecorder(10), Log: ctrl.Log.WithName("canary")}
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
	a.Info(cd, "Advance podinfo.test canary iteration 1/3")
	a.Warn(cd, "Halt podinfo.test advancement external check load-test failed 403 Forbidden")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3:\n%s", len(lines), buf.String())
	}
	caller := regexp.MustCompile(`^pennant/logging_test\.go:\d+$`)
	want := []struct {
		level, msg string
		keys       []string
	}{
		{"info", "Starting Pennant", []string{"caller", "level", "msg", "ts"}},
		{"info", "Advance podinfo.test canary iteration 1/3", []string{"caller", "canary", "level", "msg", "ts"}},
		{"warn", "Halt podinfo.test advancement external check load-test failed 403 Forbidden", []string{"caller", "canary", "level", "msg", "ts"}},
	}
	for i, w := range want {
		var got map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatalf("line %d is not JSON: %q", i, lines[i])
		}
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, w.keys) {
			t.Errorf("line %d keys %v, want %v: %s", i, keys, w.keys, lines[i])
		}
		if got["level"] != w.level || got["msg"] != w.msg {
			t.Errorf("line %d: level %v msg %v, want %s %s", i, got["level"], got["msg"], w.level, w.msg)
		}
		if c, _ := got["caller"].(string); !caller.MatchString(c) {
			t.Errorf("line %d: caller %q, want this file's line", i, c)
		}
		if ts, _ := got["ts"].(string); !isISO8601(ts) {
			t.Errorf("line %d: ts %q is not ISO 8601 with milliseconds", i, ts)
		}
		if i > 0 && got["canary"] != "podinfo.test" {
			t.Errorf("line %d: canary %v, want podinfo.test", i, got["canary"])
		}
	}
}

func isISO8601(ts string) bool {
	_, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts)
	return err == nil
}
