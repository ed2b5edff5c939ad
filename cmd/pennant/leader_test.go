package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/pennant/pennant/internal/testenv"
)

// TestLeaderElectionTimingsAreFlaggers: Flagger elects with a lease of 60s, renewed within 15s,
// retried every 5s, and releases it on shutdown (controller-runtime's defaults are 15s, 10s, 2s
// and no release).
func TestLeaderElectionTimingsAreFlaggers(t *testing.T) {
	var opts ctrl.Options
	withLeaderElection(&opts, options{enableLeaderElection: true, leaderElectionNamespace: "flagger-system"})
	got := fmt.Sprintf("%v %s/%s lease %v renew %v retry %v release %v", opts.LeaderElection,
		opts.LeaderElectionNamespace, opts.LeaderElectionID,
		deref(opts.LeaseDuration), deref(opts.RenewDeadline), deref(opts.RetryPeriod), opts.LeaderElectionReleaseOnCancel)
	want := "true flagger-system/flagger-leader-election lease 1m0s renew 15s retry 5s release true"
	if got != want {
		t.Errorf("leader election: %s\nwant %s", got, want)
	}
}

func deref(d *time.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return *d
}

// TestLeaderElectionLeaseOnTheAPIServer runs a manager with the binary's leader election on the
// local API server: the Lease is Flagger's, held for 60s, and released when the manager stops.
func TestLeaderElectionLeaseOnTheAPIServer(t *testing.T) {
	env := testenv.Start(t)
	ns := env.NewNamespace(t)
	opts := ctrl.Options{Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}}
	withLeaderElection(&opts, options{enableLeaderElection: true, leaderElectionNamespace: ns})
	mgr, err := ctrl.NewManager(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("manager: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("manager did not stop")
		}
	}
	t.Cleanup(stop)

	lease := &coordinationv1.Lease{}
	key := types.NamespacedName{Namespace: ns, Name: "flagger-leader-election"}
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		if err := env.Client.Get(context.Background(), key, lease); err != nil {
			return false, err.Error()
		}
		held := lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != ""
		return held, fmt.Sprintf("lease %s not held: %+v", key, lease.Spec)
	})
	if d := lease.Spec.LeaseDurationSeconds; d == nil || *d != 60 {
		t.Errorf("leaseDurationSeconds %v, want 60", d)
	}

	stop()
	if err := env.Client.Get(context.Background(), key, lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("lease still held by %q after the manager stopped", *h)
	}
}
