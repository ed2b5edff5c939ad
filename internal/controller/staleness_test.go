package controller

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// A cache behind our last status write: wait for it a moment, then (a watch broken under load)
// decide from the API server's copy, read at most once per cacheLag, rather than deciding again
// from a status the canary moved past.
func TestADecisionWaitsForTheCacheThenReadsTheAPIServer(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	withPhase := func(ph flaggerv1.CanaryPhase) *flaggerv1.Canary {
		cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "podinfo"}}
		cd.Status.Phase = ph
		return cd
	}
	scheme := runtime.NewScheme()
	if err := flaggerv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	gets := 0
	apiServer := fake.NewClientBuilder().WithScheme(scheme).WithObjects(withPhase(flaggerv1.CanaryPhaseProgressing)).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, o client.Object, opts ...client.GetOption) error {
			gets++
			return c.Get(ctx, k, o, opts...)
		}}).Build()
	now := t0
	r := &CanaryReconciler{Now: func() time.Time { return now }, apiReader: apiServer}
	ctx, stale := context.Background(), withPhase(flaggerv1.CanaryPhaseInitialized)

	if cd, wait, err := r.current(ctx, stale); err != nil || wait || cd != stale {
		t.Fatalf("without a write of ours: %v, wait %v, %v; want the cached canary", cd, wait, err)
	}
	r.rememberWrite(withPhase(flaggerv1.CanaryPhaseProgressing))
	now = t0.Add(cacheLag)
	if _, wait, err := r.current(ctx, stale); err != nil || !wait {
		t.Fatalf("a cache %s behind our write: wait %v, %v; want a wait", cacheLag, wait, err)
	}
	now = t0.Add(cacheLag + time.Millisecond)
	cd, wait, err := r.current(ctx, stale)
	if err != nil || wait || cd.Status.Phase != flaggerv1.CanaryPhaseProgressing || gets != 1 {
		t.Fatalf("a cache longer behind: %v (phase %q), wait %v, %v, %d reads; want the API server's canary, read once", cd, cd.Status.Phase, wait, err, gets)
	}
	if _, wait, _ := r.current(ctx, stale); !wait || gets != 1 {
		t.Errorf("right after the read: wait %v, %d reads; want a wait for the cache, no second read", wait, gets)
	}
	if cd, wait, _ := r.current(ctx, withPhase(flaggerv1.CanaryPhaseProgressing)); wait || cd.Status.Phase != flaggerv1.CanaryPhaseProgressing {
		t.Errorf("once the cache caught up: wait %v, phase %q; want the cached canary", wait, cd.Status.Phase)
	}
	if _, ok := r.written.Load(key(stale)); ok {
		t.Error("the write is still remembered once the cache showed it")
	}
}
