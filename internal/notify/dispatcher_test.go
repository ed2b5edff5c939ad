package notify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func fakeReader(t *testing.T, objs ...client.Object) client.Reader {
	t.Helper()
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := flaggerv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
}

func provider(ns, name string, spec flaggerv1.AlertProviderSpec) *flaggerv1.AlertProvider {
	return &flaggerv1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func withAlerts(alerts ...flaggerv1.CanaryAlert) *flaggerv1.Canary {
	cd := testCanary()
	cd.Spec.Analysis.Alerts = alerts
	return cd
}

func alert(name string, sev flaggerv1.AlertSeverity, provider, ns string) flaggerv1.CanaryAlert {
	return flaggerv1.CanaryAlert{Name: name, Severity: sev, ProviderRef: flaggerv1.CrossNamespaceRef{Name: provider, Namespace: ns}}
}

// started runs the dispatcher's workers until the test ends.
func started(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})
}

func flush(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// reports collects what the dispatcher reports.
type reports struct {
	mu   sync.Mutex
	errs []error
	cds  []*flaggerv1.Canary
}

func (r *reports) add(cd *flaggerv1.Canary, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
	r.cds = append(r.cds, cd)
}

func (r *reports) get() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func TestProviderResolution(t *testing.T) {
	slack, slackGot := server(t, http.StatusOK, "ok")
	teams, teamsGot := server(t, http.StatusOK, "1")
	wrong, wrongGot := server(t, http.StatusOK, "ok")
	bot, botGot := server(t, http.StatusOK, `{"ok":true}`)

	reader := fakeReader(t,
		// Spec address, defaults for channel and username.
		provider("test", "dev-slack", flaggerv1.AlertProviderSpec{Type: "slack", Address: slack.URL + "/services/dev"}),
		// In another namespace; the secret's address wins over the spec's.
		provider("flagger", "on-call", flaggerv1.AlertProviderSpec{Type: "msteams", Address: wrong.URL, SecretRef: &flaggerv1.SecretReference{Name: "on-call-url"}}),
		secret("flagger", "on-call-url", map[string]string{"address": teams.URL + "/webhookb2/x\n"}),
		// A bot token from the secret.
		provider("test", "bot", flaggerv1.AlertProviderSpec{Type: "slack", Channel: "deploys", Username: "pennant", SecretRef: &flaggerv1.SecretReference{Name: "bot"}}),
		secret("test", "bot", map[string]string{"address": bot.URL + "/api/chat.postMessage", "token": "xoxb-42"}),
	)
	d := NewDispatcher(Options{Providers: reader, ClusterName: "prod-eu"})
	cd := withAlerts(
		alert("dev", "info", "dev-slack", ""),
		alert("on-call", "error", "on-call", "flagger"),
		alert("bot", "warn", "bot", "test"),
	)

	if err := d.Send(context.Background(), cd, flaggerv1.SeverityError, "Failed checks threshold reached 5"); err != nil {
		t.Fatal(err)
	}
	r := receive(t, slackGot)
	equal(t, "slack path", r.Path, "/services/dev")
	b := r.JSON(t)
	equal(t, "default channel", b["channel"], "general")
	equal(t, "default username", b["username"], "flagger")
	equal(t, "color", path(t, b, "attachments", 0, "color"), "danger")
	equal(t, "fields", path(t, b, "attachments", 0, "fields"), []any{map[string]any{"title": "Cluster", "value": "prod-eu", "short": false}})

	r = receive(t, teamsGot)
	equal(t, "teams path", r.Path, "/webhookb2/x")
	equal(t, "teams color", r.JSON(t)["themeColor"], "FF0000")
	none(t, wrongGot)

	r = receive(t, botGot)
	equal(t, "bot authorization", r.Header.Get("Authorization"), "Bearer xoxb-42")
	b = r.JSON(t)
	equal(t, "bot channel", b["channel"], "deploys")
	equal(t, "bot username", b["username"], "pennant")

	// An info message reaches only the info alert, with the canary's metadata for a new revision.
	if err := d.Send(context.Background(), cd, flaggerv1.SeverityInfo, "New revision detected, progressing canary analysis."); err != nil {
		t.Fatal(err)
	}
	fields := path(t, receive(t, slackGot).JSON(t), "attachments", 0, "fields").([]any)
	equal(t, "metadata fields", len(fields), 5)
	equal(t, "traffic routing", fields[4], map[string]any{"title": "Traffic routing", "value": "Weight step: 10 max: 50", "short": false})
	none(t, teamsGot)
	none(t, botGot)
}

func TestSeverityFilterDispatch(t *testing.T) {
	servers := map[flaggerv1.AlertSeverity]<-chan request{}
	var objs []client.Object
	var alerts []flaggerv1.CanaryAlert
	for _, filter := range []flaggerv1.AlertSeverity{"", "info", "warn", "error"} {
		srv, got := server(t, http.StatusOK, "ok")
		name := "p-" + string(filter)
		objs = append(objs, provider("test", name, flaggerv1.AlertProviderSpec{Type: "rocket", Address: srv.URL}))
		alerts = append(alerts, alert(name, filter, name, ""))
		servers[filter] = got
	}
	d := NewDispatcher(Options{Providers: fakeReader(t, objs...)})
	cd := withAlerts(alerts...)
	want := map[flaggerv1.AlertSeverity]map[flaggerv1.AlertSeverity]bool{
		"info":  {"": true, "info": true, "warn": false, "error": false},
		"warn":  {"": true, "info": true, "warn": true, "error": false},
		"error": {"": true, "info": true, "warn": true, "error": true},
	}
	for _, sev := range severities {
		if err := d.Send(context.Background(), cd, sev, "message"); err != nil {
			t.Fatal(err)
		}
		for filter, got := range servers {
			if want[sev][filter] {
				receive(t, got)
			} else {
				none(t, got)
			}
		}
	}
}

func TestResolutionFailuresAreReported(t *testing.T) {
	ok, okGot := server(t, http.StatusOK, "ok")
	failing, _ := server(t, http.StatusInternalServerError, "oops")
	reader := fakeReader(t,
		provider("test", "no-secret", flaggerv1.AlertProviderSpec{Type: "slack", SecretRef: &flaggerv1.SecretReference{Name: "gone"}}),
		provider("test", "no-address", flaggerv1.AlertProviderSpec{Type: "slack", SecretRef: &flaggerv1.SecretReference{Name: "token-only"}}),
		secret("test", "token-only", map[string]string{"token": "xoxb-1"}),
		provider("test", "bad-type", flaggerv1.AlertProviderSpec{Type: "pagerduty", Address: ok.URL}),
		provider("test", "failing", flaggerv1.AlertProviderSpec{Type: "gchat", Address: failing.URL}),
		provider("test", "fine", flaggerv1.AlertProviderSpec{Type: "discord", Address: ok.URL}),
	)
	var rep reports
	d := NewDispatcher(Options{Providers: reader, Report: rep.add})
	cd := withAlerts(
		alert("a", "info", "missing", ""),
		alert("b", "info", "no-secret", ""),
		alert("c", "info", "no-address", ""),
		alert("d", "info", "bad-type", ""),
		alert("e", "info", "failing", ""),
		alert("f", "info", "fine", ""),
	)
	wants := []struct {
		sentinel error
		message  string
	}{
		{ErrProviderNotFound, "alert provider missing.test not found"},
		{ErrSecretNotFound, "alert provider no-secret.test secretRef gone not found"},
		{ErrNoAddress, "alert provider no-address.test secret token-only does not contain an address"},
		{nil, `alert provider bad-type.test error: provider type "pagerduty" not supported`},
		{nil, "alert provider failing.test send error: gchat: sending the message failed: 500 Internal Server Error: oops"},
	}
	check := func(errs []error) {
		t.Helper()
		if len(errs) != len(wants) {
			t.Fatalf("got %d errors, want %d: %v", len(errs), len(wants), errs)
		}
		for i, w := range wants {
			var ae *AlertError
			if !errors.As(errs[i], &ae) {
				t.Fatalf("%v is not an *AlertError", errs[i])
			}
			equal(t, "message", ae.Error(), w.message)
			if w.sentinel != nil && !errors.Is(errs[i], w.sentinel) {
				t.Errorf("%v is not %v", errs[i], w.sentinel)
			}
		}
	}

	// Synchronously: every failure is returned, the good provider still gets its alert.
	err := d.Send(context.Background(), cd, flaggerv1.SeverityWarn, "Canary is waiting for approval.")
	check(unjoin(err))
	receive(t, okGot)

	// Asynchronously: every failure is reported with the canary.
	started(t, d)
	d.Alert(context.Background(), cd, flaggerv1.SeverityWarn, "Canary is waiting for approval.")
	flush(t, d)
	check(rep.get())
	equal(t, "reported canary", rep.cds[0].Key(), "podinfo.test")
	receive(t, okGot)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestGlobalNotifier(t *testing.T) {
	var mu sync.Mutex
	var got []Message
	global := SenderFunc(func(_ context.Context, m Message) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m)
		return nil
	})
	other, otherGot := server(t, http.StatusOK, "ok")
	d := NewDispatcher(Options{
		Providers:   fakeReader(t, provider("test", "p", flaggerv1.AlertProviderSpec{Type: "slack", Address: other.URL})),
		Global:      global,
		ClusterName: "prod-eu",
	})
	started(t, d)

	// No alerts: the global notifier, whatever the severity.
	d.Alert(context.Background(), testCanary(), flaggerv1.SeverityWarn, "Canary promotion is waiting for approval.")
	// Alerts: the providers only.
	d.Alert(context.Background(), withAlerts(alert("p", "info", "p", "")), flaggerv1.SeverityInfo, "x")
	flush(t, d)
	receive(t, otherGot)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("the global notifier got %d messages, want 1", len(got))
	}
	equal(t, "global message", got[0], Message{
		Name: "podinfo", Namespace: "test", Text: "Canary promotion is waiting for approval.",
		Severity: flaggerv1.SeverityWarn, Fields: []Field{{Name: "Cluster", Value: "prod-eu"}},
	})
}

