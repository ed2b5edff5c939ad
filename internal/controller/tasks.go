package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// errShuttingDown refuses a task asked for once the manager is stopping.
var errShuttingDown = errors.New("the controller is shutting down")

// canaryTasks owns the background work of the canaries: metric checks, webhooks, post-rollout
// hooks and provider checks. Every task runs on a context that ends when its canary is deleted
// (end) or when the manager stops, with a timeout, and a panic in a task is an error instead of a
// crash. canaryTasks is a manager.Runnable (NewCanaryReconciler adds it): the manager's stop
// cancels every running task and waits for it to return, so no task outlives the manager.
type canaryTasks struct {
	// base is the manager's lifetime. The manager's context only exists inside Start, and
	// reconciles may start tasks before Start runs (both start with the leadership), so base is
	// a context of its own that Start cancels when the manager's context ends.
	base       context.Context
	cancelBase context.CancelFunc

	mu       sync.Mutex
	stopping bool
	running  sync.WaitGroup
	owners   map[types.NamespacedName]canaryLifetime
}

var (
	_ manager.Runnable               = (*canaryTasks)(nil)
	_ manager.LeaderElectionRunnable = (*canaryTasks)(nil)
)

type canaryLifetime struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func newCanaryTasks() *canaryTasks {
	base, cancel := context.WithCancel(context.Background())
	return &canaryTasks{base: base, cancelBase: cancel, owners: map[types.NamespacedName]canaryLifetime{}}
}

// Start blocks until the manager stops, then cancels every task and waits for them to return
// (the manager bounds that wait by its graceful shutdown timeout).
func (t *canaryTasks) Start(ctx context.Context) error {
	<-ctx.Done()
	t.stop()
	return nil
}

// NeedLeaderElection is true: background work belongs to the leader, as the reconciles that
// start it do.
func (t *canaryTasks) NeedLeaderElection() bool { return true }

// stop refuses new tasks, cancels the running ones and waits for them.
func (t *canaryTasks) stop() {
	t.mu.Lock()
	t.stopping = true
	t.cancelBase()
	t.mu.Unlock()
	t.running.Wait()
}

// shuttingDown tells whether the manager is stopping: a task cut short then says nothing about
// its canary.
func (t *canaryTasks) shuttingDown() bool {
	return t.base.Err() != nil
}

// enter registers a task of canary c and returns the canary's lifetime; it fails once stopping.
func (t *canaryTasks) enter(c types.NamespacedName) (context.Context, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopping {
		return nil, errShuttingDown
	}
	t.running.Add(1)
	if l, ok := t.owners[c]; ok && l.ctx.Err() == nil {
		return l.ctx, nil
	}
	ctx, cancel := context.WithCancel(t.base)
	t.owners[c] = canaryLifetime{ctx: ctx, cancel: cancel}
	return ctx, nil
}

// end cancels every running task of a canary.
func (t *canaryTasks) end(c types.NamespacedName) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.owners[c]; ok {
		l.cancel()
		delete(t.owners, c)
	}
}

// run calls fn on a context bounded by the manager's and the canary's lifetimes and by timeout.
// A panic in fn is returned as an error (its stack is logged) instead of killing the controller.
func (t *canaryTasks) run(c types.NamespacedName, name string, timeout time.Duration, fn func(context.Context) error) error {
	task, err := t.begin(c, name, timeout)
	if err != nil {
		return err
	}
	return task(fn)
}

// begin registers a task of canary c at once, so that an end that comes before the task runs
// still cancels it, and returns what runs it (once, in any goroutine) as run does.
func (t *canaryTasks) begin(c types.NamespacedName, name string, timeout time.Duration) (func(func(context.Context) error) error, error) {
	lifetime, err := t.enter(c)
	if err != nil {
		return nil, err
	}
	return func(fn func(context.Context) error) error {
		defer t.running.Done()
		ctx, cancel := context.WithTimeout(lifetime, timeout)
		defer cancel()
		return guarded(ctx, c, name, fn)
	}, nil
}

// guarded runs fn and turns a panic into an error.
func guarded(ctx context.Context, c types.NamespacedName, name string, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			ctrl.Log.WithName("tasks").Error(fmt.Errorf("panic: %v", p), "background task panicked",
				"canary", c.String(), "task", name, "stack", string(debug.Stack()))
			err = fmt.Errorf("%s panicked: %v", name, p)
		}
	}()
	return fn(ctx)
}
