package canary

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// continueSoon asks for another pass right away after a transition that needs no waiting.
const continueSoon = 100 * time.Millisecond

// Next decides what happens to a canary now. It is deterministic given its input and the
// answers of checks, and it does not mutate in.Canary.
func Next(ctx context.Context, in Input, checks Checks) Decision {
	m := &machine{ctx: ctx, in: in, checks: checks, cd: in.Canary, obs: in.Observed}
	m.d.Status = *in.Canary.Status.DeepCopy()
	m.decide()
	if m.pending {
		return m.pendingDecision()
	}
	m.finish()
	return m.d
}

// pendingDecision is the decision while a check is still running: nothing now, all of it again
// once its result is in; except a pass of pre-rollout webhooks that ran before the check, which
// is recorded with its events so that a restart meanwhile does not call them again.
func (m *machine) pendingDecision() Decision {
	d := Decision{Status: *m.in.Canary.Status.DeepCopy(), RequeueAfter: pendingRetry}
	if m.preRolloutPass != nil {
		d.Status.PreRolloutPassedSpec = m.d.Status.PreRolloutPassedSpec
		d.Actions = m.preRolloutPass
	}
	return d
}

type machine struct {
	ctx    context.Context
	in     Input
	checks Checks
	cd     *flaggerv1.Canary
	obs    Observation
	d      Decision
	// restarted is set when a new revision restarts the analysis, which restarts the deadline.
	restarted bool
	// pending is set when a check has not answered yet: the decision is dropped.
	pending bool
	// held is set when the analysis waits for data without counting a failure.
	held bool
	// judgedWorse is set when the comparative judge found the canary worse than the primary.
	judgedWorse bool
	// preRolloutPass holds the actions up to a pass of pre-rollout webhooks called in this decision.
	preRolloutPass []Action
}

func (m *machine) decide() {
	if m.cd.Spec.Suspend {
		m.refuseRequest("the canary is suspended (spec.suspend)")
		m.suspended()
		return
	}
	if m.handleRequest() {
		return
	}
	switch m.d.Status.Phase {
	case "", flaggerv1.CanaryPhaseInitializing:
		m.initialize()
	case flaggerv1.CanaryPhaseInitialized, flaggerv1.CanaryPhaseSucceeded, flaggerv1.CanaryPhaseFailed:
		m.idle()
	case flaggerv1.CanaryPhaseWaiting:
		if m.cd.Status.ReleaseQueued() {
			m.queuedRelease()
			return
		}
		if !m.tickDue() {
			m.d.RequeueAfter = m.untilTick()
			return
		}
		m.startRollout()
	case flaggerv1.CanaryPhaseProgressing, flaggerv1.CanaryPhaseWaitingPromotion:
		if m.paused() && !m.newRevision() {
			return // held: no step, no check, no deadline; a resume request wakes the canary
		}
		m.progress()
	case flaggerv1.CanaryPhasePromoting:
		m.promoting()
	case flaggerv1.CanaryPhaseFinalising:
		m.finalise()
	}
}

// SuspendedMessage is Flagger's event (Normal, logged at info) for a canary with spec.suspend.
const SuspendedMessage = "skipping canary run as object is suspended"

// suspended decides nothing for a suspended canary but says so. Flagger says it on every run;
// Pennant once per spec generation (suspending, or changing the spec of a suspended canary): the
// first decision for a generation is the one whose status has not observed it yet. The status
// write that records the generation is what keeps the next reconciles quiet, so a restart does
// not repeat the event either.
func (m *machine) suspended() {
	if m.cd.Status.ObservedGeneration != m.cd.Generation {
		m.event(SuspendedMessage)
	}
}

// initialize waits for the primary, then scales the target to zero and records the first revision.
func (m *machine) initialize() {
	if m.d.Status.Phase == "" {
		m.setPhase(flaggerv1.CanaryPhaseInitializing)
	}
	if !m.obs.Primary.Ready {
		if m.deadlineExceeded() || m.obs.Primary.Failed {
			m.d.Stalled = fmt.Sprintf("primary not ready after %ds: %s", m.cd.GetProgressDeadlineSeconds(), m.obs.Primary.Message)
		}
		m.waitFor(m.obs.Primary)
		return
	}
	m.act(Action{Kind: ScaleDown})
	if m.obs.Routes != (Routes{Primary: totalWeight}) {
		// Routes that already send everything to the primary need no write. Routing objects the
		// router has just created (not in the cache yet: observed as all-primary) are created
		// that way, and writing them now would fail on the lagging cache.
		m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight}})
	}
	m.setPhase(flaggerv1.CanaryPhaseInitialized)
	m.d.Status.LastAppliedSpec = m.obs.Revision
	m.d.Status.LastPromotedSpec = m.obs.Revision
	m.d.Status.TrackedConfigs = configsPtr(m.obs.Configs)
	m.event("Initialization done! %s", m.cd.Key())
	m.alert(flaggerv1.SeverityInfo, fmt.Sprintf("New %s detected, initialization completed.", m.cd.Spec.TargetRef.Kind))
}

