package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// SlackPostMessageURL is Slack's Web API method that a bot token posts to.
const SlackPostMessageURL = "https://slack.com/api/chat.postMessage"

// SlackConfig configures a Slack sender.
type SlackConfig struct {
	// URL is the incoming webhook. With a Token it is the Web API URL to post to, by default
	// SlackPostMessageURL.
	URL string
	// Token is a bot token, sent as "Authorization: Bearer <token>".
	Token string
	// Proxy is an HTTP proxy URL.
	Proxy    string
	Username string
	// Channel is required with a Token; an incoming webhook posts to its own channel when it is empty.
	Channel string
	Timeout time.Duration
	// APIURL replaces SlackPostMessageURL when a Token is set without a URL (tests).
	APIURL string
}

// Slack posts attachments to a Slack incoming webhook or, with a bot token, to chat.postMessage.
type Slack struct {
	endpoint
	token    string
	username string
	channel  string
}

// NewSlack validates the configuration and returns a Slack sender.
func NewSlack(c SlackConfig) (*Slack, error) {
	address := c.URL
	if address == "" && c.Token != "" {
		address = SlackPostMessageURL
		if c.APIURL != "" {
			address = c.APIURL
		}
	}
	if c.Token != "" && c.Channel == "" {
		return nil, errors.New("slack: a bot token needs a channel")
	}
	e, err := newEndpoint("slack", address, c.Proxy, c.Timeout)
	if err != nil {
		return nil, err
	}
	return &Slack{endpoint: e, token: c.Token, username: c.Username, channel: c.Channel}, nil
}

// Send posts the message.
func (s *Slack) Send(ctx context.Context, m Message) error {
	var header http.Header
	if s.token != "" {
		// The Web API wants the charset, or it answers with a missing_charset warning.
		header = http.Header{
			"Authorization": {"Bearer " + s.token},
			"Content-Type":  {"application/json; charset=utf-8"},
		}
	}
	answer, err := s.post(ctx, slackMessage(m, s.channel, s.username, slackColor(m.Severity)), header)
	if err != nil || s.token == "" {
		return err
	}
	// The Web API answers 200 with {"ok": false, "error": "channel_not_found"} when it refuses.
	var r struct {
		OK    *bool  `json:"ok"`
		Error string `json:"error"`
	}
	if json.Unmarshal(answer, &r) == nil && r.OK != nil && !*r.OK {
		return fmt.Errorf("slack: chat.postMessage refused the message: %s", r.Error)
	}
	return nil
}

// slackColor is the attachment colour: good, warning or danger.
func slackColor(severity flaggerv1.AlertSeverity) string {
	switch severity {
	case flaggerv1.SeverityError:
		return "danger"
	case flaggerv1.SeverityWarn:
		return "warning"
	}
	return "good"
}

// slackPayload is the message Flagger posts to Slack, Discord (Slack-compatible endpoint) and
// Rocket.Chat: one attachment authored by name.namespace with the fields.
type slackPayload struct {
	Channel     string            `json:"channel,omitempty"`
	Username    string            `json:"username,omitempty"`
	IconURL     string            `json:"icon_url,omitempty"`
	IconEmoji   string            `json:"icon_emoji,omitempty"`
	Text        string            `json:"text,omitempty"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color      string       `json:"color"`
	AuthorName string       `json:"author_name"`
	Text       string       `json:"text"`
	MrkdwnIn   []string     `json:"mrkdwn_in"`
	Fields     []slackField `json:"fields"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

func slackMessage(m Message, channel, username, color string) slackPayload {
	fields := make([]slackField, 0, len(m.Fields))
	for _, f := range m.Fields {
		fields = append(fields, slackField{Title: f.Name, Value: f.Value})
	}
	return slackPayload{
		Channel:   channel,
		Username:  username,
		IconEmoji: ":rocket:",
		Attachments: []slackAttachment{{
			Color:      color,
			AuthorName: m.Subject(),
			Text:       m.Text,
			MrkdwnIn:   []string{"text"},
			Fields:     fields,
		}},
	}
}
