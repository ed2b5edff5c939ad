package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/canary"
)

type panickingAnalyzer struct{}

func (panickingAnalyzer) Analyze(context.Context, *flaggerv1.Canary) error { panic("provider bug") }
func (panickingAnalyzer) CheckProviderAvailability(context.Context, *flaggerv1.Canary) error {
	return nil
}

// blockingAnalyzer waits for its context and reports that it ended.
type blockingAnalyzer struct{ ended chan error }

func (b blockingAnalyzer) Analyze(ctx context.Context, _ *flaggerv1.Canary) error {
	<-ctx.Done()
	b.ended <- ctx.Err()
	return ctx.Err()
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
	b := newBackgroundChecks(nil, panickingAnalyzer{}, func(types.NamespacedName) {})
	cd := testCanary()
	tick := time.Now()
	err := waitAnswer(t, func() error { return b.forTick(cd, tick).Analyze(context.Background(), cd) })
	if err == nil || !strings.Contains(err.Error(), "panicked: provider bug") {
		t.Fatalf("want a failed check naming the panic, got %v", err)
	}
}

func TestForgetCancelsRunningChecks(t *testing.T) {
	ended := make(chan error, 1)
	b := newBackgroundChecks(nil, blockingAnalyzer{ended: ended}, func(types.NamespacedName) {})
	cd := testCanary()
	_ = b.forTick(cd, time.Now()).Analyze(context.Background(), cd)
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
	tasks := newCanaryTasks(nil)
	err := tasks.run(types.NamespacedName{Name: "a"}, "hook", 50*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if err != context.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}