// idle starts a rollout when the target or its configs changed since the last release.
func (m *machine) idle() {
	if m.d.Status.Phase == flaggerv1.CanaryPhaseFailed && m.obs.Revision == m.d.Status.LastPromotedSpec {
		// The target was reverted to what the primary runs: remember it, so that re-applying the
		// failed revision later starts a new rollout.
		m.d.Status.LastAppliedSpec = m.obs.Revision
	}
	if m.adoptForeignRevision() {
		return
	}
	if !m.newRevision() {
		m.restorePrimaryRoutes()
		return
	}
	if m.obs.Routes.Canary > 0 && !m.obs.Primary.Ready {
		// A failed promotion left users on the canary; a new revision there must not serve them
		// unanalysed: the release starts once the primary can take the traffic back.
		m.waitFor(m.obs.Primary)
		return
	}
	m.startRollout()
}

// restorePrimaryRoutes sends the traffic a failed promotion left on the canary back to the
// primary as soon as the primary is ready again.
func (m *machine) restorePrimaryRoutes() {
	if m.obs.Routes.Canary > 0 && m.obs.Primary.Ready {
		m.event("Routing all traffic to primary")
		m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight}})
	}
}

// adoptForeignRevision takes over a canary whose status was written by Flagger, whose revision
// hashes differ from Pennant's: replacing the controller must not release anything. The revision
// is recorded as promoted when the primary already runs the target, and as the last (failed)
// attempt of a failed canary; anything else is a real new revision.
func (m *machine) adoptForeignRevision() bool {
	st := &m.d.Status
	if !m.obs.ForeignStatus || m.configsChanged() {
		return false
	}
	switch {
	case m.obs.PrimaryRunsTarget:
		st.LastPromotedSpec = m.obs.Revision
	case st.Phase != flaggerv1.CanaryPhaseFailed:
		return false
	}
	st.LastAppliedSpec = m.obs.Revision
	m.event("Revision of %s.%s recorded from a previous controller's status", m.cd.Spec.TargetRef.Name, m.cd.Namespace)
	return true
}

func (m *machine) newRevision() bool {
	return m.targetChanged() || m.configsChanged()
}

func (m *machine) targetChanged() bool {
	st := m.d.Status
	if st.LastAppliedSpec == "" {
		return true
	}
	return m.obs.Revision != st.LastPromotedSpec && m.obs.Revision != st.LastAppliedSpec
}

func (m *machine) configsChanged() bool {
	var tracked map[string]string
	if m.d.Status.TrackedConfigs != nil {
		tracked = *m.d.Status.TrackedConfigs
	}
	return !maps.Equal(tracked, m.obs.Configs)
}

// startRollout passes the confirm-rollout gate, then scales the canary up.
func (m *machine) startRollout() {
	m.d.Ticked = true
	open, muted := m.gate(flaggerv1.ConfirmRolloutHook, "Halt %s advancement waiting for approval %s", "Confirm-rollout check %s passed")
	if m.pending {
		return
	}
	if !open {
		m.waitForApproval(muted)
		return
	}
	m.d.Ticked = false // the analysis starts afresh: its first step is due as soon as the canary is ready
	if m.obs.ReleaseQueue != "" {
		m.queue()
		return
	}
	if m.obs.Routes.Canary > 0 || m.obs.Routes.Mirrored {
		// Every analysis starts from the primary taking all traffic (idle() made sure it is ready).
		m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight}})
	}
	m.act(Action{Kind: ScaleUp})
	m.setPhase(flaggerv1.CanaryPhaseProgressing)
	m.resetAnalysis()
	m.event("New revision detected! Scaling up %s.%s", m.cd.Spec.TargetRef.Name, m.cd.Namespace)
	m.alert(flaggerv1.SeverityInfo, "New revision detected, progressing canary analysis.")
	m.d.RequeueAfter = m.interval()
}

