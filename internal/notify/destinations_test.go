package notify

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/telemetry"
)

// counters registers the real notification counters on a fresh registry.
func counters(t *testing.T) (*telemetry.NotificationCounters, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := telemetry.NewNotificationCounters(reg)
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// counted reads one series of a counter from reg; 0 when the series does not exist.
func counted(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func otherCanary() *flaggerv1.Canary {
	cd := testCanary()
	cd.Name, cd.Namespace = "other", "team-b"
	return cd
}

// TestHangingReceiverDoesNotDelayAnotherDestination: more alerts than there are workers go to a
// receiver that never answers; another canary's alert to another receiver still arrives within a
// second while the first one hangs. With one shared pool, the hanging posts held every worker.
func TestHangingReceiverDoesNotDelayAnotherDestination(t *testing.T) {
	slow, arrived := hanging(t)
	fast, got := server(t, http.StatusOK, "ok")
	d := NewDispatcher(Options{
		Providers: fakeReader(t,
			provider("test", "slow", flaggerv1.AlertProviderSpec{Type: "msteams", Address: slow.URL}),
			provider("team-b", "fast", flaggerv1.AlertProviderSpec{Type: "msteams", Address: fast.URL}),
		),
		SendTimeout: time.Minute,
		Workers:     2,
		Report:      func(*flaggerv1.Canary, error) {},
	})
	started(t, d)
	stuck := withAlerts(alert("slow", "info", "slow", ""))
	for range 8 {
		d.Alert(context.Background(), stuck, flaggerv1.SeverityInfo, "x")
	}
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the hanging receiver got nothing")
	}
	healthy := otherCanary()
	healthy.Spec.Analysis.Alerts = []flaggerv1.CanaryAlert{alert("fast", "info", "fast", "")}
	start := time.Now()
	d.Alert(context.Background(), healthy, flaggerv1.SeverityInfo, "y")
	select {
	case r := <-got:
		if took := time.Since(start); took > time.Second {
			t.Errorf("the other canary's alert took %s", took)
		}
		equal(t, "path", r.Path, "/")
	case <-time.After(time.Second):
		t.Fatal("the other canary's alert did not arrive within a second while a receiver hangs")
	}
}

// TestHangingEventWebhookDoesNotDelayAnotherCanary: the same for event webhooks.
func TestHangingEventWebhookDoesNotDelayAnotherCanary(t *testing.T) {
	slow, arrived := hanging(t)
	fast, got := server(t, http.StatusOK, "")
	d := NewDispatcher(Options{Workers: 1})
	started(t, d)
	stuck := testCanary()
	stuck.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "slow", Type: flaggerv1.EventHook, URL: slow.URL, Timeout: "1m"}}
	for range 8 {
		d.EventWebhook(context.Background(), stuck, "Normal", "x")
	}
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the hanging webhook got nothing")
	}
	healthy := otherCanary()
	healthy.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "fast", Type: flaggerv1.EventHook, URL: fast.URL + "/events", Timeout: "1m"}}
	d.EventWebhook(context.Background(), healthy, "Normal", "y")
	select {
	case r := <-got:
		equal(t, "path", r.Path, "/events")
		equal(t, "name", payload(t, r).Name, "other")
	case <-time.After(time.Second):
		t.Fatal("the other canary's event did not arrive within a second while a webhook hangs")
	}
}

// TestFullQueueCountsDrops: the destination's queue holds QueueSize alerts; the rest is dropped
// and counted with reason queue_full, without blocking.
func TestFullQueueCountsDrops(t *testing.T) {
	c, reg := counters(t)
	var sent atomic.Int32
	d := NewDispatcher(Options{
		Global:    SenderFunc(func(context.Context, Message) error { sent.Add(1); return nil }),
		QueueSize: 2,
		Counters:  c,
	})
	for range 5 {
		d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "x")
	}
	equal(t, "dropped queue_full", counted(t, reg, telemetry.NotificationsDroppedName, "reason", DropQueueFull), 3.0)
	equal(t, "Dropped()", d.Dropped(), uint64(3))
	started(t, d)
	flush(t, d)
	equal(t, "sent", sent.Load(), int32(2))
	equal(t, "failed", counted(t, reg, telemetry.NotificationsFailedName, "kind", KindAlert), 0.0)
}

