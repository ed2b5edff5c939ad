package v1beta1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// CanaryPhase is where a canary is in its release.
// +kubebuilder:validation:Enum="";Initializing;Initialized;Waiting;Progressing;WaitingPromotion;Promoting;Finalising;Succeeded;Failed;Terminating;Terminated
type CanaryPhase string

const (
	CanaryPhaseInitializing     CanaryPhase = "Initializing"
	CanaryPhaseInitialized      CanaryPhase = "Initialized"
	CanaryPhaseWaiting          CanaryPhase = "Waiting"
	CanaryPhaseProgressing      CanaryPhase = "Progressing"
	CanaryPhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	CanaryPhasePromoting        CanaryPhase = "Promoting"
	CanaryPhaseFinalising       CanaryPhase = "Finalising"
	CanaryPhaseSucceeded        CanaryPhase = "Succeeded"
	CanaryPhaseFailed           CanaryPhase = "Failed"
	CanaryPhaseTerminating      CanaryPhase = "Terminating"
	CanaryPhaseTerminated       CanaryPhase = "Terminated"
)

// Condition types. Promoted is Flagger's; Ready, Reconciling and Stalled follow the kstatus conventions.
const (
	PromotedCondition    = "Promoted"
	ReadyCondition       = "Ready"
	ReconcilingCondition = "Reconciling"
	StalledCondition     = "Stalled"
)

// CanaryStatus is the observed state of a canary.
type CanaryStatus struct {
	// Phase is where the canary is in its release: Initializing, Initialized,
	// Waiting, Progressing, WaitingPromotion, Promoting, Finalising, Succeeded,
	// Failed or Terminating.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`
	// FailedChecks is the number of failed checks in the current analysis;
	// reaching analysis.threshold rolls the release back.
	// +optional
	FailedChecks int `json:"failedChecks"`
	// CanaryWeight is the share of traffic, in percent, routed to the canary.
	// +optional
	CanaryWeight int `json:"canaryWeight"`
	// Iterations is the number of analysis iterations done in the current
	// blue/green or A/B release.
	// +optional
	Iterations int `json:"iterations"`
	// PreviousSessionAffinityCookie is the session affinity cookie of the last
	// finished canary run, "<cookieName>=<value>": once the canary weight is
	// back to 0, requests that carry it are routed by weight and get it expired
	// (Max-Age=-1).
	// +optional
	PreviousSessionAffinityCookie string `json:"previousSessionAffinityCookie,omitempty"`
	// SessionAffinityCookie is the session affinity cookie of the current canary
	// run, "<cookieName>=<random>": drawn when the canary first gets traffic,
	// handed out by the canary's responses (Max-Age = sessionAffinity.maxAge)
	// and routing the requests that carry it to the canary until the run ends.
	// Kept here, so that a controller restart hands out the same one.
	// +optional
	SessionAffinityCookie string `json:"sessionAffinityCookie,omitempty"`
	// PrimarySessionAffinityCookie is the primary's session affinity cookie of
	// the current canary run (with sessionAffinity.primaryCookieName),
	// "<primaryCookieName>=<random>": handed out by the primary's responses for
	// one analysis interval (Max-Age), routing the requests that carry it to the
	// primary.
	// +optional
	PrimarySessionAffinityCookie string `json:"primarySessionAffinityCookie,omitempty"`
	// TrackedConfigs maps configmap/<name> and secret/<name> to a checksum of
	// their data.
	// +optional
	TrackedConfigs *map[string]string `json:"trackedConfigs,omitempty"`
	// LastAppliedSpec is the revision of the target last seen.
	// +optional
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`
	// LastPromotedSpec is the revision of the target that runs on the primary.
	// +optional
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`
	// PreRolloutPassedSpec is the revision (lastAppliedSpec) whose pre-rollout
	// checks passed in the current analysis (Pennant). The pre-rollout webhooks
	// are not called again for it, also when the first step repeats (a closed
	// confirm-traffic-increase gate) or the controller restarts. Cleared when an
	// analysis starts.
	// +optional
	PreRolloutPassedSpec string `json:"preRolloutPassedSpec,omitempty"`
	// LastTransitionTime is when the phase, weight, iterations or failed checks
	// last changed.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// LastStepTime is when the last analysis step ran (Pennant). The next step is
	// due one analysis interval later, also after a controller restart, so that a
	// crash loop cannot compress the analysis. Kept to the microsecond (a time of
	// whole seconds would let the step after a restart run up to a second early).
	// +optional
	LastStepTime *metav1.MicroTime `json:"lastStepTime,omitempty"`
	// ObservedGeneration is the generation of the spec last acted upon.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LastRequest is the last manual request (the pennant.dev/request
	// annotation, which kubectl pennant promote, abort, retry, pause and resume
	// write) that the controller handled, and its result (Pennant). Recorded in
	// the same status write as the decision the request caused, so that a
	// request is carried out once, also across a controller restart.
	// +optional
	LastRequest *CanaryRequestStatus `json:"lastRequest,omitempty"`
	// LastChecks are the last results of the analysis' metrics and rollout
	// webhooks in the current release (Pennant): each metric's value against
	// its threshold, each webhook's pass or failure, with when the step that
	// ran it happened. Recorded in the status write of the analysis step
	// (no extra API request) and cleared when a new revision starts its
	// analysis; kubectl pennant status shows them.
	// +optional
	LastChecks []CanaryCheckResult `json:"lastChecks,omitempty"`
	// Conditions are Flagger's Promoted (its reason is the phase), the kstatus
	// conditions Ready, Reconciling and Stalled, and Paused (Pennant) while a
	// pause request holds the analysis.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []CanaryCondition `json:"conditions,omitempty"`
}

