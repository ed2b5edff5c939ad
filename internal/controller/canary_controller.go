// Package controller reconciles Canaries: it observes the target, primary and routes through the
// informer cache, asks the phase machine what to do, carries out its actions and writes the status
// once per change.
package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/event"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/analysis"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/kubecache"
	"github.com/pennant/pennant/internal/notify"
	"github.com/pennant/pennant/internal/router"
	"github.com/pennant/pennant/internal/workload"
)

// Options are the controller-wide settings taken from flags.
type Options struct {
	// MeshProvider is the default provider (-mesh-provider).
	MeshProvider string
	// MinInterval floors analysis intervals (10s; tests lower it).
	MinInterval time.Duration
	// MaxConcurrentReconciles is -threadiness.
	MaxConcurrentReconciles int
	// NoCrossNamespaceRefs is -no-cross-namespace-refs: references (metric templates, alert
	// providers, Gloo upstreams) outside the canary's namespace are InvalidSpec.
	NoCrossNamespaceRefs bool
	// MaxConcurrentReleases is -max-concurrent-releases: the releases in flight at once (0: no
	// limit); the others wait in Waiting, queued in order.
	MaxConcurrentReleases int
}

// MeshRouters returns the traffic router of a provider.
type MeshRouters interface {
	For(provider string) (router.Interface, error)
}

// CanaryReconciler drives canaries through their release.
type CanaryReconciler struct {
	Client      client.Client
	Workloads   *workload.Factory
	KubeRouter  router.KubernetesRouter
	MeshRouters MeshRouters
	Hooks       CanaryWebhookCaller
	Analyzer    Analyzer
	Notifier    notify.Notifier
	Announcer   Announcer
	Metrics     Recorder
	Options     Options
	Now         func() time.Time

	// waits remembers when each canary last announced a readiness wait (events only; the times
	// that decide anything, such as the last analysis step, are kept in the status).
	waits sync.Map
	// providersChecked remembers the canaries whose metric providers were checked at initialization.
	providersChecked sync.Map
	// written holds each canary's last status write until the cache has caught up with it.
	written sync.Map
	// checks runs webhooks and metric checks in the background; wakeups brings their late results.
	checks  *backgroundChecks
	wakeups chan event.GenericEvent
	// releases bounds the releases in flight at once (Options.MaxConcurrentReleases).
	releases *releaseSlots
	// tasks owns every background task; it lives as long as the manager (NewCanaryReconciler
	// adds it as a Runnable).
	tasks *canaryTasks
	// configs caches ConfigMaps and Secrets in the namespaces that read them; its events wake the
	// canaries that track them.
	configs *kubecache.Configs
	// meshCluster holds the service mesh's routing objects (-kubeconfig-service-mesh); nil when
	// they are on the main cluster.
	meshCluster cluster.Cluster
	// absent are the watched kinds whose CRD was removed: reads of them fail at once.
	absent *absentKinds
	// apiReader reads from the API server, past the cache: only where a stale read would be unsafe
	// and the read is rare (a deleted canary's last look at its target).
	apiReader client.Reader
}

// Reconcile moves one canary forward.
func (r *CanaryReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cd := &flaggerv1.Canary{}
	if err := r.Client.Get(ctx, req.NamespacedName, cd); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			r.Metrics.Forget(req.Namespace, req.Name)
			r.countCanaries(ctx)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if cd.Status.Phase == "" {
		r.countCanaries(ctx)
	}
	cd, wait, err := r.current(ctx, cd)
	if err != nil {
		// Not found: deleted since the cache had it; its deletion is on its way to the cache.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if wait {
		return ctrl.Result{RequeueAfter: staleRetry}, nil
	}
	if !cd.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, cd)
	}
	if done, err := r.syncFinalizer(ctx, cd); done || err != nil {
		return ctrl.Result{}, err
	}
	return r.advance(ctx, cd)
}

