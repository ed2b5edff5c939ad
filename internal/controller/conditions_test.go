package controller_test

import (
	"testing"
	"time"

	flaggerv1 "github.com/pennant/pennant/api/v1beta1"
)

// TestConditionsKeepLastUpdateTime releases a canary on the local control plane: every condition
// stored by the API server (through Pennant's CRD, which would prune an unknown field) carries
// lastUpdateTime, and a finished canary's status is not written again (a time that moved on every
// decision, or one the API server dropped, would make a write per reconcile).
func TestConditionsKeepLastUpdateTime(t *testing.T) {
	f := newFixture(t)
	f.create(podinfoDeployment("podinfo", 1), blueGreenCanary("podinfo", "Deployment", 1))
	initialized := f.waitPhase("podinfo", flaggerv1.CanaryPhaseInitialized, phaseTimeout)
	before := *flaggerv1.FindCanaryCondition(initialized.Status.Conditions, flaggerv1.PromotedCondition)

	f.setImage("podinfo", "ghcr.io/stefanprodan/podinfo:6.0.1")
	cd := f.waitPhase("podinfo", flaggerv1.CanaryPhaseSucceeded, phaseTimeout)
	for _, c := range cd.Status.Conditions {
		if c.LastUpdateTime.IsZero() || c.LastUpdateTime.Before(&c.LastTransitionTime) {
			t.Errorf("%s: lastUpdateTime %v, lastTransitionTime %v", c.Type, c.LastUpdateTime, c.LastTransitionTime)
		}
	}
	after := flaggerv1.FindCanaryCondition(cd.Status.Conditions, flaggerv1.PromotedCondition)
	if !after.LastUpdateTime.After(before.LastUpdateTime.Time) {
		t.Errorf("Promoted lastUpdateTime %v did not move from %v (Initialized) to Succeeded", after.LastUpdateTime, before.LastUpdateTime)
	}

	// Nothing changes now: the status stays as written.
	version := cd.ResourceVersion
	time.Sleep(3 * time.Second)
	if got := f.canary("podinfo"); got.ResourceVersion != version {
		t.Errorf("a finished canary was written again: conditions %+v", got.Status.Conditions)
	}
}
