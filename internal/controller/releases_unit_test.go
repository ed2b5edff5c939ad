package controller

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// The slots' bookkeeping on a cache that lags the controller's own writes: the queue's order, a
// reservation counted before the cache shows the release, an end counted before the cache shows it.
func TestReleaseSlotsQueueInOrderAndCountTheirOwnWrites(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	canary := func(name string, ph flaggerv1.CanaryPhase, since time.Time, queued bool) *flaggerv1.Canary {
		cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: name}}
		cd.Status.Phase, cd.Status.LastTransitionTime = ph, metav1.NewTime(since)
		if queued {
			cd.Status.Conditions = []flaggerv1.CanaryCondition{{Condition: metav1.Condition{
				Type: flaggerv1.ReconcilingCondition, Reason: flaggerv1.ReleaseQueuedReason}}}
		}
		return cd
	}
	scheme := runtime.NewScheme()
	if err := flaggerv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	objs := map[string]*flaggerv1.Canary{
		"running1": canary("running1", flaggerv1.CanaryPhaseProgressing, t0, false),
		"running2": canary("running2", flaggerv1.CanaryPhasePromoting, t0, false),
		"later":    canary("later", flaggerv1.CanaryPhaseWaiting, t0.Add(2*time.Second), true),
		"earlier":  canary("earlier", flaggerv1.CanaryPhaseWaiting, t0.Add(time.Second), true),
		"idle":     canary("idle", flaggerv1.CanaryPhaseSucceeded, t0, false),
	}
	var list []client.Object
	for _, o := range objs {
		list = append(list, o)
	}
	slots := newReleaseSlots(3, fake.NewClientBuilder().WithScheme(scheme).WithObjects(list...).Build())
	ctx, now := context.Background(), t0.Add(10*time.Second)
	take := func(name string) string {
		q, err := slots.take(ctx, objs[name], now)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}

	if q := take("later"); q == "" {
		t.Error("the later queued release took the one free slot before the earlier one")
	}
	if q := take("idle"); q == "" {
		t.Error("a new release took the slot before the queued ones")
	}
	if q := take("earlier"); q != "" {
		t.Errorf("the earliest queued release got no slot: %s", q)
	}
	// The cache does not show "earlier" in flight yet: its reservation counts.
	if q := take("later"); q == "" {
		t.Error("the slot reserved for earlier was given again")
	}
	if got := slots.queued(ctx); len(got) != 2 || got[0].Name != "earlier" || got[1].Name != "later" {
		t.Errorf("queue %v, want earlier then later", got)
	}
	// running1 ended: the cache still shows it Progressing, and earlier's start is not in it yet.
	slots.release(key(objs["running1"]), now)
	if q := take("later"); q != "" {
		t.Errorf("the slot of the release that ended was not freed: %s", q)
	}
	// A decision that started nothing gives its slot back.
	slots.giveBack(key(objs["later"]))
	slots.giveBack(key(objs["earlier"]))
	if q := take("idle"); q == "" {
		t.Error("two queued releases waiting, yet a new one took a slot")
	}
}
