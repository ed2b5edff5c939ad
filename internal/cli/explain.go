package cli

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// facts is what explain reasons about, read once from the API server.
type facts struct {
	cd     *flaggerv1.Canary
	events []corev1.Event
	// target and primary are the Deployments (nil for other kinds or when missing).
	target, primary *appsv1.Deployment
	// pods maps a Deployment's name to why one of its pods is not ready ("" when all are).
	pods map[string]string
	// queries maps a metric's name to its query (inline, or its MetricTemplate's).
	queries map[string]string
	now     time.Time
	// age renders how long ago a time was (Env.Age).
	age func(time.Time) string
}

// Explain says in words why canary name is where it is.
func (e *Env) Explain(ctx context.Context, name string) error {
	cd, err := e.canary(ctx, name)
	if err != nil {
		return err
	}
	evs, err := e.events(ctx, cd)
	if err != nil {
		return err
	}
	f := facts{cd: cd, events: evs, queries: e.metricQueries(ctx, cd), now: e.Now(), age: e.Age}
	if cd.Spec.TargetRef.Kind == "Deployment" {
		f.target = e.deployment(ctx, cd.Namespace, cd.Spec.TargetRef.Name)
		f.primary = e.deployment(ctx, cd.Namespace, cd.Spec.TargetRef.Name+"-primary")
		f.pods = map[string]string{}
		for _, d := range []*appsv1.Deployment{f.target, f.primary} {
			if d != nil && deploymentNotReady(d) != "" {
				f.pods[d.Name] = e.unreadyPod(ctx, d)
			}
		}
	}
	for _, line := range explain(f) {
		if _, err := fmt.Fprintln(e.Out, line); err != nil {
			return err
		}
	}
	return nil
}

// metricQueries reads each metric's query: its own, or the one of its MetricTemplate.
func (e *Env) metricQueries(ctx context.Context, cd *flaggerv1.Canary) map[string]string {
	out := map[string]string{}
	a := cd.GetAnalysis()
	if a == nil {
		return out
	}
	for _, m := range a.Metrics {
		switch {
		case m.Query != "":
			out[m.Name] = m.Query
		case m.TemplateRef != nil:
			ns := m.TemplateRef.Namespace
			if ns == "" {
				ns = cd.Namespace
			}
			t := &flaggerv1.MetricTemplate{}
			if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: m.TemplateRef.Name}, t); err == nil {
				out[m.Name] = fmt.Sprintf("%s (MetricTemplate %s/%s, provider %s)", oneLine(t.Spec.Query), ns, t.Name, t.Spec.Provider.Type)
			} else {
				out[m.Name] = fmt.Sprintf("MetricTemplate %s/%s: %v", ns, m.TemplateRef.Name, err)
			}
		default:
			out[m.Name] = "builtin query of the mesh provider"
		}
	}
	return out
}

// explain reasons from the facts to sentences, most important first. It is pure.
func explain(f facts) []string {
	cd, st := f.cd, f.cd.Status
	rel := releaseEvents(f.events)
	out := []string{summary(f)}
	add := func(format string, args ...any) { out = append(out, "- "+fmt.Sprintf(format, args...)) }

	if stalled := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.StalledCondition); stalled != nil &&
		stalled.Status == "True" && st.Phase != flaggerv1.CanaryPhaseFailed {
		add("It is stalled (%s): %s", stalled.Reason, oneLine(stalled.Message))
		add("%s", strings.TrimSpace("Nothing happens until the spec or the target changes. "+stalledRemedy(stalled.Reason)))
	}
	if cd.Spec.Suspend {
		add("spec.suspend is true: the controller does nothing with it until it is set to false.")
	}
	if st.ReleaseQueued() {
		if c := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.ReconcilingCondition); c != nil {
			add("%s It starts, nothing scaled up or routed before, when a release ahead of it ends.", oneLine(c.Message))
		}
	}
	explainGates(f, rel, add)
	explainMetrics(f, rel, add)
	explainWorkloads(f, add)
	if st.Phase == flaggerv1.CanaryPhaseFailed {
		if ev := lastEvent(rel, func(msg string) bool {
			return strings.HasPrefix(msg, "Rolling back ") || strings.HasPrefix(msg, "Canary failed!")
		}); ev != nil {
			add("It was rolled back: %s", oneLine(ev.Message))
		}
		add("A new revision of the target (or of a ConfigMap/Secret it uses) starts a new release.")
	}
	if len(out) == 1 {
		if ev := lastEvent(f.events, func(string) bool { return true }); ev != nil && ev.Type == corev1.EventTypeWarning {
			add("The last warning: %s", oneLine(ev.Message))
		} else {
			add("Nothing holds it.")
		}
	}
	return out
}