func TestGlobalFailureIsReported(t *testing.T) {
	var rep reports
	d := NewDispatcher(Options{
		Global: SenderFunc(func(context.Context, Message) error { return errors.New("slack: boom") }),
		Report: rep.add,
	})
	started(t, d)
	d.Alert(context.Background(), testCanary(), flaggerv1.SeverityError, "x")
	flush(t, d)
	errs := rep.get()
	if len(errs) != 1 || errs[0].Error() != "alert can't be sent: slack: boom" {
		t.Errorf("reports = %v", errs)
	}
}

// TestHangingEndpointDoesNotBlock: Alert returns at once although the provider never answers,
// and the workers give up after the send timeout.
func TestHangingEndpointDoesNotBlock(t *testing.T) {
	srv, arrived := hanging(t)
	var rep reports
	d := NewDispatcher(Options{
		Providers:   fakeReader(t, provider("test", "slow", flaggerv1.AlertProviderSpec{Type: "msteams", Address: srv.URL})),
		SendTimeout: 200 * time.Millisecond,
		Workers:     2,
		Report:      rep.add,
	})
	started(t, d)
	cd := withAlerts(alert("slow", "info", "slow", ""))
	start := time.Now()
	for range 6 {
		d.Alert(context.Background(), cd, flaggerv1.SeverityInfo, "x")
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("6 alerts took %s to enqueue", took)
	}
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("no request arrived")
	}
	flush(t, d)
	errs := rep.get()
	if len(errs) != 6 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Errorf("got %d reports (%v), want 6 timeouts", len(errs), errs)
	}
}