// queueRecheck is how often a queued release looks for a free slot when no release's end wakes it.
const queueRecheck = 30 * time.Second

// queue holds a release whose confirm-rollout gate is open in Waiting until the controller has a
// slot for it (-max-concurrent-releases); nothing is scaled up or routed meanwhile.
func (m *machine) queue() {
	m.setPhase(flaggerv1.CanaryPhaseWaiting)
	m.d.Queued = m.obs.ReleaseQueue
	m.event("Release of %s.%s queued: %s", m.cd.Spec.TargetRef.Name, m.cd.Namespace, m.obs.ReleaseQueue)
	m.d.RequeueAfter = queueRecheck
}

// queuedRelease starts a queued release once it has a slot: the order of the queue is the
// controller's (the longest waiting first). A queued canary changes nothing while it waits, so
// waiting costs no status write.
func (m *machine) queuedRelease() {
	if m.obs.ReleaseQueue != "" {
		m.d.Queued = m.obs.ReleaseQueue
		m.d.RequeueAfter = queueRecheck
		return
	}
	m.startRollout()
}

// MayStartRelease tells whether the canary's next decision may start a release, so that the
// controller looks for a slot only then: a new revision of an idle canary, or one held in Waiting.
func MayStartRelease(in Input) bool {
	m := &machine{in: in, cd: in.Canary, obs: in.Observed}
	m.d.Status = in.Canary.Status // read only
	switch in.Canary.Status.Phase {
	case flaggerv1.CanaryPhaseWaiting:
		return !in.Canary.Spec.Suspend
	case flaggerv1.CanaryPhaseInitialized, flaggerv1.CanaryPhaseSucceeded, flaggerv1.CanaryPhaseFailed:
		return !in.Canary.Spec.Suspend && m.newRevision()
	}
	return false
}

// waitForApproval holds a new revision in Waiting while its confirm-rollout gate is closed. Once
// Waiting, a rollback webhook that passes fails the release, as in Progressing and
// WaitingPromotion; the refused revision is then recorded as the last applied, so that only a
// newer one starts a release again.
func (m *machine) waitForApproval(muted bool) {
	if m.d.Status.Phase != flaggerv1.CanaryPhaseWaiting {
		m.setPhase(flaggerv1.CanaryPhaseWaiting)
		m.alertUnless(muted, flaggerv1.SeverityWarn, "Canary is waiting for approval.")
		m.d.RequeueAfter = m.interval()
		return
	}
	if m.rollbackRequested() {
		m.d.Status.LastAppliedSpec = m.obs.Revision
		m.d.Status.TrackedConfigs = configsPtr(m.obs.Configs)
		m.manualRollback()
		return
	}
	m.d.RequeueAfter = m.interval()
}

func (m *machine) resetAnalysis() {
	m.d.Status.CanaryWeight = 0
	m.d.Status.Iterations = 0
	m.d.Status.FailedChecks = 0
	m.d.Status.LastAppliedSpec = m.obs.Revision
	m.d.Status.TrackedConfigs = configsPtr(m.obs.Configs)
	m.d.Status.LastStepTime = nil
	m.d.Status.PreRolloutPassedSpec = ""
	m.d.Status.LastChecks = nil
	m.unpause("a new revision restarts the analysis")
	m.d.TickReset = true
	m.restarted = true
}

