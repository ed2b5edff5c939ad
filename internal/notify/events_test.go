package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/webhooks"
)

func payload(t *testing.T, r request) webhooks.Payload {
	t.Helper()
	var p webhooks.Payload
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("payload: %v: %s", err, r.Body)
	}
	return p
}

func TestEventWebhookPayload(t *testing.T) {
	hookA, gotA := server(t, http.StatusAccepted, "")
	hookB, gotB := server(t, http.StatusOK, "")
	global, gotGlobal := server(t, http.StatusOK, "")
	cd := testCanary()
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{
		{Name: "load-test", Type: flaggerv1.RolloutHook, URL: hookA.URL + "/not-an-event-hook"},
		{Name: "audit", Type: flaggerv1.EventHook, URL: hookA.URL + "/events", Metadata: &map[string]string{"team": "web", "eventType": "spoofed"}},
		{Name: "chat", Type: flaggerv1.EventHook, URL: hookB.URL},
	}
	d := NewDispatcher(Options{EventWebhook: global.URL})
	started(t, d)

	before := time.Now().UnixMilli()
	d.EventWebhook(context.Background(), cd, "Warning", "Halt advancement podinfo.test waiting for approval")
	flush(t, d)
	after := time.Now().UnixMilli()

	r := receive(t, gotA)
	equal(t, "method", r.Method, http.MethodPost)
	equal(t, "path", r.Path, "/events")
	equal(t, "content type", r.Header.Get("Content-Type"), "application/json")
	p := payload(t, r)
	equal(t, "name", p.Name, "podinfo")
	equal(t, "namespace", p.Namespace, "test")
	equal(t, "phase", p.Phase, "Progressing")
	equal(t, "checksum", p.Checksum, webhooks.Checksum(cd))
	equal(t, "eventMessage", p.Metadata["eventMessage"], "Halt advancement podinfo.test waiting for approval")
	equal(t, "eventType (not overridden)", p.Metadata["eventType"], "Warning")
	equal(t, "user metadata", p.Metadata["team"], "web")
	ms, err := strconv.ParseInt(p.Metadata["timestamp"], 10, 64)
	if err != nil || ms < before || ms > after {
		t.Errorf("timestamp = %q, want Unix milliseconds in [%d, %d]", p.Metadata["timestamp"], before, after)
	}
	none(t, gotA) // the rollout hook is not an event hook

	p = payload(t, receive(t, gotB))
	equal(t, "second hook", p.Metadata["eventType"], "Warning")
	equal(t, "only the reserved keys", len(p.Metadata), 3)

	// The canary's event hooks replace the global webhook.
	none(t, gotGlobal)
}

func TestEventWebhookFallsBackToTheGlobalURL(t *testing.T) {
	global, got := server(t, http.StatusOK, "")
	d := NewDispatcher(Options{EventWebhook: global.URL + "/flagger-events"})
	started(t, d)
	cd := testCanary()
	d.EventWebhook(context.Background(), cd, "Normal", "New revision detected! Scaling up podinfo.test")
	flush(t, d)
	r := receive(t, got)
	equal(t, "path", r.Path, "/flagger-events")
	p := payload(t, r)
	equal(t, "name", p.Name, "podinfo")
	equal(t, "eventType", p.Metadata["eventType"], "Normal")
	equal(t, "eventMessage", p.Metadata["eventMessage"], "New revision detected! Scaling up podinfo.test")

	// The synchronous form, for tools; a failing webhook is an error there.
	if err := d.SendEvent(context.Background(), cd, "Normal", "sync"); err != nil {
		t.Fatal(err)
	}
	equal(t, "sync", payload(t, receive(t, got)).Metadata["eventMessage"], "sync")
}

func TestEventWebhookWithoutReceivers(t *testing.T) {
	d := NewDispatcher(Options{QueueSize: 1})
	for range 3 {
		d.EventWebhook(context.Background(), testCanary(), "Normal", "x")
	}
	equal(t, "dropped", d.Dropped(), uint64(0))
	flush(t, d)
}

func TestEventWebhookFailureDoesNotBlock(t *testing.T) {
	srv, arrived := hanging(t)
	cd := testCanary()
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "slow", Type: flaggerv1.EventHook, URL: srv.URL, Timeout: "1s"}}
	d := NewDispatcher(Options{})
	started(t, d)
	start := time.Now()
	d.EventWebhook(context.Background(), cd, "Normal", "x")
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("EventWebhook took %s", took)
	}
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no request arrived")
	}
	flush(t, d)
}
