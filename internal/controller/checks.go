package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
	"github.com/pennant/pennant/internal/webhooks"
)

// Analyzer runs a canary's metric checks: the metrics checked with their values, and the first
// failed check as a non-nil error (analysis.Analyzer in production).
type Analyzer interface {
	Check(ctx context.Context, cd *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error)
	// CheckProviderAvailability tells whether the canary's metric backends answer.
	CheckProviderAvailability(ctx context.Context, cd *flaggerv1.Canary) error
}

// CanaryWebhookCaller posts one webhook of a canary (webhooks.Caller in production).
type CanaryWebhookCaller interface {
	Call(ctx context.Context, cd *flaggerv1.Canary, hook flaggerv1.CanaryWebhook, phase flaggerv1.CanaryPhase, metadata map[string]string) error
}

// backgroundChecks runs webhooks and metric analysis off the reconcile workers, so that a slow
// webhook or metric backend never delays another canary. A check's result is kept for the tick it
// was asked in; when a result comes in late, the canary is woken to use it.
type backgroundChecks struct {
	hooks    CanaryWebhookCaller
	analyzer Analyzer
	wake     func(types.NamespacedName)
	timeout  time.Duration
	// tasks ties each check to the manager's and its canary's lifetimes and recovers its panics.
	tasks *canaryTasks

	mu   sync.Mutex
	runs map[checkKey]*checkRun
}

// checkKey identifies a check within one tick of one revision of a canary.
type checkKey struct {
	canary   types.NamespacedName
	what     string
	phase    flaggerv1.CanaryPhase
	revision string
	tick     time.Time
}

type checkRun struct {
	// began is when the reconcile that asked for the check first started.
	began time.Time
	done  chan struct{}
	out   checkOutput
	err   error
}

// checkOutput is what a check reports besides its error: webhook outcomes or metric results.
type checkOutput struct {
	hooks   []canary.HookResult
	metrics []flaggerv1.CanaryCheckResult
}

func newBackgroundChecks(hooks CanaryWebhookCaller, analyzer Analyzer, wake func(types.NamespacedName), tasks *canaryTasks) *backgroundChecks {
	return &backgroundChecks{hooks: hooks, analyzer: analyzer, wake: wake, timeout: 5 * time.Minute, tasks: tasks, runs: map[checkKey]*checkRun{}}
}

// forTick returns the phase machine's view of the checks for a canary's current tick, asked by a
// reconcile that began at began.
func (b *backgroundChecks) forTick(cd *flaggerv1.Canary, tick, began time.Time) canary.Checks {
	b.prune(key(cd), tick)
	return tickChecks{b: b, tick: tick, began: began}
}

// stepBegan is when the first reconcile that started a check of the analysis step of the canary's
// tick began: the step's checks may run over several reconciles. ok is false when none did.
func (b *backgroundChecks) stepBegan(c types.NamespacedName, tick time.Time) (began time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, run := range b.runs {
		if k.canary == c && k.tick.Equal(tick) && stepChecks[k.what] && (!ok || run.began.Before(began)) {
			began, ok = run.began, true
		}
	}
	return began, ok
}

// stepChecks are the checks that an analysis step runs once it is due. Rollback hooks are not among
// them: they are asked on every reconcile, also between steps.
var stepChecks = map[string]bool{
	analysisCheck: true, string(flaggerv1.PreRolloutHook): true, string(flaggerv1.RolloutHook): true,
}

// analysisCheck is the checkKey.what of the metric analysis.
const analysisCheck = "analysis"

type tickChecks struct {
	b     *backgroundChecks
	tick  time.Time
	began time.Time
}

func (t tickChecks) RunHooks(ctx context.Context, cd *flaggerv1.Canary, hook flaggerv1.HookType, phase flaggerv1.CanaryPhase) ([]canary.HookResult, error) {
	selected := cd.WebhooksOf(hook)
	if len(selected) == 0 {
		return nil, nil
	}
	run := t.b.start(t.key(cd, string(hook), phase), t.began, cd, func(ctx context.Context, cd *flaggerv1.Canary) (checkOutput, error) {
		return checkOutput{hooks: t.b.callAll(ctx, cd, selected, phase)}, nil
	})
	out, err := t.b.answer(run)
	return out.hooks, err
}

