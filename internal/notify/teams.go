package notify

import (
	"context"
	"time"
)

// TeamsConfig configures a Microsoft Teams sender.
type TeamsConfig struct {
	// URL is the incoming webhook.
	URL     string
	Proxy   string
	Timeout time.Duration
}

// Teams posts a MessageCard to a Microsoft Teams incoming webhook, as Flagger does. Flagger 1.44
// has no Power Automate (Workflows) support, whose webhooks want an Adaptive Card instead.
type Teams struct {
	endpoint
}

// NewTeams validates the configuration and returns a Teams sender.
func NewTeams(c TeamsConfig) (*Teams, error) {
	e, err := newEndpoint("msteams", c.URL, c.Proxy, c.Timeout)
	if err != nil {
		return nil, err
	}
	return &Teams{endpoint: e}, nil
}

// Send posts the message.
func (t *Teams) Send(ctx context.Context, m Message) error {
	_, err := t.post(ctx, teamsMessage(m), nil)
	return err
}

// Theme colours: Flagger's blue, and red for errors.
const (
	teamsColor      = "0076D7"
	teamsErrorColor = "FF0000"
)

type teamsPayload struct {
	Type       string         `json:"@type"`
	Context    string         `json:"@context"`
	ThemeColor string         `json:"themeColor"`
	Summary    string         `json:"summary"`
	Sections   []teamsSection `json:"sections"`
}

type teamsSection struct {
	ActivityTitle    string      `json:"activityTitle"`
	ActivitySubtitle string      `json:"activitySubtitle"`
	Facts            []teamsFact `json:"facts"`
}

type teamsFact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func teamsMessage(m Message) teamsPayload {
	facts := make([]teamsFact, 0, len(m.Fields))
	for _, f := range m.Fields {
		facts = append(facts, teamsFact{Name: f.Name, Value: f.Value})
	}
	color := teamsColor
	if m.IsError() {
		color = teamsErrorColor
	}
	return teamsPayload{
		Type:       "MessageCard",
		Context:    "http://schema.org/extensions",
		ThemeColor: color,
		Summary:    m.Subject(),
		Sections: []teamsSection{{
			ActivityTitle:    m.Text,
			ActivitySubtitle: m.Subject(),
			Facts:            facts,
		}},
	}
}