// PausedCondition is True while a pause request holds the analysis at its current weight (Pennant).
const PausedCondition = "Paused"

// CanaryRequestResult is what the controller made of a manual request.
// +kubebuilder:validation:Enum=Done;Stale;Refused;Invalid
type CanaryRequestResult string

const (
	// RequestDone: the request was carried out.
	RequestDone CanaryRequestResult = "Done"
	// RequestStale: the request was for another revision than the one released; it was ignored.
	RequestStale CanaryRequestResult = "Stale"
	// RequestRefused: the request cannot be carried out in the canary's state (e.g. promote with a
	// canary that is not ready); it was ignored.
	RequestRefused CanaryRequestResult = "Refused"
	// RequestInvalid: the annotation could not be read as a request; it was ignored.
	RequestInvalid CanaryRequestResult = "Invalid"
)

// CanaryRequestStatus records a manual request the controller handled.
type CanaryRequestStatus struct {
	// ID identifies the request: a hash of the annotation's value. A request
	// whose ID is recorded here is not carried out again.
	ID string `json:"id"`
	// Action is promote, abort, retry, pause or resume.
	// +optional
	Action string `json:"action,omitempty"`
	// Revision is the revision (status.lastAppliedSpec) the request was for.
	// +optional
	Revision string `json:"revision,omitempty"`
	// Actor is who asked: the field manager that wrote the annotation and
	// the user the request names, e.g. "alice (kubectl-pennant)".
	// +optional
	Actor string `json:"actor,omitempty"`
	// Reason is the reason given with the request.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Result is Done, Stale, Refused or Invalid.
	Result CanaryRequestResult `json:"result"`
	// Message says what was done, or why nothing was.
	// +optional
	Message string `json:"message,omitempty"`
	// HandledAt is when the controller handled the request.
	HandledAt metav1.Time `json:"handledAt"`
}

// CanaryCheckKind is what a check result is about.
// +kubebuilder:validation:Enum=Metric;Webhook
type CanaryCheckKind string

const (
	// MetricCheck is an analysis.metrics entry.
	MetricCheck CanaryCheckKind = "Metric"
	// WebhookCheck is a rollout webhook of analysis.webhooks.
	WebhookCheck CanaryCheckKind = "Webhook"
)

// CanaryCheckOutcome is the result of one check.
// +kubebuilder:validation:Enum=Passed;Failed;NoData;Held
type CanaryCheckOutcome string

