package notify

import (
	"fmt"
	"strconv"
	"strings"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Field is a name and value shown under an alert (a Slack attachment field, a Teams fact...).
type Field struct {
	Name  string
	Value string
}

// Message is one alert, independent of the chat service that receives it.
type Message struct {
	// Name and Namespace are the canary's.
	Name      string
	Namespace string
	// Text is the alert, e.g. "New revision detected, progressing canary analysis.".
	Text     string
	Severity flaggerv1.AlertSeverity
	Fields   []Field
}

// Subject is the canary as Flagger names it in alerts: name.namespace.
func (m Message) Subject() string { return m.Name + "." + m.Namespace }

// IsError reports whether the message has the error severity, which every sender paints red.
func (m Message) IsError() bool { return m.Severity == flaggerv1.SeverityError }

// NewMessage builds the alert Flagger sends for a canary: a Cluster field first when cluster (the
// -cluster-name flag) is set, then, when metadata is true, the canary's Target, Failed checks
// threshold, Progress deadline and Traffic routing.
func NewMessage(cd *flaggerv1.Canary, severity flaggerv1.AlertSeverity, text, cluster string, metadata bool) Message {
	m := Message{Name: cd.Name, Namespace: cd.Namespace, Text: text, Severity: severity}
	if cluster != "" {
		m.Fields = append(m.Fields, Field{Name: "Cluster", Value: cluster})
	}
	if metadata {
		m.Fields = append(m.Fields, MetadataFields(cd)...)
	}
	return m
}

// MetadataFields describes the canary the way Flagger's alerts do.
func MetadataFields(cd *flaggerv1.Canary) []Field {
	fields := []Field{
		{Name: "Target", Value: fmt.Sprintf("%s/%s.%s", cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, cd.Namespace)},
		{Name: "Failed checks threshold", Value: strconv.Itoa(cd.GetAnalysisThreshold())},
		{Name: "Progress deadline", Value: fmt.Sprintf("%ds", cd.GetProgressDeadlineSeconds())},
	}
	if routing := trafficRouting(cd.GetAnalysis()); routing != "" {
		fields = append(fields, Field{Name: "Traffic routing", Value: routing})
	}
	return fields
}

func trafficRouting(a *flaggerv1.CanaryAnalysis) string {
	switch {
	case a == nil:
		return ""
	case a.StepWeight > 0:
		return fmt.Sprintf("Weight step: %d max: %d", a.StepWeight, a.MaxWeight)
	case len(a.StepWeights) > 0:
		steps := make([]string, len(a.StepWeights))
		for i, w := range a.StepWeights {
			steps[i] = strconv.Itoa(w)
		}
		return fmt.Sprintf("Weight steps: %s max: %d", strings.Join(steps, ","), a.MaxWeight)
	case len(a.Match) > 0:
		return "A/B Testing"
	case a.Iterations > 0:
		return "Blue/Green"
	}
	return ""
}

// FlaggerMetadata reports whether Flagger attaches the canary's metadata fields to an alert: only
// to "New <Kind> detected, initialization completed." and "New revision detected, progressing
// canary analysis.". It is the Dispatcher's default, because the Notifier interface does not say.
func FlaggerMetadata(_ flaggerv1.AlertSeverity, text string) bool {
	return text == "New revision detected, progressing canary analysis." ||
		(strings.HasPrefix(text, "New ") && strings.HasSuffix(text, " detected, initialization completed."))
}

// Matches is Flagger's severity filter: an alert whose severity is info receives every message;
// otherwise it receives messages of its own severity, and a warn alert also receives errors. An
// alert without a severity is an info alert, as the CRD documents (Flagger itself sends it nothing).
func Matches(filter, severity flaggerv1.AlertSeverity) bool {
	if filter == "" || filter == flaggerv1.SeverityInfo {
		return true
	}
	return severity == filter || (filter == flaggerv1.SeverityWarn && severity == flaggerv1.SeverityError)
}