// progress runs one analysis step of a canary in Progressing or WaitingPromotion.
func (m *machine) progress() {
	if m.newRevision() {
		m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight}})
		m.setPhase(flaggerv1.CanaryPhaseProgressing)
		m.resetAnalysis()
		m.event("New revision detected! Restarting analysis for %s.%s", m.cd.Spec.TargetRef.Name, m.cd.Namespace)
		m.d.RequeueAfter = continueSoon
		return
	}
	if !m.obs.Primary.Ready {
		// Never shift traffic while the primary cannot take it back; a failed primary needs a person.
		if m.obs.Primary.Failed {
			m.d.Stalled = "primary not ready: " + m.obs.Primary.Message
		}
		m.waitFor(m.obs.Primary)
		return
	}
	if !m.obs.Canary.Ready {
		if m.obs.Canary.Failed || m.canaryDeadlineExceeded() {
			m.warn("Rolling back %s progress deadline exceeded %s", m.cd.Key(), m.obs.Canary.Message)
			m.alert(flaggerv1.SeverityError, "Progress deadline exceeded "+m.obs.Canary.Message)
			m.rollback()
			return
		}
		if m.obs.Canary.ScaledDown {
			// An analysis needs the canary's pods. Parked at zero means a rollback whose record a
			// crash lost (its effects ran, its status write did not), or an autoscaler at its
			// minimum of 0: scale it up again; the checks then decide as they would have.
			m.act(Action{Kind: ScaleUp})
		}
		m.waitForRollout(m.obs.Canary)
		return
	}
	if m.cd.SkipAnalysis() {
		m.skipAnalysis()
		return
	}
	if m.rollbackRequested() {
		m.manualRollback()
		return
	}
	if m.pending {
		return
	}
	if m.thresholdReached() {
		return
	}
	if !m.tickDue() {
		m.d.RequeueAfter = m.untilTick()
		return
	}
	m.d.Ticked = true
	m.d.RequeueAfter = m.interval()
	if !m.checksPassed() {
		if m.pending || (m.held && !m.deadlineExceeded()) {
			return
		}
		m.d.Status.FailedChecks++
		if m.judgedWorse {
			m.warn("Rolling back %s canary judged worse than the primary", m.cd.Key())
			m.alert(flaggerv1.SeverityError, "Canary judged worse than the primary")
			m.rollback()
			return
		}
		m.thresholdReached()
		return
	}
	m.advance()
}

func (m *machine) thresholdReached() bool {
	if m.d.Status.FailedChecks < m.cd.GetAnalysisThreshold() {
		return false
	}
	m.warn("Rolling back %s failed checks threshold reached %d", m.cd.Key(), m.d.Status.FailedChecks)
	m.alert(flaggerv1.SeverityError, fmt.Sprintf("Failed checks threshold reached %d", m.d.Status.FailedChecks))
	m.rollback()
	return true
}

// checksPassed runs the pre-rollout hooks on the first step, else the rollout hooks and metrics.
func (m *machine) checksPassed() bool {
	a := m.cd.GetAnalysis()
	st := m.d.Status
	if st.CanaryWeight == 0 && st.Iterations == 0 && !(a.Mirror && m.obs.Routes.Mirrored) {
		return m.preRolloutPassed()
	}
	rollout := m.hooks(flaggerv1.RolloutHook)
	if m.pending {
		return false
	}
	m.recordChecks(webhookResults(rollout))
	if !m.allPassed(rollout, "Halt %s advancement external check %s failed %v", "") {
		return false
	}
	results, err := m.checks.Analyze(m.ctx, m.cd)
	if !errors.Is(err, ErrPending) {
		m.recordChecks(results)
	}
	var hold *HoldError
	var worse *RollbackError
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrPending):
		m.pending = true
	case errors.As(err, &hold):
		m.held = true
		m.warn("%s", hold.Message)
	case errors.As(err, &worse):
		m.judgedWorse = true
		m.warn("%s", worse.Message)
	default:
		m.warn("%s", err.Error())
	}
	return false
}

func (m *machine) advance() {
	a := m.cd.GetAnalysis()
	provider := m.in.Settings.Provider
	switch Strategy(a, provider) {
	case StrategyABTesting:
		m.abTesting(a)
	case StrategyBlueGreen:
		m.blueGreen(a, provider)
	default:
		m.weighted(a)
	}
}

func (m *machine) weighted(a *flaggerv1.CanaryAnalysis) {
	current := m.d.Status.CanaryWeight
	if current < maxWeight(a) {
		step := nextStepWeight(a, current)
		mirrorStep := a.Mirror && current == 0
		if !mirrorStep {
			open, muted := m.gate(flaggerv1.ConfirmTrafficIncreaseHook, "Halt %s advancement waiting for traffic increase approval %s", "")
			if m.pending {
				return
			}
			if !open {
				m.alertUnless(muted, flaggerv1.SeverityWarn, "Canary traffic increase is waiting for approval.")
				return
			}
		}
		routes := Routes{Canary: min(totalWeight, current+step)}
		if mirrorStep && !m.obs.Routes.Mirrored {
			routes = Routes{Canary: 0, Mirrored: true}
		}
		routes.Primary = totalWeight - routes.Canary
		m.act(Action{Kind: SetRoutes, Routes: routes})
		m.d.Status.CanaryWeight = routes.Canary
		m.event("Advance %s canary weight %d", m.cd.Key(), routes.Canary)
		return
	}
	m.promoteWhenConfirmed()
}

