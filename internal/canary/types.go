// Package canary is Pennant's phase machine: a function of (canary spec and status, observations, now)
// to (next status, actions). It never talks to the API server or reads the clock; gates, webhooks and
// metric checks reach it through the small Checks interface so that tests can drive every transition.
package canary

import (
	"context"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/request"
)

// Readiness is the availability of the primary or canary workload.
type Readiness struct {
	Ready bool
	// Failed means the workload cannot become ready without a new revision (e.g. Kubernetes'
	// ProgressDeadlineExceeded); the machine does not wait for the deadline then.
	Failed bool
	// ScaledDown means the workload is parked at zero replicas: waiting will not make it ready.
	ScaledDown bool
	Message    string
}

// Routes are the weights the router currently applies.
type Routes struct {
	Primary  int
	Canary   int
	Mirrored bool
}

// Observation is everything the controller read from its caches for this decision.
type Observation struct {
	// Revision is the target's current revision hash.
	Revision string
	// Configs are the checksums of the ConfigMaps and Secrets the target references.
	Configs map[string]string
	// Primary and Canary are the readiness of <target>-primary and of the target.
	Primary Readiness
	Canary  Readiness
	// PrimaryPromoted is true when the primary already runs status.lastAppliedSpec (the cache has
	// seen our promotion), so that its readiness means the new revision is ready.
	PrimaryPromoted bool
	Routes          Routes
	// ForeignStatus is true when the recorded revisions are not Pennant's (Flagger hashes them
	// differently), and PrimaryRunsTarget then tells whether the primary already runs the target.
	ForeignStatus     bool
	PrimaryRunsTarget bool
	// LastTick is when the last analysis step ran (zero: none yet in this analysis). The
	// controller reads it from status.lastStepTime, which the machine sets on every step, so that
	// the pace of the analysis survives a restart.
	LastTick time.Time
	// LastWait is when the last "Waiting for ... rollout to finish" event was recorded (memory
	// only: after a restart the wait is announced once more).
	LastWait time.Time
	// TargetGone is true when the target no longer exists (Abort then leaves it alone).
	TargetGone bool
	// Request is the manual request on the canary that has not been handled yet (nil: none).
	Request *request.Pending
	// ReleaseQueue, when set, says why a release may not start now: the controller's limit of
	// concurrent releases is reached (-max-concurrent-releases). Empty: it may start (a slot is
	// reserved for it), or there is no limit.
	ReleaseQueue string
}

// HookResult is the outcome of one webhook call.
type HookResult struct {
	Name      string
	Err       error
	MuteAlert bool
}

// Checks runs gates, webhooks and metric analysis on the machine's behalf.
type Checks interface {
	// RunHooks calls every webhook of the type and reports each outcome, or ErrPending while
	// they still run.
	RunHooks(ctx context.Context, cd *flaggerv1.Canary, hook flaggerv1.HookType, phase flaggerv1.CanaryPhase) ([]HookResult, error)
	// Analyze runs the metric checks; a non-nil error is the first failed check, worded for the event
	// ("Halt podinfo.test advancement success rate 69.17% < 99%"), ErrPending while they still run,
	// or a *HoldError to hold the analysis without counting a failure. The results are the
	// metrics checked, with their values (their Time is the machine's to set).
	Analyze(ctx context.Context, cd *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error)
}

// Settings are controller-wide options that shape decisions.
type Settings struct {
	// Provider is spec.provider or the -mesh-provider default.
	Provider string
	// MinInterval floors analysis.interval (10s in production; tests lower it).
	MinInterval time.Duration
}

// Input is one decision's input.
type Input struct {
	Canary   *flaggerv1.Canary
	Observed Observation
	Settings Settings
	Now      time.Time
}

// ActionKind says what the controller must do.
type ActionKind string

const (
	// ScaleUp resumes the target's autoscaler and scales the target from zero.
	ScaleUp ActionKind = "ScaleUp"
	// ScaleDown pauses the target's autoscaler and scales the target to zero.
	ScaleDown ActionKind = "ScaleDown"
	// SetRoutes applies Action.Routes through the router.
	SetRoutes ActionKind = "SetRoutes"
	// Promote copies the target's template and configs to the primary and syncs the primary scaler.
	// It is only ever asked for in the Promoting phase (or with skipAnalysis), once that phase is
	// recorded: a crash between the copy and the status write can then not leave a primary that
	// runs a revision the status still calls under analysis.
	Promote ActionKind = "Promote"
	// Event records a Kubernetes event and a log line with Action.Message.
	Event ActionKind = "Event"
	// Alert notifies the alert providers with Action.Message at Action.Severity.
	Alert ActionKind = "Alert"
	// PostRollout calls the post-rollout webhooks with Action.Phase.
	PostRollout ActionKind = "PostRollout"
)

// Action is one step for the controller, executed in order before the status is written.
type Action struct {
	Kind     ActionKind
	Routes   Routes
	Message  string
	Warning  bool
	Severity flaggerv1.AlertSeverity
	Phase    flaggerv1.CanaryPhase
}

// Outcome is the result of one tick of the outcome counters (successes / failures metrics).
type Outcome string

const (
	OutcomeNone      Outcome = ""
	OutcomeCompleted Outcome = "completed"
	OutcomeSkipped   Outcome = "skipped"
	OutcomeFailed    Outcome = "failed"
)

// Decision is the machine's answer.
type Decision struct {
	Status  flaggerv1.CanaryStatus
	Actions []Action
	// Ticked is true when an analysis step ran; Status.LastStepTime is then Now.
	Ticked bool
	// TickReset is true when a new revision starts its analysis: its first step is due at once
	// (Status.LastStepTime is cleared).
	TickReset bool
	// Waited is true when a readiness wait was announced; the controller remembers Now as LastWait.
	Waited bool
	// RequeueAfter asks to be called again after that long (0: wait for a watch event).
	RequeueAfter time.Duration
	// Outcome is set when a release finished.
	Outcome Outcome
	// Stalled explains why nothing can progress without a change (empty when fine).
	Stalled string
	// Queued is why the release waits for a free slot (Observation.ReleaseQueue), in phase Waiting;
	// empty when it does not.
	Queued string
}