func TestQueueFullDrops(t *testing.T) {
	var mu sync.Mutex
	sent := 0
	d := NewDispatcher(Options{
		Global:    SenderFunc(func(context.Context, Message) error { mu.Lock(); sent++; mu.Unlock(); return nil }),
		Workers:   1,
		QueueSize: 3,
	})
	// Not started yet: the queue fills and the rest is dropped, without blocking.
	start := time.Now()
	for range 10 {
		d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "x")
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("enqueueing took %s", took)
	}
	equal(t, "dropped", d.Dropped(), uint64(7))

	started(t, d)
	flush(t, d)
	mu.Lock()
	equal(t, "sent", sent, 3)
	mu.Unlock()
}

func TestQueueFullWithBusyWorkers(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	d := NewDispatcher(Options{
		Global:    SenderFunc(func(ctx context.Context, _ Message) error { <-release; return nil }),
		Workers:   2,
		QueueSize: 4,
	})
	started(t, d)
	start := time.Now()
	for range 50 {
		d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "x")
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("enqueueing took %s", took)
	}
	// At most 2 in the workers and 4 queued.
	if dropped := d.Dropped(); dropped < 44 {
		t.Errorf("dropped = %d, want at least 44", dropped)
	}
}

func TestStoppedDispatcherDrops(t *testing.T) {
	d := NewDispatcher(Options{Global: SenderFunc(func(context.Context, Message) error { return nil })})
	d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "queued before start")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "after stop")
	flush(t, d)
	// The first may have been sent or dropped when the pool stopped; the second is dropped.
	if dropped := d.Dropped(); dropped < 1 {
		t.Errorf("dropped = %d", dropped)
	}
	if err := d.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Errorf("a second Start = %v", err)
	}
}

func TestNothingToSendIsNotQueued(t *testing.T) {
	d := NewDispatcher(Options{QueueSize: 1})
	for range 5 {
		// No global notifier and no alerts; an alert whose filter rejects the severity.
		d.Alert(context.Background(), testCanary(), flaggerv1.SeverityInfo, "x")
		d.Alert(context.Background(), withAlerts(alert("e", "error", "p", "")), flaggerv1.SeverityInfo, "x")
	}
	equal(t, "dropped", d.Dropped(), uint64(0))
	flush(t, d)
}

func TestAlertCopiesTheCanary(t *testing.T) {
	var mu sync.Mutex
	var got Message
	d := NewDispatcher(Options{Global: SenderFunc(func(_ context.Context, m Message) error {
		mu.Lock()
		got = m
		mu.Unlock()
		return nil
	})})
	cd := testCanary()
	d.Alert(context.Background(), cd, flaggerv1.SeverityInfo, "New revision detected, progressing canary analysis.")
	cd.Name = "changed-after-enqueue"
	cd.Spec.Analysis.StepWeight = 99
	started(t, d)
	flush(t, d)
	mu.Lock()
	defer mu.Unlock()
	equal(t, "subject", got.Subject(), "podinfo.test")
	equal(t, "routing", got.Fields[len(got.Fields)-1].Value, "Weight step: 10 max: 50")
}