func (m *machine) abTesting(a *flaggerv1.CanaryAnalysis) {
	if a.Iterations > m.d.Status.Iterations {
		m.act(Action{Kind: SetRoutes, Routes: Routes{Canary: totalWeight}})
		m.advanceIteration(a.Iterations)
		return
	}
	m.promoteWhenConfirmed()
}

func (m *machine) blueGreen(a *flaggerv1.CanaryAnalysis, provider string) {
	n := iterations(a, provider)
	if provider == ProviderKubernetes && a.Iterations < 1 && m.d.Status.Iterations == 0 {
		m.warn("Kubernetes provider supports blue/green only: running %d iterations for %s", n, m.cd.Key())
	}
	if n > m.d.Status.Iterations {
		if provider != ProviderKubernetes && a.Mirror && !m.obs.Routes.Mirrored {
			m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight, Mirrored: true}})
		}
		m.advanceIteration(n)
		return
	}
	if !m.confirmPromotion() {
		return
	}
	// The kubernetes provider has no traffic split: its switch to the new revision is the promotion.
	if provider != ProviderKubernetes && n == m.d.Status.Iterations {
		if a.Mirror {
			m.event("Stop traffic mirroring and route all traffic to canary")
		} else {
			m.event("Routing all traffic to canary")
		}
		m.act(Action{Kind: SetRoutes, Routes: Routes{Canary: totalWeight}})
		m.advanceIteration(n)
		return
	}
	m.promote()
}

func (m *machine) advanceIteration(of int) {
	m.d.Status.Iterations++
	m.event("Advance %s canary iteration %d/%d", m.cd.Key(), m.d.Status.Iterations, of)
}

func (m *machine) promoteWhenConfirmed() {
	if m.confirmPromotion() {
		m.promote()
	}
}

func (m *machine) confirmPromotion() bool {
	open, muted := m.gate(flaggerv1.ConfirmPromotionHook, "Halt %s advancement waiting for promotion approval %s", "Confirm-promotion check %s passed")
	if open || m.pending {
		return open && !m.pending
	}
	if m.d.Status.Phase != flaggerv1.CanaryPhaseWaitingPromotion {
		m.setPhase(flaggerv1.CanaryPhaseWaitingPromotion)
		m.alertUnless(muted, flaggerv1.SeverityWarn, "Canary promotion is waiting for approval.")
	}
	return false
}

// promote records the decision to promote; the primary is rewritten by the next pass, in the
// Promoting phase, so that the record always comes before the effect.
func (m *machine) promote() {
	m.event("Copying %s.%s template spec to %s-primary.%s", m.cd.Spec.TargetRef.Name, m.cd.Namespace, m.cd.Spec.TargetRef.Name, m.cd.Namespace)
	m.setPhase(flaggerv1.CanaryPhasePromoting)
	m.d.RequeueAfter = continueSoon
}

// promoting copies the target to the primary until the primary runs the new revision (the copy
// is idempotent, so a pass repeated after a crash or a lagging cache is harmless), waits for the
// primary to be ready, then shifts traffic back to it.
func (m *machine) promoting() {
	if !m.obs.PrimaryPromoted || !m.obs.Primary.Ready {
		if m.obs.Primary.Failed || m.deadlineExceeded() {
			m.failedPromotion()
			return
		}
		if !m.obs.PrimaryPromoted {
			m.act(Action{Kind: Promote})
		}
		m.waitForRollout(m.obs.Primary)
		return
	}
	a := m.cd.GetAnalysis()
	// The router knows the real split: blue/green sends everything to the canary without a weight.
	current := max(m.d.Status.CanaryWeight, m.obs.Routes.Canary)
	if a != nil && a.StepWeightPromotion > 0 && m.in.Settings.Provider != ProviderKubernetes && current > 0 {
		if !m.tickDue() {
			m.d.RequeueAfter = m.untilTick()
			return
		}
		m.d.Ticked = true
		primary := min(totalWeight, totalWeight-current+a.StepWeightPromotion)
		m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: primary, Canary: totalWeight - primary}})
		m.d.Status.CanaryWeight = totalWeight - primary
		m.event("Advance %s primary weight %d", m.cd.Key(), primary)
		if primary < totalWeight {
			m.d.RequeueAfter = m.interval()
			return
		}
	} else {
		if m.in.Settings.Provider != ProviderKubernetes {
			m.event("Routing all traffic to primary")
		}
		m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight}})
	}
	m.setPhase(flaggerv1.CanaryPhaseFinalising)
	m.d.RequeueAfter = continueSoon
}

