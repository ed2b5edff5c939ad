package notify

import (
	"context"
	"fmt"
	"time"
)

// Sender delivers a message to one chat service.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, m Message) error

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) error { return f(ctx, m) }

// Provider types, the enum of AlertProvider spec.type.
const (
	ProviderSlack   = "slack"
	ProviderMSTeams = "msteams"
	ProviderDiscord = "discord"
	ProviderRocket  = "rocket"
	ProviderGChat   = "gchat"
)

// ProviderConfig is everything needed to build a sender: an AlertProvider once its secret is read,
// or the global flags.
type ProviderConfig struct {
	Type     string
	Address  string
	Token    string
	Proxy    string
	Username string
	Channel  string
	Timeout  time.Duration
}

// NewSender builds the sender of a provider type. The token is used by Slack only.
func NewSender(c ProviderConfig) (Sender, error) {
	var (
		s   Sender
		err error
	)
	switch c.Type {
	case ProviderSlack:
		s, err = nonNil(NewSlack(SlackConfig{URL: c.Address, Token: c.Token, Proxy: c.Proxy, Username: c.Username, Channel: c.Channel, Timeout: c.Timeout}))
	case ProviderMSTeams:
		s, err = nonNil(NewTeams(TeamsConfig{URL: c.Address, Proxy: c.Proxy, Timeout: c.Timeout}))
	case ProviderDiscord:
		s, err = nonNil(NewDiscord(DiscordConfig{URL: c.Address, Proxy: c.Proxy, Username: c.Username, Channel: c.Channel, Timeout: c.Timeout}))
	case ProviderRocket:
		s, err = nonNil(NewRocket(RocketConfig{URL: c.Address, Proxy: c.Proxy, Username: c.Username, Channel: c.Channel, Timeout: c.Timeout}))
	case ProviderGChat:
		s, err = nonNil(NewGChat(GChatConfig{URL: c.Address, Proxy: c.Proxy, Timeout: c.Timeout}))
	default:
		err = fmt.Errorf("provider type %q not supported", c.Type)
	}
	return s, err
}

// nonNil keeps a failed constructor's typed nil pointer out of the Sender interface.
func nonNil[S Sender](s S, err error) (Sender, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

// GlobalConfig is the global notifier of the command line, used by canaries without alerts: the
// -slack-url, -slack-token, -slack-proxy-url, -slack-channel, -slack-user, -msteams-url and
// -msteams-proxy-url flags (or their environment variables).
type GlobalConfig struct {
	SlackURL        string
	SlackToken      string
	SlackProxyURL   string
	SlackChannel    string
	SlackUser       string
	MSTeamsURL      string
	MSTeamsProxyURL string
	Timeout         time.Duration
}

// NewGlobalSender builds the global notifier as Flagger does: an MS Teams URL switches it to MS
// Teams (with the MS Teams proxy); otherwise it posts to Slack, through the incoming webhook or
// with the bot token. Nothing configured gives a nil Sender and no error.
func NewGlobalSender(c GlobalConfig) (Sender, error) {
	if c.MSTeamsURL != "" {
		return nonNil(NewTeams(TeamsConfig{URL: c.MSTeamsURL, Proxy: c.MSTeamsProxyURL, Timeout: c.Timeout}))
	}
	if c.SlackURL == "" && c.SlackToken == "" {
		return nil, nil
	}
	user := c.SlackUser
	if user == "" {
		user = DefaultUsername
	}
	return nonNil(NewSlack(SlackConfig{URL: c.SlackURL, Token: c.SlackToken, Proxy: c.SlackProxyURL, Username: user, Channel: c.SlackChannel, Timeout: c.Timeout}))
}

// Defaults of an AlertProvider.
const (
	DefaultChannel  = "general"
	DefaultUsername = "flagger"
)
