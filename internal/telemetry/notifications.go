package telemetry

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the notification counters. They are Pennant's own (Flagger has none), hence the
// "pennant" prefix instead of the flagger subsystem.
const (
	NotificationsDroppedName = "pennant_notifications_dropped_total"
	NotificationsFailedName  = "pennant_notifications_failed_total"
)

// NotificationCounters counts the alerts and event webhooks that were dropped before delivery
// (label reason: a full queue, a stopped dispatcher, too many destinations) and those whose
// delivery failed (label kind: alert or event). It satisfies notify.Counters; pass it as the
// dispatcher's Options.Counters. It is safe for concurrent use.
type NotificationCounters struct {
	dropped *prometheus.CounterVec
	failed  *prometheus.CounterVec
}

// NewNotificationCounters creates the counters and registers them on reg (controller-runtime's
// metrics.Registry in production, a fresh prometheus.NewRegistry() in tests).
func NewNotificationCounters(reg prometheus.Registerer) (*NotificationCounters, error) {
	c := &NotificationCounters{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NotificationsDroppedName,
			Help: "Alerts and event webhooks dropped before delivery, by reason",
		}, []string{"reason"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NotificationsFailedName,
			Help: "Alerts and event webhooks whose delivery failed, by kind",
		}, []string{"kind"}),
	}
	if err := errors.Join(reg.Register(c.dropped), reg.Register(c.failed)); err != nil {
		return nil, err
	}
	return c, nil
}

// NotificationDropped counts one notification dropped for reason.
func (c *NotificationCounters) NotificationDropped(reason string) {
	c.dropped.WithLabelValues(reason).Inc()
}

// NotificationFailed counts one notification of kind ("alert" or "event") that could not be delivered.
func (c *NotificationCounters) NotificationFailed(kind string) {
	c.failed.WithLabelValues(kind).Inc()
}
