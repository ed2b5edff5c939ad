package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// Status prints the release of canary name as a timeline: the steps with their weights (or
// iterations) and when each was reached, every metric against its threshold with the last value
// reported, the webhooks' last results, the gates, and the canary's events.
func (e *Env) Status(ctx context.Context, name string) error {
	cd, err := e.canary(ctx, name)
	if err != nil {
		return err
	}
	evs, err := e.events(ctx, cd)
	if err != nil {
		return err
	}
	return e.writeStatus(e.Out, cd, evs)
}

func (e *Env) writeStatus(w io.Writer, cd *flaggerv1.Canary, evs []corev1.Event) error {
	st := cd.Status
	p := planOf(cd)
	rel := releaseEvents(evs)
	fmt.Fprintf(w, "Canary %s: %s\n", cd.Key(), phaseText(cd))
	fmt.Fprintf(w, "  revision %s, primary runs %s; canary weight %d%%, failed checks %d/%d\n",
		shortRevision(st.LastAppliedSpec), shortRevision(st.LastPromotedSpec), st.CanaryWeight, st.FailedChecks, p.threshold)
	fmt.Fprintf(w, "  analysis: %s\n", planText(cd, p))
	if c := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.PromotedCondition); c != nil && c.Message != "" {
		fmt.Fprintf(w, "  %s\n", oneLine(c.Message))
	}
	fmt.Fprintln(w)
	e.writeSteps(w, cd, p, rel)
	e.writeMetrics(w, cd, rel)
	e.writeWebhooks(w, cd, rel)
	fmt.Fprintln(w, "Events")
	if len(evs) == 0 {
		fmt.Fprintln(w, "  none")
		return nil
	}
	tw := newTable(w)
	for _, ev := range evs {
		msg := oneLine(ev.Message)
		if ev.Count > 1 {
			msg += fmt.Sprintf(" (x%d)", ev.Count)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Age(eventTime(ev)), ev.Type, msg)
	}
	return tw.Flush()
}

// phaseText is the phase with what qualifies it.
func phaseText(cd *flaggerv1.Canary) string {
	ph := string(cd.Status.Phase)
	if ph == "" {
		ph = "without a phase"
	}
	if cd.Spec.Suspend {
		ph += " (suspended)"
	}
	if c := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.StalledCondition); c != nil && c.Status == "True" {
		ph += fmt.Sprintf(" (stalled: %s: %s)", c.Reason, oneLine(c.Message))
	}
	return ph
}

// planText describes the analysis in a line.
func planText(cd *flaggerv1.Canary, p plan) string {
	every := fmt.Sprintf("every %s, rollback after %d failed checks", shortDuration(p.interval), p.threshold)
	switch {
	case cd.Spec.SkipAnalysis:
		return "skipped (skipAnalysis)"
	case p.iterations > 0:
		return fmt.Sprintf("%s, %d iterations %s", p.strategy, p.iterations, every)
	case len(p.weights) > 0:
		ws := make([]string, len(p.weights))
		for i, wt := range p.weights {
			ws[i] = fmt.Sprintf("%d%%", wt)
		}
		return fmt.Sprintf("canary, weights %s %s", strings.Join(ws, " → "), every)
	}
	return "no steps"
}

// writeSteps lists the steps: reached (✓, with when, from the release's events), current (▶),
// to come (·), then the promotion.
func (e *Env) writeSteps(w io.Writer, cd *flaggerv1.Canary, p plan, rel []corev1.Event) {
	if p.steps() == 0 {
		return
	}
	fmt.Fprintln(w, "Steps")
	tw := newTable(w)
	reached := stepEvents(p, rel)
	current := 0
	if analysing(cd.Status.Phase) {
		current = p.step(cd.Status)
	}
	for i := 1; i <= p.steps(); i++ {
		label := fmt.Sprintf("iteration %d/%d", i, p.steps())
		if p.iterations == 0 {
			label = fmt.Sprintf("weight %d%%", p.weights[i-1])
		}
		mark, when := "·", ""
		if ev, ok := reached[i]; ok {
			mark, when = "✓", "reached "+e.Age(eventTime(ev))+" ago"
		}
		if i == current {
			mark = "▶"
			if next := nextStepAt(cd); !next.IsZero() {
				when += ", next step in " + untilText(next, e.Now())
			}
			when = strings.TrimPrefix(when, ", ")
		}
		fmt.Fprintf(tw, "  %s %d\t%s\t%s\n", mark, i, label, when)
	}
	mark, when := "·", ""
	if ev := lastEvent(rel, promotionStarted.MatchString); ev != nil {
		mark, when = "▶", "started "+e.Age(eventTime(*ev))+" ago"
	}
	if ev := lastEvent(rel, promotionCompleted.MatchString); ev != nil && cd.Status.Phase == flaggerv1.CanaryPhaseSucceeded {
		mark, when = "✓", "completed "+e.Age(eventTime(*ev))+" ago"
	}
	if cd.Status.Phase == flaggerv1.CanaryPhaseFailed {
		mark, when = "✗", "rolled back"
	}
	fmt.Fprintf(tw, "  %s\t%s\t%s\n", mark, "promotion", when)
	_ = tw.Flush()
	fmt.Fprintln(w)
}

