package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/testenv"
)

func TestParseKeptnQuery(t *testing.T) {
	good := map[string]keptnQuery{
		"keptnmetric/podinfo/response-time":     {namespace: "podinfo", name: "response-time"},
		"KeptnMetrics/Podinfo/Response-Time \n": {namespace: "podinfo", name: "response-time"},
		"analysis/podinfo/slo":                  {analysis: true, namespace: "podinfo", name: "slo", timeframe: "1m", args: map[string]string{}},
		"analyses/podinfo/slo/5M/":              {analysis: true, namespace: "podinfo", name: "slo", timeframe: "5m", args: map[string]string{}},
		"analysis/podinfo/slo/2m/Workload=PodInfo;method=GET;q=a=b": {analysis: true, namespace: "podinfo", name: "slo", timeframe: "2m",
			args: map[string]string{"workload": "PodInfo", "method": "GET", "q": "a=b"}},
	}
	for query, want := range good {
		got, err := parseKeptnQuery(query)
		if err != nil {
			t.Fatalf("%q: %v", query, err)
		}
		if got.analysis != want.analysis || got.namespace != want.namespace || got.name != want.name || got.timeframe != want.timeframe || len(got.args) != len(want.args) {
			t.Fatalf("%q: parsed %+v, want %+v", query, got, want)
		}
		for k, v := range want.args {
			if got.args[k] != v {
				t.Fatalf("%q: args %v, want %v", query, got.args, want.args)
			}
		}
	}
	bad := map[string]string{
		"":                                     `unknown kind ""`,
		"prometheus/podinfo/x":                 `unknown kind "prometheus"`,
		"keptnmetric/podinfo":                  "a keptnmetric query has 3 parts, not 2",
		"keptnmetric/podinfo/x/5m":             "a keptnmetric query has 3 parts, not 4",
		"keptnmetric//x":                       "the namespace and the name must not be empty",
		"analysis/podinfo":                     "an analysis query has 3 to 5 parts, not 2",
		"analysis/podinfo/slo/5m/a=b/extra":    "an analysis query has 3 to 5 parts, not 6",
		"analysis/podinfo/slo/five-minutes":    `timeframe "five-minutes" is not a positive duration`,
		"analysis/podinfo/slo/-1m":             `timeframe "-1m" is not a positive duration`,
		"analysis/podinfo/slo/1m/workload":     `argument "workload" is not key=value`,
		"analysis/podinfo/slo/1m/a=b;;c=d":     `argument "" is not key=value`,
		"analysis/podinfo/slo/1m/=podinfo":     `argument "=podinfo" is not key=value`,
		"sum(rate(http_requests_total[1m]))":   `unknown kind "sum(rate(http_requests_total[1m]))"`,
		"keptnmetric/podinfo/response-time/\n": "a keptnmetric query has 3 parts, not 4",
	}
	for query, want := range bad {
		_, err := parseKeptnQuery(query)
		mustContain(t, err, "malformed query", want, "want keptnmetric/<namespace>/<name> or analysis/")
	}
}

// keptnEnv is a namespace on the test API server, which serves Keptn's CRDs, and the keptn
// provider with a client that reads through an informer cache, as the manager's client does.
type keptnEnv struct {
	env *testenv.Env
	ns  string
	p   *keptnProvider
}