// TestTooManyDestinationsDrops: past MaxDestinations, a notification for a new receiver is
// dropped with its own reason, while the known receiver still gets its notifications.
func TestTooManyDestinationsDrops(t *testing.T) {
	c, reg := counters(t)
	first, got := server(t, http.StatusOK, "")
	second, other := server(t, http.StatusOK, "")
	d := NewDispatcher(Options{MaxDestinations: 1, Counters: c})
	started(t, d)
	a := testCanary()
	a.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "a", Type: flaggerv1.EventHook, URL: first.URL}}
	b := otherCanary()
	b.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "b", Type: flaggerv1.EventHook, URL: second.URL}}
	d.EventWebhook(context.Background(), a, "Normal", "x")
	d.EventWebhook(context.Background(), b, "Normal", "y")
	d.EventWebhook(context.Background(), a, "Normal", "z")
	flush(t, d)
	receive(t, got)
	receive(t, got)
	none(t, other)
	equal(t, "dropped too_many_destinations", counted(t, reg, telemetry.NotificationsDroppedName, "reason", DropTooManyDestinations), 1.0)
}

// TestStoppedDispatcherCountsDrops: what is queued when the dispatcher stops, and what comes
// after, is counted as dropped with reason stopped.
func TestStoppedDispatcherCountsDrops(t *testing.T) {
	c, reg := counters(t)
	d := NewDispatcher(Options{Global: SenderFunc(func(context.Context, Message) error { return nil }), Counters: c})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "after stop")
	cd := testCanary()
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "e", Type: flaggerv1.EventHook, URL: "http://127.0.0.1:1/"}}
	d.EventWebhook(context.Background(), cd, "Normal", "after stop")
	flush(t, d)
	equal(t, "dropped stopped", counted(t, reg, telemetry.NotificationsDroppedName, "reason", DropStopped), 2.0)
}

// TestFailuresAreCounted: a receiver answering 500, a missing provider and a failing event
// webhook are each counted as failed, by kind.
func TestFailuresAreCounted(t *testing.T) {
	c, reg := counters(t)
	broken, _ := server(t, http.StatusInternalServerError, "boom")
	d := NewDispatcher(Options{
		Providers: fakeReader(t, provider("test", "broken", flaggerv1.AlertProviderSpec{Type: "slack", Address: broken.URL})),
		Counters:  c,
		Report:    func(*flaggerv1.Canary, error) {},
	})
	started(t, d)
	cd := withAlerts(alert("broken", "info", "broken", ""), alert("missing", "info", "missing", ""))
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "e", Type: flaggerv1.EventHook, URL: broken.URL + "/events"}}
	d.Alert(context.Background(), cd, flaggerv1.SeverityInfo, "x")
	d.EventWebhook(context.Background(), cd, "Warning", "y")
	flush(t, d)
	equal(t, "failed alerts", counted(t, reg, telemetry.NotificationsFailedName, "kind", KindAlert), 2.0)
	equal(t, "failed events", counted(t, reg, telemetry.NotificationsFailedName, "kind", KindEvent), 1.0)
	equal(t, "dropped", d.Dropped(), uint64(0))
}

// TestPanickingSenderIsRecoveredAndCounted: a sender that panics is counted as failed and its
// destination's worker keeps serving.
func TestPanickingSenderIsRecoveredAndCounted(t *testing.T) {
	c, reg := counters(t)
	var calls atomic.Int32
	d := NewDispatcher(Options{
		Global: SenderFunc(func(context.Context, Message) error {
			if calls.Add(1) == 1 {
				panic("a tenant-controlled response")
			}
			return nil
		}),
		Counters: c,
	})
	started(t, d)
	d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "x")
	d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "y")
	flush(t, d)
	equal(t, "calls", calls.Load(), int32(2))
	equal(t, "failed", counted(t, reg, telemetry.NotificationsFailedName, "kind", KindAlert), 1.0)
}

func TestDestinationKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T/B/X":      "https://hooks.slack.com/services/T/B/X",
		"HTTPS://user:pw@Hooks.Slack.com/a?token=1#f": "https://hooks.slack.com/a",
		" http://127.0.0.1:8080/events ":              "http://127.0.0.1:8080/events",
		"http://127.0.0.1:8080/other":                 "http://127.0.0.1:8080/other",
		"not a url":                                   "not a url",
	} {
		equal(t, in, DestinationKey(in), want)
	}
}
