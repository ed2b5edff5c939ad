package canary

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/request"
)

// pausedReason is the reason of the Paused condition.
const pausedReason = "PauseRequested"

// Paused tells whether a pause request holds the analysis.
func Paused(st *flaggerv1.CanaryStatus) bool {
	c := flaggerv1.FindCanaryCondition(st.Conditions, flaggerv1.PausedCondition)
	return c != nil && c.Status == metav1.ConditionTrue
}

func (m *machine) paused() bool { return Paused(&m.d.Status) }

// handleRequest carries out the pending manual request, or records why it does not. The request
// is recorded in status.lastRequest by the same status write as the decision it causes, so that
// it is carried out once. It reports whether the request took this pass; one that is ignored lets
// the pass decide as it would have without it.
func (m *machine) handleRequest() bool {
	p := m.obs.Request
	if p == nil {
		return false
	}
	if p.Err != nil {
		m.ignoreRequest(flaggerv1.RequestInvalid, "Ignoring request on %s by %s: %v", m.cd.Key(), p.Actor, p.Err)
		return false
	}
	if stale := m.staleRequest(p); stale != "" {
		m.ignoreRequest(flaggerv1.RequestStale, "Ignoring stale request to %s %s by %s: %s", p.Action, m.cd.Key(), p.Describe(), stale)
		return false
	}
	var refused string
	switch p.Action {
	case request.Promote:
		refused = m.requestedPromotion(p)
	case request.Abort:
		refused = m.requestedAbort(p)
	case request.Retry:
		refused = m.requestedRetry(p)
	case request.Pause:
		refused = m.requestedPause(p)
	case request.Resume:
		refused = m.requestedResume(p)
	}
	if refused != "" {
		m.refuseRequest(refused)
		return false
	}
	return true
}

// staleRequest says why a request is not for the revision being released ("" when it is): it
// must name status.lastAppliedSpec, and the target (and its configs) must not have moved on since,
// or a promotion would copy a revision nobody looked at.
func (m *machine) staleRequest(p *request.Pending) string {
	st := m.d.Status
	switch {
	case p.Revision != st.LastAppliedSpec:
		return fmt.Sprintf("it is for revision %s, the canary's is %s", p.Revision, st.LastAppliedSpec)
	case m.obs.Revision != st.LastAppliedSpec || m.configsChanged():
		return fmt.Sprintf("revision %s has been replaced by a newer one", p.Revision)
	}
	return ""
}

// refuseRequest records the pending request, if any, as refused, with a Warning event.
func (m *machine) refuseRequest(why string) {
	if p := m.obs.Request; p != nil {
		m.ignoreRequest(flaggerv1.RequestRefused, "Refusing request to %s %s by %s: %s", p.Action, m.cd.Key(), p.Describe(), why)
	}
}

func (m *machine) ignoreRequest(result flaggerv1.CanaryRequestResult, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.recordRequest(result, msg)
	m.warn("%s", msg)
}

// recordRequest notes the pending request as handled.
func (m *machine) recordRequest(result flaggerv1.CanaryRequestResult, msg string) {
	p := m.obs.Request
	m.d.Status.LastRequest = &flaggerv1.CanaryRequestStatus{
		ID:        p.ID,
		Action:    string(p.Action),
		Revision:  p.Revision,
		Actor:     p.Actor,
		Reason:    p.Reason,
		Result:    result,
		Message:   msg,
		HandledAt: metav1.NewTime(m.in.Now),
	}
}

// done records the pending request as carried out, with a Normal event.
func (m *machine) done(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.recordRequest(flaggerv1.RequestDone, msg)
	m.event("%s", msg)
}

// requestedPromotion finishes the analysis now: the remaining steps and the confirm-promotion gate
// are skipped (the request is the approval), the promotion itself is the usual one.
func (m *machine) requestedPromotion(p *request.Pending) string {
	if why := m.notAnalysing(); why != "" {
		return why
	}
	if !m.obs.Canary.Ready {
		return "the canary is not ready: " + m.obs.Canary.Message
	}
	m.done("Promotion of %s requested by %s", m.cd.Key(), p.Describe())
	m.promote()
	return ""
}

// requestedAbort rolls the release back now, as Abort does for a problem.
func (m *machine) requestedAbort(p *request.Pending) string {
	if why := m.notAnalysing(); why != "" {
		return why
	}
	if !m.obs.Primary.Ready {
		return "the primary is not ready to take the traffic back: " + m.obs.Primary.Message
	}
	msg := "aborted by " + p.Describe()
	m.recordRequest(flaggerv1.RequestDone, fmt.Sprintf("Canary failed! %s: %s", m.cd.Key(), msg))
	m.fail(msg, flaggerv1.SeverityWarn)
	return ""
}

// requestedRetry releases the failed revision again: a new analysis from the start.
func (m *machine) requestedRetry(p *request.Pending) string {
	st := m.d.Status
	switch {
	case st.Phase != flaggerv1.CanaryPhaseFailed:
		return fmt.Sprintf("only a failed release can be retried, the canary is %s", st.Phase)
	case st.LastAppliedSpec == st.LastPromotedSpec:
		return "the primary already runs revision " + st.LastAppliedSpec
	case m.obs.Routes.Canary > 0 && !m.obs.Primary.Ready:
		return "the primary is not ready to take the traffic back: " + m.obs.Primary.Message
	}
	m.done("Retrying %s revision %s, requested by %s", m.cd.Key(), st.LastAppliedSpec, p.Describe())
	m.startRollout()
	return ""
}

// requestedPause holds the analysis at its current weight.
func (m *machine) requestedPause(p *request.Pending) string {
	if why := m.notAnalysing(); why != "" {
		return why
	}
	if m.paused() {
		return "it is paused already"
	}
	m.done("Paused %s at canary weight %d, requested by %s", m.cd.Key(), m.d.Status.CanaryWeight, p.Describe())
	set(&m.d.Status, m.cd, m.in.Now, flaggerv1.PausedCondition, metav1.ConditionTrue, pausedReason,
		"Paused by "+p.Describe())
	return ""
}

// requestedResume ends a pause. The progress deadline and the next step count from now: the time
// spent paused counts against neither.
func (m *machine) requestedResume(p *request.Pending) string {
	if !m.paused() {
		return "it is not paused"
	}
	m.done("Resumed %s, requested by %s", m.cd.Key(), p.Describe())
	remove(&m.d.Status, flaggerv1.PausedCondition)
	st := &m.d.Status
	st.LastTransitionTime = metav1.NewTime(m.in.Now)
	step := metav1.NewMicroTime(m.in.Now)
	st.LastStepTime = &step
	m.d.RequeueAfter = m.interval()
	return ""
}

// notAnalysing says why there is no analysis to act on ("" when there is one).
func (m *machine) notAnalysing() string {
	if !Abortable(m.d.Status.Phase) {
		return fmt.Sprintf("no analysis is in progress, the canary is %s", cmpPhase(m.d.Status.Phase))
	}
	return ""
}

func cmpPhase(p flaggerv1.CanaryPhase) string {
	if p == "" {
		return "new"
	}
	return string(p)
}

// unpause ends a pause the release no longer needs (why, when set, is said in an event).
func (m *machine) unpause(why string) {
	if !m.paused() {
		return
	}
	remove(&m.d.Status, flaggerv1.PausedCondition)
	if why != "" {
		m.event("Pause of %s ended: %s", m.cd.Key(), why)
	}
}