// failedPromotion keeps users on the canary, which runs the new revision and is ready, when the
// primary cannot roll out.
func (m *machine) failedPromotion() {
	m.warn("Promotion failed! %s-primary.%s not ready: %s", m.cd.Spec.TargetRef.Name, m.cd.Namespace, m.obs.Primary.Message)
	m.alert(flaggerv1.SeverityError, "Promotion failed, primary not ready")
	m.act(Action{Kind: SetRoutes, Routes: Routes{Canary: totalWeight}})
	m.setPhase(flaggerv1.CanaryPhaseFailed)
	m.d.Status.CanaryWeight = totalWeight
	m.act(Action{Kind: PostRollout, Phase: flaggerv1.CanaryPhaseFailed})
	m.d.Outcome = OutcomeFailed
}

func (m *machine) finalise() {
	m.act(Action{Kind: ScaleDown})
	m.succeed()
	m.event("Promotion completed! Scaling down %s.%s", m.cd.Spec.TargetRef.Name, m.cd.Namespace)
	m.alert(flaggerv1.SeverityInfo, "Canary analysis completed successfully, promotion finished.")
	m.d.Outcome = OutcomeCompleted
}

func (m *machine) succeed() {
	m.setPhase(flaggerv1.CanaryPhaseSucceeded)
	m.d.Status.LastPromotedSpec = m.d.Status.LastAppliedSpec
	m.act(Action{Kind: PostRollout, Phase: flaggerv1.CanaryPhaseSucceeded})
}

func (m *machine) skipAnalysis() {
	m.warn("Skipping analysis for %s", m.cd.Key())
	m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight}})
	m.event("Copying %s.%s template spec to %s-primary.%s", m.cd.Spec.TargetRef.Name, m.cd.Namespace, m.cd.Spec.TargetRef.Name, m.cd.Namespace)
	m.act(Action{Kind: Promote})
	m.act(Action{Kind: ScaleDown})
	m.succeed()
	m.event("Promotion completed! Canary analysis was skipped for %s.%s", m.cd.Spec.TargetRef.Name, m.cd.Namespace)
	m.alert(flaggerv1.SeverityInfo, "Canary analysis was skipped, promotion finished.")
	m.d.Outcome = OutcomeSkipped
}

func (m *machine) rollback() {
	m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight}})
	m.warn("Canary failed! Scaling down %s", m.cd.Key())
	m.act(Action{Kind: ScaleDown})
	m.setPhase(flaggerv1.CanaryPhaseFailed)
	m.act(Action{Kind: PostRollout, Phase: flaggerv1.CanaryPhaseFailed})
	m.d.Outcome = OutcomeFailed
	m.d.RequeueAfter = 0
}

// manualRollback fails the release because a rollback webhook asked for it.
func (m *machine) manualRollback() {
	m.warn("Rolling back %s manual webhook invoked", m.cd.Key())
	m.alert(flaggerv1.SeverityWarn, "Rolling back manual webhook invoked")
	m.rollback()
}

// rollbackRequested is true when a rollback webhook passes (answers ≤202); while one is still
// running the decision is pending.
func (m *machine) rollbackRequested() bool {
	for _, r := range m.hooks(flaggerv1.RollbackHook) {
		if r.Err == nil {
			return true
		}
	}
	return false
}

// hooks runs the webhooks of a type; while they are still running it marks the decision pending.
func (m *machine) hooks(hook flaggerv1.HookType) []HookResult {
	results, err := m.checks.RunHooks(m.ctx, m.cd, hook, m.d.Status.Phase)
	if err != nil {
		m.pending = true
		return nil
	}
	return results
}

// gate runs the hooks of a gate type; it is open when all of them pass, and muted when every hook
// that holds it asks for no alert.
func (m *machine) gate(hook flaggerv1.HookType, haltFormat, passFormat string) (open, muted bool) {
	open, muted = true, true
	for _, r := range m.hooks(hook) {
		if r.Err != nil {
			m.warn(haltFormat, m.cd.Key(), r.Name)
			open = false
			muted = muted && r.MuteAlert
		} else if passFormat != "" {
			m.event(passFormat, r.Name)
		}
	}
	return open, muted
}