// advance observes, decides, acts and persists.
func (r *CanaryReconciler) advance(ctx context.Context, cd *flaggerv1.Canary) (ctrl.Result, error) {
	now := r.Now()
	provider := r.provider(cd)
	env, envErr := r.environment(cd, provider)
	if err := cmp.Or(validate(cd, provider, r.Options.NoCrossNamespaceRefs), envErr); err != nil {
		return r.problem(ctx, cd, env, &specError{err})
	}
	if _, _, _, err := env.workload.Selector(ctx, cd); err != nil {
		return r.problem(ctx, cd, env, err)
	}
	pending, err := r.ensure(ctx, cd, env)
	if err != nil {
		return r.problem(ctx, cd, env, err)
	}
	if initializing(cd) && !cd.SkipAnalysis() {
		r.checkProviders(cd)
	}
	obs, err := r.observe(ctx, cd, env)
	if err != nil {
		return r.problem(ctx, cd, env, err)
	}
	obs.Request = r.pendingRequest(ctx, cd)
	if pending != nil {
		// The primary did not serve yet when ensure looked, so no routing was set up: what observe
		// read a moment later must not complete the initialization without it (a Service target's
		// copy is ready as soon as the cache has it).
		obs.Primary = readiness(*pending)
	}
	in := canary.Input{
		Canary:   cd,
		Observed: obs,
		Settings: canary.Settings{Provider: provider, MinInterval: r.Options.MinInterval},
		Now:      now,
	}
	slot := false
	if r.Options.MaxConcurrentReleases > 0 && canary.MayStartRelease(in) {
		if in.Observed.ReleaseQueue, err = r.releases.take(ctx, cd, now); err != nil {
			return ctrl.Result{}, err
		}
		slot = in.Observed.ReleaseQueue == ""
	}
	decision := canary.Next(ctx, in, r.checks.forTick(cd, obs.LastTick, now))
	// writeStatus replaces cd.Status: what the decision started from is read before.
	wasInFlight, stepped := cd.Status.ReleaseInFlight(), analysisStep(cd, decision)
	if slot && !decision.Status.ReleaseInFlight() {
		r.releases.giveBack(key(cd))
	}

	r.Metrics.SetWeight(cd, obs.Routes.Primary, obs.Routes.Canary)
	if err := r.execute(ctx, cd, env, decision.Actions, &decision.Status); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.writeStatus(ctx, cd, decision.Status); err != nil {
		return ctrl.Result{}, err
	}
	r.remember(cd, decision, now)
	if wasInFlight && !decision.Status.ReleaseInFlight() {
		r.releases.release(key(cd), now)
		r.wakeQueuedReleases(ctx)
	}
	r.Metrics.Observe(cd, decision, provider)
	if stepped {
		began := r.stepBegan(cd, obs.LastTick, now)
		r.Metrics.ObserveDuration(cd, r.Now().Sub(began))
		if !obs.LastTick.IsZero() {
			// The first step of an analysis has no due time: it follows the release's start.
			r.Metrics.ObserveStepLateness(began.Sub(obs.LastTick.Add(cd.GetAnalysisInterval(r.Options.MinInterval))))
		}
	}
	return requeue(r.fromNow(decision.RequeueAfter, now), decision.RequeueAfter), nil
}

// duePriority is the work queue priority of a canary's timed requeue (controller-runtime's
// priority queue serves higher priorities first; watch events enqueue at 0, or below when nothing
// changed).
const duePriority = 10

// requeue is the result of a decision that waits wait (after, from now): a wait of a second or
// more is an analysis step falling due (or a deadline to look at) and goes ahead of the reconciles
// that watch events bring, so that steps run on time while a wave of promotions keeps the workers
// busy with their rollouts; a shorter one carries a release on and goes in line with them.
func requeue(after, wait time.Duration) ctrl.Result {
	prio := 0
	if wait >= time.Second {
		prio = duePriority
	}
	return ctrl.Result{RequeueAfter: after, Priority: &prio}
}

// fromNow turns a decision's wait, counted from when the decision was taken, into one counted from
// now: the next step is due one interval after this one began, not after this reconcile's writes
// returned, which a busy API server can take seconds over (a step would be late by as much).
func (r *CanaryReconciler) fromNow(wait time.Duration, decided time.Time) time.Duration {
	if wait <= 0 {
		return wait
	}
	return max(time.Millisecond, wait-r.Now().Sub(decided))
}

// wakeQueuedReleases wakes the first queued releases when one ended: as many as the limit, since
// no more can start. A release that ends otherwise (its canary deleted) leaves the queue to its
// periodic recheck.
func (r *CanaryReconciler) wakeQueuedReleases(ctx context.Context) {
	queued := r.releases.queued(ctx)
	for _, k := range queued[:min(len(queued), r.Options.MaxConcurrentReleases)] {
		r.wakeUp(k)
	}
}

