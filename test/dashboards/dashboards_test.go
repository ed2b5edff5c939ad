package dashboards

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	sdkdashboard "github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"sigs.k8s.io/yaml"

	"github.com/pennant/pennant/internal/testenv"
)

// samples are the variable values a user picks (or a link sets) for each dashboard, one map per
// view tested: the seeds' /d/flagger-istio/istio-canary?var-namespace=prod&var-primary=backend-primary&var-canary=backend
// first. Every variable of every dashboard must have a value here, so a new dashboard or variable
// cannot go untested.
var samples = map[string][]map[string]string{
	"flagger-istio": {{"namespace": "prod", "primary": "backend-primary", "canary": "backend"}},
	"flagger-envoy": {
		{"namespace": "prod", "target": "backend"}, // Contour
		{"namespace": "shop", "target": "cart"},    // Gloo
	},
	"flagger-appmesh": {{"namespace": "prod", "primary": "backend-primary", "canary": "backend"}},
	"pennant-overview": {
		{"namespace": "prod", "name": "backend"},
		{"namespace": ".*", "name": ".*"}, // All
	},
}

// datasourceVariable is the data source variable every panel and query variable must read from.
const datasourceVariable = "DS_PROMETHEUS"

// TestDashboardsMatchGrafanaSchema decodes every dashboard strictly with Grafana's Foundation SDK
// (types generated from Grafana's dashboard schema: an unknown field or a wrong type fails), and
// checks that every panel, query and query variable reads from the ${DS_PROMETHEUS} data source
// variable and that every variable has sample values in this test.
func TestDashboardsMatchGrafanaSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, d := range loadDashboards(t) {
		data, err := os.ReadFile(filepath.Join(dashboardsDir, d.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := strictDecode(data); err != nil {
			t.Errorf("%s does not follow Grafana's dashboard schema: %v", d.file, err)
		}
		views, ok := samples[d.UID]
		if !ok {
			t.Errorf("%s: dashboard %s has no sample variable values in this test", d.file, d.UID)
			continue
		}
		hasDatasourceVar := false
		for _, v := range d.Templating.List {
			if v.Type == "datasource" {
				hasDatasourceVar = hasDatasourceVar || v.Name == datasourceVariable
				continue
			}
			if v.Datasource == nil || v.Datasource.UID != "${"+datasourceVariable+"}" {
				t.Errorf("%s: variable %s does not read from ${%s}: %+v", d.UID, v.Name, datasourceVariable, v.Datasource)
			}
			for _, view := range views {
				if _, ok := view[v.Name]; !ok {
					t.Errorf("%s: variable %s has no sample value in this test", d.UID, v.Name)
				}
			}
		}
		if !hasDatasourceVar {
			t.Errorf("%s: no %s data source variable", d.UID, datasourceVariable)
		}
		for _, p := range d.panels() {
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", d.UID, p.Title)
			}
			for _, ref := range append([]*datasourceRef{p.Datasource}, targetsDatasources(p)...) {
				if ref == nil || ref.Type != "prometheus" || ref.UID != "${"+datasourceVariable+"}" {
					t.Errorf("%s: panel %q does not read from ${%s}: %+v", d.UID, p.Title, datasourceVariable, ref)
				}
			}
		}
	}
}

