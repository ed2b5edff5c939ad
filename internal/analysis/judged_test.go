package analysis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

// countsAPI is a Prometheus HTTP API on loopback that serves Istio's request counts of both
// versions: each version serves rps requests per second, errorRate of them failing, and an
// increase() over [Ns] is the count of those N seconds.
type countsAPI struct {
	mu      sync.Mutex
	rps     map[string]float64 // by destination_workload
	errors  map[string]float64
	queries []string
	srv     *httptest.Server
}

var (
	workloadSelector = regexp.MustCompile(`destination_workload=~"([^"]+)"`)
	windowSelector   = regexp.MustCompile(`\[(\d+)s\]`)
)

func newCountsAPI(t *testing.T) *countsAPI {
	c := &countsAPI{rps: map[string]float64{}, errors: map[string]float64{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		q := r.Form.Get("query")
		c.mu.Lock()
		c.queries = append(c.queries, q)
		wl, win := workloadSelector.FindStringSubmatch(q), windowSelector.FindStringSubmatch(q)
		rps, errs := 0.0, 0.0
		if wl != nil {
			rps, errs = c.rps[wl[1]], c.errors[wl[1]]
		}
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if wl == nil || win == nil || !strings.Contains(q, "increase(") || rps == 0 {
			fmt.Fprint(w, `{"status":"success","data":{"resultType":"vector","result":[]}}`)
			return
		}
		seconds, _ := strconv.Atoi(win[1])
		n := rps * float64(seconds)
		if strings.Contains(q, `response_code!~"5.*"`) {
			n *= 1 - errs
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"%g"]}]}}`, time.Now().Unix(), n)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *countsAPI) serve(workload string, rps, errorRate float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rps[workload], c.errors[workload] = rps, errorRate
}

func (c *countsAPI) asked() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.queries...)
}

func judgedCanary() *flaggerv1.Canary {
	return newCanary(flaggerv1.CanaryMetric{Name: RequestSuccessRate, Interval: "1m",
		ThresholdRange: &flaggerv1.CanaryThresholdRange{Min: f(99)},
		Judge:          &flaggerv1.CanaryMetricJudge{Tolerance: 1}})
}

// judgedAnalyzer reads api with the production Prometheus client, at a fixed time.
func judgedAnalyzer(t *testing.T, api *countsAPI, now time.Time) *Analyzer {
	a, _ := newAnalyzer(t, newFakeBackend())
	a.MetricsServer, a.NewProvider, a.Now = api.srv.URL, nil, func() time.Time { return now }
	return a
}

// step runs the analysis of one step and returns its result with the status the step writes.
func step(t *testing.T, a *Analyzer, cd *flaggerv1.Canary, at time.Time) (flaggerv1.CanaryCheckResult, error) {
	t.Helper()
	results, err := a.Check(context.Background(), cd)
	if len(results) != 1 {
		t.Fatalf("results %+v, err %v", results, err)
	}
	cd.Status.LastChecks = results
	stepTime := metav1.NewMicroTime(at)
	cd.Status.LastStepTime = &stepTime
	return results[0], err
}

func TestJudgeCountsBothVersionsStepByStep(t *testing.T) {
	api := newCountsAPI(t)
	api.serve("podinfo", 10, 0.005)
	api.serve("podinfo-primary", 90, 0.005)
	cd := judgedCanary()
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	last := metav1.NewMicroTime(t0.Add(-time.Minute))
	cd.Status.LastStepTime = &last

	var res flaggerv1.CanaryCheckResult
	var err error
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Minute)
		res, err = step(t, judgedAnalyzer(t, api, at), cd, at)
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
	want := flaggerv1.CanaryCheckCounts{CanaryRequests: 1800, CanaryErrors: 9, PrimaryRequests: 16200, PrimaryErrors: 81}
	if res.Counts == nil || *res.Counts != want {
		t.Fatalf("counts after three steps %+v, want %+v", res.Counts, want)
	}
	if res.Result != flaggerv1.CheckPassed || res.Value != "99.50% vs 99.50%" ||
		res.Message != "canary error rate 0.5% vs primary 0.5%, +0 pp [-0.64, 1.05], tolerance +1 pp, 1800 canary requests: continue" {
		t.Errorf("result %+v", res)
	}
	// Each step reads the minute since the step before, for each version, and nothing else.
	asked := api.asked()
	if len(asked) != 12 {
		t.Fatalf("%d queries, want 4 per step: %q", len(asked), asked)
	}
	for _, q := range asked {
		if !strings.Contains(q, "[60s]") || !strings.Contains(q, "increase(") {
			t.Errorf("query %q does not count the minute since the last step", q)
		}
	}
	if !strings.Contains(asked[2], `destination_workload=~"podinfo-primary"`) {
		t.Errorf("third query %q does not select the primary", asked[2])
	}

	// A new analysis (status.lastChecks cleared) starts counting from zero.
	cd.Status.LastChecks = nil
	res, _ = step(t, judgedAnalyzer(t, api, t0.Add(3*time.Minute)), cd, t0.Add(3*time.Minute))
	if res.Counts.CanaryRequests != 600 {
		t.Errorf("counts of a new analysis %+v", res.Counts)
	}
}

func TestJudgeRollsBackAWorseCanaryAndHoldsWhenBothDegrade(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	last := metav1.NewMicroTime(t0.Add(-time.Minute))
	for _, tc := range []struct {
		name            string
		canary, primary float64
		want            any
		message         string
		result          flaggerv1.CanaryCheckOutcome
	}{
		{"canary worse", 0.05, 0.005, &canary.RollbackError{},
			"Halt podinfo.test advancement canary error rate 5% vs primary 0.5%, +4.5 pp [2.27, 7.59], exceeds +1 pp: fail", flaggerv1.CheckFailed},
		{"both degrade", 0.12, 0.12, &canary.HoldError{},
			"Halt podinfo.test advancement canary error rate 12% vs primary 12%, +0 pp [-4.9, 6.26], the primary degrades too (a shared cause): hold", flaggerv1.CheckHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newCountsAPI(t)
			api.serve("podinfo", 20, tc.canary)
			api.serve("podinfo-primary", 180, tc.primary)
			cd := judgedCanary()
			cd.Status.LastStepTime = &last
			res, err := step(t, judgedAnalyzer(t, api, t0), cd, t0)
			var rollback *canary.RollbackError
			var hold *canary.HoldError
			switch tc.want.(type) {
			case *canary.RollbackError:
				if !errors.As(err, &rollback) {
					t.Fatalf("err %v, want a rollback", err)
				}
			case *canary.HoldError:
				if !errors.As(err, &hold) {
					t.Fatalf("err %v, want a hold", err)
				}
			}
			if err.Error() != tc.message {
				t.Errorf("message\n %q, want\n %q", err.Error(), tc.message)
			}
			if res.Result != tc.result {
				t.Errorf("result %s, want %s", res.Result, tc.result)
			}
		})
	}
}

func TestJudgeSettingsThatCannotWork(t *testing.T) {
	judged := func(edit func(*flaggerv1.CanaryMetric)) flaggerv1.CanaryMetric {
		m := flaggerv1.CanaryMetric{Name: RequestSuccessRate, Judge: &flaggerv1.CanaryMetricJudge{Tolerance: 1}}
		edit(&m)
		return m
	}
	for want, m := range map[string]flaggerv1.CanaryMetric{
		"only request-success-rate and request-duration can be judged": judged(func(m *flaggerv1.CanaryMetric) { m.Name = "error-rate" }),
		"needs a maximum":                              judged(func(m *flaggerv1.CanaryMetric) { m.Name = RequestDuration }),
		"takes no templateRef or query":                judged(func(m *flaggerv1.CanaryMetric) { m.Query = "up" }),
		"no tolerance":                                 judged(func(m *flaggerv1.CanaryMetric) { m.Judge.Tolerance = 0 }),
		"false-rollback rate 60% is not within 0..50%": judged(func(m *flaggerv1.CanaryMetric) { m.Judge.FalseRollbackRate = 60 }),
	} {
		if _, err := JudgeSettings(m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: error %v, want %q", m.Judge, err, want)
		}
	}
	rate := flaggerv1.CanaryMetric{Name: RequestSuccessRate}
	latency := flaggerv1.CanaryMetric{Name: RequestDuration, Threshold: 500}
	for _, p := range []string{"skipper", "knative"} {
		if why := JudgeSupported(rate, p); why == "" {
			t.Errorf("provider %s: judge supported", p)
		}
	}
	for _, p := range []string{"istio", "linkerd", "appmesh", "contour", "gloo", "nginx", "kubernetes", "gatewayapi:v1", "traefik", "osm", "kuma", "apisix"} {
		if why := JudgeSupported(rate, p); why != "" {
			t.Errorf("provider %s: %s", p, why)
		}
	}
	if why := JudgeSupported(latency, "nginx"); !strings.Contains(why, "a mean, not a histogram") {
		t.Errorf("nginx's latency: %q", why)
	}
}

// Each provider's count queries select the canary and, turned, the primary.
func TestJudgeCountQueriesPerProvider(t *testing.T) {
	m := Model{Name: "podinfo", Namespace: "test", Target: "podinfo", Service: "podinfo", Ingress: "podinfo", Route: "podinfo", Interval: "60s"}
	for provider, want := range map[string][2]string{
		"istio":   {`destination_workload=~"podinfo"`, `destination_workload=~"podinfo-primary"`},
		"traefik": {`service=~"test-podinfo-canary-`, `service=~"test-podinfo-primary-`},
		"nginx":   {`canary!=""`, `canary=""`},
		"contour": {`test_podinfo-canary_`, `test_podinfo-primary_`},
		"kubernetes": {`kubernetes_pod_name=~"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`,
			`kubernetes_pod_name=~"podinfo-primary-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"`},
	} {
		cq, ok := successCounts(queriesFor(provider))
		if !ok {
			t.Fatalf("%s: no count queries", provider)
		}
		for _, q := range []string{cq.ok, cq.all} {
			c, err := Render(provider, q, m)
			if err != nil {
				t.Fatal(err)
			}
			pq, pm := primaryQuery(q, m)
			p, err := Render(provider, pq, pm)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(c, want[0]) || !strings.Contains(p, want[1]) || strings.Contains(c, "rate(") && !strings.Contains(c, "increase(") {
				t.Errorf("%s:\n canary  %s\n primary %s\n want %q and %q", provider, c, p, want[0], want[1])
			}
			if strings.Contains(c, "* 100") {
				t.Errorf("%s: count query %q keeps the percentage", provider, c)
			}
		}
	}
}

