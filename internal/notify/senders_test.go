package notify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

var severities = []flaggerv1.AlertSeverity{flaggerv1.SeverityInfo, flaggerv1.SeverityWarn, flaggerv1.SeverityError}

func TestSlackIncomingWebhook(t *testing.T) {
	srv, got := server(t, http.StatusOK, "ok")
	s, err := NewSlack(SlackConfig{URL: srv.URL + "/services/T000/B000/XXXX", Username: "flagger", Channel: "on-call"})
	if err != nil {
		t.Fatal(err)
	}
	colors := map[flaggerv1.AlertSeverity]string{"info": "good", "warn": "warning", "error": "danger"}
	for _, sev := range severities {
		if err := s.Send(context.Background(), testMessage(sev)); err != nil {
			t.Fatalf("%s: %v", sev, err)
		}
		r := receive(t, got)
		equal(t, "method", r.Method, http.MethodPost)
		equal(t, "path", r.Path, "/services/T000/B000/XXXX")
		equal(t, "content type", r.Header.Get("Content-Type"), "application/json")
		equal(t, "authorization", r.Header.Get("Authorization"), "")
		b := r.JSON(t)
		equal(t, "channel", b["channel"], "on-call")
		equal(t, "username", b["username"], "flagger")
		equal(t, "icon_emoji", b["icon_emoji"], ":rocket:")
		equal(t, "attachments", len(path(t, b, "attachments").([]any)), 1)
		a := path(t, b, "attachments", 0)
		equal(t, string(sev)+" color", path(t, a, "color"), colors[sev])
		equal(t, "author_name", path(t, a, "author_name"), "podinfo.test")
		equal(t, "text", path(t, a, "text"), "New revision detected, progressing canary analysis.")
		equal(t, "mrkdwn_in", path(t, a, "mrkdwn_in"), []any{"text"})
		equal(t, "fields", path(t, a, "fields"), []any{
			map[string]any{"title": "Cluster", "value": "prod-eu", "short": false},
			map[string]any{"title": "Target", "value": "Deployment/podinfo.test", "short": false},
		})
	}
}

func TestSlackWithoutChannelLetsTheWebhookChoose(t *testing.T) {
	srv, got := server(t, http.StatusOK, "ok")
	s, err := NewSlack(SlackConfig{URL: srv.URL, Username: "flagger"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMessage("info")); err != nil {
		t.Fatal(err)
	}
	if _, ok := receive(t, got).JSON(t)["channel"]; ok {
		t.Error("an empty channel must be left out of the payload")
	}
}

func TestSlackBotToken(t *testing.T) {
	srv, got := server(t, http.StatusOK, `{"ok":true,"channel":"C1","ts":"1.2"}`)
	// No URL: the bot token posts to chat.postMessage, here served by the test server.
	s, err := NewSlack(SlackConfig{Token: "xoxb-123-456-abc", Channel: "deploys", Username: "flagger", APIURL: srv.URL + "/api/chat.postMessage"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMessage("error")); err != nil {
		t.Fatal(err)
	}
	r := receive(t, got)
	equal(t, "method", r.Method, http.MethodPost)
	equal(t, "path", r.Path, "/api/chat.postMessage")
	equal(t, "authorization", r.Header.Get("Authorization"), "Bearer xoxb-123-456-abc")
	equal(t, "content type", r.Header.Get("Content-Type"), "application/json; charset=utf-8")
	b := r.JSON(t)
	equal(t, "channel", b["channel"], "deploys")
	equal(t, "color", path(t, b, "attachments", 0, "color"), "danger")
	equal(t, "author", path(t, b, "attachments", 0, "author_name"), "podinfo.test")
}

func TestSlackBotTokenDefaultsToTheWebAPI(t *testing.T) {
	s, err := NewSlack(SlackConfig{Token: "xoxb-1", Channel: "general"})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "url", s.url, SlackPostMessageURL)
	if _, err := NewSlack(SlackConfig{Token: "xoxb-1"}); err == nil {
		t.Error("a bot token without a channel must be refused")
	}
}

func TestSlackBotTokenRefusal(t *testing.T) {
	srv, _ := server(t, http.StatusOK, `{"ok":false,"error":"channel_not_found"}`)
	s, err := NewSlack(SlackConfig{URL: srv.URL, Token: "xoxb-1", Channel: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), testMessage("info"))
	if err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Errorf("err = %v, want the API's refusal", err)
	}
}

