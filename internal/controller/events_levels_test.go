package controller

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/zapr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/telemetry"
)

// failingRollout answers the phase machine's checks: the rollout webhook fails, all else passes.
type failingRollout struct{}

func (failingRollout) RunHooks(_ context.Context, _ *flaggerv1.Canary, hook flaggerv1.HookType, _ flaggerv1.CanaryPhase) ([]canary.HookResult, error) {
	if hook == flaggerv1.RolloutHook {
		return []canary.HookResult{{Name: "load-test", Err: errors.New("403 Forbidden")}}, nil
	}
	return nil, nil
}

func (failingRollout) Analyze(context.Context, *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	return nil, nil
}

// TestHaltsAndFailuresAreLoggedAsWarnings carries out the events of a real decision, a failed
// check that reaches the threshold, through the reconciler and the binary's logger: the halt, the
// rollback and the failure are warn lines (Info would hide them among the progress messages).
func TestHaltsAndFailuresAreLoggedAsWarnings(t *testing.T) {
	var buf bytes.Buffer
	r := &CanaryReconciler{Announcer: Announcer{
		Recorder: record.NewFakeRecorder(100),
		Log:      zapr.NewLogger(telemetry.NewLogger("debug", "json", &buf)),
	}}
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	cd := &flaggerv1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: flaggerv1.CanarySpec{
			Provider:  "kubernetes",
			TargetRef: flaggerv1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Analysis: &flaggerv1.CanaryAnalysis{Interval: "1m", Threshold: 1, Iterations: 3,
				Webhooks: []flaggerv1.CanaryWebhook{{Name: "load-test", URL: "http://127.0.0.1:1/"}}},
		},
		Status: flaggerv1.CanaryStatus{Phase: flaggerv1.CanaryPhaseProgressing, Iterations: 1, LastAppliedSpec: "rev2"},
	}
	ready := canary.Readiness{Ready: true}
	d := canary.Next(context.Background(), canary.Input{
		Canary:   cd,
		Observed: canary.Observation{Revision: "rev2", Primary: ready, Canary: ready, LastTick: now.Add(-time.Hour)},
		Settings: canary.Settings{Provider: "kubernetes"},
		Now:      now,
	}, failingRollout{})
	for _, a := range d.Actions {
		if a.Kind == canary.Event {
			if err := r.do(context.Background(), cd, env{}, a, &d.Status); err != nil {
				t.Fatal(err)
			}
		}
	}

	levels := map[string]string{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var line struct{ Level, Msg, Canary string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line %q: %v", sc.Text(), err)
		}
		if line.Canary != "podinfo.test" {
			t.Errorf("line %q: canary %q, want podinfo.test", sc.Text(), line.Canary)
		}
		levels[line.Msg] = line.Level
	}
	for _, prefix := range []string{
		"Halt podinfo.test advancement external check load-test failed",
		"Rolling back podinfo.test failed checks threshold reached 1",
		"Canary failed! Scaling down podinfo.test",
	} {
		found := false
		for msg, level := range levels {
			if strings.HasPrefix(msg, prefix) {
				found = true
				if level != "warn" {
					t.Errorf("%q logged at %q, want warn", msg, level)
				}
			}
		}
		if !found {
			t.Errorf("no line %q... among %v", prefix, levels)
		}
	}
}

// TestAnnouncerLevels: Info, Warn and Error log at info, warn and error, each with the canary.
func TestAnnouncerLevels(t *testing.T) {
	var buf bytes.Buffer
	a := Announcer{Recorder: record.NewFakeRecorder(10), Log: zapr.NewLogger(telemetry.NewLogger("debug", "json", &buf))}
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
	a.Info(cd, "one")
	a.Warn(cd, "two")
	a.Error(cd, "three")
	var got []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var line struct{ Level, Msg, Canary string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		got = append(got, line.Msg+"="+line.Level+"@"+line.Canary)
	}
	want := "one=info@podinfo.test two=warn@podinfo.test three=error@podinfo.test"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}
