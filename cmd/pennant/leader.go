package main

import (
	"time"

	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/pennant/pennant/internal/controller"
)

// leaderElectionID is the Lease Flagger elects its leader with: a Pennant replacing Flagger takes
// part in the same election.
const leaderElectionID = "flagger-leader-election"

// Flagger's leader election timings (cmd/flagger's startLeaderElection); Flagger has no flags for
// them, so neither has Pennant.
const (
	leaseDuration = 60 * time.Second
	renewDeadline = 15 * time.Second
	retryPeriod   = 5 * time.Second
)

// withLeaderElection sets the manager's leader election as Flagger's (-enable-leader-election,
// -leader-election-namespace): its Lease, its timings, and the Lease released on shutdown, so that
// a rolling update does not leave the canaries without a leader for a lease duration. main exits
// once the manager has stopped, as releasing requires.
func withLeaderElection(opts *ctrl.Options, o options) {
	opts.LeaderElection = o.enableLeaderElection
	opts.LeaderElectionID = controller.ShardLeaseName(leaderElectionID, o.watchLabelSelector)
	opts.LeaderElectionNamespace = o.leaderElectionNamespace
	opts.LeaseDuration = ptr.To(leaseDuration)
	opts.RenewDeadline = ptr.To(renewDeadline)
	opts.RetryPeriod = ptr.To(retryPeriod)
	opts.LeaderElectionReleaseOnCancel = true
}
