// Package dashboards tests the Grafana dashboards of config/dashboards and the alert rules of
// config/alerts as they ship: Grafana's schema, PromQL that promtool parses, alerts that fire when
// they should (promtool test rules), and panels and alerts that return series from a real
// Prometheus scraping the mesh telemetry of a canary release and a real Pennant metrics registry.
package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	repoRoot      = "../.."
	dashboardsDir = repoRoot + "/config/dashboards"
	alertsDir     = repoRoot + "/config/alerts"
)

// grafanaDashboard is the part of a dashboard's JSON the tests read.
type grafanaDashboard struct {
	file       string
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Panels     []grafanaPanel
	Templating struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []grafanaQuery `json:"targets"`
	Panels     []grafanaPanel `json:"panels"` // a row's panels
}

type grafanaQuery struct {
	RefID        string         `json:"refId"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat"`
	Datasource   *datasourceRef `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaVariable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Datasource *datasourceRef `json:"datasource"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue"`
}

// panelQuery is one query of one panel, for messages.
type panelQuery struct {
	dashboard, panel, refID, legend, expr string
}

func (q panelQuery) String() string {
	return fmt.Sprintf("%s / %q / %s", q.dashboard, q.panel, q.refID)
}

// loadDashboards reads every dashboard of config/dashboards.
func loadDashboards(t *testing.T) []grafanaDashboard {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no dashboards in %s", dashboardsDir)
	}
	var out []grafanaDashboard
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = filepath.Base(f)
		out = append(out, d)
	}
	return out
}

// panels returns the dashboard's panels, those of rows included.
func (d grafanaDashboard) panels() []grafanaPanel {
	var out []grafanaPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// queries returns every panel query, with the variables substituted from values.
func (d grafanaDashboard) queries(values map[string]string) []panelQuery {
	var out []panelQuery
	for _, p := range d.panels() {
		for _, q := range p.Targets {
			out = append(out, panelQuery{dashboard: d.UID, panel: p.Title, refID: q.RefID, legend: q.LegendFormat, expr: substitute(q.Expr, values)})
		}
	}
	return out
}

// builtins are Grafana's own variables, with the values Grafana gives them for the test's
// Prometheus, which scrapes every second: $__rate_interval is at least four scrape intervals.
var builtins = map[string]string{
	"__rate_interval": "5s",
	"__interval":      "1s",
	"__range":         "15m",
}

var variableRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// substitute replaces $name and ${name} by their values, as Grafana does for a single-valued
// variable; a variable without a value is left as it is (and the query then fails to parse).
func substitute(expr string, values map[string]string) string {
	return variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name := m[1] + m[2]
		if v, ok := values[name]; ok {
			return v
		}
		if v, ok := builtins[name]; ok {
			return v
		}
		return ref
	})
}

// labelValuesQuery is a label_values(selector, label) variable query.
var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// variableQuery returns the PromQL that lists a query variable's values (label_values(s, l) is
// group by (l) (s)) and the label to read them from.
func variableQuery(v grafanaVariable, values map[string]string) (expr, label string, err error) {
	q, ok := v.Query.(string)
	if !ok {
		return "", "", fmt.Errorf("variable %s: query is not a string: %v", v.Name, v.Query)
	}
	m := labelValuesQuery.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", "", fmt.Errorf("variable %s: %q is not a label_values() query", v.Name, q)
	}
	return fmt.Sprintf("group by (%s) (%s)", m[2], substitute(m[1], values)), m[2], nil
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

type alertRule struct{ name, expr string }

func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(alertsDir, "pennant.rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, alertRule{r.Alert, r.Expr})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
