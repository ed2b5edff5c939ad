package analysis

import (
	"fmt"
	"strings"
	"text/template"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Model is what a query template can read about the canary. Flagger exposes each field as a
// template function without arguments ({{ namespace }}, {{ target }}, ...), not as a field of the
// template data ({{ .Namespace }}), and so does Pennant, so that MetricTemplates written for
// Flagger render the same.
type Model struct {
	// Name is the canary's name.
	Name string
	// Namespace is the canary's namespace.
	Namespace string
	// Target is spec.targetRef.name.
	Target string
	// Service is spec.service.name, or the target name.
	Service string
	// Ingress is spec.ingressRef.name, or the target name.
	Ingress string
	// Route is spec.routeRef.name, or the target name; for a Knative Service target, the Service's
	// latest created revision (set by the analyzer, which reads the Service), as in Flagger.
	Route string
	// Interval is the metric's window (metric interval, 1m by default).
	Interval string
	// Variables are the metric's templateVariables: {{ variables.name }}.
	Variables map[string]string
	// EscapePromQL escapes every value for a double-quoted PromQL string (backslash and double
	// quote), so that a canary-supplied value cannot end a label matcher and add selectors or
	// operators of its own. Set for Prometheus templates; Kubernetes names never contain these
	// characters, so only templateVariables change.
	EscapePromQL bool
}

// escapePromQLString escapes s for the inside of a double-quoted PromQL string.
func escapePromQLString(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// NewModel is the template model of one of a canary's metrics.
func NewModel(cd *flaggerv1.Canary, metric flaggerv1.CanaryMetric) Model {
	target := cd.Spec.TargetRef.Name
	ingress, route := target, target
	if cd.Spec.IngressRef != nil {
		ingress = cd.Spec.IngressRef.Name
	}
	if cd.Spec.RouteRef != nil {
		route = cd.Spec.RouteRef.Name
	}
	return Model{
		Name:      cd.Name,
		Namespace: cd.Namespace,
		Target:    target,
		Service:   cd.GetServiceName(),
		Ingress:   ingress,
		Route:     route,
		Interval:  metric.GetMetricInterval(),
		Variables: metric.TemplateVariables,
	}
}

// funcs are the template functions of the model, one per field, named as in Flagger.
func (m Model) funcs() template.FuncMap {
	if m.EscapePromQL {
		m = m.escaped()
	}
	return template.FuncMap{
		"name":      func() string { return m.Name },
		"namespace": func() string { return m.Namespace },
		"target":    func() string { return m.Target },
		"service":   func() string { return m.Service },
		"ingress":   func() string { return m.Ingress },
		"route":     func() string { return m.Route },
		"interval":  func() string { return m.Interval },
		"variables": func() map[string]string { return m.Variables },
	}
}

// escaped is the model with every value escaped for a double-quoted PromQL string.
func (m Model) escaped() Model {
	e := escapePromQLString
	out := Model{Name: e(m.Name), Namespace: e(m.Namespace), Target: e(m.Target), Service: e(m.Service),
		Ingress: e(m.Ingress), Route: e(m.Route), Interval: e(m.Interval), Variables: map[string]string{}}
	for k, v := range m.Variables {
		out.Variables[k] = e(v)
	}
	return out
}

// Render executes a query template against the model. A reference to a variable the metric does
// not define is an error (missingkey=error), as in Flagger, e.g.
// `template: latency:1:26: executing "latency" at <variables.reporter>: map has no entry for key "reporter"`.
func Render(name, query string, m Model) (string, error) {
	t, err := template.New(name).Funcs(m.funcs()).Option("missingkey=error").Parse(query)
	if err != nil {
		return "", fmt.Errorf("template parsing failed: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		return "", fmt.Errorf("template execution failed: %w", err)
	}
	return b.String(), nil
}
