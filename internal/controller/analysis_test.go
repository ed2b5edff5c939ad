package controller_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/webhooks"
)

// promAPI is a Prometheus HTTP API on loopback whose answers the test sets: the success rate of
// every request-success-rate query and the p99 of every request-duration query.
type promAPI struct {
	successRate atomic.Value // float64
	// answers overrides the value of queries containing a key.
	answers sync.Map // string -> float64
	srv     *httptest.Server
}

func newPromAPI(t *testing.T, successRate float64) *promAPI {
	p := &promAPI{}
	p.successRate.Store(successRate)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		q := r.Form.Get("query")
		value := 0.5 // error rates and other template queries: low
		p.answers.Range(func(k, v any) bool {
			if strings.Contains(q, k.(string)) {
				value = v.(float64)
				return false
			}
			return true
		})
		switch {
		case value != 0.5:
		case q == "vector(1)":
			value = 1
		case strings.Contains(q, "histogram_quantile"):
			value = 0.1 // seconds or ms depending on the provider: far below any threshold used here
		case strings.Contains(q, "/"):
			value = p.successRate.Load().(float64)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"%g"]}]}}`,
			time.Now().Unix(), value)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// hookRecorder is a webhook on loopback that records the payloads it receives and answers with the
// status the test sets.
type hookRecorder struct {
	mu       sync.Mutex
	payloads []webhooks.Payload
	status   atomic.Int32
	srv      *httptest.Server
}

func newHookRecorder(t *testing.T, status int) *hookRecorder {
	h := &hookRecorder{}
	h.status.Store(int32(status))
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhooks.Payload
		if err := json.Unmarshal(body, &p); err == nil {
			h.mu.Lock()
			h.payloads = append(h.payloads, p)
			h.mu.Unlock()
		}
		w.WriteHeader(int(h.status.Load()))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookRecorder) received() []webhooks.Payload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhooks.Payload(nil), h.payloads...)
}

// analysedCanary is a blue/green canary whose builtin success-rate check reads promAPI.
func analysedCanary(prom *promAPI, iterations, threshold int) *flaggerv1.Canary {
	cd := blueGreenCanary("podinfo", "Deployment", iterations)
	cd.Spec.MetricsServer = prom.srv.URL
	cd.Spec.Analysis.Threshold = threshold
	min99 := 99.0
	cd.Spec.Analysis.Metrics = []flaggerv1.CanaryMetric{{
		Name: "request-success-rate", Interval: "1m", ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: &min99},
	}}
	return cd
}

func TestFailingSuccessRateRollsBackAtThreshold(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 95)
	f.create(podinfoDeployment("podinfo", 1), analysedCanary(prom, 5, 2))
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	f.waitEvent("Warning Halt "+f.key("podinfo")+" advancement success rate 95.00% < 99%", 5*time.Second)
	f.waitEvent("Warning Rolling back "+f.key("podinfo")+" failed checks threshold reached 2", 5*time.Second)
	f.waitEvent("Warning Canary failed! Scaling down "+f.key("podinfo"), 5*time.Second)
	if got := f.canary("podinfo").Status.FailedChecks; got != 2 {
		t.Errorf("failedChecks = %d, want 2", got)
	}
	wantLastCheck(t, f.canary("podinfo"), flaggerv1.CanaryCheckResult{Kind: flaggerv1.MetricCheck, Name: "request-success-rate",
		Value: "95.00%", Result: flaggerv1.CheckFailed, Message: "Halt " + f.key("podinfo") + " advancement success rate 95.00% < 99%"})
	primary := &appsv1.Deployment{}
	f.get("podinfo-primary", primary)
	if got := image(primary.Spec.Template.Spec); got != "ghcr.io/stefanprodan/podinfo:6.0.0" {
		t.Errorf("primary image = %q, want the previous 6.0.0", got)
	}
	f.waitTargetReplicas("podinfo", 0)
}

func TestHealthyCanaryAdvancesAndPromotes(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	post := newHookRecorder(t, http.StatusOK)
	events := newHookRecorder(t, http.StatusAccepted)
	cd := analysedCanary(prom, 2, 1)
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{
		{Name: "notify-done", Type: flaggerv1.PostRolloutHook, URL: post.srv.URL},
		{Name: "events", Type: flaggerv1.EventHook, URL: events.srv.URL},
	}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	wantLastCheck(t, f.canary("podinfo"), flaggerv1.CanaryCheckResult{Kind: flaggerv1.MetricCheck, Name: "request-success-rate",
		Value: "100.00%", Result: flaggerv1.CheckPassed})

	testenvEventually(f, func() (bool, string) {
		got := post.received()
		return len(got) == 1 && got[0].Phase == string(flaggerv1.CanaryPhaseSucceeded) && got[0].Name == "podinfo" &&
			got[0].Namespace == f.ns, fmt.Sprintf("post-rollout payloads %+v", got)
	})
	testenvEventually(f, func() (bool, string) {
		for _, p := range events.received() {
			if p.Metadata["eventMessage"] == "Promotion completed! Scaling down "+f.key("podinfo") && p.Metadata["eventType"] == "Normal" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("event webhook payloads %+v", events.received())
	})
}

// wantLastCheck checks that status.lastChecks holds want (its time aside) and only that.
func wantLastCheck(t *testing.T, cd *flaggerv1.Canary, want flaggerv1.CanaryCheckResult) {
	t.Helper()
	got := cd.Status.LastChecks
	if len(got) != 1 || got[0].Time.IsZero() {
		t.Fatalf("lastChecks = %+v, want one result with its time", got)
	}
	got[0].Time = want.Time
	if got[0] != want {
		t.Errorf("lastChecks[0] = %+v, want %+v", got[0], want)
	}
}

func TestConfirmPromotionGateHoldsWaitingPromotion(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	g := newGate(t)
	cd := analysedCanary(prom, 1, 2)
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "approve", Type: flaggerv1.ConfirmPromotionHook, URL: g.srv.URL}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseWaitingPromotion, phaseTimeout)
	time.Sleep(2 * time.Second)
	if got := f.canary("podinfo").Status.Phase; got != flaggerv1.CanaryPhaseWaitingPromotion {
		t.Fatalf("phase = %q while the promotion gate is closed", got)
	}
	g.open.Store(true)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
}

func TestRollbackWebhookAborts(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	abort := newHookRecorder(t, http.StatusForbidden)
	cd := analysedCanary(prom, 30, 2)
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "abort", Type: flaggerv1.RollbackHook, URL: abort.srv.URL}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitEvent("Advance "+f.key("podinfo")+" canary iteration 2/30", phaseTimeout)
	abort.status.Store(http.StatusOK)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	f.waitEvent("Warning Rolling back "+f.key("podinfo")+" manual webhook invoked", 5*time.Second)
}

func TestPreRolloutFailureCountsAFailedCheck(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	pre := newHookRecorder(t, http.StatusInternalServerError)
	cd := analysedCanary(prom, 2, 3)
	cd.Spec.Analysis.Webhooks = []flaggerv1.CanaryWebhook{{Name: "smoke-test", Type: flaggerv1.PreRolloutHook, URL: pre.srv.URL}}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitEvent("Warning Halt "+f.key("podinfo")+" advancement pre-rollout check smoke-test failed", phaseTimeout)
	testenvEventually(f, func() (bool, string) {
		got := f.canary("podinfo").Status.FailedChecks
		return got >= 1, fmt.Sprintf("failedChecks %d", got)
	})
	pre.status.Store(http.StatusOK)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	if p := pre.received(); len(p) == 0 || p[0].Phase != string(flaggerv1.CanaryPhaseProgressing) {
		t.Errorf("pre-rollout payloads %+v, want phase Progressing", p)
	}
}

// A judged success rate: the canary fails 5 % of its requests, the primary 0.5 %. The judge rolls
// the release back on its first step, without waiting for the failed checks threshold, and the
// status keeps the counts it judged.
func TestJudgedCanaryWorseThanThePrimaryRollsBackAtOnce(t *testing.T) {
	f := newFixture(t)
	prom := newPromAPI(t, 100)
	pods := func(target string) string { return `kubernetes_pod_name=~"` + target + `-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"` }
	for query, count := range map[string]float64{
		pods("podinfo") + `, status!~"5.*"`:         570,
		pods("podinfo") + ` }`:                      600,
		pods("podinfo-primary") + `, status!~"5.*"`: 5373,
		pods("podinfo-primary") + ` }`:              5400,
	} {
		prom.answers.Store(query, count)
	}
	cd := analysedCanary(prom, 5, 5)
	cd.Spec.Analysis.Metrics[0].Judge = &flaggerv1.CanaryMetricJudge{Tolerance: 1}
	f.create(podinfoDeployment("podinfo", 1), cd)
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	f.waitPhase("podinfo", flaggerv1.CanaryPhaseFailed, phaseTimeout)
	f.waitEvent("Warning Rolling back "+f.key("podinfo")+" canary judged worse than the primary", 5*time.Second)
	got := f.canary("podinfo").Status
	if got.FailedChecks != 1 {
		t.Errorf("failedChecks = %d, want the one judged step", got.FailedChecks)
	}
	if len(got.LastChecks) != 1 || got.LastChecks[0].Counts == nil {
		t.Fatalf("lastChecks %+v, want the judged counts", got.LastChecks)
	}
	c := got.LastChecks[0]
	if *c.Counts != (flaggerv1.CanaryCheckCounts{CanaryRequests: 600, CanaryErrors: 30, PrimaryRequests: 5400, PrimaryErrors: 27}) ||
		c.Result != flaggerv1.CheckFailed || !strings.Contains(c.Message, "canary error rate 5% vs primary 0.5%") {
		t.Errorf("lastChecks[0] = %+v, counts %+v", c, *c.Counts)
	}
}