func TestTeamsMessageCard(t *testing.T) {
	srv, got := server(t, http.StatusOK, "1")
	s, err := NewTeams(TeamsConfig{URL: srv.URL + "/webhookb2/abc/IncomingWebhook/def"})
	if err != nil {
		t.Fatal(err)
	}
	colors := map[flaggerv1.AlertSeverity]string{"info": "0076D7", "warn": "0076D7", "error": "FF0000"}
	for _, sev := range severities {
		if err := s.Send(context.Background(), testMessage(sev)); err != nil {
			t.Fatal(err)
		}
		r := receive(t, got)
		equal(t, "method", r.Method, http.MethodPost)
		equal(t, "path", r.Path, "/webhookb2/abc/IncomingWebhook/def")
		equal(t, "content type", r.Header.Get("Content-Type"), "application/json")
		b := r.JSON(t)
		equal(t, "@type", b["@type"], "MessageCard")
		equal(t, "@context", b["@context"], "http://schema.org/extensions")
		equal(t, string(sev)+" themeColor", b["themeColor"], colors[sev])
		equal(t, "summary", b["summary"], "podinfo.test")
		equal(t, "activityTitle", path(t, b, "sections", 0, "activityTitle"), "New revision detected, progressing canary analysis.")
		equal(t, "activitySubtitle", path(t, b, "sections", 0, "activitySubtitle"), "podinfo.test")
		equal(t, "facts", path(t, b, "sections", 0, "facts"), []any{
			map[string]any{"name": "Cluster", "value": "prod-eu"},
			map[string]any{"name": "Target", "value": "Deployment/podinfo.test"},
		})
	}
}

func TestDiscordUsesTheSlackEndpoint(t *testing.T) {
	srv, got := server(t, http.StatusNoContent, "")
	for _, address := range []string{srv.URL + "/api/webhooks/1/tok", srv.URL + "/api/webhooks/1/tok/", srv.URL + "/api/webhooks/1/tok/slack"} {
		s, err := NewDiscord(DiscordConfig{URL: address, Username: "flagger", Channel: "general"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), testMessage("warn")); err != nil {
			t.Fatal(err)
		}
		r := receive(t, got)
		equal(t, address+" path", r.Path, "/api/webhooks/1/tok/slack")
		b := r.JSON(t)
		equal(t, "username", b["username"], "flagger")
		equal(t, "channel", b["channel"], "general")
		equal(t, "color", path(t, b, "attachments", 0, "color"), "warning")
		equal(t, "author", path(t, b, "attachments", 0, "author_name"), "podinfo.test")
	}
}

func TestRocketChat(t *testing.T) {
	srv, got := server(t, http.StatusOK, `{"success":true}`)
	s, err := NewRocket(RocketConfig{URL: srv.URL + "/hooks/abc/def", Username: "flagger", Channel: "general"})
	if err != nil {
		t.Fatal(err)
	}
	colors := map[flaggerv1.AlertSeverity]string{"info": "#0076D7", "warn": "#0076D7", "error": "#FF0000"}
	for _, sev := range severities {
		if err := s.Send(context.Background(), testMessage(sev)); err != nil {
			t.Fatal(err)
		}
		r := receive(t, got)
		equal(t, "path", r.Path, "/hooks/abc/def")
		b := r.JSON(t)
		equal(t, "channel", b["channel"], "general")
		equal(t, "username", b["username"], "flagger")
		equal(t, "icon_emoji", b["icon_emoji"], ":rocket:")
		equal(t, string(sev)+" color", path(t, b, "attachments", 0, "color"), colors[sev])
		equal(t, "text", path(t, b, "attachments", 0, "text"), "New revision detected, progressing canary analysis.")
		equal(t, "fields", len(path(t, b, "attachments", 0, "fields").([]any)), 2)
	}
}

func TestGoogleChatCard(t *testing.T) {
	srv, got := server(t, http.StatusOK, "{}")
	s, err := NewGChat(GChatConfig{URL: srv.URL + "/v1/spaces/AAA/messages?key=k&token=t"})
	if err != nil {
		t.Fatal(err)
	}
	m := testMessage("error")
	m.Text = "Halt advancement <script>"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	r := receive(t, got)
	equal(t, "path", r.Path, "/v1/spaces/AAA/messages")
	equal(t, "query kept", strings.HasSuffix(r.RequestURI, "?key=k&token=t"), true)
	b := r.JSON(t)
	card := path(t, b, "cards", 0)
	equal(t, "header", path(t, card, "header"), map[string]any{
		"title": "Flagger", "subtitle": "podinfo.test", "imageUrl": "https://flagger.app/favicon.png",
	})
	equal(t, "sections", len(path(t, card, "sections").([]any)), 3)
	equal(t, "message", path(t, card, "sections", 0, "widgets", 0, "textParagraph", "text"),
		"<font color=#848484><strong>Halt advancement &lt;script&gt;</strong></font>")
	equal(t, "field", path(t, card, "sections", 1, "widgets", 0, "textParagraph", "text"),
		"Cluster<br><font color=#848484><strong>prod-eu</strong></font>")
}

func TestNon2xxCarriesStatusAndBody(t *testing.T) {
	srv, _ := server(t, http.StatusBadRequest, "invalid_payload")
	for _, typ := range []string{ProviderSlack, ProviderMSTeams, ProviderDiscord, ProviderRocket, ProviderGChat} {
		s, err := NewSender(ProviderConfig{Type: typ, Address: srv.URL + "/secret-path", Username: "flagger", Channel: "general"})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		err = s.Send(context.Background(), testMessage("info"))
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: err = %v, want a StatusError", typ, err)
		}
		for _, want := range []string{typ, "400 Bad Request", "invalid_payload"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not contain %q", typ, err, want)
			}
		}
		if strings.Contains(err.Error(), "secret-path") {
			t.Errorf("%s: the error leaks the webhook URL: %v", typ, err)
		}
	}
}