// analysisStep tells whether a decision ran an analysis step: what Flagger's
// flagger_canary_duration_seconds times (its checks and the traffic step after them, or the
// promotion they decide), unlike the steps of a promotion or a closed confirm-rollout gate. cd is
// the canary the decision started from.
func analysisStep(cd *flaggerv1.Canary, d canary.Decision) bool {
	switch cd.Status.Phase {
	case flaggerv1.CanaryPhaseProgressing, flaggerv1.CanaryPhaseWaitingPromotion:
		return d.Ticked
	}
	return false
}

// stepBegan is when the analysis step of the canary's tick began: its checks run in the background
// and the step completes in a later reconcile, so this one's start (now) may be well after it.
func (r *CanaryReconciler) stepBegan(cd *flaggerv1.Canary, tick, now time.Time) time.Time {
	if began, ok := r.checks.stepBegan(key(cd), tick); ok && began.Before(now) {
		return began
	}
	return now
}

// abort fails a release whose analysis cannot go on (its target deleted, its spec made invalid,
// a referenced object or the provider's CRD gone), with all traffic back on the primary when it is
// ready (canary.Abort decides). It reports whether it did; without a router or a ready primary to
// send the traffic to, or when the routes cannot be set (err), the caller reports the problem.
func (r *CanaryReconciler) abort(ctx context.Context, cd *flaggerv1.Canary, e env, cause error, msg string) (bool, error) {
	if e.workload == nil || e.router == nil {
		return false, nil
	}
	primary, err := e.workload.PrimaryReady(ctx, cd)
	if err != nil {
		return false, client.IgnoreNotFound(err)
	}
	provider := r.provider(cd)
	decision, ok := canary.Abort(canary.Input{
		Canary:   cd,
		Observed: canary.Observation{Primary: readiness(primary), TargetGone: workload.IsTargetNotFound(cause)},
		Settings: canary.Settings{Provider: provider, MinInterval: r.Options.MinInterval},
		Now:      r.Now(),
	}, msg)
	if !ok {
		return false, nil
	}
	for _, a := range decision.Actions {
		err := r.do(ctx, cd, e, a, &decision.Status)
		switch {
		case err == nil:
		case a.Kind == canary.SetRoutes && meta.IsNoMatchError(err):
			// The routing CRD is gone, and its objects with it: the apex Service, which selects
			// the primary, is what routes now.
		case a.Kind == canary.SetRoutes:
			// The traffic must be back on the primary before the release is recorded as failed:
			// the caller reports the problem and the retry tries again.
			r.Announcer.Warn(cd, err.Error())
			return false, err
		default:
			// The rest (scaling the target down) is not worth keeping the traffic split for: the
			// failed phase is recorded and the target is looked after like any failed canary's.
			r.Announcer.Warn(cd, err.Error())
		}
	}
	if err := r.writeStatus(ctx, cd, decision.Status); err != nil {
		return true, err
	}
	r.Metrics.Observe(cd, decision, provider)
	return true, nil
}

// env is what acts on one canary: its workload kind, autoscaler and router.
type env struct {
	services router.KubernetesRouter
	workload workload.Controller
	scaler   workload.Scaler
	router   router.Interface
}

// environment builds what acts on a canary. When only the router refuses the canary's spec, the
// env is returned with the error: it can still send the traffic back to the primary.
func (r *CanaryReconciler) environment(cd *flaggerv1.Canary, provider string) (env, error) {
	wl, err := r.Workloads.Controller(cd)
	if err != nil {
		return env{}, err
	}
	sc, err := r.Workloads.Scaler(cd)
	if err != nil {
		return env{}, err
	}
	rt, err := r.MeshRouters.For(provider)
	if err != nil {
		return env{}, err
	}
	services := r.KubeRouter
	if cd.Spec.TargetRef.Kind == workload.KindService {
		// A Service target is copied by its workload controller: no Services to generate.
		services = router.NopKubernetes{}
	}
	e := env{services: services, workload: wl, scaler: sc, router: rt}
	if v, ok := rt.(router.Validator); ok {
		if err := v.Validate(cd); err != nil {
			return e, err
		}
	}
	return e, nil
}

