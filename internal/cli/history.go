package cli

import (
	"fmt"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// The controller's event texts (internal/canary, internal/analysis; Flagger's wording) that the
// commands read a release's history from.
var (
	newRevisionEvent   = regexp.MustCompile(`^New revision detected! `)
	advanceWeight      = regexp.MustCompile(`^Advance \S+ canary weight (\d+)$`)
	advanceIteration   = regexp.MustCompile(`^Advance \S+ canary iteration (\d+)/(\d+)$`)
	promotionStarted   = regexp.MustCompile(`^Copying \S+ template spec to `)
	promotionCompleted = regexp.MustCompile(`^Promotion completed! `)
	// A metric past its threshold: "Halt podinfo.test advancement error-rate 12.00 > 5".
	metricHalt = regexp.MustCompile(`^Halt \S+ advancement (.+) (-?[0-9.]+%?|[0-9.]+[a-zµ]*s) ([<>]) (\S+)$`)
	// A metric without data: "Halt advancement no values found for custom metric: error-rate: …".
	metricNoData = regexp.MustCompile(`^Halt advancement no values found for (?:custom )?(?:\S+ )?metric:? (\S+?):? `)
)

// builtinMetricWords is how the builtin checks are named in the halt events.
var builtinMetricWords = map[string]string{"request-success-rate": "success rate", "request-duration": "request duration"}

// releaseEvents are the events of the current release: from the last "New revision detected!" on
// (all of them when there is none).
func releaseEvents(evs []corev1.Event) []corev1.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if newRevisionEvent.MatchString(evs[i].Message) {
			return evs[i:]
		}
	}
	return evs
}

// lastEvent is the latest event whose message satisfies match, or nil.
func lastEvent(evs []corev1.Event, match func(msg string) bool) *corev1.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if match(evs[i].Message) {
			return &evs[i]
		}
	}
	return nil
}

// mentions is true when msg names name as a word: webhook and metric names end or precede words.
func mentions(msg, name string) bool {
	for _, f := range strings.Fields(strings.NewReplacer(":", " ").Replace(msg)) {
		if f == name {
			return true
		}
	}
	return false
}

// metricFailure is the last event in which metric m failed or had no data, or nil.
func metricFailure(evs []corev1.Event, m flaggerv1.CanaryMetric) *corev1.Event {
	return lastEvent(evs, func(msg string) bool {
		if g := metricHalt.FindStringSubmatch(msg); g != nil {
			return g[1] == m.Name || g[1] == builtinMetricWords[m.Name]
		}
		if g := metricNoData.FindStringSubmatch(msg); g != nil {
			return g[1] == m.Name
		}
		return false
	})
}

// thresholdText says what metric m must stay within.
func thresholdText(m flaggerv1.CanaryMetric) string {
	unit := map[string]string{"request-success-rate": "%", "request-duration": "ms"}[m.Name]
	if r := m.ThresholdRange; r != nil {
		var parts []string
		if r.Min != nil {
			parts = append(parts, fmt.Sprintf("≥ %v%s", *r.Min, unit))
		}
		if r.Max != nil {
			parts = append(parts, fmt.Sprintf("≤ %v%s", *r.Max, unit))
		}
		return strings.Join(parts, " and ")
	}
	if m.Name == "request-success-rate" {
		return fmt.Sprintf("≥ %v%%", m.Threshold)
	}
	return fmt.Sprintf("≤ %v%s", m.Threshold, unit)
}

// webhookResult is the last reported outcome of webhook w: its event (nil: none yet).
func webhookResult(evs []corev1.Event, w flaggerv1.CanaryWebhook) *corev1.Event {
	return lastEvent(evs, func(msg string) bool { return mentions(msg, w.Name) && !metricHalt.MatchString(msg) })
}

// isGate is true for the webhook types that hold the release until they answer 200.
func isGate(t flaggerv1.HookType) bool {
	switch t {
	case flaggerv1.ConfirmRolloutHook, flaggerv1.ConfirmPromotionHook, flaggerv1.ConfirmTrafficIncreaseHook:
		return true
	}
	return false
}
