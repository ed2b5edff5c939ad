package telemetry

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNotificationCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := NewNotificationCounters(reg)
	if err != nil {
		t.Fatal(err)
	}
	c.NotificationDropped("queue_full")
	c.NotificationDropped("queue_full")
	c.NotificationDropped("stopped")
	c.NotificationFailed("event")
	want := `
# HELP pennant_notifications_dropped_total Alerts and event webhooks dropped before delivery, by reason
# TYPE pennant_notifications_dropped_total counter
pennant_notifications_dropped_total{reason="queue_full"} 2
pennant_notifications_dropped_total{reason="stopped"} 1
# HELP pennant_notifications_failed_total Alerts and event webhooks whose delivery failed, by kind
# TYPE pennant_notifications_failed_total counter
pennant_notifications_failed_total{kind="event"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), NotificationsDroppedName, NotificationsFailedName); err != nil {
		t.Error(err)
	}
}

// TestNotificationCountersBesideTheRecorder: both register on one registry (as on
// controller-runtime's), and a second registration of the counters is refused.
func TestNotificationCountersBesideTheRecorder(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewRecorder(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewNotificationCounters(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := NewNotificationCounters(reg); err == nil {
		t.Error("registering the counters twice succeeded")
	}
}
