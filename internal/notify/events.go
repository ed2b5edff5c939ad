package notify

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// EventNotifier publishes the controller's events to webhooks; the Dispatcher is one.
type EventNotifier interface {
	// EventWebhook publishes one event (eventType is Normal or Warning) without blocking.
	EventWebhook(ctx context.Context, cd *flaggerv1.Canary, eventType, message string)
}

// Metadata keys of an event payload; a hook's own metadata cannot replace them.
const (
	EventMessageKey   = "eventMessage"
	EventTypeKey      = "eventType"
	EventTimestampKey = "timestamp"
)

// EventWebhook enqueues Flagger's event payload for the canary's event webhooks or, when it has
// none, for the global -event-webhook. The payload is the webhook payload (name, namespace,
// phase, checksum) whose metadata holds eventMessage, eventType and timestamp (Unix milliseconds,
// as a string), plus the hook's metadata. Failures are logged and counted.
func (d *Dispatcher) EventWebhook(_ context.Context, cd *flaggerv1.Canary, eventType, message string) {
	hooks := d.eventHooks(cd)
	if len(hooks) == 0 {
		return
	}
	c := cd.DeepCopy()
	phase := c.Status.Phase
	now := time.Now()
	// One job per hook, each on its receiver's queue: a hanging webhook delays only itself.
	for _, h := range hooks {
		d.toDestination(DestinationKey(h.URL), c, KindEvent, message, func(ctx context.Context) {
			err := d.opts.Hooks.Call(ctx, c, h, phase, EventMetadata(h, eventType, message, now))
			if err != nil {
				d.failed(KindEvent)
				d.log.Error(err, "error sending event to webhook", "canary", c.Key(), "webhook", h.Name)
			}
		})
	}
}

// SendEvent posts the event synchronously and returns every failure (tests and tools).
func (d *Dispatcher) SendEvent(ctx context.Context, cd *flaggerv1.Canary, eventType, message string) error {
	var errs []error
	now := time.Now()
	for _, h := range d.eventHooks(cd) {
		if err := d.opts.Hooks.Call(ctx, cd, h, cd.Status.Phase, EventMetadata(h, eventType, message, now)); err != nil {
			errs = append(errs, fmt.Errorf("event webhook %s: %w", h.Name, err))
		}
	}
	return errors.Join(errs...)
}

// eventHooks are the canary's event webhooks, or the global one named "events" when it has none.
func (d *Dispatcher) eventHooks(cd *flaggerv1.Canary) []flaggerv1.CanaryWebhook {
	var hooks []flaggerv1.CanaryWebhook
	if a := cd.GetAnalysis(); a != nil {
		for _, h := range a.Webhooks {
			if h.Type == flaggerv1.EventHook {
				hooks = append(hooks, *h.DeepCopy())
			}
		}
	}
	if len(hooks) == 0 && d.opts.EventWebhook != "" {
		hooks = append(hooks, flaggerv1.CanaryWebhook{Name: "events", URL: d.opts.EventWebhook})
	}
	return hooks
}

// EventMetadata is the metadata of an event payload.
func EventMetadata(h flaggerv1.CanaryWebhook, eventType, message string, at time.Time) map[string]string {
	md := map[string]string{
		EventMessageKey:   message,
		EventTypeKey:      eventType,
		EventTimestampKey: strconv.FormatInt(at.UnixMilli(), 10),
	}
	if h.Metadata != nil {
		for k, v := range *h.Metadata {
			if _, reserved := md[k]; !reserved {
				md[k] = v
			}
		}
	}
	return md
}

var _ EventNotifier = (*Dispatcher)(nil)
