// Package notify sends canary alerts to chat services (Slack, MS Teams, Discord, Rocket.Chat,
// Google Chat) and canary events to event webhooks, the way Flagger does. The Dispatcher is the
// controller's Notifier: it resolves each canary's AlertProviders and posts from one worker per
// destination, so that alerting never blocks a reconcile and one hanging receiver never delays
// another's notifications.
package notify

import (
	"context"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Notifier delivers an alert about a canary.
type Notifier interface {
	Alert(ctx context.Context, cd *flaggerv1.Canary, severity flaggerv1.AlertSeverity, message string)
}

// Nop drops alerts; it is used when no alert provider is configured.
type Nop struct{}

// Alert does nothing.
func (Nop) Alert(context.Context, *flaggerv1.Canary, flaggerv1.AlertSeverity, string) {}
