package controller

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/log"
)

// canaryTasks owns the background work of each canary: every task runs on a context that ends
// when its canary is forgotten (deleted) or when the parent context (the controller's) ends.
type canaryTasks struct {
	parent context.Context

	mu     sync.Mutex
	owners map[types.NamespacedName]canaryLifetime
}

type canaryLifetime struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// newCanaryTasks returns task ownership under parent; a nil parent falls back to Background so
// that tests and callers without a manager context still work.
func newCanaryTasks(parent context.Context) *canaryTasks {
	if parent == nil {
		parent = context.Background()
	}
	return &canaryTasks{parent: parent, owners: map[types.NamespacedName]canaryLifetime{}}
}

// lifetime returns the context of a canary's lifetime, creating it on first use.
func (t *canaryTasks) lifetime(c types.NamespacedName) context.Context {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.owners[c]; ok && l.ctx.Err() == nil {
		return l.ctx
	}
	ctx, cancel := context.WithCancel(t.parent)
	t.owners[c] = canaryLifetime{ctx: ctx, cancel: cancel}
	return ctx
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

// run calls fn on a context bounded by the canary's lifetime and timeout. A panic in fn is
// returned as an error (its stack is logged) instead of killing the controller.
func (t *canaryTasks) run(c types.NamespacedName, name string, timeout time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(t.lifetime(c), timeout)
	defer cancel()
	return guarded(ctx, c, name, fn)
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

// fallbackTasks serves reconcilers built without background checks (some tests).
var fallbackTasks = newCanaryTasks(nil)

// tasks returns the owner of the reconciler's background work.
func (r *CanaryReconciler) tasks() *canaryTasks {
	if r.checks != nil && r.checks.tasks != nil {
		return r.checks.tasks
	}
	return fallbackTasks
}