func (t tickChecks) Analyze(ctx context.Context, cd *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	run := t.b.start(t.key(cd, analysisCheck, cd.Status.Phase), t.began, cd, func(ctx context.Context, cd *flaggerv1.Canary) (checkOutput, error) {
		results, err := t.b.analyzer.Check(ctx, cd)
		return checkOutput{metrics: results}, err
	})
	out, err := t.b.answer(run)
	return out.metrics, err
}

func (t tickChecks) key(cd *flaggerv1.Canary, what string, phase flaggerv1.CanaryPhase) checkKey {
	return checkKey{canary: key(cd), what: what, phase: phase, revision: webhooks.Checksum(cd), tick: t.tick}
}

// start returns the run of a check, starting it in the background the first time it is asked for.
func (b *backgroundChecks) start(k checkKey, began time.Time, cd *flaggerv1.Canary, fn func(context.Context, *flaggerv1.Canary) (checkOutput, error)) *checkRun {
	b.mu.Lock()
	defer b.mu.Unlock()
	if run, ok := b.runs[k]; ok {
		return run
	}
	run := &checkRun{began: began, done: make(chan struct{})}
	b.runs[k] = run
	snapshot := cd.DeepCopy()
	// Registered before this returns: the canary's deletion right after still cancels it.
	task, err := b.tasks.begin(k.canary, k.what, b.timeout)
	go func() {
		run.err = err
		if err == nil {
			run.err = task(func(ctx context.Context) error {
				var err error
				run.out, err = fn(ctx, snapshot)
				return err
			})
		}
		if b.tasks.shuttingDown() {
			// A check cut short by the manager's stop says nothing about the canary: it must
			// not count as a failed check; the next leader runs it again.
			run.out, run.err = checkOutput{}, canary.ErrPending
		}
		close(run.done)
		b.wake(k.canary)
	}()
	return run
}

// answer reports a run's result if it has one, else that it is pending. It never waits: a
// reconcile worker held for a check would hold up every other canary behind it (two workers
// waiting 200 ms each capped the controller near 10 reconciles a second). The check's end wakes
// the canary instead; that reconcile reads only the cache.
func (b *backgroundChecks) answer(run *checkRun) (checkOutput, error) {
	select {
	case <-run.done:
		return run.out, run.err
	default:
		return checkOutput{}, canary.ErrPending
	}
}

// prune forgets the finished checks of a canary's earlier ticks.
func (b *backgroundChecks) prune(c types.NamespacedName, tick time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, run := range b.runs {
		if k.canary != c || k.tick.Equal(tick) {
			continue
		}
		select {
		case <-run.done:
			delete(b.runs, k)
		default:
		}
	}
}

// forget drops every check of a deleted canary and cancels those still running.
func (b *backgroundChecks) forget(c types.NamespacedName) {
	b.tasks.end(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.runs {
		if k.canary == c {
			delete(b.runs, k)
		}
	}
}

// callAll calls webhooks one after the other, as Flagger does, and reports each outcome.
func (b *backgroundChecks) callAll(ctx context.Context, cd *flaggerv1.Canary, hooks []flaggerv1.CanaryWebhook, phase flaggerv1.CanaryPhase) []canary.HookResult {
	results := make([]canary.HookResult, 0, len(hooks))
	for _, w := range hooks {
		err := b.hooks.Call(ctx, cd, w, phase, webhooks.Metadata(w))
		results = append(results, canary.HookResult{Name: w.Name, Err: cleanError(err), MuteAlert: w.MuteAlert})
	}
	return results
}

// cleanError keeps webhook error texts to one line for events.
func cleanError(err error) error {
	if err == nil {
		return nil
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	return fmt.Errorf("%s", msg)
}
