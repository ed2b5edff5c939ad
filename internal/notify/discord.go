package notify

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// DiscordConfig configures a Discord sender.
type DiscordConfig struct {
	// URL is the Discord webhook; "/slack" is appended unless it is already there.
	URL      string
	Proxy    string
	Username string
	Channel  string
	Timeout  time.Duration
}

// Discord posts Slack-formatted messages to the Slack-compatible endpoint of a Discord webhook.
type Discord struct {
	endpoint
	username string
	channel  string
}

// NewDiscord validates the configuration and returns a Discord sender.
func NewDiscord(c DiscordConfig) (*Discord, error) {
	address := strings.TrimSpace(c.URL)
	if u, err := url.Parse(address); err == nil && !strings.HasSuffix(u.Path, "/slack") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/slack"
		u.RawPath = ""
		address = u.String()
	}
	e, err := newEndpoint("discord", address, c.Proxy, c.Timeout)
	if err != nil {
		return nil, err
	}
	return &Discord{endpoint: e, username: c.Username, channel: c.Channel}, nil
}

// Send posts the message.
func (d *Discord) Send(ctx context.Context, m Message) error {
	_, err := d.post(ctx, slackMessage(m, d.channel, d.username, slackColor(m.Severity)), nil)
	return err
}