func (r *CanaryReconciler) provider(cd *flaggerv1.Canary) string {
	if cd.Spec.Provider != "" {
		return cd.Spec.Provider
	}
	return r.Options.MeshProvider
}

// ensure creates or updates what must exist whatever the phase: Services, primary, primary scaler,
// and, once the primary serves, the apex Service and the routing objects. Each writes only on change.
// While initializing, pending is the primary's readiness when it does not serve yet (nothing routed).
func (r *CanaryReconciler) ensure(ctx context.Context, cd *flaggerv1.Canary, e env) (pending *workload.Readiness, err error) {
	if err := e.services.Initialize(ctx, cd); err != nil {
		return nil, err
	}
	if err := e.workload.Initialize(ctx, cd); err != nil {
		return nil, err
	}
	if err := e.scaler.ReconcilePrimaryScaler(ctx, cd, true); err != nil {
		return nil, err
	}
	if initializing(cd) {
		ready, err := e.workload.PrimaryReady(ctx, cd)
		if apierrors.IsNotFound(err) {
			// Just created: the cache has not seen the primary yet, its watch event will wake us.
			return &workload.Readiness{Message: primaryPending(cd)}, nil
		}
		if err != nil {
			return nil, err
		}
		if !ready.Ready {
			return &ready, nil
		}
	}
	if err := e.services.Reconcile(ctx, cd); err != nil {
		return nil, err
	}
	return nil, e.router.Reconcile(ctx, cd)
}

func initializing(cd *flaggerv1.Canary) bool {
	return cd.Status.Phase == "" || cd.Status.Phase == flaggerv1.CanaryPhaseInitializing
}

// problem handles what keeps a canary from going on. During an analysis, a problem that cannot
// go away by itself (the target deleted, the spec made invalid, the provider's CRDs gone) ends the
// release at once with the traffic back on the primary; one that may (a referenced object not
// created yet, an API error that is retried) does so once it has lasted the canary's progress
// deadline. Either way the problem is on the canary's conditions and in an event.
func (r *CanaryReconciler) problem(ctx context.Context, cd *flaggerv1.Canary, e env, err error) (ctrl.Result, error) {
	t := classify(cd, r.provider(cd), err)
	remaining := r.problemDeadline(cd, t)
	var abortErr error
	if remaining <= 0 {
		aborted, aerr := r.abort(ctx, cd, e, err, t.msg)
		if aborted {
			return ctrl.Result{}, aerr
		}
		abortErr = aerr
	}
	if t.reason == reasonReconcileError {
		return ctrl.Result{}, errors.Join(abortErr, r.retrying(ctx, cd, err))
	}
	recordErr := r.invalid(ctx, cd, t.reason, t.msg)
	if t.retry || abortErr != nil {
		return ctrl.Result{}, cmp.Or(errors.Join(abortErr, recordErr), err)
	}
	// Otherwise a change of the canary or of a watched object wakes us, or the deadline.
	var result ctrl.Result
	if remaining > 0 && canary.Abortable(cd.Status.Phase) {
		result.RequeueAfter = remaining
	}
	return result, recordErr
}

// trouble is what classify makes of an error that keeps a canary from going on.
type trouble struct {
	// reason and msg go on the canary's Ready and Stalled conditions.
	reason, msg string
	// settles is true when the problem may go away by itself: an analysis survives it for the
	// canary's progress deadline.
	settles bool
	// retry returns the error for a retry with backoff; otherwise the canary is looked at again
	// when it or a watched object changes (or at the deadline, for a problem that settles).
	retry bool
}

const reasonReconcileError = "ReconcileError"

// specError is a spec the controller refuses (validate, or the provider's router).
type specError struct{ err error }

func (e *specError) Error() string { return e.err.Error() }
func (e *specError) Unwrap() error { return e.err }

