package notify

import (
	"context"
	"html"
	"time"
)

// GChatConfig configures a Google Chat sender.
type GChatConfig struct {
	// URL is the space's incoming webhook.
	URL     string
	Proxy   string
	Timeout time.Duration
}

// GChat posts a card to a Google Chat incoming webhook: a header naming the canary, the message,
// then one section per field.
type GChat struct {
	endpoint
}

// NewGChat validates the configuration and returns a Google Chat sender.
func NewGChat(c GChatConfig) (*GChat, error) {
	e, err := newEndpoint("gchat", c.URL, c.Proxy, c.Timeout)
	if err != nil {
		return nil, err
	}
	return &GChat{endpoint: e}, nil
}

// Send posts the message.
func (g *GChat) Send(ctx context.Context, m Message) error {
	_, err := g.post(ctx, gchatMessage(m), nil)
	return err
}

// The card header Flagger sends; alert receivers may filter on it.
const (
	gchatTitle = "Flagger"
	gchatImage = "https://flagger.app/favicon.png"
)

type gchatPayload struct {
	Cards []gchatCard `json:"cards"`
}

type gchatCard struct {
	Header   gchatHeader    `json:"header"`
	Sections []gchatSection `json:"sections"`
}

type gchatHeader struct {
	Title    string `json:"title"`
	Subtitle string `json:"subtitle"`
	ImageURL string `json:"imageUrl"`
}

type gchatSection struct {
	Widgets []gchatWidget `json:"widgets"`
}

type gchatWidget struct {
	TextParagraph gchatText `json:"textParagraph"`
}

type gchatText struct {
	Text string `json:"text"`
}

// gchatMessage formats text paragraphs with the little HTML Google Chat supports, escaping the
// message and fields themselves.
func gchatMessage(m Message) gchatPayload {
	paragraph := func(text string) gchatSection {
		return gchatSection{Widgets: []gchatWidget{{TextParagraph: gchatText{Text: text}}}}
	}
	sections := make([]gchatSection, 0, len(m.Fields)+1)
	sections = append(sections, paragraph("<font color=#848484><strong>"+html.EscapeString(m.Text)+"</strong></font>"))
	for _, f := range m.Fields {
		sections = append(sections, paragraph(html.EscapeString(f.Name)+"<br><font color=#848484><strong>"+html.EscapeString(f.Value)+"</strong></font>"))
	}
	return gchatPayload{Cards: []gchatCard{{
		Header:   gchatHeader{Title: gchatTitle, Subtitle: m.Subject(), ImageURL: gchatImage},
		Sections: sections,
	}}}
}
