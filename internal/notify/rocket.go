package notify

import (
	"context"
	"time"
)

// RocketConfig configures a Rocket.Chat sender.
type RocketConfig struct {
	// URL is the Rocket.Chat incoming webhook.
	URL      string
	Proxy    string
	Username string
	Channel  string
	Timeout  time.Duration
}

// Rocket posts Slack-formatted messages to a Rocket.Chat incoming webhook.
type Rocket struct {
	endpoint
	username string
	channel  string
}

// NewRocket validates the configuration and returns a Rocket.Chat sender.
func NewRocket(c RocketConfig) (*Rocket, error) {
	e, err := newEndpoint("rocket", c.URL, c.Proxy, c.Timeout)
	if err != nil {
		return nil, err
	}
	return &Rocket{endpoint: e, username: c.Username, channel: c.Channel}, nil
}

// Attachment colours: Flagger's blue, and red for errors.
const (
	rocketColor      = "#0076D7"
	rocketErrorColor = "#FF0000"
)

// Send posts the message.
func (r *Rocket) Send(ctx context.Context, m Message) error {
	color := rocketColor
	if m.IsError() {
		color = rocketErrorColor
	}
	_, err := r.post(ctx, slackMessage(m, r.channel, r.username, color), nil)
	return err
}