// strictDecode decodes a dashboard with the SDK's strict decoder, which returns its error list as
// an error even when the list is empty.
func strictDecode(data []byte) error {
	var d sdkdashboard.Dashboard
	err := d.UnmarshalJSONStrict(data)
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

func targetsDatasources(p grafanaPanel) []*datasourceRef {
	var out []*datasourceRef
	for _, q := range p.Targets {
		out = append(out, q.Datasource)
	}
	return out
}

// recordName turns a panel query into a valid recording rule name for promtool.
var nonMetricChars = regexp.MustCompile(`[^a-zA-Z0-9_]+`)

func recordName(prefix string, i int) string {
	return fmt.Sprintf("%s_%d", nonMetricChars.ReplaceAllString(prefix, "_"), i)
}

// TestQueriesParse has promtool parse every query: the alert rules as they ship (the rule file and
// the PrometheusRule's groups), and every panel and variable query of every dashboard with the
// sample values substituted, as recording rules of a generated rule file.
func TestQueriesParse(t *testing.T) {
	dir := t.TempDir()
	promtool(t, ".", "check", "rules", filepath.Join(alertsDir, "pennant.rules.yaml"))

	// The PrometheusRule's spec is a rule file's groups.
	data, err := os.ReadFile(filepath.Join(alertsDir, "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       map[string]any `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" || pr.Metadata["name"] == nil {
		t.Fatalf("prometheusrule.yaml is a %s %s named %v", pr.APIVersion, pr.Kind, pr.Metadata["name"])
	}
	spec, err := yaml.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(dir, "prometheusrule-spec.yaml")
	if err := os.WriteFile(specFile, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	out := promtool(t, ".", "check", "rules", specFile)
	if want := fmt.Sprintf("%d rules found", len(loadAlertRules(t))); !strings.Contains(out, want) {
		t.Errorf("the PrometheusRule does not hold the rule file's rules: promtool says %q, want %q", out, want)
	}

	type recording struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []recording
	for _, d := range loadDashboards(t) {
		for _, view := range samples[d.UID] {
			for _, q := range d.queries(view) {
				rules = append(rules, recording{recordName(d.UID, len(rules)), q.expr})
			}
			for _, v := range d.Templating.List {
				if v.Type != "query" {
					continue
				}
				expr, _, err := variableQuery(v, view)
				if err != nil {
					t.Errorf("%s: %v", d.UID, err)
					continue
				}
				rules = append(rules, recording{recordName(d.UID+"_var", len(rules)), expr})
			}
		}
	}
	file := map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rules}}}
	data, err = yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	panelFile := filepath.Join(dir, "dashboards.rules.yaml")
	if err := os.WriteFile(panelFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out = promtool(t, ".", "check", "rules", panelFile)
	if want := fmt.Sprintf("%d rules found", len(rules)); !strings.Contains(out, want) {
		t.Errorf("promtool checked %q, want %q", out, want)
	}
}

// TestAlertRulesFire runs promtool's unit tests of the alert rules (testdata/alerts_test.yaml):
// each fires when it should, with its labels and annotations, and not otherwise.
func TestAlertRulesFire(t *testing.T) {
	promtool(t, "testdata", "test", "rules", "alerts_test.yaml")
}

// durationLiteral matches the durations of range selectors and offsets.
var durationLiteral = regexp.MustCompile(`(\[|offset )\d+[smhdwy]`)

// scaled shortens every range and offset of an alert expression to window, so that a Prometheus
// that has run for seconds can evaluate the expression the rule evaluates over hours.
func scaled(expr, window string) string {
	return durationLiteral.ReplaceAllString(expr, "${1}"+window)
}

// TestEveryPanelReturnsSeries runs a real Prometheus that scrapes the mesh telemetry of canary
// releases (Istio, Contour, Gloo, App Mesh) and a real Pennant metrics registry, and evaluates the
// alert rules as they ship. Every panel query of every dashboard, with the sample values
// substituted, must return a series with a number; every variable's list must offer the sample
// value; the primary and canary panels must show each side's own traffic; every alert rule must
// evaluate without error and its expression return the canaries it is about.
func TestEveryPanelReturnsSeries(t *testing.T) {
	testenv.NeedBinary(t, testenv.PrometheusBinary)
	mesh := &meshExporter{start: time.Now(), sides: releaseTelemetry()}
	meshServer := newServer(t, mesh)
	pennant := startPennantMetrics(t)
	rulesFile, err := filepath.Abs(filepath.Join(alertsDir, "pennant.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := startPrometheus(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: mesh
    static_configs: [{targets: [%q]}]
  - job_name: flagger
    static_configs: [{targets: [%q]}]
`, rulesFile, strings.TrimPrefix(meshServer.URL, "http://"), strings.TrimPrefix(pennant.server.URL, "http://")))

	// Rates need two scrapes; the alerts' scaled windows need their 10s of history.
	const window = "10s"
	waitFor(t, base, `sum(rate(istio_requests_total[1m])) > 0 and sum(rate(flagger_canary_duration_seconds_count[1m])) > 0`, 30*time.Second)
	history := time.Now() // Prometheus holds two scrapes of each target
	// $__rate_interval's 5s of history, so that rates are over whole windows.
	time.Sleep(6 * time.Second)

	t.Run("panels", func(t *testing.T) {
		for _, d := range loadDashboards(t) {
			for _, view := range samples[d.UID] {
				for _, q := range d.queries(view) {
					checkSeries(t, base, q.String()+fmt.Sprintf(" %v", view), q.expr)
				}
			}
		}
	})
	t.Run("variables", func(t *testing.T) {
		for _, d := range loadDashboards(t) {
			for _, view := range samples[d.UID] {
				for _, v := range d.Templating.List {
					if v.Type != "query" {
						continue
					}
					checkVariable(t, base, d.UID, v, view)
				}
			}
		}
	})
	t.Run("primary and canary", func(t *testing.T) {
		for _, d := range loadDashboards(t) {
			for _, view := range samples[d.UID] {
				checkSides(t, base, d, view)
			}
		}
	})
	t.Run("alerts", func(t *testing.T) {
		if wait := 12*time.Second - time.Since(history); wait > 0 {
			time.Sleep(wait) // the scaled windows' and offsets' history
		}
		want := map[string][]string{ // the canaries (namespace/name) or other labels each alert is about
			"canary_rollback":               {"prod/frontend"},
			"canary_stuck":                  {"prod/backend", "shop/cart"},
			"pennant_notifications_failing": {"kind=alert"},
			"pennant_notifications_dropped": {"reason=queue_full"},
		}
		for _, r := range loadAlertRules(t) {
			if r.name == "pennant_down" {
				continue // below, once the controller is gone
			}
			w, ok := want[r.name]
			if !ok {
				t.Errorf("alert %s is not covered by this test", r.name)
				continue
			}
			got, err := query(base, scaled(r.expr, window))
			if err != nil {
				t.Errorf("alert %s: %v", r.name, err)
				continue
			}
			if g := subjects(got); strings.Join(g, " ") != strings.Join(w, " ") {
				t.Errorf("alert %s (%s) is about %v, want %v", r.name, scaled(r.expr, window), g, w)
			}
		}
		health, err := rulesHealth(base)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range loadAlertRules(t) {
			if !strings.HasPrefix(health[r.name], "ok") {
				t.Errorf("Prometheus evaluates alert %s with health %q", r.name, health[r.name])
			}
		}

		// The controller goes away: pennant_down's expression returns a series once Prometheus
		// fails to scrape it (a failed scrape marks its series stale at once).
		down := loadAlertRule(t, "pennant_down")
		if got, err := query(base, down); err != nil || len(got) != 0 {
			t.Fatalf("pennant_down while the controller runs: %v %v", got, err)
		}
		pennant.stop()
		waitFor(t, base, down, 15*time.Second)
	})
}

func loadAlertRule(t *testing.T, name string) string {
	t.Helper()
	for _, r := range loadAlertRules(t) {
		if r.name == name {
			return r.expr
		}
	}
	t.Fatalf("no alert rule %s", name)
	return ""
}

// subjects names what each series of an alert's result is about.
func subjects(samples []sample) []string {
	var out []string
	for _, s := range samples {
		switch {
		case s.labels["name"] != "":
			out = append(out, s.labels["namespace"]+"/"+s.labels["name"])
		case s.labels["kind"] != "":
			out = append(out, "kind="+s.labels["kind"])
		case s.labels["reason"] != "":
			out = append(out, "reason="+s.labels["reason"])
		default:
			out = append(out, fmt.Sprint(s.labels))
		}
	}
	sort.Strings(out)
	return out
}

// checkSeries fails unless expr returns at least one series with a number (not NaN).
func checkSeries(t *testing.T, base, what, expr string) []sample {
	t.Helper()
	got, err := query(base, expr)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return nil
	}
	if len(got) == 0 {
		t.Errorf("%s returns no series: %s", what, expr)
		return nil
	}
	for _, s := range got {
		if !math.IsNaN(s.value) && !math.IsInf(s.value, 0) {
			return got
		}
	}
	t.Errorf("%s returns no number: %s = %v", what, expr, got)
	return nil
}

// checkVariable fails unless a query variable's list offers the value the view sets (a regex
// such as .* is the All option, not a listed value).
func checkVariable(t *testing.T, base, uid string, v grafanaVariable, view map[string]string) {
	t.Helper()
	expr, label, err := variableQuery(v, view)
	if err != nil {
		t.Error(err)
		return
	}
	got := checkSeries(t, base, fmt.Sprintf("%s: variable %s %v", uid, v.Name, view), expr)
	want := view[v.Name]
	if want == v.AllValue && v.IncludeAll {
		return
	}
	var offered []string
	for _, s := range got {
		offered = append(offered, s.labels[label])
		if s.labels[label] == want {
			return
		}
	}
	t.Errorf("%s: variable %s offers %v, not %q", uid, v.Name, offered, want)
}

// checkSides compares what the panels that name a side (legend primary or canary, or a
// "Primary: ..." or "Canary: ..." title) show with each side's own traffic: a selector that
// picked the other side, both, or Istio's source-side reports too would show other figures.
func checkSides(t *testing.T, base string, d grafanaDashboard, view map[string]string) {
	t.Helper()
	for _, q := range d.queries(view) {
		side := q.legend
		if side != "primary" && side != "canary" {
			side = strings.ToLower(strings.SplitN(q.panel, ":", 2)[0])
		}
		if side != "primary" && side != "canary" {
			continue
		}
		got, err := query(base, q.expr)
		if err != nil || len(got) != 1 {
			t.Errorf("%s %v: %v %v", q, view, got, err)
			continue
		}
		v := got[0].value
		title := strings.ToLower(q.panel)
		var ok bool
		var want string
		switch {
		case strings.Contains(title, "request rate"):
			w := map[string]float64{"primary": primaryRPS, "canary": canaryRPS}[side]
			ok, want = math.Abs(v-w) < w*0.1, fmt.Sprintf("%g rps", w)
		case strings.Contains(title, "success rate"):
			w := map[string]float64{"primary": primarySuccess, "canary": canarySuccess}[side]
			ok, want = math.Abs(v-w) < 0.02, fmt.Sprint(w)
		case strings.Contains(title, "duration"):
			hi := map[string]float64{"primary": primaryLatencyMax, "canary": canaryLatencyMax}[side]
			lo := map[string]float64{"primary": 10, "canary": 100}[side]
			ok, want = v > lo && v <= hi, fmt.Sprintf("in (%g, %g] ms", lo, hi)
		case strings.Contains(title, "weight"):
			w := map[string]float64{"primary": 70, "canary": 30}[side]
			if view["namespace"] == "shop" {
				w = map[string]float64{"primary": 80, "canary": 20}[side]
			}
			ok, want = v == w, fmt.Sprint(w)
		default:
			t.Errorf("%s: panel of the %s with no expected value in this test", q, side)
			continue
		}
		if !ok {
			t.Errorf("%s %v shows %g, want %s (%s)", q, view, v, want, q.expr)
		}
	}
}

func waitFor(t *testing.T, base, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := query(base, expr)
		if err == nil && len(got) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s returned nothing after %v (%v)", expr, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