// A judged request-duration counts the requests faster than its bound in each version's histogram:
// the bucket of the bound in the provider's unit, and the +Inf bucket.
func TestJudgeLatencyCountQueries(t *testing.T) {
	m := Model{Name: "podinfo", Namespace: "test", Target: "podinfo", Service: "podinfo", Interval: "60s"}
	for provider, want := range map[string][2]string{
		"istio": {`sum( increase( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="test", destination_workload=~"podinfo", le=~"500(\\.0+)?" }[60s] ) )`,
			`sum( increase( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="test", destination_workload=~"podinfo", le="+Inf" }[60s] ) )`},
		"traefik": {`sum( increase( traefik_service_request_duration_seconds_bucket{ service=~"test-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", le=~"0\\.5(\\.0+)?" }[60s] ) )`,
			`sum( increase( traefik_service_request_duration_seconds_bucket{ service=~"test-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[60s] ) )`},
	} {
		cq, _, err := judgedCounts(flaggerv1.CanaryMetric{Name: RequestDuration, ThresholdRange: &flaggerv1.CanaryThresholdRange{Max: f(500)}}, provider)
		if err != nil {
			t.Fatal(err)
		}
		for i, q := range []string{cq.ok, cq.all} {
			got, err := Render(provider, q, m)
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(got) != want[i] {
				t.Errorf("%s:\n got  %s\n want %s", provider, strings.TrimSpace(got), want[i])
			}
		}
	}
}

// A step in which the canary served no request is no data, whatever the primary did: failed by
// default, held with noDataPolicy wait.
func TestJudgeWithoutCanaryRequestsIsNoData(t *testing.T) {
	api := newCountsAPI(t)
	api.serve("podinfo-primary", 100, 0.005)
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	last := metav1.NewMicroTime(t0.Add(-time.Minute))
	cd := judgedCanary()
	cd.Status.LastStepTime = &last
	res, err := step(t, judgedAnalyzer(t, api, t0), cd, t0)
	if err == nil || !strings.Contains(err.Error(), "no values found") || res.Result != flaggerv1.CheckFailed {
		t.Errorf("err %v, result %+v: want a failed check for want of data", err, res)
	}
	cd = judgedCanary()
	cd.Spec.Analysis.Metrics[0].NoDataPolicy = flaggerv1.NoDataWait
	cd.Status.LastStepTime = &last
	var hold *canary.HoldError
	if _, err := step(t, judgedAnalyzer(t, api, t0), cd, t0); !errors.As(err, &hold) {
		t.Errorf("noDataPolicy wait: err %v, want a hold", err)
	}
}