// preRolloutPassed is the first step's check: the pre-rollout webhooks, once per revision. Their
// pass is recorded in status.preRolloutPassedSpec, so that a repeated first step (a closed
// confirm-traffic-increase gate, a controller restart) passes without calling them again. A
// failure counts as a failed check and the next step calls them again, as in Flagger.
func (m *machine) preRolloutPassed() bool {
	st := &m.d.Status
	if st.PreRolloutPassedSpec != "" && st.PreRolloutPassedSpec == st.LastAppliedSpec {
		return true
	}
	m.event("Starting canary analysis for %s.%s", m.cd.Spec.TargetRef.Name, m.cd.Namespace)
	results := m.hooks(flaggerv1.PreRolloutHook)
	if m.pending || !m.allPassed(results, "Halt %s advancement pre-rollout check %s failed %v", "Pre-rollout check %s passed") {
		return false
	}
	st.PreRolloutPassedSpec = st.LastAppliedSpec
	if len(results) > 0 {
		m.preRolloutPass = slices.Clone(m.d.Actions)
	}
	return true
}

// allPassed reports the outcomes of check hooks: the first failure, else each pass.
func (m *machine) allPassed(results []HookResult, failFormat, passFormat string) bool {
	for _, r := range results {
		if r.Err != nil {
			m.warn(failFormat, m.cd.Key(), r.Name, r.Err)
			return false
		}
		if passFormat != "" {
			m.event(passFormat, r.Name)
		}
	}
	return true
}

// waitFor announces a readiness wait at most once per interval; watch events on the workload
// wake the canary as soon as it is ready, the requeue only checks the deadline.
func (m *machine) waitFor(r Readiness) { m.waitSince(r, time.Time{}) }

// waitForRollout waits for a rollout the release has just started (the canary's scale-up, the
// primary's promotion), which takes a few seconds in every release: like Flagger, which looks at
// it again on its next tick, it announces the wait only when the rollout is still not done one
// interval after the phase's last transition. A Warning event in every release would be noise to
// whoever alerts on them.
func (m *machine) waitForRollout(r Readiness) { m.waitSince(r, m.d.Status.LastTransitionTime.Time) }

func (m *machine) waitSince(r Readiness, began time.Time) {
	quiet := time.Duration(0)
	if !began.IsZero() {
		quiet = m.interval() - m.in.Now.Sub(began)
	}
	last := m.obs.LastWait
	if r.Message != "" && quiet <= 0 && (last.IsZero() || m.in.Now.Sub(last) >= m.interval()) {
		m.warn("%s", r.Message)
		m.d.Waited = true
	}
	m.d.RequeueAfter = m.interval()
	if quiet > 0 {
		m.d.RequeueAfter = quiet
	}
	if left := m.untilDeadline(); left > 0 && left < m.d.RequeueAfter {
		m.d.RequeueAfter = left
	}
}

// lastTick is when the last analysis step ran (zero: none yet in this analysis).
func (m *machine) lastTick() time.Time {
	if m.restarted {
		return time.Time{}
	}
	return m.obs.LastTick
}

func (m *machine) tickDue() bool {
	last := m.lastTick()
	// A step time in the future (a clock step back) must not hold the canary for longer than one interval.
	return last.IsZero() || m.in.Now.Sub(last) >= m.interval() || last.After(m.in.Now.Add(m.interval()))
}

func (m *machine) untilTick() time.Duration {
	return max(time.Millisecond, m.interval()-m.in.Now.Sub(m.lastTick()))
}

func (m *machine) interval() time.Duration {
	return m.cd.GetAnalysisInterval(m.in.Settings.MinInterval)
}

func (m *machine) deadline() time.Duration {
	return time.Duration(m.cd.GetProgressDeadlineSeconds()) * time.Second
}

func (m *machine) deadlineExceeded() bool {
	since := m.d.Status.LastTransitionTime.Time
	return !since.IsZero() && m.in.Now.Sub(since) > m.deadline()
}

// canaryDeadlineExceeded also counts from the last analysis step, when the canary was last known
// ready (a step runs only with a ready canary), so that time spent ready behind a gate does not
// count against it. Both times live in the status: a restart does not reset the deadline.
func (m *machine) canaryDeadlineExceeded() bool {
	since := m.d.Status.LastTransitionTime.Time
	if last := m.lastTick(); last.After(since) {
		since = last
	}
	return !since.IsZero() && m.in.Now.Sub(since) > m.deadline()
}

func (m *machine) untilDeadline() time.Duration {
	since := m.d.Status.LastTransitionTime.Time
	if since.IsZero() {
		return 0
	}
	return m.deadline() - m.in.Now.Sub(since)
}