const (
	// CheckPassed: the value was within the threshold, or the webhook answered 2xx.
	CheckPassed CanaryCheckOutcome = "Passed"
	// CheckFailed: the value was beyond the threshold, the query or the webhook failed.
	CheckFailed CanaryCheckOutcome = "Failed"
	// CheckNoData: the metric's query returned no value, and its noDataPolicy skipped the
	// metric or held the analysis.
	CheckNoData CanaryCheckOutcome = "NoData"
	// CheckHeld: the comparative judge held the release, the primary degrading as well.
	CheckHeld CanaryCheckOutcome = "Held"
)

// CanaryCheckResult is the last result of one metric or rollout webhook of the analysis.
type CanaryCheckResult struct {
	// Kind is Metric or Webhook.
	Kind CanaryCheckKind `json:"kind"`
	// Name is the metric's or the webhook's name in the analysis.
	Name string `json:"name"`
	// Result is Passed, Failed, NoData or Held.
	Result CanaryCheckOutcome `json:"result"`
	// Value is the metric's value as its check compared it with the
	// threshold: a percentage for request-success-rate ("99.87%"), a
	// duration for request-duration ("120ms"), the query's number
	// otherwise. Empty for webhooks and when no value was read.
	// +optional
	Value string `json:"value,omitempty"`
	// Message says why the check failed or had no data.
	// +optional
	Message string `json:"message,omitempty"`
	// Time is when the analysis step that ran the check happened.
	Time metav1.Time `json:"time"`
	// Counts are the requests and failed requests of both versions in the
	// current analysis, for a judged metric (analysis.metrics[].judge): the
	// next step adds its own to them.
	// +optional
	Counts *CanaryCheckCounts `json:"counts,omitempty"`
}

// CanaryCheckCounts are the requests and failed requests of the canary and the
// primary, summed over the steps of an analysis.
type CanaryCheckCounts struct {
	// CanaryRequests is the number of requests the canary served.
	CanaryRequests float64 `json:"canaryRequests"`
	// CanaryErrors is the number of them that failed.
	CanaryErrors float64 `json:"canaryErrors"`
	// PrimaryRequests is the number of requests the primary served.
	PrimaryRequests float64 `json:"primaryRequests"`
	// PrimaryErrors is the number of them that failed.
	PrimaryErrors float64 `json:"primaryErrors"`
}

// CanaryCondition is a status condition of a canary: the Kubernetes
// condition fields and Flagger's lastUpdateTime.
type CanaryCondition struct {
	metav1.Condition `json:",inline"`
	// LastUpdateTime is when the condition's status, reason or message last
	// changed (Flagger's field); lastTransitionTime changes only with its
	// status.
	// +optional
	LastUpdateTime metav1.Time `json:"lastUpdateTime,omitempty"`
}

// FindCanaryCondition returns the condition of type typ, or nil.
func FindCanaryCondition(conditions []CanaryCondition, typ string) *CanaryCondition {
	for i := range conditions {
		if conditions[i].Type == typ {
			return &conditions[i]
		}
	}
	return nil
}

// FindCheckResult returns the result of the metric or webhook of that kind and name in checks
// (status.lastChecks), or nil.
func FindCheckResult(checks []CanaryCheckResult, kind CanaryCheckKind, name string) *CanaryCheckResult {
	for i := range checks {
		if checks[i].Kind == kind && checks[i].Name == name {
			return &checks[i]
		}
	}
	return nil
}

// ReleaseQueuedReason is the reason of the Reconciling condition of a canary whose release waits
// for one of the controller's concurrent releases to finish (-max-concurrent-releases), in phase
// Waiting.
const ReleaseQueuedReason = "ReleaseQueued"

// ReleaseInFlight tells whether a release is under way: its canary runs (Progressing,
// WaitingPromotion) or its promotion does (Promoting, Finalising). A release waiting for approval
// or for a free slot is not in flight yet.
func (s *CanaryStatus) ReleaseInFlight() bool {
	switch s.Phase {
	case CanaryPhaseProgressing, CanaryPhaseWaitingPromotion, CanaryPhasePromoting, CanaryPhaseFinalising:
		return true
	}
	return false
}

// ReleaseQueued tells whether the release waits for a free slot (-max-concurrent-releases).
func (s *CanaryStatus) ReleaseQueued() bool {
	c := FindCanaryCondition(s.Conditions, ReconcilingCondition)
	return s.Phase == CanaryPhaseWaiting && c != nil && c.Reason == ReleaseQueuedReason
}
