package analysis

import (
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

func TestRenderFunctions(t *testing.T) {
	m := Model{Name: "podinfo", Namespace: "test", Target: "podinfo-deploy", Service: "podinfo-svc",
		Ingress: "podinfo-ing", Route: "podinfo-route", Interval: "30s", Variables: map[string]string{"reporter": "source"}}
	got, err := Render("t", `{{ name }} {{ namespace }} {{ target }} {{ service }} {{ ingress }} {{ route }} {{ interval }} {{ variables.reporter }}`, m)
	if err != nil {
		t.Fatal(err)
	}
	if want := "podinfo test podinfo-deploy podinfo-svc podinfo-ing podinfo-route 30s source"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Flagger's e2e MetricTemplate (test/istio): variables inside a selector.
func TestRenderFlaggerLatencyTemplate(t *testing.T) {
	query := `histogram_quantile(0.99,
  sum(
    rate(
      istio_request_duration_milliseconds_bucket{
        reporter="{{ variables.reporter }}",
        destination_workload_namespace="{{ namespace }}",
        destination_workload=~"{{ target }}"
      }[{{ interval }}]
    )
  ) by (le)
)`
	m := Model{Namespace: "test", Target: "podinfo", Interval: "1m", Variables: map[string]string{"reporter": "destination"}}
	got, err := Render("latency", query, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`reporter="destination"`, `destination_workload_namespace="test"`, `destination_workload=~"podinfo"`, `}[1m]`} {
		if !strings.Contains(got, want) {
			t.Errorf("%s not in %s", want, got)
		}
	}
}

func TestRenderUnknownVariableIsAnError(t *testing.T) {
	for name, vars := range map[string]map[string]string{"no variables": nil, "other variables": {"a": "b"}} {
		t.Run(name, func(t *testing.T) {
			_, err := Render("latency", `rate(x{reporter="{{ variables.reporter }}"}[1m])`, Model{Variables: vars})
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range []string{"template", "latency", `map has no entry for key "reporter"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	if _, err := Render("t", `{{ name `, Model{}); err == nil || !strings.Contains(err.Error(), "template parsing failed") {
		t.Errorf("unclosed action: %v", err)
	}
	if _, err := Render("t", `{{ nosuchfunc }}`, Model{}); err == nil || !strings.Contains(err.Error(), `function "nosuchfunc" not defined`) {
		t.Errorf("unknown function: %v", err)
	}
	// Flagger passes no template data: {{ .Name }} is not how a model field is read.
	if _, err := Render("t", `{{ .Name }}`, Model{Name: "x"}); err == nil {
		t.Error("{{ .Name }} rendered")
	}
}

func TestNewModel(t *testing.T) {
	cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
	cd.Spec.TargetRef = flaggerv1.LocalObjectReference{Kind: "Deployment", Name: "podinfo-deploy"}
	metric := flaggerv1.CanaryMetric{Name: "m", TemplateVariables: map[string]string{"k": "v"}}

	m := NewModel(cd, metric)
	want := Model{Name: "podinfo", Namespace: "test", Target: "podinfo-deploy", Service: "podinfo-deploy",
		Ingress: "podinfo-deploy", Route: "podinfo-deploy", Interval: "1m", Variables: map[string]string{"k": "v"}}
	if m.Name != want.Name || m.Namespace != want.Namespace || m.Target != want.Target || m.Service != want.Service ||
		m.Ingress != want.Ingress || m.Route != want.Route || m.Interval != want.Interval || m.Variables["k"] != "v" {
		t.Errorf("defaults: got %+v, want %+v", m, want)
	}

	cd.Spec.Service.Name = "svc"
	cd.Spec.IngressRef = &flaggerv1.IngressReference{Name: "ing"}
	cd.Spec.RouteRef = &flaggerv1.RouteReference{Name: "route"}
	metric.Interval = "5s"
	m = NewModel(cd, metric)
	if m.Service != "svc" || m.Ingress != "ing" || m.Route != "route" || m.Interval != "5s" {
		t.Errorf("refs: got %+v", m)
	}
}

// A templateVariable with a double quote, a backslash or a brace cannot end the label value it
// is rendered into: the escaped value reads back, unquoted, as the original.
func TestRenderEscapesPromQLStrings(t *testing.T) {
	hostile := `x"} or vector(1) or up{a="\`
	m := Model{Variables: map[string]string{"v": hostile}, EscapePromQL: true}
	got, err := Render("t", `sum(rate(m{l="{{ variables.v }}"}[1m]))`, m)
	if err != nil {
		t.Fatal(err)
	}
	const prefix, suffix = `sum(rate(m{l=`, `}[1m]))`
	if !strings.HasPrefix(got, prefix) || !strings.HasSuffix(got, suffix) {
		t.Fatalf("rendered %s", got)
	}
	// PromQL's double-quoted strings use Go's escapes: the whole label value must unquote as one
	// string literal equal to the hostile value.
	lit := strings.TrimSuffix(strings.TrimPrefix(got, prefix), suffix)
	unq, err := strconv.Unquote(lit)
	if err != nil || unq != hostile {
		t.Fatalf("label value %s unquotes to %q, %v; want %q", lit, unq, err, hostile)
	}
	// Without the option (non-Prometheus providers) the value is rendered as written, as in Flagger.
	m.EscapePromQL = false
	if got, _ := Render("t", `{{ variables.v }}`, m); got != hostile {
		t.Errorf("unescaped render %q", got)
	}
}
