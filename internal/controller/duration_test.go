package controller_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/telemetry"
	"github.com/pennant/pennant/internal/testenv"
)

// webhookDelay is how long each of the test's webhooks takes: long enough that each step's checks
// finish in a later reconcile, far shorter than the interval.
const webhookDelay = 700 * time.Millisecond

// TestDurationTimesTheAnalysisStepWithItsChecks scrapes flagger_canary_duration_seconds after a
// release whose every analysis step calls a webhook that takes webhookDelay: each observation
// covers the step with its checks, as Flagger's (which runs them inside the timed step), and none
// the wait between steps (the rollback hook is asked on every reconcile, also between steps, in
// the same tick).
func TestDurationTimesTheAnalysisStepWithItsChecks(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := telemetry.NewRecorder(reg)
	if err != nil {
		t.Fatal(err)
	}
	scrape := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(scrape.Close)
	f := newFixture(t, func(c *controller.Config) { c.Metrics = rec })
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(webhookDelay)
	}))
	t.Cleanup(slow.Close)
	notRequested := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	t.Cleanup(notRequested.Close)

	cd := blueGreenCanary("podinfo", "Deployment", 2)
	cd.Spec.Analysis.Interval = "5s"
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{
		{Name: "acceptance", Type: flaggerv1.PreRolloutHook, URL: slow.URL, Timeout: "10s"},
		{Name: "load-test", Type: flaggerv1.RolloutHook, URL: slow.URL, Timeout: "10s"},
		{Name: "rollback-gate", Type: flaggerv1.RollbackHook, URL: notRequested.URL, Timeout: "10s"},
	}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	// Between the first two steps, a reconcile that is no step (an annotation wakes the canary)
	// asks the rollback hook.
	testenv.Eventually(t, phaseTimeout, 100*time.Millisecond, func() (bool, string) {
		got := f.canary("podinfo").Status.Iterations
		return got >= 1, fmt.Sprintf("iterations %d, want 1", got)
	})
	f.update("podinfo", cd, func() { cd.Annotations = map[string]string{"test/wake": "between steps"} })
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)

	h := scrapeHistogram(t, scrape.URL, "flagger_canary_duration_seconds", `name="podinfo",namespace="`+f.ns+`"`)
	// At least the steps with the pre-rollout hooks (iteration 1) and the rollout hooks (iteration 2).
	if h.count < 2 {
		t.Fatalf("%d analysis steps observed, want at least 2: %+v", h.count, h)
	}
	if n := h.buckets["0.5"]; n != 0 {
		t.Errorf("%d of %d steps took under 0.5s: their %v webhooks were not timed (%+v)", n, h.count, webhookDelay, h)
	}
	if n := h.buckets["2.5"]; n != h.count {
		t.Errorf("%d of %d steps took over 2.5s: the wait for the step was timed (%+v)", h.count-n, h.count, h)
	}

	// Every step after the first (iteration 2, and the step that decides the promotion) began on
	// time: its checks, however slow, are not lateness.
	late := scrapeHistogram(t, scrape.URL, "pennant_analysis_step_lateness_seconds", "")
	if late.count < 2 {
		t.Fatalf("the lateness of %d steps observed, want at least 2: %+v", late.count, late)
	}
	if n := late.buckets["0.5"]; n != late.count {
		t.Errorf("%d of %d steps began more than 0.5s after they were due (%+v)", late.count-n, late.count, late)
	}
}

type histogram struct {
	count   int
	sum     float64
	buckets map[string]int // by le
}

// scrapeHistogram reads one histogram series from a Prometheus text exposition over HTTP.
func scrapeHistogram(t *testing.T, url, name, labels string) histogram {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := histogram{buckets: map[string]int{}}
	found := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		series, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") || !strings.Contains(series, labels) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		metric, _, _ := strings.Cut(series, "{")
		switch metric {
		case name + "_bucket":
			_, le, _ := strings.Cut(series, `le="`)
			h.buckets[strings.TrimSuffix(le, `"}`)] = int(v)
		case name + "_count":
			h.count, found = int(v), true
		case name + "_sum":
			h.sum = v
		}
	}
	if !found {
		t.Fatalf("no %s{%s} in the scrape", name, labels)
	}
	return h
}