func TestTransportErrorsHideTheWebhookPath(t *testing.T) {
	srv, _ := server(t, http.StatusOK, "")
	address := srv.URL + "/services/T/B/very-secret"
	srv.Close() // connection refused on 127.0.0.1
	s, err := NewSlack(SlackConfig{URL: address})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), testMessage("info"))
	if err == nil {
		t.Fatal("posting to a closed server must fail")
	}
	if strings.Contains(err.Error(), "very-secret") {
		t.Errorf("the error leaks the webhook URL: %v", err)
	}
}

func TestInvalidAddresses(t *testing.T) {
	for _, address := range []string{"", "hooks.slack.com/services/x", "ftp://example.com/x", "http://"} {
		if _, err := NewSender(ProviderConfig{Type: ProviderSlack, Address: address}); err == nil {
			t.Errorf("address %q must be refused", address)
		}
	}
	if _, err := NewSender(ProviderConfig{Type: "pagerduty", Address: "https://example.com"}); err == nil {
		t.Error("an unknown type must be refused")
	}
	if _, err := NewSender(ProviderConfig{Type: ProviderSlack, Address: "https://example.com", Proxy: "http://[::1"}); err == nil {
		t.Error("an invalid proxy must be refused")
	}
}

// TestProxy sends every provider type through an HTTP proxy: the proxy, on 127.0.0.1, receives
// the absolute-URI request for the webhook host and answers it itself.
func TestProxy(t *testing.T) {
	proxy, got := server(t, http.StatusOK, `{"ok":true}`)
	for _, typ := range []string{ProviderSlack, ProviderMSTeams, ProviderDiscord, ProviderRocket, ProviderGChat} {
		// With and without a scheme: Flagger documents "my-http-proxy.com".
		for _, p := range []string{proxy.URL, strings.TrimPrefix(proxy.URL, "http://")} {
			s, err := NewSender(ProviderConfig{Type: typ, Address: "http://hooks.example.invalid/services/abc", Proxy: p, Token: "xoxb-1", Username: "flagger", Channel: "general"})
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			if err := s.Send(context.Background(), testMessage("info")); err != nil {
				t.Fatalf("%s via %s: %v", typ, p, err)
			}
			r := receive(t, got)
			want := "http://hooks.example.invalid/services/abc"
			if typ == ProviderDiscord {
				want += "/slack"
			}
			equal(t, typ+" request URI", r.RequestURI, want)
			equal(t, typ+" host", r.Host, "hooks.example.invalid")
			equal(t, typ+" method", r.Method, http.MethodPost)
			if len(r.Body) == 0 {
				t.Errorf("%s: the proxy received no body", typ)
			}
		}
	}
}

func TestSendHonoursTimeoutAndContext(t *testing.T) {
	srv, _ := hanging(t)
	s, err := NewTeams(TeamsConfig{URL: srv.URL, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Send(context.Background(), testMessage("info")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the timeout took %s", d)
	}

	s, err = NewTeams(TeamsConfig{URL: srv.URL}) // 10s default
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := s.Send(ctx, testMessage("info")); err == nil {
		t.Error("a cancelled context must fail the post")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the cancellation took %s", d)
	}
}

func TestGlobalSender(t *testing.T) {
	s, err := NewGlobalSender(GlobalConfig{})
	if s != nil || err != nil {
		t.Errorf("nothing configured = %v, %v; want nil, nil", s, err)
	}

	slack, slackGot := server(t, http.StatusOK, "ok")
	teams, teamsGot := server(t, http.StatusOK, "1")
	// MS Teams wins over Slack, as in Flagger.
	s, err = NewGlobalSender(GlobalConfig{SlackURL: slack.URL, SlackChannel: "c", MSTeamsURL: teams.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMessage("info")); err != nil {
		t.Fatal(err)
	}
	equal(t, "teams card", receive(t, teamsGot).JSON(t)["@type"], "MessageCard")
	none(t, slackGot)

	s, err = NewGlobalSender(GlobalConfig{SlackURL: slack.URL, SlackToken: "xoxb-9", SlackChannel: "deploys"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testMessage("info")); err != nil {
		t.Fatal(err)
	}
	r := receive(t, slackGot)
	equal(t, "authorization", r.Header.Get("Authorization"), "Bearer xoxb-9")
	b := r.JSON(t)
	equal(t, "default user", b["username"], "flagger")
	equal(t, "channel", b["channel"], "deploys")

	if _, err := NewGlobalSender(GlobalConfig{SlackURL: "not a url"}); err == nil {
		t.Error("an invalid Slack URL must be refused")
	}
}