// summary is the first line: phase, weight, step and what comes next.
func summary(f facts) string {
	cd, st := f.cd, f.cd.Status
	s := fmt.Sprintf("Canary %s is %s", cd.Key(), phaseText(cd))
	if analysing(st.Phase) {
		s += fmt.Sprintf(" at %d%% of the traffic, step %s", st.CanaryWeight, stepColumn(cd))
		if next := nextStepAt(cd); !next.IsZero() {
			if left := untilText(next, f.now); left == "due" {
				s += ", next step due now"
			} else {
				s += ", next step in " + left
			}
		}
	}
	if st.FailedChecks > 0 {
		s += fmt.Sprintf("; %d of %d failed checks before a rollback", st.FailedChecks, cd.GetAnalysisThreshold())
	}
	return s + "."
}

// stalledRemedy says what to change for a Stalled reason (the reasons of internal/controller).
func stalledRemedy(reason string) string {
	switch reason {
	case "InvalidSpec":
		return "Correct the spec as the message says (`kubectl pennant lint` checks a manifest offline)."
	case "TargetNotFound":
		return "Create the target named in spec.targetRef, or correct spec.targetRef."
	case "ReferenceNotFound":
		return "Create the object the message names (a MetricTemplate, AlertProvider, autoscaler or route)."
	case "InvalidTarget":
		return "The target needs a selector label (app.kubernetes.io/name, app or name) matching its pods."
	case "CRDNotInstalled":
		return "Install the provider's CRDs, or choose another spec.provider."
	}
	return ""
}

// explainGates names a closed gate and what opens it.
func explainGates(f facts, rel []corev1.Event, add func(string, ...any)) {
	a := f.cd.GetAnalysis()
	if a == nil || !analysing(f.cd.Status.Phase) {
		return
	}
	for _, w := range a.Webhooks {
		t := w.HookType()
		if !isGate(t) {
			continue
		}
		ev := webhookResult(rel, w)
		if ev == nil || ev.Type != corev1.EventTypeWarning {
			continue
		}
		add("The %s gate %q is closed (last asked %s ago): %s", t, w.Name, ageOf(f, *ev), oneLine(ev.Message))
		add("It opens when %s answers 200 OK. With Flagger's load tester as the gate: "+
			"`curl -d '{\"name\":\"%s\",\"namespace\":\"%s\"}' http://<loadtester>/gate/open`.",
			w.URL, f.cd.Name, f.cd.Namespace)
	}
	for _, w := range a.Webhooks {
		t := w.HookType()
		if isGate(t) || t == flaggerv1.PostRolloutHook || t == flaggerv1.EventHook || t == flaggerv1.RollbackHook {
			continue
		}
		if ev := webhookResult(rel, w); ev != nil && ev.Type == corev1.EventTypeWarning {
			add("The %s webhook %q (%s) failed %s ago, which counts as a failed check: %s", t, w.Name, w.URL, ageOf(f, *ev), oneLine(ev.Message))
		}
	}
}

// explainMetrics names the metrics that failed in this release, with value, threshold and query.
func explainMetrics(f facts, rel []corev1.Event, add func(string, ...any)) {
	a := f.cd.GetAnalysis()
	if a == nil {
		return
	}
	for _, m := range a.Metrics {
		if m.Judge != nil && explainJudged(f, m, add) {
			continue
		}
		ev := metricFailure(rel, m)
		if ev == nil {
			continue
		}
		add("The metric %q failed %s ago: %s, threshold %s. Query: %s", m.Name, ageOf(f, *ev),
			metricValueText(ev.Message), thresholdText(m), f.queries[m.Name])
	}
}

// explainJudged words the last verdict of a metric judged against the primary when it stops the
// release: a fail (the rollback) or a hold (both versions degrade), and says whether it did. Its
// status.lastChecks entry has the verdict in full; the event's text is the same.
func explainJudged(f facts, m flaggerv1.CanaryMetric, add func(string, ...any)) bool {
	c := flaggerv1.FindCheckResult(f.cd.Status.LastChecks, flaggerv1.MetricCheck, m.Name)
	if c == nil {
		return false
	}
	switch c.Result {
	case flaggerv1.CheckFailed:
		add("The metric %q, judged against the primary %s ago, failed: %s", m.Name, f.age(c.Time.Time), oneLine(c.Message))
	case flaggerv1.CheckHeld:
		add("The metric %q, judged against the primary %s ago, holds the release (no step, no failed check): %s", m.Name, f.age(c.Time.Time), oneLine(c.Message))
		add("It goes on once the primary is healthy again; after progressDeadlineSeconds (%ds) of holding, holds count as failed checks.", f.cd.GetProgressDeadlineSeconds())
	default:
		return false
	}
	return true
}

