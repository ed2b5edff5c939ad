package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
	"github.com/pennant/pennant/internal/controller"
	"github.com/pennant/pennant/internal/testenv"
)

// Three releases' worth of events for one canary within a minute all reach the API server with
// their own texts; client-go's default broadcaster (Flagger's) drops or combines most of them.
func TestEventsOfSeveralReleasesAreAllRecorded(t *testing.T) {
	env := testenv.Start(t)
	env.RequireCluster(t)
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 500, 500 // the events are posted one by one
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const events = 45
	for _, tc := range []struct {
		name        string
		broadcaster record.EventBroadcaster
		wantAll     bool
		// wait bounds the wait for all the events (for the defaults: long enough for the events
		// that are sent to arrive).
		wait time.Duration
	}{
		{"pennant", controller.NewEventBroadcaster(), true, 10 * time.Second},
		{"client-go defaults", record.NewBroadcaster(), false, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			tc.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events(ns)})
			defer tc.broadcaster.Shutdown()
			recorder := tc.broadcaster.NewRecorder(env.Scheme, corev1.EventSource{Component: "flagger"})
			cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns, UID: "6f1c8c0e-0000-4000-8000-000000000001"}}
			for i := range events {
				recorder.Event(cd, corev1.EventTypeNormal, "Synced", fmt.Sprintf("Advance podinfo.%s canary weight %d", ns, i))
			}
			got := 0
			deadline := time.Now().Add(tc.wait)
			for time.Now().Before(deadline) {
				list, err := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				got = 0
				for _, ev := range list.Items {
					var n int
					if _, err := fmt.Sscanf(ev.Message, "Advance podinfo."+ns+" canary weight %d", &n); err == nil {
						got++
					}
				}
				if got == events {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			switch {
			case tc.wantAll && got != events:
				t.Errorf("%d of %d events recorded with their texts", got, events)
			case !tc.wantAll && got == events:
				t.Errorf("client-go's defaults recorded all %d events: the test does not show what it guards against", events)
			}
		})
	}
}

// The events of 1,000 canaries whose steps fall due together (three each, within a second: as fast
// as the reconcile workers emit them) all reach the API server; client-go's broadcaster posts one
// at a time and drops what does not fit its queue of 1,000, so in the same time it records fewer.
func TestAWaveOfEventsIsAllRecorded(t *testing.T) {
	env := testenv.Start(t)
	env.RequireCluster(t)
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 500, 1000 // pennant's defaults
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const canaries, perCanary = 1000, 3
	for _, tc := range []struct {
		name        string
		broadcaster record.EventBroadcaster
		wantAll     bool
	}{
		{"pennant", controller.NewEventBroadcaster(), true},
		{"client-go's queue", record.NewBroadcaster(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.NewNamespace(t)
			tc.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events(ns)})
			defer tc.broadcaster.Shutdown()
			recorder := tc.broadcaster.NewRecorder(env.Scheme, corev1.EventSource{Component: "flagger"})
			for step := range perCanary {
				for i := range canaries {
					cd := &flaggerv1.Canary{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app%04d", i), Namespace: ns}}
					recorder.Event(cd, corev1.EventTypeNormal, "Synced", fmt.Sprintf("Advance %s.%s canary iteration %d/%d", cd.Name, ns, step+1, perCanary))
					if i%10 == 9 {
						// 8 workers whose reconciles take a few milliseconds emit a few thousand
						// events a second at most.
						time.Sleep(3 * time.Millisecond)
					}
				}
			}
			var list *corev1.EventList
			testenv.Eventually(t, 30*time.Second, 500*time.Millisecond, func() (bool, string) {
				if list, err = cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{}); err != nil {
					return false, err.Error()
				}
				return len(list.Items) == canaries*perCanary || !tc.wantAll, fmt.Sprintf("%d of %d events recorded", len(list.Items), canaries*perCanary)
			})
			if !tc.wantAll {
				time.Sleep(10 * time.Second) // what pennant's broadcaster took at most, and more
				if list, err = cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{}); err != nil {
					t.Fatal(err)
				}
				if len(list.Items) == canaries*perCanary {
					t.Errorf("client-go's broadcaster recorded all %d events: the test does not show what it guards against", len(list.Items))
				}
				t.Logf("client-go's broadcaster: %d of %d events recorded", len(list.Items), canaries*perCanary)
				return
			}
			seen := map[string]bool{}
			for _, e := range list.Items {
				seen[e.InvolvedObject.Name+" "+e.Message] = true
			}
			if len(seen) != canaries*perCanary {
				t.Errorf("%d distinct events recorded, want each of the %d once", len(seen), canaries*perCanary)
			}
		})
	}
}