// stepEvents maps each step reached in the release to its "Advance …" event.
func stepEvents(p plan, rel []corev1.Event) map[int]corev1.Event {
	out := map[int]corev1.Event{}
	for _, ev := range rel {
		if g := advanceIteration.FindStringSubmatch(ev.Message); g != nil && p.iterations > 0 {
			var n int
			fmt.Sscan(g[1], &n)
			out[n] = ev
		}
		if g := advanceWeight.FindStringSubmatch(ev.Message); g != nil && p.iterations == 0 {
			var wt int
			fmt.Sscan(g[1], &wt)
			for i, pw := range p.weights {
				if pw == wt {
					out[i+1] = ev
				}
			}
		}
	}
	return out
}

// writeMetrics lists each metric with its threshold and its last value and result
// (status.lastChecks); a status without them (Flagger's) shows the last failure evented.
func (e *Env) writeMetrics(w io.Writer, cd *flaggerv1.Canary, rel []corev1.Event) {
	a := cd.GetAnalysis()
	if a == nil || len(a.Metrics) == 0 {
		return
	}
	fmt.Fprintln(w, "Metrics")
	tw := newTable(w)
	for _, m := range a.Metrics {
		value, result := "-", "not checked yet in this release"
		if len(cd.Status.LastChecks) == 0 {
			// Flagger's status, or no step yet: only failures are known, from the events.
			result = "no failure reported in this release"
		}
		if c := flaggerv1.FindCheckResult(cd.Status.LastChecks, flaggerv1.MetricCheck, m.Name); c != nil {
			value, result = orDash(c.Value), e.checkText(c)
		} else if ev := metricFailure(rel, m); ev != nil {
			result = fmt.Sprintf("failed %s ago: %s", e.Age(eventTime(*ev)), metricValueText(ev.Message))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.Name, thresholdText(m), value, result)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

// checkText says how a check went and when: "passed 20s ago", "failed 20s ago: <why>".
func (e *Env) checkText(c *flaggerv1.CanaryCheckResult) string {
	verdict := map[flaggerv1.CanaryCheckOutcome]string{
		flaggerv1.CheckPassed: "passed", flaggerv1.CheckFailed: "failed", flaggerv1.CheckNoData: "no data", flaggerv1.CheckHeld: "held",
	}[c.Result]
	text := fmt.Sprintf("%s %s ago", verdict, e.Age(c.Time.Time))
	// A failed metric's value says it all; the message is for what has no value.
	if c.Message != "" && (c.Value == "" || c.Result != flaggerv1.CheckFailed || c.Counts != nil) {
		text += ": " + oneLine(c.Message)
	}
	return text
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// metricValueText is the value part of a metric event: "12.00 > 5", or the no-data message.
func metricValueText(msg string) string {
	if g := metricHalt.FindStringSubmatch(msg); g != nil {
		return fmt.Sprintf("%s %s %s", g[2], g[3], g[4])
	}
	return oneLine(msg)
}

// writeWebhooks lists each webhook with its type and last result; gates say whether they are open.
func (e *Env) writeWebhooks(w io.Writer, cd *flaggerv1.Canary, rel []corev1.Event) {
	a := cd.GetAnalysis()
	if a == nil || len(a.Webhooks) == 0 {
		return
	}
	fmt.Fprintln(w, "Webhooks")
	tw := newTable(w)
	for _, wh := range a.Webhooks {
		t := wh.HookType()
		// Without status.lastChecks, rollout webhooks are evented when they fail only.
		result := "no failure reported in this release"
		if isGate(t) {
			result = "not asked yet in this release"
		}
		if c := flaggerv1.FindCheckResult(cd.Status.LastChecks, flaggerv1.WebhookCheck, wh.Name); c != nil && t == flaggerv1.RolloutHook {
			result = e.checkText(c)
		} else if ev := webhookResult(rel, wh); ev != nil {
			result = fmt.Sprintf("%s %s ago: %s", webhookVerdict(t, ev), e.Age(eventTime(*ev)), oneLine(ev.Message))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", wh.Name, t, result)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
}

// webhookVerdict reads an event about a webhook: a gate is closed or open, a check failed or passed.
func webhookVerdict(t flaggerv1.HookType, ev *corev1.Event) string {
	bad := ev.Type == corev1.EventTypeWarning
	switch {
	case isGate(t) && bad:
		return "gate closed"
	case isGate(t):
		return "gate open"
	case bad:
		return "failed"
	}
	return "passed"
}

// newTable aligns columns separated by tabs; its lines end without padding.
func newTable(w io.Writer) *table {
	t := &table{out: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 8, 2, ' ', 0)
	return t
}

// table is a tabwriter that drops the spaces it leaves after an empty last cell.
type table struct {
	tw  *tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func (t *table) Write(p []byte) (int, error) { return t.tw.Write(p) }

func (t *table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(t.buf.String(), "\n")
	for i, l := range lines {
		if strings.HasSuffix(l, "\n") {
			lines[i] = strings.TrimRight(strings.TrimSuffix(l, "\n"), " ") + "\n"
		}
	}
	t.buf.Reset()
	_, err := io.WriteString(t.out, strings.Join(lines, ""))
	return err
}

// shortDuration writes 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
