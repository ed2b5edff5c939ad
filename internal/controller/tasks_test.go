package controller

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

type panickingAnalyzer struct{}

func (panickingAnalyzer) Check(context.Context, *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	panic("provider bug")
}
func (panickingAnalyzer) CheckProviderAvailability(context.Context, *flaggerv1.Canary) error {
	return nil
}

// blockingAnalyzer waits for its context and reports that it ended.
type blockingAnalyzer struct{ ended chan error }

func (b blockingAnalyzer) Check(ctx context.Context, _ *flaggerv1.Canary) ([]flaggerv1.CanaryCheckResult, error) {
	<-ctx.Done()
	b.ended <- ctx.Err()
	return nil, ctx.Err()
}
func (blockingAnalyzer) CheckProviderAvailability(context.Context, *flaggerv1.Canary) error {
	return nil
}

func testCanary() *flaggerv1.Canary {
	return &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"}}
}

func waitAnswer(t *testing.T, check func() error) error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := check(); !errors.Is(err, canary.ErrPending) {
			return err
		}
	}
	t.Fatal("check never answered")
	return nil
}

func TestPanickingAnalyzerIsAFailedCheck(t *testing.T) {
	b := newBackgroundChecks(nil, panickingAnalyzer{}, func(types.NamespacedName) {}, newCanaryTasks())
	cd := testCanary()
	tick := time.Now()
	err := waitAnswer(t, func() error {
		_, err := b.forTick(cd, tick, tick).Analyze(context.Background(), cd)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "panicked: provider bug") {
		t.Fatalf("want a failed check naming the panic, got %v", err)
	}
}

func TestForgetCancelsRunningChecks(t *testing.T) {
	ended := make(chan error, 1)
	b := newBackgroundChecks(nil, blockingAnalyzer{ended: ended}, func(types.NamespacedName) {}, newCanaryTasks())
	cd := testCanary()
	_, _ = b.forTick(cd, time.Now(), time.Now()).Analyze(context.Background(), cd)
	b.forget(key(cd))
	select {
	case err := <-ended:
		if err != context.Canceled {
			t.Fatalf("check context ended with %v, want Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("deleting the canary did not cancel its running check")
	}
}

func TestTaskTimeoutBoundsWork(t *testing.T) {
	tasks := newCanaryTasks()
	err := tasks.run(types.NamespacedName{Name: "a"}, "hook", 50*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if err != context.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}

// startTasks runs the tasks as the manager would, and returns the stop of the manager and a
// channel closed once Start has returned.
func startTasks(t *testing.T, tasks *canaryTasks) (stop context.CancelFunc, stopped <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := tasks.Start(ctx); err != nil {
			t.Errorf("Start: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cancel, done
}

func TestManagerStopCancelsRunningTasksAndWaitsForThem(t *testing.T) {
	tasks := newCanaryTasks()
	stop, stopped := startTasks(t, tasks)
	started, ended := make(chan struct{}), make(chan error, 1)
	var finished atomic.Bool // set by the task itself, before run can report it done
	go func() {
		ended <- tasks.run(types.NamespacedName{Name: "a"}, "hook", time.Hour, func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // cleanup that Start must wait for
			finished.Store(true)
			return ctx.Err()
		})
	}()
	<-started
	stop()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after the manager stopped")
	}
	if !finished.Load() {
		t.Fatal("Start returned while a task was still running")
	}
	if err := <-ended; err != context.Canceled {
		t.Fatalf("task ended with %v, want Canceled", err)
	}
}

func TestTasksAfterTheManagerStoppedAreRefused(t *testing.T) {
	tasks := newCanaryTasks()
	stop, stopped := startTasks(t, tasks)
	stop()
	<-stopped
	called := false
	err := tasks.run(types.NamespacedName{Name: "a"}, "hook", time.Minute, func(context.Context) error {
		called = true
		return nil
	})
	if called || !errors.Is(err, errShuttingDown) {
		t.Fatalf("task after stop: called %v, err %v; want refused with errShuttingDown", called, err)
	}
}

// A metric check cancelled by the manager's stop must not count as a failed check.
func TestCheckCutShortByTheStopIsPending(t *testing.T) {
	ended := make(chan error, 1)
	tasks := newCanaryTasks()
	stop, stopped := startTasks(t, tasks)
	b := newBackgroundChecks(nil, blockingAnalyzer{ended: ended}, func(types.NamespacedName) {}, tasks)
	cd := testCanary()
	tick := time.Now()
	if _, err := b.forTick(cd, tick, tick).Analyze(context.Background(), cd); !errors.Is(err, canary.ErrPending) {
		t.Fatalf("blocking check answered %v, want pending", err)
	}
	stop()
	<-stopped
	if _, err := b.forTick(cd, tick, tick).Analyze(context.Background(), cd); !errors.Is(err, canary.ErrPending) {
		t.Fatalf("check cut short by the stop answered %v, want pending", err)
	}
}