// explainWorkloads says which Deployment is not ready and why, and how long until the progress
// deadline rolls the release back.
func explainWorkloads(f facts, add func(string, ...any)) {
	cd := f.cd
	ph := cd.Status.Phase
	if ph == flaggerv1.CanaryPhaseSucceeded || ph == flaggerv1.CanaryPhaseFailed {
		return
	}
	notReady := false
	for _, d := range []*appsv1.Deployment{f.target, f.primary} {
		if d == nil {
			continue
		}
		if why := deploymentNotReady(d); why != "" {
			notReady = true
			add("Deployment %s is not ready: %s", d.Name, why)
			if pod := f.pods[d.Name]; pod != "" {
				add("Its pod %s", pod)
			}
		}
	}
	if ev := lastEvent(releaseEvents(f.events), func(msg string) bool { return strings.Contains(msg, "not ready") }); ev != nil && !notReady &&
		(ph == flaggerv1.CanaryPhaseProgressing || ph == flaggerv1.CanaryPhaseInitializing) {
		add("The controller reported %s ago: %s", ageOf(f, *ev), oneLine(ev.Message))
		notReady = true
	}
	if notReady && (analysing(ph) || ph == flaggerv1.CanaryPhaseInitializing) {
		if at := deadlineAt(cd); !at.IsZero() {
			left := untilText(at, f.now)
			if left == "due" {
				add("The progress deadline (%ds) has passed: the controller rolls back at its next check.", cd.GetProgressDeadlineSeconds())
			} else {
				add("The progress deadline (%ds after the last change) rolls the release back in %s if it stays so.", cd.GetProgressDeadlineSeconds(), left)
			}
		}
	}
}

// deploymentNotReady says why a Deployment is not ready, or "" when it is.
func deploymentNotReady(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	var why []string
	if st.ObservedGeneration < d.Generation {
		why = append(why, "its controller has not seen the latest spec yet")
	}
	if want > 0 && (st.UpdatedReplicas < want || st.AvailableReplicas < want || st.ReadyReplicas < want) {
		why = append(why, fmt.Sprintf("%d of %d replicas ready (%d updated, %d available)", st.ReadyReplicas, want, st.UpdatedReplicas, st.AvailableReplicas))
	}
	for _, c := range st.Conditions {
		bad := (c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse) ||
			(c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue)
		if bad || (len(why) > 0 && c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionFalse) {
			why = append(why, fmt.Sprintf("%s: %s", c.Reason, oneLine(c.Message)))
		}
	}
	return strings.Join(why, "; ")
}

// unreadyPod says why the first pod of d that is not ready is not: unscheduled, a container waiting
// or terminated, or a failing readiness probe ("" when all are ready or cannot be read).
func (e *Env) unreadyPod(ctx context.Context, d *appsv1.Deployment) string {
	if d.Spec.Selector == nil {
		return ""
	}
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
		return ""
	}
	for _, p := range pods.Items {
		if why := podNotReady(&p); why != "" {
			return p.Name + " " + why
		}
	}
	return ""
}

// podNotReady says why a pod is not ready, or "" when it is.
func podNotReady(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("is not scheduled (%s): %s", c.Reason, oneLine(c.Message))
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			return fmt.Sprintf("has container %s waiting (%s): %s", cs.Name, cs.State.Waiting.Reason, oneLine(cs.State.Waiting.Message))
		case cs.State.Terminated != nil:
			return fmt.Sprintf("has container %s terminated (%s, exit code %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
		case !cs.Ready:
			return fmt.Sprintf("has container %s running but not ready (readiness probe)", cs.Name)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status != corev1.ConditionTrue {
			return fmt.Sprintf("is not ready (%s)", cmp.Or(c.Reason, string(p.Status.Phase)))
		}
	}
	return ""
}

// ageOf is how long ago the event happened.
func ageOf(f facts, ev corev1.Event) string { return f.age(eventTime(ev)) }