func classify(cd *flaggerv1.Canary, provider string, err error) trouble {
	var spec *specError
	switch {
	case errors.As(err, &spec):
		return trouble{reason: "InvalidSpec", msg: err.Error()}
	case workload.IsTargetNotFound(err):
		// A target may be created after its canary (GitOps applies in any order): the watch wakes us.
		return trouble{reason: "TargetNotFound", msg: fmt.Sprintf("%s %s.%s not found", cd.Spec.TargetRef.Kind, cd.Spec.TargetRef.Name, cd.Namespace)}
	case apierrors.IsNotFound(err):
		// A referenced object is missing. Autoscalers, ConfigMaps, Secrets and the routers'
		// references (ingressRef, upstreamRef, routeRef) are watched: its creation wakes us.
		return trouble{reason: "ReferenceNotFound", msg: err.Error(), settles: true}
	case workload.IsPermanent(err):
		return trouble{reason: "InvalidTarget", msg: err.Error()}
	case router.IsInvalidSpec(err):
		// Some of these depend on other objects (a Gloo upstreamRef, a route owned by someone else):
		// they are watched, and a change wakes us.
		return trouble{reason: "InvalidSpec", msg: err.Error()}
	case meta.IsNoMatchError(err):
		// Retried with backoff, as the CRDs may be on their way.
		return trouble{reason: "CRDNotInstalled", msg: fmt.Sprintf("provider %s: %v", provider, err), retry: true}
	}
	return trouble{reason: reasonReconcileError, msg: err.Error(), settles: true, retry: true}
}

// problemDeadline is how long an analysis still waits for a problem to go away: 0 for one that
// does not settle, else what is left of the progress deadline since the problem was first put on
// the canary (the Ready condition's transition to False: the time survives restarts).
func (r *CanaryReconciler) problemDeadline(cd *flaggerv1.Canary, t trouble) time.Duration {
	if !t.settles {
		return 0
	}
	deadline := time.Duration(cd.GetProgressDeadlineSeconds()) * time.Second
	c := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.ReadyCondition)
	if c == nil || c.Status != metav1.ConditionFalse || !canary.Abortable(cd.Status.Phase) {
		return deadline
	}
	return deadline - r.Now().Sub(c.LastTransitionTime.Time)
}

// retrying puts an error that is retried with backoff on the canary (condition and a Warning
// event), once per distinct message, and returns it for the retry. Without it a refused write
// would only be in the controller's log while the canary seems to wait.
func (r *CanaryReconciler) retrying(ctx context.Context, cd *flaggerv1.Canary, err error) error {
	st := *cd.Status.DeepCopy()
	msg := err.Error()
	canary.SetRetrying(&st, cd, reasonReconcileError, msg, r.Now())
	if equality.Semantic.DeepEqual(withoutTimes(st), withoutTimes(cd.Status)) {
		return err
	}
	r.Announcer.Warn(cd, msg)
	if werr := r.writeStatus(ctx, cd, st); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// invalid records why a canary cannot work and touches nothing else.
func (r *CanaryReconciler) invalid(ctx context.Context, cd *flaggerv1.Canary, reason, msg string) error {
	st := *cd.Status.DeepCopy()
	canary.SetInvalid(&st, cd, reason, msg, r.Now())
	r.Metrics.Observe(cd, canary.Decision{Status: st}, r.provider(cd))
	if equality.Semantic.DeepEqual(withoutTimes(st), withoutTimes(cd.Status)) {
		return nil
	}
	r.Announcer.Warn(cd, msg)
	return r.writeStatus(ctx, cd, st)
}

func key(cd *flaggerv1.Canary) types.NamespacedName {
	return types.NamespacedName{Namespace: cd.Namespace, Name: cd.Name}
}

// countCanaries refreshes the per-namespace canary counts from the cache when canaries come and go.
func (r *CanaryReconciler) countCanaries(ctx context.Context) {
	var list flaggerv1.CanaryList
	if err := r.Client.List(ctx, &list); err == nil {
		r.Metrics.SetCanaryTotals(list.Items)
	}
}

// providerCheckTimeout bounds the metric provider check made when a canary initializes.
const providerCheckTimeout = 30 * time.Second

// checkProviders tells, once per canary and in the background, whether its metric backends answer,
// as Flagger does when a canary initializes. It only informs: the analysis itself fails safe.
func (r *CanaryReconciler) checkProviders(cd *flaggerv1.Canary) {
	if _, done := r.providersChecked.LoadOrStore(key(cd), true); done {
		return
	}
	snapshot := cd.DeepCopy()
	go func() {
		err := r.tasks.run(key(snapshot), "provider check", providerCheckTimeout, func(ctx context.Context) error {
			return r.Analyzer.CheckProviderAvailability(ctx, snapshot)
		})
		if err != nil {
			r.Announcer.Error(snapshot, err.Error())
			return
		}
		r.Announcer.Info(snapshot, analysis.ProvidersAvailableMessage)
	}()
}