func newKeptnEnv(t *testing.T, timeout time.Duration) *keptnEnv {
	t.Helper()
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	informers, err := cache.New(env.Config, cache.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not start")
	}
	kube, err := client.New(env.Config, client.Options{Scheme: env.Scheme,
		Cache: &client.CacheOptions{Reader: informers, Unstructured: true}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(flaggerv1.MetricTemplateProvider{Type: TypeKeptn}, "", nil)
	if p != nil || err == nil {
		t.Fatalf("keptn without a Kubernetes client: %v, %v; want an error", p, err)
	}
	mustContain(t, err, "keptn: no Kubernetes client")
	p, err = NewWithOptions(flaggerv1.MetricTemplateProvider{Type: TypeKeptn}, "", nil, Options{Kube: kube, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return &keptnEnv{env: env, ns: ns, p: p.(*keptnProvider)}
}

func (e *keptnEnv) object(kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(keptnGroupVersion.WithKind(kind))
	u.SetNamespace(e.ns)
	u.SetName(name)
	return u
}

// createKeptnMetric creates a KeptnMetric as a user would; status, unless nil, is what Keptn's
// metrics operator writes once it has fetched the metric.
func (e *keptnEnv) createKeptnMetric(t *testing.T, name string, status map[string]any) {
	t.Helper()
	m := e.object("KeptnMetric", name)
	m.Object["spec"] = map[string]any{
		"provider":             map[string]any{"name": "prometheus"},
		"query":                `sum(rate(http_requests_total{app="podinfo"}[1m]))`,
		"fetchIntervalSeconds": int64(10),
	}
	ctx := context.Background()
	if err := e.env.Client.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	if status == nil {
		return
	}
	m.Object["status"] = status
	if err := e.env.Client.Status().Update(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func (e *keptnEnv) analyses(t *testing.T) []unstructured.Unstructured {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(keptnGroupVersion.WithKind("AnalysisList"))
	if err := e.env.Client.List(context.Background(), list, client.InNamespace(e.ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// completeAnalyses plays Keptn's metrics operator: it completes the first Analysis that appears,
// as the operator writes its status (status.pass omitted when false: the operator's field is
// `json:"pass,omitempty"`), and sends the Analysis as it found it.
func (e *keptnEnv) completeAnalyses(t *testing.T, pass bool) <-chan *unstructured.Unstructured {
	t.Helper()
	seen := make(chan *unstructured.Unstructured, 1)
	go func() {
		defer close(seen)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(keptnGroupVersion.WithKind("AnalysisList"))
			if err := e.env.Client.List(context.Background(), list, client.InNamespace(e.ns)); err != nil || len(list.Items) == 0 {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			a := list.Items[0]
			found := a.DeepCopy()
			now := time.Now().UTC()
			status := map[string]any{
				"state": "Completed",
				"timeframe": map[string]any{
					"from": now.Add(-5 * time.Minute).Format(time.RFC3339),
					"to":   now.Format(time.RFC3339),
				},
				"raw": `{"objectiveResults":[],"totalScore":1,"maximumScore":1,"pass":` + map[bool]string{true: "true", false: "false"}[pass] + `}`,
			}
			if pass {
				status["pass"] = true
			}
			a.Object["status"] = status
			if err := e.env.Client.Status().Update(context.Background(), &a); err != nil {
				t.Errorf("completing the Analysis: %v", err)
			}
			seen <- found
			return
		}
	}()
	return seen
}

func TestKeptnMetric(t *testing.T) {
	e := newKeptnEnv(t, 10*time.Second)
	ctx := context.Background()
	now := time.Now().UTC().Format(time.RFC3339)
	e.createKeptnMetric(t, "response-time", map[string]any{"value": "0.235", "rawValue": "MC4yMzU=", "lastUpdated": now})
	e.createKeptnMetric(t, "not-fetched-yet", nil)
	e.createKeptnMetric(t, "failing", map[string]any{"errMsg": "client_error: client error: 422", "lastUpdated": now})
	e.createKeptnMetric(t, "not-a-number", map[string]any{"value": "fast", "lastUpdated": now})

	if ok, err := e.p.IsOnline(ctx); !ok || err != nil {
		t.Fatalf("IsOnline = %v, %v with Keptn's CRDs installed", ok, err)
	}
	v, err := e.p.RunQuery(ctx, "keptnmetric/"+e.ns+"/response-time")
	if err != nil || v != 0.235 {
		t.Fatalf("RunQuery = %v, %v; want 0.235", v, err)
	}

	_, err = e.p.RunQuery(ctx, "keptnmetric/"+e.ns+"/not-fetched-yet")
	if !errors.Is(err, ErrNoValuesFound) {
		t.Fatalf("a KeptnMetric without value: %v, want ErrNoValuesFound", err)
	}
	mustContain(t, err, "keptn: KeptnMetric "+e.ns+"/not-fetched-yet has no status.value (the metrics operator has not fetched it yet)")

	_, err = e.p.RunQuery(ctx, "keptnmetric/"+e.ns+"/failing")
	if !errors.Is(err, ErrNoValuesFound) {
		t.Fatalf("a failing KeptnMetric: %v, want ErrNoValuesFound", err)
	}
	mustContain(t, err, "the metrics operator reports: client_error: client error: 422")

	_, err = e.p.RunQuery(ctx, "keptnmetric/"+e.ns+"/not-a-number")
	mustContain(t, err, `keptn: KeptnMetric `+e.ns+`/not-a-number: status.value "fast" is not a number`)

	_, err = e.p.RunQuery(ctx, "keptnmetric/"+e.ns+"/absent")
	mustContain(t, err, "keptn: reading KeptnMetric "+e.ns+"/absent: ", "not found")

	_, err = e.p.RunQuery(ctx, "keptnmetric/"+e.ns)
	mustContain(t, err, "keptn: malformed query")
}

func TestKeptnAnalysis(t *testing.T) {
	e := newKeptnEnv(t, 10*time.Second)
	ctx := context.Background()
	for _, pass := range []bool{true, false} {
		seen := e.completeAnalyses(t, pass)
		start := time.Now()
		v, err := e.p.RunQuery(ctx, "analysis/"+e.ns+"/podinfo-slo/5m/workload=podinfo;Method=GET")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]float64{true: 1, false: 0}[pass]; v != want {
			t.Fatalf("pass=%v: RunQuery = %v, want %v", pass, v, want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the result took %v", d)
		}
		a := <-seen
		if a == nil {
			t.Fatal("the operator saw no Analysis")
		}
		if !strings.HasPrefix(a.GetName(), "podinfo-slo-") || a.GetLabels()["app.kubernetes.io/managed-by"] != "flagger" {
			t.Errorf("Analysis %s labels %v", a.GetName(), a.GetLabels())
		}
		spec, _, _ := unstructured.NestedMap(a.Object, "spec")
		definition, _, _ := unstructured.NestedString(spec, "analysisDefinition", "name")
		recent, _, _ := unstructured.NestedString(spec, "timeframe", "recent")
		args, _, _ := unstructured.NestedStringMap(spec, "args")
		if definition != "podinfo-slo" || recent != "5m" || len(args) != 2 || args["workload"] != "podinfo" || args["method"] != "GET" {
			t.Errorf("Analysis spec %v", spec)
		}
		if left := e.analyses(t); len(left) != 0 {
			t.Fatalf("%d Analyses left after the query, want the created one deleted", len(left))
		}
	}
}

// TestKeptnAnalysisTimesOut: without Keptn's operator no Analysis completes: the query fails
// after the timeout with a message that says so, and the Analysis is deleted.
func TestKeptnAnalysisTimesOut(t *testing.T) {
	e := newKeptnEnv(t, 1500*time.Millisecond)
	start := time.Now()
	_, err := e.p.RunQuery(context.Background(), "analysis/"+e.ns+"/podinfo-slo")
	if d := time.Since(start); d < 1500*time.Millisecond || d > 8*time.Second {
		t.Errorf("the query returned after %v, want about the 1.5s timeout", d)
	}
	mustContain(t, err, "keptn: Analysis "+e.ns+"/podinfo-slo-", "(AnalysisDefinition podinfo-slo) did not complete within 1.5s (state: none yet): is Keptn's metrics operator running?")
	if left := e.analyses(t); len(left) != 0 {
		t.Fatalf("%d Analyses left after the timeout, want the created one deleted", len(left))
	}

	// A namespace that does not exist: the Analysis cannot be created, and the error says why.
	_, err = e.p.RunQuery(context.Background(), "analysis/no-such-namespace-"+e.ns+"/podinfo-slo")
	mustContain(t, err, "keptn: creating an Analysis of AnalysisDefinition no-such-namespace-"+e.ns+"/podinfo-slo: ", "not found")
}

// Under -no-cross-namespace-refs a keptn query may name only the canary's namespace: nothing of
// another namespace is read or created (the provider has no client here; a read would panic).
func TestKeptnQueryHeldToTheCanarysNamespace(t *testing.T) {
	p := &keptnProvider{only: "team-a", timeout: time.Second, poll: time.Millisecond}
	for _, q := range []string{"keptnmetric/team-b/availability", "analysis/team-b/slo/5m"} {
		_, err := p.RunQuery(context.Background(), q)
		if err == nil || !strings.Contains(err.Error(), "-no-cross-namespace-refs") {
			t.Errorf("%s: %v, want refused under -no-cross-namespace-refs", q, err)
		}
	}
}