func (m *machine) setPhase(p flaggerv1.CanaryPhase) {
	st := &m.d.Status
	st.Phase = p
	if !Abortable(p) {
		m.unpause("")
	}
	if !isAnalysisPhase(p) {
		st.CanaryWeight = 0
		st.Iterations = 0
		st.LastStepTime = nil
	}
}

func (m *machine) act(a Action) { m.d.Actions = append(m.d.Actions, a) }

func (m *machine) event(format string, args ...any) {
	m.act(Action{Kind: Event, Message: fmt.Sprintf(format, args...)})
}

func (m *machine) warn(format string, args ...any) {
	m.act(Action{Kind: Event, Warning: true, Message: fmt.Sprintf(format, args...)})
}

func (m *machine) alert(sev flaggerv1.AlertSeverity, msg string) {
	m.act(Action{Kind: Alert, Severity: sev, Message: msg})
}

func (m *machine) alertUnless(muted bool, sev flaggerv1.AlertSeverity, msg string) {
	if !muted {
		m.alert(sev, msg)
	}
}

// finish stamps the transition time when progress fields changed and derives the conditions.
func (m *machine) finish() {
	before, st := m.cd.Status, &m.d.Status
	if m.restarted || before.Phase != st.Phase || before.CanaryWeight != st.CanaryWeight ||
		before.Iterations != st.Iterations || before.FailedChecks != st.FailedChecks {
		st.LastTransitionTime = metav1.NewTime(m.in.Now)
	}
	if m.d.Ticked && isAnalysisPhase(st.Phase) {
		step := metav1.NewMicroTime(m.in.Now)
		st.LastStepTime = &step
	}
	SetConditions(st, m.cd, m.d.Stalled, m.d.Queued, m.in.Now)
}

func configsPtr(c map[string]string) *map[string]string {
	if len(c) == 0 {
		return nil
	}
	cp := maps.Clone(c)
	return &cp
}

// isAnalysisPhase is true in the phases whose steps are paced by the analysis interval.
func isAnalysisPhase(p flaggerv1.CanaryPhase) bool {
	switch p {
	case flaggerv1.CanaryPhaseProgressing, flaggerv1.CanaryPhaseWaiting, flaggerv1.CanaryPhasePromoting,
		flaggerv1.CanaryPhaseWaitingPromotion:
		return true
	}
	return false
}

// Abortable is true in the phases whose analysis a problem ends (Abort): those in which the canary
// takes traffic, or may at the next step, and nothing is promoted yet.
func Abortable(p flaggerv1.CanaryPhase) bool {
	return p == flaggerv1.CanaryPhaseProgressing || p == flaggerv1.CanaryPhaseWaitingPromotion
}

// Abort decides what a problem that appears during an analysis (the target deleted, the spec made
// invalid, a referenced object or the provider's CRD gone) does to the release: with the primary
// ready, all traffic goes back to it, the target is scaled down (unless it is gone) and the release
// fails with the reason; otherwise (no analysis running, or nowhere safe to send the traffic) ok is
// false and the caller only reports the problem.
func Abort(in Input, message string) (d Decision, ok bool) {
	if !Abortable(in.Canary.Status.Phase) {
		return Decision{}, false
	}
	if !in.Observed.Primary.Ready {
		return Decision{}, false
	}
	m := &machine{in: in, cd: in.Canary, obs: in.Observed}
	m.d.Status = *in.Canary.Status.DeepCopy()
	m.fail(message, flaggerv1.SeverityError)
	m.finish()
	return m.d, true
}

// fail ends an analysis now, for a reason outside its checks (Abort, an abort request): all
// traffic back to the primary, the target scaled down (unless it is gone), Failed with the message.
func (m *machine) fail(message string, severity flaggerv1.AlertSeverity) {
	m.act(Action{Kind: SetRoutes, Routes: Routes{Primary: totalWeight}})
	m.warn("Canary failed! %s: %s", m.cd.Key(), message)
	if !m.obs.TargetGone {
		m.act(Action{Kind: ScaleDown})
	}
	m.alert(severity, "Canary failed: "+message)
	m.setPhase(flaggerv1.CanaryPhaseFailed)
	m.act(Action{Kind: PostRollout, Phase: flaggerv1.CanaryPhaseFailed})
	m.d.Outcome = OutcomeFailed
	m.d.Stalled = message
}
